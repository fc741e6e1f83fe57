//! Secrets on a real server with a real agent: a `{{secret:NAME}}` reaches
//! the agent's script, the task's output shows `******` where the value was
//! printed exactly, and the value appears in no API response, in no file of
//! the server's data dir (database, WAL, logs), in no server log line, and
//! in nothing the agent keeps after the run. Unknown or deleted secrets stop
//! a run before anything is created; ModifySecret changes what runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use common::{b64, code, output_of, unb64, wait_for, Harness};
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);

/// Every log line the in-process server writes, at debug level.
fn server_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || Capture(sink.clone()))
            .with_ansi(false)
            .try_init();
        buf
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn random_value() -> String {
    format!("Sv-{}", hex::encode(drover::ids::random_bytes::<12>()))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Fails if `value` is in `v`: in any string, or in any string's base64
/// decoding (Content and Output are base64).
fn assert_clean(what: &str, v: &Value, value: &str) {
    match v {
        Value::String(s) => {
            assert!(!s.contains(value), "{what} holds the secret: {s}");
            if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(s) {
                assert!(
                    !contains(&d, value.as_bytes()),
                    "{what} holds the secret in base64: {s}"
                );
            }
        }
        Value::Array(a) => a.iter().for_each(|x| assert_clean(what, x, value)),
        Value::Object(m) => m.values().for_each(|x| assert_clean(what, x, value)),
        _ => {}
    }
}

/// Fails if any file under `dir` contains `value`; returns the files read.
fn assert_no_file_holds(dir: &Path, value: &str) -> usize {
    let mut n = 0;
    for ent in std::fs::read_dir(dir).unwrap() {
        let p = ent.unwrap().path();
        if p.is_dir() {
            n += assert_no_file_holds(&p, value);
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !contains(&bytes, value.as_bytes()),
                "{} holds the secret",
                p.display()
            );
            n += 1;
        }
    }
    n
}

async fn create_secret(h: &Harness, name: &str, value: &str) {
    let r = h
        .call(
            "CreateSecret",
            json!({"SecretName": name, "SecretValue": value, "Description": "test"}),
        )
        .await;
    assert_eq!(r["SecretName"], name);
}

