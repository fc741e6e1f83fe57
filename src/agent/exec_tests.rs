//! Executor tests: they start real processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use base64::Engine;

struct Run {
    result: ExecResult,
    output: Vec<u8>,
    chunks: Vec<(u64, Vec<u8>)>,
    pgid: Option<i32>,
}

fn spec(command_type: &str, script: &str) -> TaskSpec {
    TaskSpec {
        task_id: format!("t-{}", rand_id()),
        invocation_id: "inv-test".into(),
        command_type: command_type.into(),
        content: base64::engine::general_purpose::STANDARD.encode(script),
        timeout: 30,
        working_directory: "/tmp".into(),
        username: String::new(),
        mask: Vec::new(),
    }
}

fn rand_id() -> u64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b)
}

async fn run_with(spec: TaskSpec, stops: Stops) -> Run {
    run_in(spec, stops, Host::default()).await
}

async fn run_in(spec: TaskSpec, stops: Stops, host: Host) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    launch::prepare_work_root(&work).unwrap();
    // Other users must be able to traverse to their own task directory.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let collect = async {
        let mut chunks = Vec::new();
        let mut pgid = None;
        while let Some(ev) = rx.recv().await {
            match ev {
                ExecEvent::Started { pgid: p, .. } => pgid = Some(p),
                ExecEvent::Output { offset, data } => chunks.push((offset, data)),
                _ => {}
            }
        }
        (chunks, pgid)
    };
    let (result, (chunks, pgid)) = tokio::join!(run(&spec, &work, tx, stops, host), collect);
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "the script file must be removed"
    );
    let mut output = Vec::new();
    for (off, data) in &chunks {
        assert_eq!(*off, output.len() as u64, "offsets must be contiguous");
        output.extend_from_slice(data);
    }
    assert_eq!(result.output_len, output.len() as u64);
    Run {
        result,
        output,
        chunks,
        pgid,
    }
}

fn no_stops() -> Stops {
    Stops {
        cancel: CancellationToken::new(),
        shutdown: CancellationToken::new(),
        suspend: tokio::sync::watch::channel(false).1,
    }
}

async fn shell(script: &str) -> Run {
    run_with(spec("SHELL", script), no_stops()).await
}

fn text(r: &Run) -> String {
    String::from_utf8_lossy(&r.output).into_owned()
}

#[tokio::test]
async fn reports_output_and_exit_codes() {
    let r = shell("echo hello; echo world").await;
    assert_eq!(r.result.outcome, Outcome::Success);
    assert_eq!(r.result.exit_code, Some(0));
    assert_eq!(text(&r), "hello\nworld\n");
    assert!(r.pgid.is_some());
    assert!(r.result.ended_at >= r.result.started_at);

    let r = shell("echo bad; exit 3").await;
    assert_eq!(r.result.outcome, Outcome::Failed);
    assert_eq!(r.result.exit_code, Some(3));

    let r = shell("kill -9 $$").await;
    assert_eq!(r.result.outcome, Outcome::Failed);
    assert_eq!(
        r.result.exit_code, None,
        "killed by a signal has no exit code"
    );
}

#[tokio::test]
async fn stdout_and_stderr_share_one_stream_in_order() {
    let r = shell("echo one; echo two >&2; echo three; echo four >&2").await;
    assert_eq!(text(&r), "one\ntwo\nthree\nfour\n");
}

#[tokio::test]
async fn honours_the_working_directory_and_fails_on_a_missing_one() {
    let mut s = spec("SHELL", "pwd");
    s.working_directory = "/usr".into();
    let r = run_with(s, no_stops()).await;
    assert_eq!(text(&r), "/usr\n");

    let mut s = spec("SHELL", "pwd");
    s.working_directory = String::new();
    let r = run_with(s, no_stops()).await;
    assert_eq!(
        text(&r),
        "/root\n",
        "empty means the user's home (root: /root)"
    );

    let mut s = spec("SHELL", "pwd");
    s.working_directory = "/no/such/dir".into();
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::StartFailed);
    assert!(
        r.result.error_info.contains("/no/such/dir"),
        "{}",
        r.result.error_info
    );
    assert!(r.pgid.is_none());
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let mut s = spec("SHELL", "sleep 100 & sleep 100");
    s.timeout = 1;
    let t0 = std::time::Instant::now();
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::Timeout);
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert_group_gone(r.pgid.unwrap()).await;
    assert!(
        r.result.error_info.contains("timed out"),
        "{}",
        r.result.error_info
    );
}

