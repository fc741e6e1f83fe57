//! `drover bench-scale` at a small N: the simulator registers, heartbeats,
//! reconnects after a server restart and answers a fan-out, and the figures
//! are printed. A smoke test of the benchmark, not a timed test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn bench_scale_runs_fifty_simulated_agents() {
    let work = tempfile::tempdir().unwrap();
    // Through the wrapper script, as a user runs it.
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-scale"))
        .args(["50", "--idle-secs", "1"])
        .env("DROVER_BIN", env!("CARGO_BIN_EXE_drover"))
        .env("TMPDIR", work.path())
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
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-load"))
        .args(["20", "--load-secs", "1", "--load-clients", "2"])
        .env("DROVER_BIN", env!("CARGO_BIN_EXE_drover"))
        .env("TMPDIR", work.path())
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

#[test]
fn bench_fanout_scripts_parse() {
    let root = env!("CARGO_MANIFEST_DIR");
    let sh = Command::new("bash")
        .args(["-n", &format!("{root}/scripts/bench-fanout")])
        .status()
        .unwrap();
    assert!(sh.success());
    let py = Command::new("python3")
        .args([
            "-c",
            "import ast, sys; ast.parse(open(sys.argv[1]).read())",
            &format!("{root}/scripts/bench_fanout.py"),
        ])
        .status()
        .unwrap();
    assert!(py.success());
}
