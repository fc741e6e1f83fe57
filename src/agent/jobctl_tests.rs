//! Job-control tests of the executor: real processes stopped and continued.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use base64::Engine;

fn spec(script: &str, timeout: u64) -> TaskSpec {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    TaskSpec {
        task_id: format!("t-{}", u64::from_le_bytes(b)),
        invocation_id: "inv-test".into(),
        command_type: "SHELL".into(),
        content: base64::engine::general_purpose::STANDARD.encode(script),
        timeout,
        working_directory: "/tmp".into(),
        username: String::new(),
        mask: Vec::new(),
    }
}

/// A task running in the background, driven by the test through `suspend`.
struct Job {
    events: mpsc::Receiver<ExecEvent>,
    suspend: watch::Sender<bool>,
    cancel: CancellationToken,
    done: tokio::task::JoinHandle<ExecResult>,
    _tmp: tempfile::TempDir,
}

fn start(spec: TaskSpec) -> Job {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    launch::prepare_work_root(&work).unwrap();
    let (tx, events) = mpsc::channel(64);
    let (suspend, suspend_rx) = watch::channel(false);
    let cancel = CancellationToken::new();
    let stops = Stops {
        cancel: cancel.clone(),
        shutdown: CancellationToken::new(),
        suspend: suspend_rx,
    };
    let done = tokio::spawn(async move { run(&spec, &work, tx, stops, Host::default()).await });
    Job {
        events,
        suspend,
        cancel,
        done,
        _tmp: tmp,
    }
}

impl Job {
    /// Drains the remaining events into `out`, then the result.
    async fn finish(mut self, out: &mut Vec<u8>) -> ExecResult {
        while let Some(ev) = self.events.recv().await {
            if let ExecEvent::Output { data, .. } = ev {
                out.extend(data);
            }
        }
        self.done.await.unwrap()
    }

    /// Collects output until it is `want` (the script is past its start).
    async fn wait_output(&mut self, out: &mut Vec<u8>, want: &str) {
        while out.as_slice() != want.as_bytes() {
            let ev = self.next_control_within(out, Duration::from_secs(10)).await;
            assert!(ev.is_none(), "unexpected {ev:?}");
        }
    }

    /// The next event that is not output (output is collected into `out`).
    async fn next_control(&mut self, out: &mut Vec<u8>) -> ExecEvent {
        loop {
            if let Some(ev) = self.next_control_within(out, Duration::from_secs(10)).await {
                return ev;
            }
        }
    }

    /// The next event: None for output (collected into `out`).
    async fn next_control_within(&mut self, out: &mut Vec<u8>, t: Duration) -> Option<ExecEvent> {
        match tokio::time::timeout(t, self.events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ExecEvent::Output { data, .. } => {
                out.extend(data);
                None
            }
            other => Some(other),
        }
    }
}

fn states(pgid: i32) -> Vec<char> {
    procinfo::live_group_members(pgid)
        .into_iter()
        .filter_map(|p| procinfo::stat(p).map(|s| s.state))
        .collect()
}

/// A job whose script (which must print "start" first) is suspended once
/// it has printed; returns it with its process group and output so far.
async fn started_and_suspended(script: &str, timeout: u64) -> (Job, i32, Vec<u8>) {
    let mut job = start(spec(script, timeout));
    let mut out = Vec::new();
    let ExecEvent::Started { pgid, .. } = job.next_control(&mut out).await else {
        panic!("expected Started")
    };
    job.wait_output(&mut out, "start\n").await;
    job.suspend.send(true).unwrap();
    assert!(matches!(
        job.next_control(&mut out).await,
        ExecEvent::Job(JobEvent::Suspended { .. })
    ));
    (job, pgid, out)
}

/// Waits until every live member of the group satisfies `ok` (a signal
/// reaches a running process asynchronously, so this is never instant).
async fn wait_states(pgid: i32, what: &str, ok: impl Fn(char) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = states(pgid);
        // An empty group is stopped by nobody: only "running" accepts it.
        if (!st.is_empty() || what == "running") && st.iter().all(|s| ok(*s)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group {pgid} never became {what}: {st:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn suspend_stops_the_group_and_its_timeout_clock() {
    let (mut job, pgid, mut out) =
        started_and_suspended("echo start; sleep 1 & wait; echo end", 2).await;
    wait_states(pgid, "stopped", |s| s == 'T').await;
    // A repeated request is confirmed again, not applied twice.
    job.suspend.send(true).unwrap();
    assert!(matches!(
        job.next_control(&mut out).await,
        ExecEvent::Job(JobEvent::Suspended { .. })
    ));
    // Suspended past the whole 2 s timeout: only running time counts.
    sleep(Duration::from_millis(2500)).await;
    job.suspend.send(false).unwrap();
    assert!(matches!(
        job.next_control(&mut out).await,
        ExecEvent::Job(JobEvent::Resumed { .. })
    ));
    wait_states(pgid, "running", |s| s != 'T').await;
    let r = job.finish(&mut out).await;
    assert_eq!(r.outcome, Outcome::Success, "{}", r.error_info);
    assert_eq!(String::from_utf8_lossy(&out), "start\nend\n");
}

#[tokio::test]
async fn cancelling_a_suspended_task_terminates_it_at_once() {
    let (job, pgid, mut out) = started_and_suspended("echo start; sleep 100", 30).await;
    let t0 = std::time::Instant::now();
    job.cancel.cancel();
    let r = job.finish(&mut out).await;
    assert_eq!(r.outcome, Outcome::Terminated);
    assert_eq!(String::from_utf8_lossy(&out), "start\n");
    // SIGTERM reached the stopped group (SIGCONT followed it): no SIGKILL grace.
    assert!(t0.elapsed() < KILL_GRACE, "{:?}", t0.elapsed());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !procinfo::live_group_members(pgid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?} {}",
            procinfo::live_group_members(pgid),
            r.error_info
        );
        sleep(Duration::from_millis(20)).await;
    }
}
