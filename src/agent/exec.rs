//! Runs one task to completion: launch, stream output, enforce the timeout,
//! honour cancellation, and report how it ended.
//!
//! Guarantees:
//! * output is reported in order with contiguous offsets, in chunks of at
//!   most 32 KiB that never split a UTF-8 sequence, flushed at least every
//!   50 ms while the task writes;
//! * a timeout or cancel stops every process of the task (SIGTERM, a 2 s
//!   grace, SIGKILL), those that left the process group (`setsid`, double
//!   forks) too: with a per-task cgroup everything in it, otherwise every
//!   process carrying the task's DROVER_TASK_ID (found by one /proc scan when
//!   stopping starts and one at SIGKILL, never by polling /proc);
//!   `error_info` names any process that survived;
//! * a process that has exited is reported with its real exit status even
//!   when its deadline passed meanwhile (the agent was frozen, or busy): a
//!   deadline only kills what is still running;
//! * the exit status is handed to `Host::on_exit` as soon as it is known,
//!   before the output is drained, so a crash of the agent in between does
//!   not lose it;
//! * a process that leaves a daemon holding the output pipe does not hold
//!   the task open: reading stops about a second after the main process
//!   exits;
//! * the script file is gone when `run` returns;
//! * job control: a suspend request stops the whole process group
//!   (SIGSTOP) and pauses the timeout clock; resume continues it (SIGCONT)
//!   and pushes the deadline back by the time spent stopped, so a task is
//!   never timed out for time it spent suspended. Every request is answered
//!   with an event (`Suspended`, `Resumed` or `ControlFailed`); stopping a
//!   suspended task sends SIGCONT after SIGTERM so the signal is delivered.
//! * the spec's mask values never appear in the reported output: the stream
//!   passes through a `Masker` before it is chunked and numbered.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::cgroup::{Cgroups, TaskCgroup};
use super::jobctl::{control, JobEvent, Paused};
use super::launch;
use super::mask::Masker;
use super::output::{Utf8Chunker, MAX_CHUNK};
use super::procinfo;
use crate::protocol::{Outcome, TaskSpec};

/// Between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the main process exits.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Longest a partial batch of output waits before it is sent.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// TAT's default when a spec carries no timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// What a running task reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Started {
        pgid: i32,
        started_at: i64,
    },
    Output {
        offset: u64,
        data: Vec<u8>,
    },
    /// The answer to a job-control request (`jobctl`).
    Job(JobEvent),
}

/// How the task ended; maps one-to-one onto `AgentMsg::TaskFinished`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub outcome: Outcome,
    pub exit_code: Option<i64>,
    pub started_at: i64,
    pub ended_at: i64,
    pub output_len: u64,
    pub error_info: String,
}

/// Why the agent is stopping a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Timeout,
    Cancelled,
    AgentShutdown,
}

/// Signals that end a task early: `cancel` is this task's CancelTask,
/// `shutdown` the agent's own. `suspend` carries job control: every value
/// sent is a request (true: suspend, false: resume) that gets an answer.
#[derive(Debug, Clone)]
pub struct Stops {
    pub cancel: CancellationToken,
    pub shutdown: CancellationToken,
    pub suspend: watch::Receiver<bool>,
}

