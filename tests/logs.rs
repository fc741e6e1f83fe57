//! Logs never carry scripts or secret values: a real `drover server` and a
//! real `drover agent`, both at DROVER_LOG=trace (which asks the WebSocket
//! library to print every frame), run a script that names a secret; neither
//! log holds the script text or the secret's value, in plain text or hex.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{b64, new_client, wait_for, FINAL};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_drover");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn traced(args: &[&str], log: &std::path::Path) -> Killed {
    let f = std::fs::File::create(log).unwrap();
    Killed(
        Command::new(BIN)
            .args(args)
            .env("DROVER_LOG", "trace")
            .env_remove("DROVER_SERVER")
            .env_remove("DROVER_REGISTER_CODE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_script_and_no_secret_value() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("server");
    let (id, key) = drover::cli::admin::create_root_key(&data).unwrap();
    let server_log = t.path().join("server.log");
    let _server = traced(
        &[
            "server",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &server_log,
    );
    let addr = wait_for("the server address", Duration::from_secs(30), || {
        let p = data.join("server.addr");
        async move {
            let a = std::fs::read_to_string(p).ok()?;
            (!a.is_empty()).then_some(a)
        }
    })
    .await;
    let url = format!("https://{addr}");
    let cert = data.join("tls").join("cert.pem");
    let client = new_client(&url, &id, &key, &cert);
    let code = wait_for("the API", Duration::from_secs(30), || async {
        client
            .call("CreateRegisterCode", &json!({"RegisterLimit": 1}))
            .await
            .ok()
    })
    .await["RegisterCodeValue"]
        .as_str()
        .unwrap()
        .to_string();
    let agent_dir = t.path().join("agent");
    let agent_log = t.path().join("agent.log");
    let _agent = traced(
        &[
            "agent",
            "--server",
            &url,
            "--register-code",
            &code,
            "--data-dir",
            agent_dir.to_str().unwrap(),
        ],
        &agent_log,
    );
    let instance = wait_for("registration", Duration::from_secs(30), || {
        let d = agent_dir.clone();
        async move { common::saved_instance_id(&d) }
    })
    .await;
    let secret = "Pa55-w0rd-never-logged-7431";
    let marker = "script-text-never-logged-5519";
    client
        .call(
            "CreateSecret",
            &json!({"SecretName": "db_pw", "SecretValue": secret}),
        )
        .await
        .unwrap();
    let script = format!("echo {marker} {{{{secret:db_pw}}}} > /dev/null");
    let inv = wait_for("a run", Duration::from_secs(30), || async {
        client
            .call(
                "RunCommand",
                &json!({"Content": b64(&script), "InstanceIds": [instance]}),
            )
            .await
            .ok()
    })
    .await["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    let task = wait_for("the task to finish", Duration::from_secs(60), || async {
        let r = client
            .call(
                "DescribeInvocationTasks",
                &json!({"Filters": [{"Name": "invocation-id", "Values": [inv]}]}),
            )
            .await
            .ok()?;
        let t = r["InvocationTaskSet"][0].clone();
        FINAL.contains(&t["TaskStatus"].as_str()?).then_some(t)
    })
    .await;
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");
    for (name, log) in [("server", &server_log), ("agent", &agent_log)] {
        let text = std::fs::read_to_string(log).unwrap();
        // Trace level was really on (other targets do print at trace).
        assert!(text.contains("TRACE"), "{name} log has no trace lines");
        for needle in [secret, marker] {
            assert!(!text.contains(needle), "{name} log holds {needle}");
            let hex = hex::encode(needle);
            assert!(
                !text.to_lowercase().contains(&hex),
                "{name} log holds {needle} in hex"
            );
        }
        assert!(!text.contains(&b64(&script)), "{name} log holds the script");
    }
}