#[tokio::test]
async fn sigterm_ignoring_processes_get_sigkill_after_the_grace() {
    let mut s = spec("SHELL", "trap '' TERM; sleep 100 & trap '' TERM; sleep 100");
    s.timeout = 1;
    let t0 = std::time::Instant::now();
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::Timeout);
    assert!(
        t0.elapsed() >= Duration::from_secs(2),
        "grace was not given"
    );
    assert_group_gone(r.pgid.unwrap()).await;
}

#[tokio::test]
async fn cancel_terminates() {
    let stops = no_stops();
    let cancel = stops.cancel.clone();
    tokio::spawn(async move {
        sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let r = run_with(spec("SHELL", "echo started; sleep 100"), stops).await;
    assert_eq!(r.result.outcome, Outcome::Terminated);
    assert_eq!(text(&r), "started\n");
    assert_group_gone(r.pgid.unwrap()).await;
}

#[tokio::test]
async fn a_daemon_holding_the_pipe_does_not_hang_the_task() {
    let t0 = std::time::Instant::now();
    let r = shell("(sleep 30 &) ; echo done").await;
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(r.result.outcome, Outcome::Success);
    assert_eq!(text(&r), "done\n");
    // The daemon is not ours to kill on a normal exit; tidy up the test.
    let _ = super::super::sys::signal_group(r.pgid.unwrap(), libc::SIGKILL);
}

#[tokio::test]
async fn large_output_arrives_byte_exact_in_bounded_utf8_chunks() {
    // 5 000 000 bytes of a pattern with 3-byte characters; `head -c` may
    // cut the very last character, which is the stream's honest end.
    let r = shell("yes 'abcdefghij€€€' | head -c 5000000").await;
    let line = "abcdefghij€€€\n".as_bytes();
    let expected: Vec<u8> = line.iter().copied().cycle().take(5_000_000).collect();
    assert_eq!(r.output.len(), expected.len());
    assert!(r.output == expected, "output differs");
    assert!(r.chunks.iter().all(|(_, d)| d.len() <= MAX_CHUNK));
    let last = r.chunks.len() - 1;
    for (i, (_, d)) in r.chunks.iter().enumerate() {
        if i != last {
            assert!(
                std::str::from_utf8(d).is_ok(),
                "chunk {i} splits a character"
            );
        }
    }
    assert!(
        r.chunks.len() < 1000,
        "output must be batched: {} chunks",
        r.chunks.len()
    );
}

#[tokio::test]
async fn python_runs_through_python3() {
    let r = run_with(
        spec("PYTHON", "import sys\nprint(sys.version_info[0])\n"),
        no_stops(),
    )
    .await;
    assert_eq!(
        r.result.outcome,
        Outcome::Success,
        "{}",
        r.result.error_info
    );
    assert_eq!(text(&r), "3\n");
}

#[tokio::test]
async fn windows_only_types_fail_to_start() {
    let r = run_with(spec("BAT", "echo hi"), no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::StartFailed);
}

#[tokio::test]
async fn unknown_users_fail_to_start() {
    let mut s = spec("SHELL", "id");
    s.username = "no-such-user-drover".into();
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::StartFailed);
    assert_eq!(
        r.result.error_info,
        "user no-such-user-drover does not exist"
    );
}

#[tokio::test]
async fn runs_as_another_user_with_their_groups() {
    // The suite runs as root (scripts/test).
    assert_eq!(super::super::sys::euid(), 0, "switching users needs root");
    let nobody = super::super::sys::account_by_name("nobody")
        .unwrap()
        .unwrap();
    let mut s = spec("SHELL", "id -u; id -G; echo $HOME $USER $LOGNAME; pwd");
    s.username = "nobody".into();
    s.working_directory = "/tmp".into();
    let r = run_with(s, no_stops()).await;
    assert_eq!(
        r.result.outcome,
        Outcome::Success,
        "{} / {}",
        r.result.error_info,
        text(&r)
    );
    let out = text(&r);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], nobody.uid.to_string());
    let mut groups: Vec<u32> = lines[1]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    let mut want = super::super::sys::group_list(&nobody).unwrap();
    want.sort_unstable();
    want.dedup();
    groups.dedup();
    assert_eq!(
        groups, want,
        "supplementary groups must be nobody's, not root's"
    );
    assert!(lines[2].ends_with("nobody nobody"), "{}", lines[2]);
    assert_eq!(lines[3], "/tmp");

    // Entering a directory the user may not enter fails the start.
    let mut s = spec("SHELL", "pwd");
    s.username = "nobody".into();
    s.working_directory = "/root".into();
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::StartFailed, "{}", text(&r));
    assert!(
        r.result.error_info.contains("nobody"),
        "{}",
        r.result.error_info
    );
}

