//! Interactive sessions leave nothing behind (issue 11, item 6): whichever
//! side goes away — the browser, the agent, the server — or when an
//! administrator terminates the session or a limit ends it, the shell and
//! every job it started are gone from the instance. Each test reads the
//! shell's and a background job's pids from inside the session and waits
//! for both to disappear.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod sessionkit;

use std::time::Duration;

use common::*;
use serde_json::json;
use sessionkit::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_browser_kills_the_shell_and_its_jobs() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let (t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    t.close().await;
    all_gone(&[shell, job], T).await;
    // The registry forgets it: the same user may open again at once.
    let (_t, shell2, _) = shell_with_job(&h, &cookie, &id).await;
    assert_ne!(shell2, shell);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_leaves_no_shell() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let (mut t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    h.agents[0].kill();
    all_gone(&[shell, job], T).await;
    // The browser is told the agent went away.
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "FailedOperation.SessionClosed", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_leaves_no_shell() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let (_t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    h.stop_server().await;
    all_gone(&[shell, job], T).await;
    assert!(
        h.agents[0].child.is_some(),
        "the agent itself keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_terminates_a_live_session() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let (mut t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    let sid = t.control_of("opened", T).await["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    // Another instance's id, or an unknown session: nothing ends.
    let other = h.add_agent().await;
    let e = h
        .call_err(
            "TerminateSession",
            json!({"InstanceId": other, "SessionId": sid}),
        )
        .await;
    assert_eq!(code(&e), "ResourceNotFound.SessionNotFound");
    assert!(alive(shell));
    h.call(
        "TerminateSession",
        json!({"InstanceId": id, "SessionId": sid}),
    )
    .await;
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "FailedOperation.SessionClosed", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("terminated by"),
        "{err}"
    );
    all_gone(&[shell, job], T).await;
    let e = h
        .call_err(
            "TerminateSession",
            json!({"InstanceId": id, "SessionId": sid}),
        )
        .await;
    assert_eq!(code(&e), "ResourceNotFound.SessionNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_close_and_concurrency_is_limited() {
    let ops = drover::server::OpsSettings {
        sessions: drover::session::Limits {
            idle_timeout: Duration::from_secs(3),
            per_user: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = Harness::start_ops(ops).await;
    let id = h.add_agent().await;
    let cookie = root_cookie(&h).await;
    let (mut t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    // A second session of the same user is refused while the first lives.
    let mut second = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    let err = second.control_of("error", T).await;
    assert_eq!(err["code"], "LimitExceeded.Session", "{err}");
    // Left alone, the first one is closed for idleness.
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "FailedOperation.SessionClosed", "{err}");
    assert!(err["message"].as_str().unwrap().contains("idle"), "{err}");
    all_gone(&[shell, job], T).await;
}
