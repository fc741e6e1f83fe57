//! The people-facing commands, run as real processes: `drover demo` and
//! `drover run` against the demo's server and agents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_drover");

fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_runs_a_command_on_three_agents_and_cleans_up() {
    let out = Command::new(BIN)
        .args(["demo", "--once"])
        .env("DROVER_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("SUCCESS (exit 0)").count(), 3, "{stdout}");
    let hellos = stdout
        .lines()
        .filter(|l| l.starts_with("hello from"))
        .count();
    assert_eq!(hellos, 3, "{stdout}");
    assert!(stdout.contains("SecretId"), "{stdout}");
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CA file      : "))
        .map(|p| {
            Path::new(p.trim())
                .ancestors()
                .nth(3)
                .unwrap()
                .to_path_buf()
        })
        .unwrap();
    assert!(!dir.exists(), "the demo left {} behind", dir.display());
}

#[test]
fn run_prints_each_instance_and_reports_failure_in_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let mut demo = Command::new(BIN)
        .args(["demo", "--agents", "2", "--data-dir"])
        .arg(&data)
        .env("DROVER_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let profile = data.join("profile.json");
    wait_for(&profile, Duration::from_secs(60));

    let run = |cmd: &str| {
        Command::new(BIN)
            .args(["run", "--profile"])
            .arg(&profile)
            .args(["--all", "--", cmd])
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .output()
            .unwrap()
    };
    let ok = run("echo drover-$((6*7))");
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert_eq!(text.matches("drover-42").count(), 2, "{text}");
    assert_eq!(text.matches("SUCCESS (exit 0)").count(), 2, "{text}");

    // The demo tags its agents: env=demo from the register code, role=web
    // from each agent's own flag.
    for target in ["tag:env=demo", "tag:role=web"] {
        let out = Command::new(BIN)
            .args(["run", "--profile"])
            .arg(&profile)
            .args([
                "--target",
                target,
                "--max-concurrency",
                "1",
                "--",
                "echo tagged",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{target}: {text}");
        assert_eq!(
            text.matches("SUCCESS (exit 0)").count(),
            2,
            "{target}: {text}"
        );
    }

    let bad = run("echo failing; exit 3");
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert_eq!(text.matches("FAILED (exit 3)").count(), 2, "{text}");

    let no_creds = Command::new(BIN)
        .args([
            "run",
            "--server",
            "https://127.0.0.1:1",
            "--all",
            "--",
            "true",
        ])
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert_eq!(no_creds.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_creds.stderr).contains("SecretId"));

    // SIGINT stops the demo; it removes nothing it did not create, so the
    // data dir given on the command line stays.
    let _ = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status();
    let start = Instant::now();
    loop {
        if let Some(status) = demo.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(data.join("server").join("drover.db").exists());
}