#[tokio::test]
async fn the_task_sees_no_agent_descriptors() {
    // Open a socket and a pipe in the "agent" so there is something to leak.
    let _sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (_r, _w) = std::io::pipe().unwrap();
    // What the test harness inherited from its parent is dealt with the way
    // the agent does it at start-up.
    super::super::sys::cloexec_inherited_fds();
    let r = shell("ls /proc/self/fd").await;
    let mut fds: Vec<u32> = text(&r)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    fds.sort_unstable();
    // 0-2 are stdio; the one more is the directory `ls` itself opened.
    assert_eq!(fds, vec![0, 1, 2, 3], "task saw {fds:?}");
}

#[tokio::test]
async fn the_agent_environment_does_not_leak() {
    let r = shell("env | cut -d= -f1 | sort | tr '\\n' ' '").await;
    let vars = text(&r);
    // Only the task's own mark, which lets the agent find its processes.
    let drover: Vec<&str> = vars
        .split(' ')
        .filter(|v| v.starts_with("DROVER_"))
        .collect();
    assert_eq!(drover, vec![launch::TASK_ENV], "{vars}");
    for v in ["HOME", "USER", "LOGNAME", "SHELL", "PATH"] {
        assert!(vars.split(' ').any(|x| x == v), "{v} missing: {vars}");
    }
}

#[tokio::test]
async fn masks_values_written_in_pieces_and_keeps_offsets_contiguous() {
    let mut s = spec(
        "SHELL",
        "printf 'a=s3cr'; sleep 0.2; printf 'et-v\\n'; echo s3cret-v s3cr; printf s3c",
    );
    s.mask = vec!["s3cret-v".into(), "ab".into()];
    let r = run_with(s, no_stops()).await;
    assert_eq!(r.result.outcome, Outcome::Success);
    // run_with checked that offsets are contiguous over the masked stream.
    assert_eq!(text(&r), "a=******\n****** s3cr\ns3c");
    assert!(r.chunks.len() >= 2, "the pause split the output");
}

