//! Agent messages are applied only to the sender's own tasks, and every
//! number in them is range-checked. A test client speaking the real
//! protocol, with a real registered identity, sends forged reports over a
//! real agent connection; nothing they name changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::forger::register;
use common::{output_of, Harness};
use drover::protocol::{AgentMsg, Outcome, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const T30: Duration = Duration::from_secs(30);

/// The tests of this file count the server's store jobs for agent reports
/// (a process-wide metric): one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn task(h: &Harness, inv: &str) -> Value {
    h.tasks(inv, false).await.remove(0)
}

fn finished(task_id: &str, exit_code: Option<i64>, times: (i64, i64), len: u64) -> AgentMsg {
    AgentMsg::TaskFinished {
        task_id: task_id.into(),
        outcome: Outcome::Success,
        exit_code,
        started_at: times.0,
        ended_at: times.1,
        output_len: len,
        error_info: "forged".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reports_change_nothing_but_the_senders_own_tasks() {
    let _one = SERIAL.lock().await;
    let mut h = Harness::start().await;
    let real = h.add_agent().await;
    // Another instance's running task, with output...
    let inv_a = h
        .run(
            "echo real; sleep 60",
            std::slice::from_ref(&real),
            json!({}),
        )
        .await;
    h.wait_task_status(&inv_a, "RUNNING", T30).await;
    common::wait_for("the real output", T30, || async {
        (output_of(&task(&h, &inv_a).await) == "real\n").then_some(())
    })
    .await;
    // ...and one waiting for an instance that is offline.
    let offline = register(&h).await;
    let off_id = offline.instance_id.clone();
    drop(offline);
    h.wait_status(std::slice::from_ref(&off_id), "Offline")
        .await;
    let inv_c = h
        .run("echo c", std::slice::from_ref(&off_id), json!({}))
        .await;
    h.wait_task_status(&inv_c, "DELIVER_DELAYED", T30).await;

    let mut f = register(&h).await;
    h.wait_online(std::slice::from_ref(&f.instance_id)).await;
    let inv_b = h
        .run("echo b", std::slice::from_ref(&f.instance_id), json!({}))
        .await;
    let tb = f.run_task().await;
    let ta = task(&h, &inv_a).await["InvocationTaskId"]
        .as_str()
        .unwrap()
        .to_string();
    let tc = task(&h, &inv_c).await["InvocationTaskId"]
        .as_str()
        .unwrap()
        .to_string();
    let now = drover::timefmt::now_ms();

    // Other instances' tasks.
    for t in [&ta, &tc] {
        f.send(AgentMsg::TaskStarted {
            task_id: t.clone(),
            started_at: now,
        })
        .await;
        f.send(AgentMsg::Output {
            task_id: t.clone(),
            offset: 0,
            data: b64("forged output that is longer"),
        })
        .await;
        f.send(finished(t, Some(0), (now, now), 28)).await;
    }
    // Its own task, with impossible numbers.
    f.send(AgentMsg::TaskStarted {
        task_id: tb.clone(),
        started_at: i64::MAX,
    })
    .await;
    for offset in [u64::MAX, i64::MAX as u64, (i64::MAX as u64) + 1] {
        f.send(AgentMsg::Output {
            task_id: tb.clone(),
            offset,
            data: b64("x"),
        })
        .await;
    }
    f.send(finished(&tb, Some(i64::MAX), (now, now), 0)).await;
    f.send(finished(&tb, Some(0), (-1, now), 0)).await;
    f.send(finished(&tb, Some(0), (now, i64::MAX), 0)).await;
    f.send(finished(&tb, Some(0), (now, now), u64::MAX)).await;
    // A true report last: once it shows, everything before was handled.
    f.send(AgentMsg::TaskStarted {
        task_id: tb.clone(),
        started_at: now,
    })
    .await;
    h.wait_task_status(&inv_b, "RUNNING", T30).await;
    let acks: Vec<ServerMsg> = f
        .received(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|m| matches!(m, ServerMsg::Ack { .. }))
        .collect();
    assert!(acks.is_empty(), "nothing forged is acknowledged: {acks:?}");

    let a = task(&h, &inv_a).await;
    assert_eq!(a["TaskStatus"], "RUNNING", "{a}");
    assert_eq!(output_of(&a), "real\n");
    assert!(a["TaskResult"]["ExitCode"].is_null(), "{a}");
    let c = task(&h, &inv_c).await;
    assert_eq!(c["TaskStatus"], "DELIVER_DELAYED", "{c}");
    assert_eq!(output_of(&c), "");
    // The own task's deadline did not wrap: it stays RUNNING through
    // several sweeps, with no output from the impossible offsets.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let b = task(&h, &inv_b).await;
    assert_eq!(b["TaskStatus"], "RUNNING", "{b}");
    assert_eq!(output_of(&b), "");

    // The connection still works for true reports, which are acknowledged.
    f.send(AgentMsg::Output {
        task_id: tb.clone(),
        offset: 0,
        data: b64("b\n"),
    })
    .await;
    f.send(finished(&tb, Some(0), (now, now + 5), 2)).await;
    let got = f.received(Duration::from_secs(5)).await;
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Ack { task_id } if *task_id == tb)),
        "{got:?}"
    );
    let b = h.wait_final(&inv_b, T30).await.remove(0);
    assert_eq!(b["TaskStatus"], "SUCCESS", "{b}");
    assert_eq!(output_of(&b), "b\n");
    assert_eq!(task(&h, &inv_a).await["TaskStatus"], "RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_longer_than_the_stored_output_is_shown_incomplete() {
    let _one = SERIAL.lock().await;
    let h = Harness::start().await;
    let mut f = register(&h).await;
    h.wait_online(std::slice::from_ref(&f.instance_id)).await;
    let inv = h
        .run("echo x", std::slice::from_ref(&f.instance_id), json!({}))
        .await;
    let t = f.run_task().await;
    let now = drover::timefmt::now_ms();
    f.send(AgentMsg::TaskStarted {
        task_id: t.clone(),
        started_at: now,
    })
    .await;
    // 4 bytes arrive; the agent says it produced 10 and cannot resend more.
    f.send(AgentMsg::Output {
        task_id: t.clone(),
        offset: 0,
        data: b64("abcd"),
    })
    .await;
    f.send(finished(&t, Some(0), (now, now + 1), 10)).await;
    let task = h.wait_final(&inv, T30).await.remove(0);
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");
    assert_eq!(output_of(&task), "abcd");
    assert_eq!(task["TaskResult"]["Dropped"], 6, "{task}");
    let info = task["ErrorInfo"].as_str().unwrap();
    assert!(info.contains("6 of 10 bytes were lost"), "{info}");
    let r = h
        .call(
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": t}),
        )
        .await;
    assert_eq!(
        (r["Complete"].clone(), r["Missing"].clone()),
        (json!(false), json!(6)),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_that_arrive_together_are_written_in_one_store_job_in_order() {
    use futures_util::SinkExt;
    let _one = SERIAL.lock().await;
    let h = Harness::start().await;
    let mut f = register(&h).await;
    h.wait_online(std::slice::from_ref(&f.instance_id)).await;
    let inv = h
        .run("echo x", std::slice::from_ref(&f.instance_id), json!({}))
        .await;
    let t = f.run_task().await;
    let now = drover::timefmt::now_ms();
    let ops = &drover::metrics::METRICS.agent_report_ops;
    let jobs_before = ops.count();
    // A task that starts, prints twice and ends at once, in one write.
    for m in [
        AgentMsg::TaskStarted {
            task_id: t.clone(),
            started_at: now,
        },
        AgentMsg::Output {
            task_id: t.clone(),
            offset: 0,
            data: b64("ab"),
        },
        AgentMsg::Output {
            task_id: t.clone(),
            offset: 2,
            data: b64("c\n"),
        },
        finished(&t, Some(0), (now, now + 1), 4),
    ] {
        f.ws.feed(Message::text(serde_json::to_string(&m).unwrap()))
            .await
            .unwrap();
    }
    f.ws.flush().await.unwrap();
    let got = f.received(Duration::from_secs(5)).await;
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Ack { task_id } if *task_id == t)),
        "the committed result is acknowledged: {got:?}"
    );
    let task = h.wait_final(&inv, T30).await.remove(0);
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");
    assert_eq!(output_of(&task), "abc\n");
    assert_eq!(task["TaskResult"]["Dropped"], 0, "{task}");
    // Reports are folded when they are already read together; how the
    // four frames of one write are split into socket reads is up to the
    // kernel and TLS records, so a busy machine may read them in two or
    // three goes. Four jobs would mean nothing was folded.
    let jobs = ops.count() - jobs_before;
    assert!(
        (1..4).contains(&jobs),
        "four reports sent together take fewer than four store jobs: {jobs}"
    );
}
