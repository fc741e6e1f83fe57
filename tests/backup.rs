//! Backup and restore of a running appliance: `drover admin backup` while
//! the server works, the server stopped, `drover admin restore` into a new
//! data directory, the server started on it at the same address; the agent
//! reconnects as the same instance (no new registration) and runs a task.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{output_of, Harness};
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);

fn admin(args: &[&str], paths: &[&std::path::Path]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drover"));
    c.arg("admin").args(args);
    for p in paths {
        c.arg(p);
    }
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_running_restores_with_agents_intact() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let before = h.run_one("echo before", &id, json!({})).await;
    assert_eq!(before["TaskStatus"], "SUCCESS");
    // Work goes on while the backup is taken.
    let busy = h
        .run("sleep 2; echo during", std::slice::from_ref(&id), json!({}))
        .await;
    let backup = h.dir.path().join("backup-1");
    let out = admin(&["backup", "--data-dir"], &[&h.data_dir(), &backup]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["Format"], 1);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&backup), 0o700);
    for f in ["drover.db", "secret.key", "tls/key.pem", "MANIFEST.json"] {
        assert_eq!(mode(&backup.join(f)), 0o600, "{f}");
    }
    h.wait_final(&busy, T30).await;

    // The appliance is lost; a new data directory is restored from backup.
    h.stop_server().await;
    let lost = h.dir.path().join("lost");
    std::fs::rename(h.data_dir(), &lost).unwrap();
    // Restore refuses a directory that already holds a database.
    let refused = admin(&["restore", "--data-dir"], &[&lost, &backup]);
    assert!(!refused.status.success());
    let out = admin(&["restore", "--data-dir"], &[&h.data_dir(), &backup]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&h.data_dir()), 0o700);
    h.start_server().await;

    // Same instance, no second registration; the restored root key works.
    h.wait_online(std::slice::from_ref(&id)).await;
    assert_eq!(h.instance_count().await, 1);
    assert_eq!(
        common::saved_instance_id(h.agents[0].data_dir()).unwrap(),
        id
    );
    let after = h.run_one("echo after-restore", &id, json!({})).await;
    assert_eq!(after["TaskStatus"], "SUCCESS", "{after}");
    assert_eq!(output_of(&after), "after-restore\n");
    let listed = h.call("DescribeInvocations", json!({})).await;
    assert!(listed["TotalCount"].as_i64().unwrap() >= 2, "{listed}");

    // A damaged backup is refused.
    let bad = h.dir.path().join("backup-bad");
    std::fs::create_dir(&bad).unwrap();
    for f in ["drover.db", "secret.key", "MANIFEST.json"] {
        std::fs::copy(backup.join(f), bad.join(f)).unwrap();
    }
    std::fs::create_dir(bad.join("tls")).unwrap();
    std::fs::copy(backup.join("tls/cert.pem"), bad.join("tls/cert.pem")).unwrap();
    std::fs::write(bad.join("tls/key.pem"), b"tampered").unwrap();
    let target = h.dir.path().join("other");
    let out = admin(&["restore", "--data-dir"], &[&target, &bad]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));
    assert!(!target.join("drover.db").exists());
}
