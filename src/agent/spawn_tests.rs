//! The clone3 path gives a task the same process set-up as the std path:
//! real processes in a real cgroup.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::fd::AsFd;

use base64::Engine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::cgroup::Cgroups;
use super::super::exec::{self, ExecEvent, ExecResult, Host, Stops};
use super::super::{launch, sys};
use super::*;
use crate::protocol::{Outcome, TaskSpec};

fn tag() -> String {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    format!("spawn-test-{}", u64::from_le_bytes(b))
}

fn spec(script: &str, user: &str, cwd: &str) -> TaskSpec {
    TaskSpec {
        task_id: tag(),
        invocation_id: "inv-test".into(),
        command_type: "SHELL".into(),
        content: base64::engine::general_purpose::STANDARD.encode(script),
        timeout: 30,
        working_directory: cwd.into(),
        username: user.into(),
        mask: Vec::new(),
    }
}

async fn run(s: &TaskSpec, cgroups: &Cgroups) -> (ExecResult, String) {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    launch::prepare_work_root(&work).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let collect = async {
        let mut out = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let ExecEvent::Output { data, .. } = ev {
                out.extend(data);
            }
        }
        out
    };
    let stops = Stops {
        cancel: CancellationToken::new(),
        shutdown: CancellationToken::new(),
        suspend: tokio::sync::watch::channel(false).1,
    };
    let host = Host {
        cgroups: Some(cgroups.clone()),
        on_exit: None,
    };
    let (r, out) = tokio::join!(exec::run(s, &work, tx, stops, host), collect);
    (r, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn clone3_starts_the_process_inside_its_cgroup() {
    // A root agent on a machine with a writable cgroup2 tree (this one, and
    // the CI's) uses this path; the suite runs as root (scripts/test).
    assert_eq!(sys::euid(), 0, "the spawn tests need root (cgroups)");
    let cgs = Cgroups::detect(&tag()).expect("a writable cgroup2 hierarchy");
    let cg = cgs.create("direct").unwrap();
    let dir = cg.open_dir().unwrap();
    let (r, w) = std::io::pipe().unwrap();
    let program = CString::new("/bin/sh").unwrap();
    let args = [
        program.clone(),
        CString::new("-c").unwrap(),
        CString::new("cat /proc/self/cgroup; exit 7").unwrap(),
    ];
    let env = [CString::new("PATH=/usr/bin:/bin").unwrap()];
    let cwd = CString::new("/").unwrap();
    let plan = Plan {
        program: &program,
        args: &args,
        env: &env,
        output: w.as_fd(),
        cgroup: dir.as_fd(),
        cwd: &cwd,
        switch: None,
        parent_pid: sys::my_pid(),
    };
    let mut child = match spawn(&plan).unwrap() {
        Spawn::Started(c) => c,
        Spawn::Unsupported(e) => panic!("clone3 into a cgroup refused on this kernel: {e}"),
    };
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(7));
    // The child's copy of the write end closed with it; ours stays open
    // for the next spawn, so read what is there without waiting for EOF.
    let out = read_now(&r);
    assert!(out.contains("/direct"), "not in the task's cgroup: {out}");
    assert!(child.try_wait().unwrap().is_some(), "stays reaped");

    // A program that cannot be exec'd fails the spawn with its errno, and
    // nothing is left running.
    let missing = CString::new("/nonexistent/drover-test").unwrap();
    let plan = Plan {
        program: &missing,
        args: std::slice::from_ref(&missing),
        ..plan
    };
    let err = spawn(&plan).err().expect("exec of a missing program fails");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert!(cg.pids().is_empty(), "nothing left in the cgroup");
    drop(w);
    assert!(cg.remove());
    cgs.remove();
}

#[tokio::test]
async fn a_task_in_a_cgroup_gets_the_full_process_setup() {
    assert_eq!(sys::euid(), 0, "the spawn tests need root (cgroups)");
    let cgs = Cgroups::detect(&tag()).expect("a writable cgroup2 hierarchy");
    // In its cgroup from the first instruction, its own process group, no
    // blocked or ignored signals (Rust ignores SIGPIPE in the agent), only
    // stdio open, the working directory, the clean environment.
    let s = spec(
        "grep '^0::' /proc/self/cgroup; cut -d' ' -f5 /proc/$$/stat; echo $$; \
         grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '; echo; \
         pwd; env | cut -d= -f1 | sort | tr '\\n' ' '",
        "",
        "/tmp",
    );
    let (r, out) = run(&s, &cgs).await;
    assert_eq!(r.outcome, Outcome::Success, "{} / {out}", r.error_info);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with(&format!("/{}", s.task_id)), "{out}");
    assert_eq!(lines[1], lines[2], "the shell leads its own group: {out}");
    assert_eq!(lines[3], "SigBlk:\t0000000000000000", "{out}");
    // SIGPIPE (bit 12) is back to its default; whatever else the test
    // harness's own parent ignores is inherited as on the std path.
    let ignored = u64::from_str_radix(lines[4].trim_start_matches("SigIgn:\t"), 16).unwrap();
    assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    // 0-2 and the directory ls opened.
    assert_eq!(lines[5].trim(), "0 1 2 3", "{out}");
    assert_eq!(lines[6], "/tmp");
    let vars: Vec<&str> = lines[7].split_whitespace().collect();
    for v in ["HOME", "LOGNAME", "PATH", "SHELL", "USER", launch::TASK_ENV] {
        assert!(vars.contains(&v), "{v} missing: {out}");
    }
    assert!(
        vars.iter()
            .all(|v| v.starts_with("LC_") || !v.starts_with("DROVER_") || *v == launch::TASK_ENV),
        "{out}"
    );

    // Exit codes and signals come back as on the std path.
    let (r, _) = run(&spec("exit 3", "", "/tmp"), &cgs).await;
    assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, Some(3)));
    let (r, _) = run(&spec("kill -9 $$", "", "/tmp"), &cgs).await;
    assert_eq!(r.exit_code, None);
    assert_eq!(r.error_info, "killed by signal 9");

    // Another user: their uid and groups, their home, their permissions
    // for the working directory (a refusal fails the start, runs nothing).
    let nobody = sys::account_by_name("nobody").unwrap().unwrap();
    let (r, out) = run(&spec("id -u; id -G; echo $USER", "nobody", "/tmp"), &cgs).await;
    assert_eq!(r.outcome, Outcome::Success, "{} / {out}", r.error_info);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], nobody.uid.to_string());
    let mut groups: Vec<u32> = lines[1]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let mut want = sys::group_list(&nobody).unwrap();
    want.sort_unstable();
    want.dedup();
    assert_eq!(groups, want, "nobody's groups, not root's");
    assert_eq!(lines[2], "nobody");
    let marker = std::env::temp_dir().join(format!("{}-ran", tag()));
    let script = format!("touch {}", marker.display());
    let (r, _) = run(&spec(&script, "nobody", "/root"), &cgs).await;
    assert_eq!(r.outcome, Outcome::StartFailed);
    assert!(r.error_info.contains("nobody"), "{}", r.error_info);
    assert!(!marker.exists(), "a refused start ran the script");

    assert!(cgs.present().is_empty(), "every task's cgroup is removed");
    cgs.remove();
}

fn read_now(r: &std::io::PipeReader) -> String {
    use std::io::Read;
    // The child wrote before it exited: one read returns it (less than a
    // pipe's buffer) without waiting for end-of-file.
    let mut buf = vec![0u8; 4096];
    let n = (&*r).read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
