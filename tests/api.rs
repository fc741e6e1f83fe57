//! Bad input changes nothing: authentication failures, malformed and
//! out-of-range parameters, unknown resources, and register codes that must
//! not let an agent in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{b64, code as ecode, spawn_agent, Agent, Client, Harness};
use serde_json::{json, Value};

fn with(base: &Value, key: &str, v: Value) -> Value {
    let mut p = base.clone();
    p[key] = v;
    p
}

fn without(base: &Value, key: &str) -> Value {
    let mut p = base.clone();
    p.as_object_mut().unwrap().remove(key);
    p
}

/// Calls `action` with `params`, expects `code`, and checks that the number
/// of commands and invocations did not change.
async fn rejects(h: &Harness, action: &str, params: Value, code: &str) {
    let before = h.counts().await;
    let e = h.call_err(action, params.clone()).await;
    assert_eq!(ecode(&e), code, "{action} {params}: {e}");
    assert_eq!(
        h.counts().await,
        before,
        "{action} {params} changed something"
    );
}

fn other_client(h: &Harness, id: &str, key: &str) -> Client {
    h.client_as(id, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let run = json!({"Content": b64("echo ok"), "InstanceIds": [id], "SaveCommand": true});
    let before = h.counts().await;

    let cases: Vec<(Client, &str)> = vec![
        (
            other_client(&h, &h.secret_id, "not-the-key"),
            "AuthFailure.SignatureFailure",
        ),
        (
            other_client(&h, "AKIDunknownunknownunknownunknown12", &h.secret_key),
            "AuthFailure.SecretIdNotFound",
        ),
        (
            {
                let mut c = other_client(&h, &h.secret_id, &h.secret_key);
                c.clock_skew = 600;
                c
            },
            "AuthFailure.SignatureExpire",
        ),
        (
            {
                let mut c = other_client(&h, &h.secret_id, &h.secret_key);
                c.clock_skew = -600;
                c
            },
            "AuthFailure.SignatureExpire",
        ),
    ];
    for (c, code) in &cases {
        for action in ["RunCommand", "DescribeInvocations"] {
            let e = c.call(action, &run).await.unwrap_err();
            assert_eq!(ecode(&e), *code, "{action}: {e}");
        }
    }
    let e = h.client.call("RunCommands", &run).await.unwrap_err();
    assert_eq!(ecode(&e), "InvalidAction", "{e}");
    let e = h
        .client
        .call_as("tat", "2017-01-01", "RunCommand", &run)
        .await
        .unwrap_err();
    assert_eq!(ecode(&e), "NoSuchVersion", "{e}");
    assert_eq!(h.counts().await, before);

    // The same request, correctly signed, works.
    h.call("RunCommand", run).await;
    assert_eq!(h.counts().await, (before.0 + 1, before.1 + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_parameters_change_nothing() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let run = json!({"Content": b64("echo ok"), "InstanceIds": [id], "SaveCommand": true});
    // The base request is valid: exactly one thing is wrong in each case.
    h.call("RunCommand", run.clone()).await;
    let create = json!({"CommandName": "c1", "Content": b64("echo ok")});
    h.call("CreateCommand", create.clone()).await;
    let create = with(&create, "CommandName", json!("c2"));

    let big = "#".repeat(49_200); // 65,600 bytes of base64
    for (action, base) in [("RunCommand", &run), ("CreateCommand", &create)] {
        let cases = [
            (with(base, "Bogus", json!(1)), "UnknownParameter"),
            (with(base, "Timeout", json!("60")), "InvalidParameter"),
            (without(base, "Content"), "MissingParameter"),
            (
                with(base, "Timeout", json!(0)),
                "InvalidParameterValue.Range",
            ),
            (
                with(base, "Timeout", json!(86401)),
                "InvalidParameterValue.Range",
            ),
            (
                with(base, "Content", json!("not base64!")),
                "InvalidParameterValue.InvalidContent",
            ),
            (
                with(base, "Content", json!(b64(&big))),
                "InvalidParameterValue.TooLong",
            ),
        ];
        for (p, code) in cases {
            rejects(&h, action, p, code).await;
        }
    }
    // Exactly at the limit is fine.
    let at_limit = "#".repeat(49_152);
    assert_eq!(b64(&at_limit).len(), 65_536);
    h.call(
        "CreateCommand",
        with(&create, "Content", json!(b64(&at_limit))),
    )
    .await;

    rejects(
        &h,
        "RunCommand",
        with(&run, "InstanceIds", json!([])),
        "MissingParameter",
    )
    .await;
    rejects(
        &h,
        "RunCommand",
        with(&run, "InstanceIds", json!("mi-12345678")),
        "InvalidParameter",
    )
    .await;
    for page_action in [
        "DescribeCommands",
        "DescribeInvocations",
        "DescribeInvocationTasks",
    ] {
        for limit in [0, 101] {
            rejects(
                &h,
                page_action,
                json!({"Limit": limit}),
                "InvalidParameterValue.Range",
            )
            .await;
        }
        rejects(
            &h,
            page_action,
            json!({"Offset": -1}),
            "InvalidParameterValue.Range",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_ids() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let content = b64("echo ok");
    let malformed: Vec<(&str, Value, &str)> = vec![
        (
            "RunCommand",
            json!({"Content": content, "InstanceIds": ["ins-1"]}),
            "InvalidParameterValue.InvalidInstanceId",
        ),
        (
            "RunCommand",
            json!({"Content": content, "InstanceIds": ["mi-UPPER123"]}),
            "InvalidParameterValue.InvalidInstanceId",
        ),
        (
            "InvokeCommand",
            json!({"CommandId": "cmd-1", "InstanceIds": [id]}),
            "InvalidParameterValue.InvalidCommandId",
        ),
        (
            "DeleteCommand",
            json!({"CommandId": "nope"}),
            "InvalidParameterValue.InvalidCommandId",
        ),
        (
            "DescribeCommands",
            json!({"CommandIds": ["inv-12345678"]}),
            "InvalidParameterValue.InvalidCommandId",
        ),
        (
            "DescribeInvocations",
            json!({"InvocationIds": ["inv-1234567"]}),
            "InvalidParameterValue.InvalidInvocationId",
        ),
        (
            "CancelInvocation",
            json!({"InvocationId": "cmd-12345678"}),
            "InvalidParameterValue.InvalidInvocationId",
        ),
        (
            "DescribeInvocationTasks",
            json!({"InvocationTaskIds": ["invt-x"]}),
            "InvalidParameterValue.InvalidInvocationTaskId",
        ),
        (
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": "invt-x"}),
            "InvalidParameterValue.InvalidInvocationTaskId",
        ),
        (
            "DeleteRegisterInstance",
            json!({"InstanceId": "mi-x"}),
            "InvalidParameterValue.InvalidRegisterInstanceId",
        ),
        (
            "DisableRegisterCodes",
            json!({"RegisterCodeIds": ["rgstr-x"]}),
            "InvalidParameterValue.InvalidRegisterCodeId",
        ),
    ];
    for (action, p, code) in malformed {
        rejects(&h, action, p, code).await;
    }

    let unknown: Vec<(&str, Value, &str)> = vec![
        (
            "RunCommand",
            json!({"Content": content, "InstanceIds": [id, "mi-zzzzzzzz"]}),
            "ResourceNotFound.InstanceNotFound",
        ),
        (
            "InvokeCommand",
            json!({"CommandId": "cmd-zzzzzzzz", "InstanceIds": [id]}),
            "ResourceNotFound.CommandNotFound",
        ),
        (
            "DeleteCommand",
            json!({"CommandId": "cmd-zzzzzzzz"}),
            "ResourceNotFound.CommandNotFound",
        ),
        (
            "ModifyCommand",
            json!({"CommandId": "cmd-zzzzzzzz", "Timeout": 5}),
            "ResourceNotFound.CommandNotFound",
        ),
        (
            "CancelInvocation",
            json!({"InvocationId": "inv-zzzzzzzz"}),
            "ResourceNotFound.InvocationNotFound",
        ),
    ];
    for (action, p, code) in unknown {
        rejects(&h, action, p, code).await;
    }
    for (action, p) in [
        (
            "DeleteRegisterInstance",
            json!({"InstanceId": "mi-zzzzzzzz"}),
        ),
        (
            "ModifyRegisterInstance",
            json!({"InstanceId": "mi-zzzzzzzz", "InstanceName": "x"}),
        ),
        (
            "DisableRegisterCodes",
            json!({"RegisterCodeIds": ["rgstr-zzzzzzzz"]}),
        ),
        (
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": "invt-zzzzzzzz"}),
        ),
    ] {
        let e = h.call_err(action, p).await;
        assert!(ecode(&e).starts_with("ResourceNotFound"), "{action}: {e}");
    }
    // Describe* of unknown ids find nothing rather than fail.
    let r = h
        .call(
            "DescribeInvocations",
            json!({"InvocationIds": ["inv-zzzzzzzz"]}),
        )
        .await;
    assert_eq!(r["TotalCount"], 0);
    assert_eq!(h.instance_count().await, 1);
}

async fn expect_refused(h: &Harness, code: &str, what: &str) {
    let before = h.instance_count().await;
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_agent(Some(&h.url()), dir.path(), Some(code));
    let mut a = Agent {
        dir,
        child: Some(child),
        instance_id: String::new(),
    };
    let exit = a.wait_exit(Duration::from_secs(20)).await;
    assert!(
        matches!(exit, Some(c) if c != 0),
        "{what}: agent exit {exit:?}"
    );
    assert_eq!(
        h.instance_count().await,
        before,
        "{what}: an instance was added"
    );
    assert!(common::saved_instance_id(a.data_dir()).is_none(), "{what}");
}

async fn new_code(h: &Harness, params: Value) -> (String, String) {
    let r = h.call("CreateRegisterCode", params).await;
    (
        r["RegisterCodeId"].as_str().unwrap().to_string(),
        r["RegisterCodeValue"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_codes_that_must_not_admit() {
    let mut h = Harness::start().await;

    let (cid, value) = new_code(&h, json!({})).await;
    h.call("DisableRegisterCodes", json!({"RegisterCodeIds": [cid]}))
        .await;
    expect_refused(&h, &value, "disabled code").await;

    let (_, value) = new_code(&h, json!({"IpAddressRange": "10.1.0.0/16"})).await;
    expect_refused(&h, &value, "IP range").await;

    let (cid, value) = new_code(&h, json!({"RegisterLimit": 1})).await;
    h.code_value = value.clone();
    h.add_agent().await;
    expect_refused(&h, &value, "RegisterLimit used up").await;
    let r = h
        .call("DescribeRegisterCodes", json!({"RegisterCodeIds": [cid]}))
        .await;
    assert_eq!(r["RegisterCodeSet"][0]["RegisteredCount"], 1, "{r}");
    assert_eq!(h.instance_count().await, 1);

    let (_, value) = new_code(&h, json!({"IpAddressRange": "127.0.0.0/8"})).await;
    h.code_value = value;
    h.add_agent().await;
    assert_eq!(h.instance_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_code_with_wrong_fingerprint() {
    let h = Harness::start().await;
    let (_, value) = new_code(&h, json!({})).await;
    let fp = &h.server.as_ref().unwrap().fingerprint;
    assert!(value.contains(fp.as_str()), "{value} should pin {fp}");
    let flipped: String = fp
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == '0' {
                    '1'
                } else {
                    '0'
                }
            } else {
                c
            }
        })
        .collect();
    let bad = value.replace(fp.as_str(), &flipped);

    let dir = tempfile::tempdir().unwrap();
    let child = spawn_agent(Some(&h.url()), dir.path(), Some(&bad));
    let mut a = Agent {
        dir,
        child: Some(child),
        instance_id: String::new(),
    };
    // It either gives up or keeps failing; in neither case does it get in.
    let exit = a.wait_exit(Duration::from_secs(4)).await;
    if let Some(c) = exit {
        assert_ne!(c, 0);
    }
    assert_eq!(h.instance_count().await, 0);
    assert!(common::saved_instance_id(a.data_dir()).is_none());
    // The code itself was not spent.
    let r = h.call("DescribeRegisterCodes", json!({})).await;
    for c in r["RegisterCodeSet"].as_array().unwrap() {
        assert_eq!(c["RegisteredCount"], 0, "{c}");
    }
}

/// `--ca-file` trusts the server through a CA bundle instead of the pin the
/// code carries: with the server's certificate as the bundle, a code whose
/// fingerprint is wrong still registers; with another CA it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_trusts_a_ca_file_instead_of_the_pin() {
    let h = Harness::start().await;
    let (_, value) = new_code(&h, json!({ "RegisterLimit": 2 })).await;
    let fp = h.server.as_ref().unwrap().fingerprint.clone();
    let unpinned = value.replace(&fp, &"0".repeat(64));
    let cert = h.data_dir().join("tls").join("cert.pem");
    let spawn = |ca: &std::path::Path, dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
            .args([
                "agent",
                "--server",
                &h.url(),
                "--register-code",
                &unpinned,
                "--ca-file",
            ])
            .arg(ca)
            .arg("--data-dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };

    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other.pem");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&other_ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let mut refused = Agent {
        child: Some(spawn(&other_ca, &other.path().join("agent"))),
        dir: other,
        instance_id: String::new(),
    };
    let _ = refused.wait_exit(Duration::from_secs(3)).await;
    refused.kill();
    assert_eq!(
        h.instance_count().await,
        0,
        "an untrusted server certificate must stop registration"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut trusted = Agent {
        child: Some(spawn(&cert, dir.path())),
        dir,
        instance_id: String::new(),
    };
    // The agent saves its identity only once the server has welcomed it.
    let saved = common::wait_for(
        "agent registered through --ca-file",
        Duration::from_secs(20),
        || async { common::saved_instance_id(trusted.data_dir()) },
    )
    .await;
    assert!(saved.starts_with("mi-"), "{saved}");
    assert_eq!(h.instance_count().await, 1);
    trusted.kill();
}
