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
    closing_the_browser_leaves_nothing(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_browser_kills_the_shell_and_its_jobs_without_cgroups() {
    closing_the_browser_leaves_nothing(&["--no-task-cgroups"]).await;
}

/// A root terminal on a fresh agent (started with `agent_args`) that runs
/// a background job and a `setsid` daemon: one that left the shell's
/// session, and so its process group and its terminal, as well.
struct Left {
    h: Harness,
    id: String,
    cookie: String,
    t: Term,
    shell: u32,
    job: u32,
    daemon: u32,
}

async fn shell_job_and_daemon(agent_args: &[&str]) -> Left {
    let mut h = Harness::start().await;
    let i = h.add_agents_with(1, agent_args).await[0];
    let id = h.agents[i].instance_id.clone();
    let cookie = root_cookie(&h).await;
    let (mut t, shell, job) = shell_with_job(&h, &cookie, &id).await;
    t.type_line("setsid sh -c 'echo daemon-$$; exec sleep 778' &")
        .await;
    let daemon = t.number_after("daemon-", T).await;
    Left {
        h,
        id,
        cookie,
        t,
        shell,
        job,
        daemon,
    }
}

async fn closing_the_browser_leaves_nothing(agent_args: &[&str]) {
    let Left {
        h,
        id,
        cookie,
        t,
        shell,
        job,
        daemon,
    } = shell_job_and_daemon(agent_args).await;
    // The agent finds the daemon by its cgroup or, without one, by the
    // session's environment mark.
    t.close().await;
    all_gone(&[shell, job, daemon], T).await;
    // The registry forgets it: the same user may open again at once.
    let (_t, shell2, _) = shell_with_job(&h, &cookie, &id).await;
    assert_ne!(shell2, shell);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_leaves_nothing_behind() {
    killed_agent_leaves_nothing(&[]).await;
}

/// The same where sessions get no cgroup (cgroup v1 hosts): the restarted
/// agent finds what is left by the session's environment mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agent_leaves_nothing_behind_without_cgroups() {
    killed_agent_leaves_nothing(&["--no-task-cgroups"]).await;
}

async fn killed_agent_leaves_nothing(agent_args: &[&str]) {
    let Left {
        mut h,
        id,
        mut t,
        shell,
        job,
        daemon,
        ..
    } = shell_job_and_daemon(agent_args).await;
    assert!(alive(daemon), "daemon {daemon}");
    h.agents[0].kill();
    // The shell dies with the agent (its death signal).
    all_gone(&[shell], T).await;
    // The browser is told the agent went away.
    let err = t.control_of("error", T).await;
    assert_eq!(err["code"], "FailedOperation.SessionClosed", "{err}");
    // Whatever the session left running — its background job (it may
    // outlive the shell when the death signal beats the terminal's
    // hangup) and the daemon — the restarted agent kills.
    h.agents[0].restart_with(agent_args);
    h.wait_online(&[id]).await;
    all_gone(&[job, daemon], T).await;
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

/// Item 1: a session flooding output shares the agent's connection fairly.
/// While one terminal prints without end — first read as fast as it
/// comes, then not read at all — a task on the same instance runs and
/// reports, a second terminal answers at once, and the agent's memory
/// stays small (the stalled flood waits in the terminal, not in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_session_starves_nothing_and_memory_stays_bounded() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let agent = h.agents[0].child.as_ref().unwrap().id();
    let cookie = root_cookie(&h).await;
    let mut flood = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    flood.control_of("opened", T).await;
    flood.type_line("yes drover-flood-line-0123456789").await;
    flood.expect("drover-flood-line", T).await;
    let rss_before = rss_kib(agent);

    // Read it as fast as it comes, meanwhile run a task and a second shell.
    let reader = tokio::spawn(async move {
        let n = flood.drain_for(Duration::from_secs(4)).await;
        (flood, n)
    });
    let t0 = std::time::Instant::now();
    let task = h.run_one("echo task-ran-$((3*3))", &id, json!({})).await;
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");
    assert!(output_of(&task).contains("task-ran-9"), "{task}");
    let mut other = Term::connect(&h, &cookie, &format!("InstanceId={id}&User=root")).await;
    other.control_of("opened", T).await;
    other.type_line("echo other-$((5*5))").await;
    other.expect("other-25", Duration::from_secs(10)).await;
    let during = t0.elapsed();
    let (mut flood, n) = reader.await.unwrap();
    assert!(n > 1 << 20, "the flood streamed ({n} bytes)");

    // Now nobody reads the flood: the agent stops reading its terminal.
    let stalled_at = rss_kib(agent);
    let t1 = std::time::Instant::now();
    let task = h.run_one("echo still-$((4*4))", &id, json!({})).await;
    assert!(output_of(&task).contains("still-16"), "{task}");
    other.type_line("echo again-$((6*6))").await;
    other.expect("again-36", Duration::from_secs(10)).await;
    let stalled = t1.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(agent);
    assert!(
        rss_after < rss_before + 32 * 1024,
        "agent memory grew from {rss_before} KiB (flood started) / {stalled_at} KiB (stalled) \
         to {rss_after} KiB"
    );
    // The flood is still alive and stops on Ctrl-C.
    flood.send(b"\x03").await;
    flood.drain_for(Duration::from_millis(500)).await;
    flood.type_line("echo flood-over-$((7*7))").await;
    flood.expect("flood-over-49", T).await;
    eprintln!(
        "flood: {n} bytes in 4 s; task + second shell took {during:?} while reading, \
         {stalled:?} while stalled; agent RSS {rss_before} -> {rss_after} KiB"
    );
}
