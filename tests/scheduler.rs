//! Invokers on a real server with a real agent: a recurring schedule fires
//! repeatedly and stops when disabled; ONCE triggers missed while the server
//! was down run once within the grace window and are recorded as missed
//! beyond it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{b64, wait_for, Harness};
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);

async fn command(h: &Harness, script: &str) -> String {
    let r = h
        .call(
            "CreateCommand",
            json!({"CommandName": format!("c{}", drover::timefmt::now_ms()), "Content": b64(script)}),
        )
        .await;
    r["CommandId"].as_str().unwrap().to_string()
}

async fn records(h: &Harness, ivk: &str) -> Vec<Value> {
    let r = h
        .call(
            "DescribeInvokerRecords",
            json!({"InvokerIds": [ivk], "Limit": 100}),
        )
        .await;
    r["InvokerRecordSet"].as_array().unwrap().clone()
}

/// `YYYY-MM-DDThh:mm:ssZ`, `secs` seconds from now.
fn in_secs(secs: i64) -> (String, i64) {
    let at = (drover::timefmt::now_ms() / 1000 + secs) * 1000;
    (drover::timefmt::iso(at), at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurrence_fires_repeatedly_and_disable_stops_it() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cmd = command(&h, "echo tick").await;
    let r = h
        .call(
            "CreateInvoker",
            json!({
                "Name": "every-second", "Type": "SCHEDULE", "CommandId": cmd,
                "InstanceIds": [id],
                "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "* * * * * *"},
            }),
        )
        .await;
    let ivk = r["InvokerId"].as_str().unwrap().to_string();
    let done = wait_for("two successful triggers", T30, || async {
        let recs = records(&h, &ivk).await;
        let ok = recs.iter().filter(|r| r["Result"] == "SUCCESS").count();
        (ok >= 2).then_some(recs)
    })
    .await;
    for r in done.iter().filter(|r| r["Result"] == "SUCCESS") {
        let inv = h.invocation(r["InvocationId"].as_str().unwrap()).await;
        assert_eq!(inv["InvocationSource"], "INVOKER", "{inv}");
        assert_eq!(inv["InvocationStatus"], "SUCCESS", "{inv}");
        assert_eq!(inv["CommandId"], cmd.as_str(), "{inv}");
        assert!(!r["InvokeTime"].as_str().unwrap().is_empty(), "{r}");
    }
    let inv_ids: std::collections::HashSet<&str> = done
        .iter()
        .map(|r| r["InvocationId"].as_str().unwrap())
        .collect();
    assert_eq!(inv_ids.len(), done.len(), "one invocation per trigger");

    h.call("DisableInvoker", json!({"InvokerId": ivk})).await;
    let d = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert_eq!(d["InvokerSet"][0]["Enable"], false, "{d}");
    let n = records(&h, &ivk).await.len();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(records(&h, &ivk).await.len(), n, "a disabled invoker fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_missed_while_down_run_once_within_grace_else_are_recorded_missed() {
    let mut h = Harness::start().await;
    h.schedule.grace_ms = 5_000;
    let id = h.add_agent().await;
    let cmd = command(&h, "echo caught-up").await;
    let once = |name: &str, at: &str| {
        json!({
            "Name": name, "Type": "SCHEDULE", "CommandId": cmd, "InstanceIds": [id],
            "ScheduleSettings": {"Policy": "ONCE", "InvokeTime": at},
        })
    };
    let (early, _) = in_secs(2);
    let (late, late_ms) = in_secs(9);
    let missed = h.call("CreateInvoker", once("early", &early)).await["InvokerId"]
        .as_str()
        .unwrap()
        .to_string();
    let caught = h.call("CreateInvoker", once("late", &late)).await["InvokerId"]
        .as_str()
        .unwrap()
        .to_string();
    // The first server is down across both triggers: restarted 3 s after
    // the later one (within grace) and 10 s after the earlier (beyond).
    h.stop_server().await;
    let wait = late_ms + 3_000 - drover::timefmt::now_ms();
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    h.restart_server().await;

    let r = wait_for("the caught-up trigger to succeed", T30, || async {
        let recs = records(&h, &caught).await;
        (recs.len() == 1 && recs[0]["Result"] == "SUCCESS").then_some(recs)
    })
    .await;
    assert!(
        r[0]["Reason"].as_str().unwrap().contains("grace"),
        "{}",
        r[0]
    );
    let m = wait_for("the missed trigger to be recorded", T30, || async {
        let recs = records(&h, &missed).await;
        (!recs.is_empty()).then_some(recs)
    })
    .await;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["Result"], "MISSED", "{}", m[0]);
    assert_eq!(m[0]["InvocationId"], "", "{}", m[0]);
    assert_eq!(m[0]["InvokeTime"], early.as_str(), "{}", m[0]);

    // Only the caught-up trigger ran, and another restart runs nothing again.
    let i = h
        .call(
            "DescribeInvocations",
            json!({"Filters": [{"Name": "command-id", "Values": [cmd]}]}),
        )
        .await;
    assert_eq!(i["TotalCount"], 1, "{i}");
    h.restart_server().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(records(&h, &caught).await.len(), 1);
    assert_eq!(records(&h, &missed).await.len(), 1);
}
