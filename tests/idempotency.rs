//! ClientToken (drover extension): a start repeated with the same token
//! returns the first answer and runs nothing again; the same token with
//! other parameters is refused and changes nothing. Executions are counted
//! through an evidence file the script appends to on the agent's machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{b64, code, Harness};
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_start_returns_the_first_result_and_runs_once() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let evidence = h.dir.path().join("ran.txt");
    let script = format!("echo run >> {}", evidence.display());
    let run = json!({
        "Content": b64(&script), "InstanceIds": [id], "ClientToken": "retry-after-timeout-1",
    });
    let first = h.call("RunCommand", run.clone()).await;
    let inv = first["InvocationId"].as_str().unwrap().to_string();
    h.wait_final(&inv, T30).await;
    // The client lost the answer and sends the same request again, several
    // times at once.
    let again =
        futures_util::future::join_all((0..6).map(|_| h.client.call("RunCommand", &run))).await;
    for r in again {
        let r = r.unwrap();
        assert_eq!(r["InvocationId"], first["InvocationId"], "{r}");
        assert_eq!(r["CommandId"], first["CommandId"], "{r}");
    }
    assert_eq!(h.counts().await.1, 1);
    assert_eq!(lines(&evidence), 1);

    // Several first attempts at once (a retry racing the original): one
    // start, one answer for all.
    let mut race = run.clone();
    race["ClientToken"] = json!("racing-token");
    let all =
        futures_util::future::join_all((0..6).map(|_| h.client.call("RunCommand", &race))).await;
    let ids: std::collections::HashSet<String> = all
        .into_iter()
        .map(|r| r.unwrap()["InvocationId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let raced = ids.into_iter().next().unwrap();
    h.wait_final(&raced, T30).await;
    assert_eq!(h.counts().await.1, 2);
    assert_eq!(lines(&evidence), 2);

    // Same token, other parameters: refused, nothing created.
    let mut other = run.clone();
    other["Content"] = json!(b64("echo other"));
    let e = h.call_err("RunCommand", other).await;
    assert_eq!(
        code(&e),
        "InvalidParameter.IdempotentParameterMismatch",
        "{e}"
    );
    assert_eq!(h.counts().await.1, 2);

    // A different token is a different start.
    let mut fresh = run.clone();
    fresh["ClientToken"] = json!("retry-after-timeout-2");
    let second = h.call("RunCommand", fresh).await;
    assert_ne!(second["InvocationId"], first["InvocationId"]);
    h.wait_final(second["InvocationId"].as_str().unwrap(), T30)
        .await;
    assert_eq!(lines(&evidence), 3);

    // InvokeCommand and CreateInvoker behave the same.
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "tok", "Content": b64(&script)}),
        )
        .await["CommandId"]
        .clone();
    let invoke = json!({"CommandId": cmd, "InstanceIds": [id], "ClientToken": "inv-tok"});
    let a = h.call("InvokeCommand", invoke.clone()).await;
    let b = h.call("InvokeCommand", invoke).await;
    assert_eq!(a["InvocationId"], b["InvocationId"]);
    h.wait_final(a["InvocationId"].as_str().unwrap(), T30).await;
    assert_eq!(lines(&evidence), 4);
    let create = json!({
        "Name": "nightly", "Type": "SCHEDULE", "CommandId": cmd, "InstanceIds": [id],
        "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "0 3 * * *"},
        "ClientToken": "ivk-tok",
    });
    let a = h.call("CreateInvoker", create.clone()).await;
    let b = h.call("CreateInvoker", create.clone()).await;
    assert_eq!(a["InvokerId"], b["InvokerId"]);
    let mut renamed = create;
    renamed["Name"] = json!("weekly");
    let e = h.call_err("CreateInvoker", renamed).await;
    assert_eq!(
        code(&e),
        "InvalidParameter.IdempotentParameterMismatch",
        "{e}"
    );
    assert_eq!(h.call("DescribeInvokers", json!({})).await["TotalCount"], 1);
    assert_eq!(h.counts().await.1, 4);
    assert_eq!(lines(&evidence), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_tokens_are_refused_and_change_nothing() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    for bad in [
        json!(""),
        json!("x".repeat(65)),
        json!("has space"),
        json!("ünïcode"),
        json!(7),
    ] {
        let p = json!({"Content": b64("true"), "InstanceIds": [id], "ClientToken": bad});
        let e = h.call_err("RunCommand", p).await;
        let c = code(&e);
        assert!(
            c == "InvalidParameterValue.InvalidClientToken" || c == "InvalidParameter",
            "{bad}: {e}"
        );
    }
    let ok: Value = h
        .call(
            "RunCommand",
            json!({"Content": b64("true"), "InstanceIds": [id], "ClientToken": "x".repeat(64)}),
        )
        .await;
    assert!(ok["InvocationId"].is_string());
    assert_eq!(h.counts().await.1, 1);
}
