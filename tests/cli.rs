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

/// `drover server`'s ssh limits are its own flags: with
/// `--ssh-max-connections 1` a second connection is closed at once while
/// the first holds the only place, and `--ssh-login-grace 2` cuts the
/// first, which never signs in, long before the default minute.
#[test]
fn the_ssh_gateway_takes_its_limits_from_flags() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let log = t.path().join("server.log");
    // Killed however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(
        Command::new(BIN)
            .args(["server", "--data-dir"])
            .arg(&data)
            .args(["--listen", "127.0.0.1:0", "--ssh-listen", "127.0.0.1:0"])
            .args(["--ssh-max-connections", "1", "--ssh-login-grace", "2"])
            .env("DROVER_LOG", "error")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("drover ssh gateway on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no gateway: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Reads until EOF or `limit`; what arrived, and whether it ended.
    let read_all = |s: &mut std::net::TcpStream, limit: Duration| {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (start, mut got, mut buf) = (Instant::now(), Vec::new(), [0u8; 512]);
        while start.elapsed() < limit {
            match s.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
                Err(_) => {}
            }
            if got.ends_with(b"\n") && limit < Duration::from_secs(1) {
                break;
            }
        }
        (got, false)
    };
    let mut first = std::net::TcpStream::connect(&addr).unwrap();
    let (banner, _) = read_all(&mut first, Duration::from_millis(900));
    let wait_banner = Instant::now();
    let mut banner = banner;
    while !banner.starts_with(b"SSH-2.0-") {
        assert!(wait_banner.elapsed() < Duration::from_secs(30), "no banner");
        banner.extend(read_all(&mut first, Duration::from_millis(900)).0);
    }
    // The first holds the only place: the second is closed unserved.
    let mut second = std::net::TcpStream::connect(&addr).unwrap();
    let (got, ended) = read_all(&mut second, Duration::from_secs(30));
    assert!(
        ended && got.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // The first never signs in: cut after its grace time.
    let (_, ended) = read_all(&mut first, Duration::from_secs(30));
    assert!(ended, "still open after 30 s");
}