/// What the executor needs from the agent around one task.
#[derive(Default)]
pub struct Host {
    /// Where task cgroups are made; None: process-group tracking.
    pub cgroups: Option<Cgroups>,
    /// Told the exit code (None: killed by a signal) the moment the main
    /// process is reaped.
    pub on_exit: Option<Box<dyn FnOnce(Option<i64>) + Send>>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Runs `spec`, sending events to `events` (a dropped receiver is ignored:
/// the task still runs to completion so its result can be journaled).
pub async fn run(
    spec: &TaskSpec,
    work_root: &Path,
    events: mpsc::Sender<ExecEvent>,
    stops: Stops,
    host: Host,
) -> ExecResult {
    let started_at = now_ms();
    let launched = match launch::launch(spec, work_root, host.cgroups.as_ref()) {
        Ok(l) => l,
        Err(reason) => {
            return ExecResult {
                outcome: Outcome::StartFailed,
                exit_code: None,
                started_at,
                ended_at: now_ms(),
                output_len: 0,
                error_info: reason,
            }
        }
    };
    let _ = events
        .send(ExecEvent::Started {
            pgid: launched.pgid,
            started_at,
        })
        .await;
    let timeout = Duration::from_secs(if spec.timeout == 0 {
        DEFAULT_TIMEOUT_SECS
    } else {
        spec.timeout
    });
    let mut sup = Supervisor {
        events,
        chunker: Utf8Chunker::default(),
        masker: Masker::new(&spec.mask),
        offset: 0,
    };
    let ended = sup
        .supervise(launched, timeout, stops, host.on_exit, &spec.task_id)
        .await;
    ExecResult {
        started_at,
        ended_at: now_ms(),
        output_len: sup.offset,
        ..ended
    }
}

struct Supervisor {
    events: mpsc::Sender<ExecEvent>,
    chunker: Utf8Chunker,
    masker: Masker,
    offset: u64,
}

/// Finds a task's processes to stop them: its cgroup when it has one,
/// otherwise its process group plus every process marked with its task id.
struct Tracker {
    pgid: i32,
    cgroup: Option<TaskCgroup>,
    task_id: String,
    /// Marked processes outside the group, found when stopping began.
    strays: Vec<i32>,
}

impl Tracker {
    fn signal_all(&mut self, sig: libc::c_int) {
        let _ = super::sys::signal_group(self.pgid, sig);
        match &self.cgroup {
            Some(cg) => cg.signal(sig),
            None => {
                self.strays = procinfo::marked(launch::TASK_ENV, &self.task_id)
                    .into_iter()
                    .filter(|&p| procinfo::stat(p).is_some_and(|st| st.pgrp != self.pgid))
                    .collect();
                for &p in &self.strays {
                    let _ = super::sys::signal_pid(p, sig);
                }
            }
        }
    }

    fn kill_all(&mut self) {
        let _ = super::sys::signal_group(self.pgid, libc::SIGKILL);
        match &self.cgroup {
            Some(cg) => cg.kill(),
            None => self.signal_all(libc::SIGKILL),
        }
    }

    /// Whether anything of the task may still run. Cheap: one small file,
    /// or signal 0 to the group and the strays; never a /proc scan.
    fn alive(&self) -> bool {
        match &self.cgroup {
            Some(cg) => cg.populated(),
            None => {
                matches!(super::sys::signal_group(self.pgid, 0), Ok(true))
                    || self
                        .strays
                        .iter()
                        .any(|&p| matches!(super::sys::signal_pid(p, 0), Ok(true)))
            }
        }
    }

    /// Processes left, zombies excluded.
    fn survivors(&self) -> Vec<i32> {
        match &self.cgroup {
            Some(cg) => cg.pids(),
            None => {
                let mut left = procinfo::live_group_members(self.pgid);
                left.extend(procinfo::marked(launch::TASK_ENV, &self.task_id));
                left.sort_unstable();
                left.dedup();
                left
            }
        }
    }
}

/// Progress of an early stop.
struct Stopping {
    reason: StopReason,
    term_sent: Instant,
    /// SIGKILL sent, or the group found empty: nothing left to do.
    done: bool,
}

impl Supervisor {
    async fn emit_ready(&mut self) {
        while let Some(data) = self.chunker.take() {
            self.emit(data).await;
        }
    }

    async fn emit(&mut self, data: Vec<u8>) {
        let offset = self.offset;
        self.offset += data.len() as u64;
        let _ = self.events.send(ExecEvent::Output { offset, data }).await;
    }

    async fn supervise(
        &mut self,
        launched: launch::Launched,
        timeout: Duration,
        stops: Stops,
        mut on_exit: Option<Box<dyn FnOnce(Option<i64>) + Send>>,
        task_id: &str,
    ) -> ExecResult {
        let launch::Launched {
            mut child,
            mut output,
            pgid,
            script,
            cgroup,
        } = launched;
        let mut tracker = Tracker {
            pgid,
            cgroup,
            task_id: task_id.to_string(),
            strays: Vec::new(),
        };
        let mut note_exit = |st: &std::io::Result<std::process::ExitStatus>| {
            if let (Ok(st), Some(f)) = (st, on_exit.take()) {
                f(st.code().map(i64::from));
            }
        };
        let far = Instant::now() + Duration::from_secs(86400 * 365);
        let mut deadline = Instant::now() + timeout;
        let mut suspend = stops.suspend.clone();
        let mut control_open = true;
        let mut paused: Option<Paused> = None;
        let mut buf = vec![0u8; 16 * 1024];
        let mut eof = false;
        let mut status: Option<std::io::Result<std::process::ExitStatus>> = None;
        let mut drain_until: Option<Instant> = None;
        let mut flush_at: Option<Instant> = None;
        let mut stopping: Option<Stopping> = None;
        let mut poll = tokio::time::interval(Duration::from_millis(100));

        loop {
            let kill_pending = stopping.as_ref().is_some_and(|s| !s.done);
            let drained = eof || drain_until.is_some_and(|t| Instant::now() >= t);
            if status.is_some() && !kill_pending && drained {
                break;
            }
            tokio::select! {
                r = output.read(&mut buf), if !eof => match r {
                    Ok(0) | Err(_) => eof = true,
                    Ok(n) => {
                        let released = self.masker.push(&buf[..n]);
                        self.chunker.push(&released);
                        if self.chunker.pending_len() >= MAX_CHUNK {
                            self.emit_ready().await;
                            flush_at = None;
                        } else if flush_at.is_none() {
                            flush_at = Some(Instant::now() + FLUSH_EVERY);
                        }
                    }
                },
                _ = sleep_until(flush_at.unwrap_or(far)), if flush_at.is_some() => {
                    flush_at = None;
                    self.emit_ready().await;
                }
                st = child.wait(), if status.is_none() => {
                    note_exit(&st);
                    status = Some(st);
                    drain_until = Some(Instant::now() + DRAIN_GRACE);
                }
                _ = sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() && !eof => {}
                _ = sleep_until(deadline), if stopping.is_none() && status.is_none() && paused.is_none() => {
                    // An exit that happened while we were not looking (the
                    // agent was frozen or busy) wins over the deadline.
                    match child.try_wait() {
                        Ok(Some(st)) => {
                            let st = Ok(st);
                            note_exit(&st);
                            status = Some(st);
                            drain_until = Some(Instant::now() + DRAIN_GRACE);
                        }
                        _ => stopping = Some(begin_stop(&mut tracker, StopReason::Timeout, &mut paused)),
                    }
                }
                _ = stops.cancel.cancelled(), if stopping.is_none() && status.is_none() => {
                    stopping = Some(begin_stop(&mut tracker, StopReason::Cancelled, &mut paused));
                }
                _ = stops.shutdown.cancelled(), if stopping.is_none() && status.is_none() => {
                    stopping = Some(begin_stop(&mut tracker, StopReason::AgentShutdown, &mut paused));
                }
                r = suspend.changed(), if control_open => {
                    if r.is_err() {
                        control_open = false;
                        continue;
                    }
                    let want = *suspend.borrow_and_update();
                    let ending = if stopping.is_some() {
                        Some("the task is being stopped")
                    } else if status.is_some() {
                        Some("the task has ended")
                    } else {
                        None
                    };
                    let ev = match ending {
                        Some(why) => JobEvent::ControlFailed { reason: why.to_string() },
                        None => control(pgid, want, &mut paused, &mut deadline),
                    };
                    let _ = self.events.send(ExecEvent::Job(ev)).await;
                }
                _ = poll.tick(), if kill_pending => {
                    if let Some(s) = stopping.as_mut() {
                        if !tracker.alive() {
                            s.done = true;
                        } else if s.term_sent.elapsed() >= KILL_GRACE {
                            tracker.kill_all();
                            s.done = true;
                            // Give the pipe its own grace after the kill.
                            if status.is_some() {
                                drain_until = Some(Instant::now() + DRAIN_GRACE);
                            }
                        }
                    }
                }
            }
        }
        let held = self.masker.finish();
        self.chunker.push(&held);
        self.emit_ready().await;
        let tail = self.chunker.finish();
        if !tail.is_empty() {
            self.emit(tail).await;
        }
        drop(script);

        let status = status.unwrap_or_else(|| Err(std::io::Error::other("no exit status")));
        let mut result = ExecResult {
            outcome: Outcome::Failed,
            exit_code: None,
            started_at: 0,
            ended_at: 0,
            output_len: 0,
            error_info: String::new(),
        };
        match &status {
            Ok(st) => {
                result.exit_code = st.code().map(i64::from);
                if st.success() {
                    result.outcome = Outcome::Success;
                } else if let Some(sig) = st.signal() {
                    result.error_info = format!("killed by signal {sig}");
                }
            }
            Err(e) => result.error_info = format!("waiting for the process: {e}"),
        }
        if let Some(s) = stopping {
            let (outcome, why) = match s.reason {
                StopReason::Timeout => (
                    Outcome::Timeout,
                    format!("timed out after {} s", timeout.as_secs()),
                ),
                StopReason::Cancelled => (Outcome::Terminated, "cancelled".to_string()),
                StopReason::AgentShutdown => (
                    Outcome::Failed,
                    "agent shut down while the task was running".to_string(),
                ),
            };
            result.outcome = outcome;
            result.error_info = why;
            if let Some(survivors) = survivors(&tracker).await {
                result.error_info.push_str(&survivors);
            }
        }
        if let Some(cg) = &tracker.cgroup {
            if let Some(us) = cg.cpu_usec() {
                tracing::info!("task {task_id} used {} ms of CPU", us / 1000);
            }
            // Empty unless a finished task left a daemon behind, which may
            // go on running (it is only killed on timeout or cancel).
            cg.remove();
        }
        result
    }
}

fn begin_stop(tracker: &mut Tracker, reason: StopReason, paused: &mut Option<Paused>) -> Stopping {
    tracker.signal_all(libc::SIGTERM);
    // A stopped process only sees SIGTERM once it runs again.
    if paused.take().is_some() {
        let _ = super::sys::signal_group(tracker.pgid, libc::SIGCONT);
    }
    Stopping {
        reason,
        term_sent: Instant::now(),
        done: false,
    }
}

/// After SIGKILL, processes vanish as soon as the kernel tears them down;
/// anything still alive a moment later is stuck (e.g. in uninterruptible
/// sleep) and worth reporting.
async fn survivors(tracker: &Tracker) -> Option<String> {
    for _ in 0..20 {
        if !tracker.alive() {
            return None;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let left = tracker.survivors();
    (!left.is_empty()).then(|| format!("; processes of the task survived SIGKILL: {left:?}"))
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "jobctl_tests.rs"]
mod jobctl_tests;
