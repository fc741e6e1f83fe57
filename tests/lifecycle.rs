//! Tasks across disconnections: offline agents, delivery deadlines, server
//! and agent restarts, deleted instances.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{output_of, process_alive, test_settings, wait_for, Harness};
use serde_json::json;

const T30: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_instance_task_is_delayed_then_fails() {
    let mut settings = test_settings();
    settings.deliver_timeout_ms = 3_000;
    let mut h = Harness::start_with(settings).await;
    let id = h.add_agent().await;
    h.agents[0].kill();
    h.wait_status(std::slice::from_ref(&id), "Offline").await;

    let inv = h.run("echo never", &[id], json!({})).await;
    let t = h
        .wait_task_status(&inv, "DELIVER_DELAYED", Duration::from_secs(5))
        .await;
    assert_eq!(t["ErrorInfo"], "", "{t}");
    let ts = h.wait_final(&inv, Duration::from_secs(15)).await;
    let t = &ts[0];
    assert_eq!(t["TaskStatus"], "DELIVER_FAILED", "{t}");
    assert!(!t["ErrorInfo"].as_str().unwrap().is_empty(), "{t}");
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_task_runs_when_the_agent_returns() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    h.agents[0].kill();
    h.wait_status(std::slice::from_ref(&id), "Offline").await;

    let inv = h
        .run("echo came back", std::slice::from_ref(&id), json!({}))
        .await;
    h.wait_task_status(&inv, "DELIVER_DELAYED", Duration::from_secs(5))
        .await;
    h.agents[0].restart();
    h.wait_online(std::slice::from_ref(&id)).await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "SUCCESS", "{}", ts[0]);
    assert_eq!(output_of(&ts[0]), "came back\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_delayed_task() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    h.agents[0].kill();
    h.wait_status(std::slice::from_ref(&id), "Offline").await;
    let inv = h
        .run("echo must-not-run", std::slice::from_ref(&id), json!({}))
        .await;
    h.wait_task_status(&inv, "DELIVER_DELAYED", Duration::from_secs(5))
        .await;
    h.call("CancelInvocation", json!({"InvocationId": inv}))
        .await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "CANCELLED", "{}", ts[0]);
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "CANCELLED");
    // The agent comes back and the cancelled task stays cancelled, unrun.
    h.agents[0].restart();
    h.wait_online(std::slice::from_ref(&id)).await;
    let t = h.run_one("echo later", &id, json!({})).await;
    assert_eq!(output_of(&t), "later\n");
    let ts = h.tasks(&inv, false).await;
    assert_eq!(ts[0]["TaskStatus"], "CANCELLED", "{}", ts[0]);
    assert_eq!(output_of(&ts[0]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_invocation() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let inv = h
        .run("echo begin; sleep 3; echo done", &[id], json!({}))
        .await;
    h.wait_task_status(&inv, "RUNNING", T30).await;
    h.restart_server().await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "SUCCESS", "{}", ts[0]);
    assert_eq!(output_of(&ts[0]), "begin\ndone\n");
    assert_eq!(h.invocation(&inv).await["InvocationStatus"], "SUCCESS");

    // The restarted server still runs new work.
    let t = h.run_one("echo again", &h.agent_ids()[0], json!({})).await;
    assert_eq!(output_of(&t), "again\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_task_survives_a_server_restart() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    h.agents[0].kill();
    h.wait_status(std::slice::from_ref(&id), "Offline").await;
    let inv = h
        .run("echo after restart", std::slice::from_ref(&id), json!({}))
        .await;
    h.wait_task_status(&inv, "DELIVER_DELAYED", Duration::from_secs(5))
        .await;
    h.restart_server().await;
    assert_eq!(
        h.tasks(&inv, true).await[0]["TaskStatus"],
        "DELIVER_DELAYED"
    );
    h.agents[0].restart();
    h.wait_online(std::slice::from_ref(&id)).await;
    let ts = h.wait_final(&inv, T30).await;
    assert_eq!(ts[0]["TaskStatus"], "SUCCESS", "{}", ts[0]);
    assert_eq!(output_of(&ts[0]), "after restart\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_invocation() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let marker = "sleep 63.5";
    let inv = h
        .run(
            &format!("echo begin; {marker}"),
            std::slice::from_ref(&id),
            json!({"Timeout": 600}),
        )
        .await;
    h.wait_task_status(&inv, "RUNNING", T30).await;
    wait_for("the task's sleep to start", T30, || async {
        process_alive(marker).then_some(())
    })
    .await;
    h.agents[0].kill();
    h.agents[0].restart();
    h.wait_online(std::slice::from_ref(&id)).await;
    let ts = h.wait_final(&inv, T30).await;
    let t = &ts[0];
    assert_eq!(t["TaskStatus"], "FAILED", "{t}");
    let info = t["ErrorInfo"].as_str().unwrap();
    assert!(
        info.to_lowercase().contains("restart"),
        "ErrorInfo: {info:?}"
    );
    // The new agent does not leave the old task's process running.
    wait_for(
        "the orphaned sleep to be gone",
        Duration::from_secs(10),
        || async { (!process_alive(marker)).then_some(()) },
    )
    .await;
    // And it runs new work.
    let t = h.run_one("echo alive", &id, json!({})).await;
    assert_eq!(output_of(&t), "alive\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_instance_cannot_come_back() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    assert_eq!(h.instance_count().await, 1);
    h.call("DeleteRegisterInstance", json!({"InstanceId": id}))
        .await;
    assert_eq!(h.instance_count().await, 0);

    // The agent is disconnected and refused: it exits, or at least never
    // shows up again.
    let exited = h.agents[0].wait_exit(Duration::from_secs(10)).await;
    if exited.is_none() {
        h.agents[0].restart();
    }
    let r = h
        .call(
            "DescribeAutomationAgentStatus",
            json!({"InstanceIds": [id]}),
        )
        .await;
    assert_eq!(r["TotalCount"], 0, "{r}");
    let e = h
        .call_err(
            "RunCommand",
            json!({"Content": common::b64("echo x"), "InstanceIds": [id]}),
        )
        .await;
    assert_eq!(common::code(&e), "ResourceNotFound.InstanceNotFound");
    // A restarted agent with the same identity is refused too.
    h.agents[0].restart();
    let code = h.agents[0].wait_exit(Duration::from_secs(10)).await;
    assert!(matches!(code, Some(c) if c != 0), "agent exit: {code:?}");
    assert_eq!(h.instance_count().await, 0);
    assert!(exited.is_some(), "the deleted agent kept running for 10 s");
}