async fn command(h: &Harness, script: &str, extra: Value) -> String {
    let mut p =
        json!({"CommandName": format!("c{}", drover::timefmt::now_ms()), "Content": b64(script)});
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    h.call("CreateCommand", p).await["CommandId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn invoke_output(h: &Harness, cmd: &str, id: &str, extra: Value) -> String {
    let mut p = json!({"CommandId": cmd, "InstanceIds": [id]});
    p.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let inv = h.call("InvokeCommand", p).await["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    let tasks = h.wait_final(&inv, T30).await;
    assert_eq!(tasks[0]["TaskStatus"], "SUCCESS", "{}", tasks[0]);
    output_of(&tasks[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_reaches_the_agent_masked_and_is_stored_nowhere() {
    let log = server_log();
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let (name, value) = ("db.pass-1", random_value());
    create_secret(&h, name, &value).await;

    // Exact echo, a transformed echo, and the value written in two pieces
    // with a pause between (two reads of the pipe on the agent).
    let script = format!(
        "v=\"{{{{secret:{name}}}}}\"\n\
         echo \"exact:$v\"\n\
         echo \"x{{{{secret:{name}}}}}y\" | rev\n\
         printf 'split:%s' \"${{v%??????}}\"; sleep 0.3; printf '%s\\n' \"${{v#${{v%??????}}}}\"\n\
         printf '%s' \"$v\" | sha256sum | cut -c1-64\n"
    );
    let cmd = command(&h, &script, json!({})).await;
    let out = invoke_output(&h, &cmd, &id, json!({})).await;
    let rev: String = format!("x{value}y").chars().rev().collect();
    assert_eq!(
        out,
        format!(
            "exact:******\n{rev}\nsplit:******\n{}\n",
            sha256_hex(&value)
        ),
        "the agent received the value and masked exact echoes"
    );
    // RunCommand takes the same path, with SaveCommand.
    let r = h
        .call(
            "RunCommand",
            json!({"Content": b64(&format!("echo \"{{{{secret:{name}}}}}\"")),
                   "InstanceIds": [id], "SaveCommand": true}),
        )
        .await;
    let run_inv = r["InvocationId"].as_str().unwrap().to_string();
    let tasks = h.wait_final(&run_inv, T30).await;
    assert_eq!(output_of(&tasks[0]), "******\n");

    // No API response holds the value.
    let task_ids: Vec<String> = {
        let r = h
            .call(
                "DescribeInvocationTasks",
                json!({"HideOutput": false, "Limit": 100}),
            )
            .await;
        assert_clean("DescribeInvocationTasks", &r, &value);
        r["InvocationTaskSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["InvocationTaskId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(task_ids.len(), 2);
    for t in &task_ids {
        let r = h
            .call(
                "DescribeInvocationTaskOutput",
                json!({"InvocationTaskId": t}),
            )
            .await;
        assert_clean("DescribeInvocationTaskOutput", &r, &value);
    }
    let placeholder = format!("{{{{secret:{name}}}}}");
    for (action, params) in [
        ("DescribeSecrets", json!({})),
        ("DescribeSecrets", json!({"SecretNames": [name]})),
        ("DescribeCommands", json!({"Limit": 100})),
        ("DescribeInvocations", json!({"Limit": 100})),
        ("DescribeAuditEvents", json!({"Limit": 100})),
        ("PreviewReplacedCommandContent", json!({"CommandId": cmd})),
    ] {
        let r = h.call(action, params).await;
        assert_clean(action, &r, &value);
        if action == "DescribeCommands" || action == "DescribeInvocations" {
            // The records keep the placeholder.
            let text = r.to_string();
            assert!(text.contains(&b64(&script)), "{action}: {text}");
        }
        if action == "PreviewReplacedCommandContent" {
            let shown = String::from_utf8(unb64(r["ReplacedContent"].as_str().unwrap())).unwrap();
            assert!(shown.contains(&placeholder), "{shown}");
        }
    }
    let secrets = h.call("DescribeSecrets", json!({})).await;
    assert_eq!(secrets["TotalCount"], 1);
    let s = &secrets["SecretSet"][0];
    assert_eq!(s["SecretName"], name);
    assert_eq!(s["Description"], "test");
    assert!(s.get("SecretValue").is_none());
    // The audit trail names the secret and records CreateSecret's success.
    let audit = h
        .call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["CreateSecret"]}]}),
        )
        .await;
    assert_eq!(
        audit["AuditEventSet"][0]["Resources"],
        json!([format!("secret/{name}")])
    );

    // Nothing the agent keeps after the acknowledged run holds the value.
    let agent_dir = h.agents[0].dir.path().to_path_buf();
    wait_for("the agent's journal to empty", T30, || {
        let j = agent_dir.join("journal");
        async move {
            drover::agent::journal::held(&j)
                .is_ok_and(|held| held.is_empty())
                .then_some(())
        }
    })
    .await;
    assert!(assert_no_file_holds(&agent_dir, &value) > 0);

    // Nor any file of the server, before or after a restart (WAL folded).
    assert!(assert_no_file_holds(&h.data_dir(), &value) >= 2);
    h.restart_server().await;
    assert!(assert_no_file_holds(&h.data_dir(), &value) >= 2);
    let logged = log.lock().unwrap().clone();
    assert!(
        contains(&logged, b"drover"),
        "the capture sees the server's log: {}",
        String::from_utf8_lossy(&logged[..logged.len().min(2000)])
    );
    assert!(
        !contains(&logged, value.as_bytes()),
        "a log line holds the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_modified_and_deleted_secrets() {
    let _ = server_log();
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let (name, first, second) = ("api_key", random_value(), random_value());
    create_secret(&h, name, &first).await;

    // Bad input is refused with a clear code and changes nothing.
    let cases = [
        (
            json!({"SecretName": name, "SecretValue": "other"}),
            "InvalidParameterValue.SecretNameDuplicated",
        ),
        (
            json!({"SecretName": "no spaces", "SecretValue": "v"}),
            "InvalidParameterValue.InvalidSecretName",
        ),
        (
            json!({"SecretName": "empty", "SecretValue": ""}),
            "InvalidParameterValue.InvalidSecretValue",
        ),
        (
            json!({"SecretName": "big", "SecretValue": "x".repeat(4097)}),
            "InvalidParameterValue.TooLong",
        ),
        (json!({"SecretName": "novalue"}), "MissingParameter"),
    ];
    for (params, want) in cases {
        let e = h.call_err("CreateSecret", params.clone()).await;
        assert_eq!(code(&e), want, "{params}");
        assert!(!e.to_string().contains(&"x".repeat(100)), "{e}");
    }
    assert_eq!(h.call("DescribeSecrets", json!({})).await["TotalCount"], 1);
    for (action, params) in [
        (
            "ModifySecret",
            json!({"SecretName": "nope", "SecretValue": "abcd"}),
        ),
        ("DeleteSecret", json!({"SecretName": "nope"})),
    ] {
        let e = h.call_err(action, params).await;
        assert_eq!(code(&e), "ResourceNotFound.SecretNotFound", "{action}");
    }
    let none = h
        .call(
            "DescribeSecrets",
            json!({"Filters": [{"Name": "secret-name", "Values": ["nope"]}]}),
        )
        .await;
    assert_eq!(none["TotalCount"], 0);

    // A run naming an unknown secret creates nothing.
    let before = h.counts().await;
    let e = h
        .call_err(
            "RunCommand",
            json!({"Content": b64("echo {{secret:missing}}"), "InstanceIds": [id], "SaveCommand": true}),
        )
        .await;
    assert_eq!(code(&e), "ResourceNotFound.SecretNotFound");
    assert_eq!(h.counts().await, before);

    // Parameters: the secret placeholder needs no default, and a parameter
    // value that looks like a placeholder stays text.
    let script = format!(
        "printf '%s' \"{{{{secret:{name}}}}}\" | sha256sum | cut -c1-64\necho 'p={{{{p}}}}'\n"
    );
    let cmd = command(
        &h,
        &script,
        json!({"EnableParameter": true, "DefaultParameters": "{\"p\":\"dflt\"}"}),
    )
    .await;
    let out = invoke_output(&h, &cmd, &id, json!({})).await;
    assert_eq!(out, format!("{}\np=dflt\n", sha256_hex(&first)));
    let smuggle = json!({"Parameters": format!("{{\"p\":\"{{{{secret:{name}}}}}\"}}")});
    let out = invoke_output(&h, &cmd, &id, smuggle).await;
    assert_eq!(
        out,
        format!("{}\np={{{{secret:{name}}}}}\n", sha256_hex(&first))
    );

    // ModifySecret changes what the agent receives; the description stays.
    h.call(
        "ModifySecret",
        json!({"SecretName": name, "SecretValue": second}),
    )
    .await;
    let out = invoke_output(&h, &cmd, &id, json!({})).await;
    assert_eq!(out, format!("{}\np=dflt\n", sha256_hex(&second)));
    let s = h
        .call("DescribeSecrets", json!({"SecretNames": [name]}))
        .await;
    assert_eq!(s["SecretSet"][0]["Description"], "test");

    // Once deleted, the command can no longer start.
    h.call("DeleteSecret", json!({"SecretName": name})).await;
    let before = h.counts().await;
    let e = h
        .call_err(
            "InvokeCommand",
            json!({"CommandId": cmd, "InstanceIds": [id]}),
        )
        .await;
    assert_eq!(code(&e), "ResourceNotFound.SecretNotFound");
    assert_eq!(h.counts().await, before);
}
