//! Bounded storage on a real server with a real agent: the per-task output
//! cap (stored up to the cap, the rest honestly Dropped and the output not
//! Complete), retention by `drover admin prune` and by the server's own
//! periodic prune (running and recent invocations stay), and the data
//! directory's file modes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{wait_for, Harness};
use drover::server::OpsSettings;
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Moves an invocation `days` into the past, as if it were that old.
fn age(h: &Harness, inv: &str, days: i64) {
    let c = rusqlite::Connection::open(h.data_dir().join("drover.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute(
        "UPDATE invocations SET created_ms = created_ms - ?2 WHERE id = ?1",
        rusqlite::params![inv, days * DAY_MS],
    )
    .unwrap();
}

async fn output_page(h: &Harness, task: &str) -> Value {
    h.call(
        "DescribeInvocationTaskOutput",
        json!({"InvocationTaskId": task, "Offset": 0, "Limit": 100000}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_past_the_cap_is_dropped_and_reported() {
    let mut h = Harness::start_ops(OpsSettings {
        max_output_bytes: 1000,
        ..OpsSettings::default()
    })
    .await;
    let id = h.add_agent().await;
    let big = h
        .run_one("head -c 5000 /dev/zero | tr '\\0' a", &id, json!({}))
        .await;
    assert_eq!(big["TaskStatus"], "SUCCESS", "{big}");
    assert_eq!(big["TaskResult"]["Dropped"], 4000, "{big}");
    let task = big["InvocationTaskId"].as_str().unwrap();
    let page = output_page(&h, task).await;
    assert_eq!(page["TotalSize"], 1000, "{page}");
    assert_eq!(page["Dropped"], 4000, "{page}");
    assert_eq!(page["Complete"], false, "{page}");
    assert_eq!(h.full_output(task, 300).await, vec![b'a'; 1000]);

    let small = h.run_one("echo fits", &id, json!({})).await;
    let page = output_page(&h, small["InvocationTaskId"].as_str().unwrap()).await;
    assert_eq!(
        (page["Dropped"].clone(), page["Complete"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(small["TaskResult"]["Dropped"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_invocations_are_pruned_by_admin_and_by_the_server() {
    let mut h = Harness::start_ops(OpsSettings {
        prune_interval: Duration::from_millis(500),
        ..OpsSettings::default()
    })
    .await;
    let id = h.add_agent().await;
    let old = h
        .run("echo old", std::slice::from_ref(&id), json!({}))
        .await;
    let recent = h
        .run("echo recent", std::slice::from_ref(&id), json!({}))
        .await;
    let running = h
        .run("sleep 600", std::slice::from_ref(&id), json!({}))
        .await;
    h.wait_final(&old, T30).await;
    h.wait_final(&recent, T30).await;
    h.wait_task_status(&running, "RUNNING", T30).await;
    age(&h, &old, 100);
    age(&h, &running, 100);
    // The server's own prune removes the old finished invocation only.
    wait_for("the periodic prune", T30, || async {
        let r = h
            .call(
                "DescribeInvocations",
                json!({"InvocationIds": [old.clone()]}),
            )
            .await;
        (r["TotalCount"] == 0).then_some(())
    })
    .await;
    for kept in [&recent, &running] {
        assert_eq!(h.invocation(kept).await["InvocationId"], kept.as_str());
    }

    // `drover admin prune` with a shorter retention, while the server runs.
    age(&h, &recent, 10);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["admin", "prune", "--retention-days", "7", "--data-dir"])
        .arg(h.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["Invocations"], 1, "{report}");
    let all = h.call("DescribeInvocations", json!({})).await;
    assert_eq!(all["TotalCount"], 1, "{all}");
    assert_eq!(all["InvocationSet"][0]["InvocationId"], running.as_str());
    h.call("CancelInvocation", json!({"InvocationId": running}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_and_database_are_private_even_when_they_existed() {
    let mut h = Harness::start().await;
    h.stop_server().await;
    let dir = h.data_dir();
    // An operator (or a package) left them readable.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["drover.db", "drover.db-wal", "drover.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    h.start_server().await;
    h.call("DescribeRegions", json!({})).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in ["drover.db", "drover.db-wal", "drover.db-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
}
