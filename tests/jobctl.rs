//! Job control end to end: SuspendInvocation / ResumeInvocation against a
//! real server and real agents stopping and continuing real shells.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{code, output_of, process_alive, test_settings, wait_for, Harness};
use drover::dispatch::Settings;
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);

/// The state letter of a process (/proc/<pid>/stat field 3).
fn proc_state(pid: &str) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.trim_start().chars().next().unwrap()
}

/// The script's pid, which it writes to `file` first thing.
async fn script_pid(file: &Path) -> String {
    wait_for("the script's pid", T30, || async {
        let s = std::fs::read_to_string(file).ok()?;
        s.ends_with('\n').then(|| s.trim().to_string())
    })
    .await
}

/// A server and agent running `marker` (a distinctive sleep), suspended.
async fn suspended_sleep(marker: &str) -> (Harness, String) {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let inv = h.run(&format!("echo go; {marker}"), &[id], json!({})).await;
    h.wait_task_status(&inv, "RUNNING", T30).await;
    h.call("SuspendInvocation", json!({"InvocationId": inv}))
        .await;
    h.wait_task_status(&inv, "SUSPENDED", T30).await;
    (h, inv)
}

async fn only_task(h: &Harness, inv: &str) -> Value {
    h.tasks(inv, false).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_the_script_and_its_timeout_until_resumed() {
    // A short result grace: without the server pushing the deadline back by
    // the time suspended, the sweep would end this task as TASK_TIMEOUT.
    let mut h = Harness::start_with(Settings {
        result_grace_ms: 1_000,
        ..test_settings()
    })
    .await;
    let id = h.add_agent().await;
    let pid_file = h.dir.path().join("pid");
    let script = format!(
        "echo $$ > {}; for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done",
        pid_file.display()
    );
    // 1.8 s of work under a 3 s timeout; it spends longer than 3 s suspended.
    let inv = h.run(&script, &[id], json!({"Timeout": 3})).await;
    wait_for("the first tick", T30, || async {
        output_of(&only_task(&h, &inv).await)
            .contains("tick 1")
            .then_some(())
    })
    .await;
    let suspended_at = std::time::Instant::now();
    assert_eq!(
        h.call("SuspendInvocation", json!({"InvocationId": inv}))
            .await
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["RequestId"]
    );
    h.wait_task_status(&inv, "SUSPENDED", T30).await;
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "SUSPENDED");
    let pid = script_pid(&pid_file).await;
    // SIGSTOP reaches a running process asynchronously: wait for it.
    wait_for("the shell to be stopped", T30, || async {
        (proc_state(&pid) == 'T').then_some(())
    })
    .await;

    // Nothing is left to suspend; output does not grow while suspended.
    let e = h
        .call_err("SuspendInvocation", json!({"InvocationId": inv}))
        .await;
    assert_eq!(code(&e), "UnsupportedOperation.TaskNotRunning", "{e}");
    let before = output_of(&only_task(&h, &inv).await);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(output_of(&only_task(&h, &inv).await), before);
    assert!(!before.contains("tick 6"), "{before}");
    // Stay suspended past the whole timeout and the server's grace.
    let left = Duration::from_millis(4_200).saturating_sub(suspended_at.elapsed());
    tokio::time::sleep(left).await;
    assert_eq!(only_task(&h, &inv).await["TaskStatus"], "SUSPENDED");

    h.call("ResumeInvocation", json!({"InvocationId": inv}))
        .await;
    h.wait_task_status(&inv, "RUNNING", T30).await;
    let t = h.wait_final(&inv, T30).await.remove(0);
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    let want: String = (1..=6).map(|i| format!("tick {i}\n")).collect();
    assert_eq!(output_of(&t), want);
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "SUCCESS");

    // A finished invocation has nothing to suspend or resume.
    for (action, want) in [
        ("SuspendInvocation", "UnsupportedOperation.TaskNotRunning"),
        ("ResumeInvocation", "UnsupportedOperation.TaskNotSuspended"),
    ] {
        let e = h.call_err(action, json!({"InvocationId": inv})).await;
        assert_eq!(code(&e), want, "{action}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_suspended_task_terminates_it() {
    let marker = "sleep 61.25";
    let (h, inv) = suspended_sleep(marker).await;
    h.call("CancelInvocation", json!({"InvocationId": inv}))
        .await;
    let t = h.wait_final(&inv, T30).await.remove(0);
    assert_eq!(t["TaskStatus"], "TERMINATED", "{t}");
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "CANCELLED");
    wait_for("the stopped sleep to be gone", T30, || async {
        (!process_alive(marker)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_tasks_are_suspended_by_instance_and_bad_requests_change_nothing() {
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    let inv = h.run("echo go; sleep 61.5", &ids, json!({})).await;
    wait_for("both tasks to run", T30, || async {
        let ts = h.tasks(&inv, true).await;
        ts.iter()
            .all(|t| t["TaskStatus"] == "RUNNING")
            .then_some(())
    })
    .await;
    let status_of = |ts: &[Value], id: &str| {
        ts.iter()
            .find(|t| t["InstanceId"] == id)
            .map(|t| t["TaskStatus"].as_str().unwrap().to_string())
            .unwrap()
    };

    // Bad requests: the codes CancelInvocation gives, and nothing changes.
    let bad = [
        (json!({}), "MissingParameter"),
        (
            json!({"InvocationId": "inv-1"}),
            "InvalidParameterValue.InvalidInvocationId",
        ),
        (
            json!({"InvocationId": "inv-zzzzzzzz"}),
            "ResourceNotFound.InvocationNotFound",
        ),
        (
            json!({"InvocationId": inv, "InstanceIds": ["mi-zzzzzzzz"]}),
            "InvalidParameterValue.InstanceIsNotRelatedToInvocation",
        ),
        (
            json!({"InvocationId": inv, "InstanceIds": ["bogus"]}),
            "InvalidParameterValue.InvalidInstanceId",
        ),
        (
            json!({"InvocationId": inv, "InstanceIds": [ids[1]]}),
            "UnsupportedOperation.TaskNotSuspended",
        ),
    ];
    for (params, want) in bad {
        let action = if want.ends_with("TaskNotSuspended") {
            "ResumeInvocation"
        } else {
            "SuspendInvocation"
        };
        let e = h.call_err(action, params.clone()).await;
        assert_eq!(code(&e), want, "{action} {params}: {e}");
    }
    let ts = h.tasks(&inv, true).await;
    assert!(ts.iter().all(|t| t["TaskStatus"] == "RUNNING"), "{ts:?}");

    h.call(
        "SuspendInvocation",
        json!({"InvocationId": inv, "InstanceIds": [ids[0]]}),
    )
    .await;
    h.wait_task_status(&inv, "SUSPENDED", T30).await;
    let ts = h.tasks(&inv, true).await;
    assert_eq!(status_of(&ts, &ids[0]), "SUSPENDED");
    assert_eq!(status_of(&ts, &ids[1]), "RUNNING");
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "RUNNING");

    // Suspending everything now acts on the running one only.
    h.call("SuspendInvocation", json!({"InvocationId": inv}))
        .await;
    wait_for("the invocation to be SUSPENDED", T30, || async {
        (h.invocation(&inv).await["InvocationStatus"] == "SUSPENDED").then_some(())
    })
    .await;

    // The server restarts: the agents reconnect, the tasks stay suspended
    // and can still be resumed and cancelled.
    h.restart_server().await;
    let ts = h.tasks(&inv, true).await;
    assert!(ts.iter().all(|t| t["TaskStatus"] == "SUSPENDED"), "{ts:?}");
    h.call(
        "ResumeInvocation",
        json!({"InvocationId": inv, "InstanceIds": [ids[1]]}),
    )
    .await;
    wait_for("the second task to run again", T30, || async {
        (status_of(&h.tasks(&inv, true).await, &ids[1]) == "RUNNING").then_some(())
    })
    .await;
    assert_eq!(status_of(&h.tasks(&inv, true).await, &ids[0]), "SUSPENDED");
    h.call("CancelInvocation", json!({"InvocationId": inv}))
        .await;
    let ts = h.wait_final(&inv, T30).await;
    assert!(ts.iter().all(|t| t["TaskStatus"] == "TERMINATED"), "{ts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_ends_a_suspended_task_as_failed_and_kills_it() {
    let marker = "sleep 61.75";
    let (mut h, inv) = suspended_sleep(marker).await;
    // SIGKILL: the agent cannot continue or kill the stopped group itself.
    h.agents[0].restart();
    let t = h.wait_final(&inv, T30).await.remove(0);
    assert_eq!(t["TaskStatus"], "FAILED", "{t}");
    assert!(
        t["ErrorInfo"].as_str().unwrap().contains("agent restarted"),
        "{t}"
    );
    wait_for("the stopped sleep to be gone", T30, || async {
        (!process_alive(marker)).then_some(())
    })
    .await;
}
