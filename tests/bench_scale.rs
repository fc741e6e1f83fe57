//! `drover bench-scale` at a small N: the simulator registers, heartbeats,
//! reconnects after a server restart and answers a fan-out, and the figures
//! are printed. A smoke test of the benchmark, not a timed test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn bench_scale_runs_fifty_simulated_agents() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["bench-scale", "50", "--idle-secs", "1", "--work"])
        .arg(work.path().join("w"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("all 50 connected and Online"), "{text}");
    assert!(
        text.contains("server restart         all 50 Online"),
        "{text}"
    );
    assert!(
        text.contains("50 tasks answered by the simulator"),
        "{text}"
    );
    assert!(text.contains("DescribeInvocationTasks 50 tasks"), "{text}");
}

#[test]
fn bench_load_mode_reports_throughput() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["bench-scale", "20", "--idle-secs", "0", "--load-secs", "1"])
        .args(["--load-clients", "2", "--work"])
        .arg(work.path().join("w"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().find(|l| l.contains("calls/s")).unwrap();
    let calls: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
    assert!(calls > 0.0, "{text}");
}