/// Waits (generously) for a process group to have no live member: the
/// kernel tears killed processes down asynchronously.
async fn assert_group_gone(pgid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !procinfo::live_group_members(pgid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "group {pgid} survived: {:?}",
            procinfo::live_group_members(pgid)
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a pid is a live (not zombie) process.
fn pid_alive(pid: i32) -> bool {
    procinfo::stat(pid).is_some_and(|st| st.state != 'Z' && st.state != 'X')
}

/// Waits for a file the script writes a pid into.
async fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid in {path:?}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// The two ways a task's processes are tracked: a cgroup when this machine
/// allows one (else the fallback twice), and the fallback.
fn host(mode: &str, tag: &str) -> Host {
    Host {
        cgroups: (mode == "cgroup")
            .then(|| super::super::cgroup::Cgroups::detect(tag))
            .flatten(),
        on_exit: None,
    }
}

#[tokio::test]
async fn setsid_descendants_die_on_timeout_and_on_cancel() {
    let tag = format!("test-{}", rand_id());
    for mode in ["cgroup", "fallback"] {
        for cancel in [false, true] {
            let host = host(mode, &tag);
            let tmp = tempfile::tempdir().unwrap();
            let pid_file = tmp.path().join("pid");
            let mut s = spec(
                "SHELL",
                &format!(
                    "setsid sh -c 'echo $$ > {}; trap \"\" TERM; exec sleep 300' & sleep 300",
                    pid_file.display()
                ),
            );
            s.timeout = if cancel { 60 } else { 2 };
            let stops = no_stops();
            let c = stops.cancel.clone();
            let pf = pid_file.clone();
            let canceller = tokio::spawn(async move {
                if cancel {
                    read_pid(&pf).await;
                    c.cancel();
                }
            });
            let cgs = host.cgroups.clone();
            let t0 = std::time::Instant::now();
            let r = run_in(s, stops, host).await;
            canceller.await.unwrap();
            let want = if cancel {
                Outcome::Terminated
            } else {
                Outcome::Timeout
            };
            assert_eq!(r.result.outcome, want, "{mode} {}", r.result.error_info);
            let pid = read_pid(&pid_file).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while pid_alive(pid) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{mode}: the setsid descendant {pid} survived ({})",
                    r.result.error_info
                );
                sleep(Duration::from_millis(50)).await;
            }
            assert!(
                !r.result.error_info.contains("survived"),
                "{mode}: {}",
                r.result.error_info
            );
            // The TERM-ignoring descendant needed the SIGKILL after the grace,
            // and stopping did not take much longer than that.
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{mode} {:?}",
                t0.elapsed()
            );
            if let Some(cgs) = cgs {
                assert!(cgs.present().is_empty(), "the task's cgroup is removed");
                cgs.remove();
            }
        }
    }
}

#[tokio::test]
async fn a_real_exit_wins_over_a_deadline_missed_while_the_agent_was_busy() {
    // Three tasks exit within their 2 s timeout while the (single-threaded)
    // runtime is blocked past it, as a frozen agent would be: when it runs
    // again, both the exit and the deadline are ready, and the exit wins.
    // The block lasts until the deadline has passed *and* every shell has
    // exited (a zombie nobody reaped yet), however slow the machine is.
    let marks = tempfile::tempdir().unwrap();
    let pidfile = |i: usize| marks.path().join(format!("pid{i}"));
    let runs = (0..3).map(|i| {
        let script = format!("echo $$ > {}; sleep 0.5; echo ok", pidfile(i).display());
        let mut s = spec("SHELL", &script);
        s.timeout = 2;
        run_with(s, no_stops())
    });
    let block = async {
        sleep(Duration::from_millis(100)).await;
        let t0 = std::time::Instant::now();
        let exited = |i: usize| {
            let Ok(pid) = std::fs::read_to_string(pidfile(i)) else {
                return false;
            };
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|st| {
                st.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        while t0.elapsed() < Duration::from_millis(2_500) || !(0..3).all(exited) {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the shells never exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (results, ()) = tokio::join!(futures_util::future::join_all(runs), block);
    for r in results {
        assert_eq!(
            r.result.outcome,
            Outcome::Success,
            "{}",
            r.result.error_info
        );
        assert_eq!(r.result.exit_code, Some(0));
        assert_eq!(text(&r), "ok\n");
    }
}

#[tokio::test]
async fn the_exit_code_is_handed_over_as_soon_as_the_process_is_reaped() {
    let (tx, rx) = std::sync::mpsc::channel();
    let host = Host {
        cgroups: None,
        on_exit: Some(Box::new(move |code| {
            let _ = tx.send(code);
        })),
    };
    let r = run_in(spec("SHELL", "exit 7"), no_stops(), host).await;
    assert_eq!(r.result.exit_code, Some(7));
    assert_eq!(rx.try_recv().unwrap(), Some(7));
}
