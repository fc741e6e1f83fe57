//! Interactive sessions end to end (issue 11): a real server, a real agent
//! process, a real login shell in a pseudo-terminal, driven through the
//! browser's WebSocket as a signed-in console user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod sessionkit;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sessionkit::*;

const T: Duration = Duration::from_secs(30);

async fn cam(h: &Harness, action: &str, p: Value) -> Value {
    h.client
        .call_as("cam", "2019-01-16", action, &p)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// A console sub-user with one policy of these statements; returns the
/// session cookie.
async fn console_user(h: &Harness, name: &str, statements: Value) -> String {
    let password = "Sub-user-pass-1";
    let u = cam(
        h,
        "AddUser",
        json!({"Name": name, "ConsoleLogin": 1, "Password": password, "NeedResetPassword": 0}),
    )
    .await;
    let doc = json!({"version": "2.0", "statement": statements});
    let pid = cam(
        h,
        "CreatePolicy",
        json!({"PolicyName": format!("p_{name}"), "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    sign_in(h, name, password).await.0
}

fn agent_pid(h: &Harness) -> u32 {
    h.agents[0].child.as_ref().unwrap().id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_terminal_types_resizes_interrupts_and_exits() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let mut t = Term::connect(
        &h,
        &cookie,
        &format!("InstanceId={id}&User=root&Cols=80&Rows=24"),
    )
    .await;
    let opened = t.control_of("opened", T).await;
    assert!(
        opened["sessionId"].as_str().unwrap().starts_with("sess-"),
        "{opened}"
    );
    // The shell is the agent's child, in its own session with the
    // terminal as its controlling tty.
    let shells = children_of(agent_pid(&h));
    assert_eq!(shells.len(), 1, "one shell under the agent: {shells:?}");

    t.type_line("echo hello-$((6*7))").await;
    t.expect("hello-42", T).await;
    t.type_line("stty size; tty").await;
    t.expect("24 80", T).await;
    t.expect("/dev/pts/", T).await;
    t.resize(100, 30).await;
    t.type_line("stty size").await;
    t.expect("30 100", T).await;

    // Ctrl-C reaches the foreground job: the sleep ends at once and the
    // shell takes the next line.
    t.type_line("sleep 1000; echo slept-$((2+3))").await;
    t.type_line("").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.send(b"\x03").await;
    t.type_line("echo after-$((1+1))").await;
    t.expect("after-2", Duration::from_secs(20)).await;
    assert!(!t.screen.contains("slept-5"), "{}", t.screen);

    t.type_line("exit 3").await;
    let exit = t.control_of("exit", T).await;
    assert_eq!(exit["code"], 3, "{exit}");
    assert_eq!(exit["signal"], Value::Null, "{exit}");
    t.until_closed(T).await;
    for pid in shells {
        wait_for("the shell to be gone", T, || async move {
            (!alive(pid)).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_user_without_start_session_is_refused_and_no_shell_starts() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = console_user(
        &h,
        "nosession",
        json!([{"effect": "allow", "action": ["tat:RunCommand", "tat:DescribeInvocations"],
                "resource": "*"}]),
    )
    .await;
    let before = children_of(agent_pid(&h));
    let mut t = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "AuthFailure.UnauthorizedOperation", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("tat:StartSession") && msg.contains(&id) && msg.contains("root"),
        "{msg}"
    );
    assert!(
        t.control.iter().all(|v| v["type"] != "opened"),
        "{:?}",
        t.control
    );
    t.until_closed(T).await;
    assert_eq!(children_of(agent_pid(&h)), before, "no shell was started");
}
