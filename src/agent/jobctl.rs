//! Job control on the agent: the executor's side (SIGSTOP / SIGCONT of a
//! task's process group, with the timeout clock paused in between) and the
//! registry's side (routing `SuspendTask` / `ResumeTask` to a task's
//! executor, turning its answers into messages, restating each task's
//! state after a reconnect).
//!
//! Suspension lives only in memory: an agent restart ends every unfinished
//! task anyway (`Tasks::recover` kills its group, stopped or not), so the
//! journal has nothing to remember.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::protocol::AgentMsg;
use crate::timefmt::now_ms;

/// How the registry reaches one running task.
pub(super) struct Control {
    pub cancel: CancellationToken,
    /// Job-control requests to the executor (true: suspend).
    pub suspend: watch::Sender<bool>,
    /// When the executor stopped the task (unix ms), 0 while it runs.
    pub suspended_at: Arc<AtomicI64>,
}

/// The executor's answer to a job-control request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// The group is stopped (unix ms); also the answer to a repeated suspend.
    Suspended { at: i64 },
    /// The group runs again (unix ms); also the answer to resuming a task
    /// that was not suspended.
    Resumed { at: i64 },
    /// A suspend or resume request could not be applied.
    ControlFailed { reason: String },
}

/// A suspension in effect: since when, by our clock and by the wall clock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paused {
    since: Instant,
    at: i64,
}

/// Applies one job-control request to a live process group.
pub(super) fn control(
    pgid: i32,
    suspend: bool,
    paused: &mut Option<Paused>,
    deadline: &mut Instant,
) -> JobEvent {
    let failed = |what: &str, e: std::io::Error| JobEvent::ControlFailed {
        reason: format!("{what} process group {pgid}: {e}"),
    };
    match (suspend, *paused) {
        (true, Some(p)) => JobEvent::Suspended { at: p.at },
        (false, None) => JobEvent::Resumed { at: now_ms() },
        (true, None) => match super::sys::signal_group(pgid, libc::SIGSTOP) {
            Ok(true) => {
                let at = now_ms();
                *paused = Some(Paused {
                    since: Instant::now(),
                    at,
                });
                JobEvent::Suspended { at }
            }
            Ok(false) => JobEvent::ControlFailed {
                reason: "the task's processes are gone".into(),
            },
            Err(e) => failed("stopping", e),
        },
        (false, Some(p)) => match super::sys::signal_group(pgid, libc::SIGCONT) {
            Ok(_) => {
                // The timeout counts running time only.
                *deadline += p.since.elapsed();
                *paused = None;
                JobEvent::Resumed { at: now_ms() }
            }
            Err(e) => failed("continuing", e),
        },
    }
}

/// Hands a suspend (true) or resume request to the task's executor,
/// which answers it; answers here when no executor is listening.
pub(super) fn request(
    running: &HashMap<String, Control>,
    task_id: String,
    suspend: bool,
) -> Vec<AgentMsg> {
    match running.get(&task_id) {
        Some(c) if c.suspend.send(suspend).is_ok() => Vec::new(),
        Some(_) => vec![AgentMsg::TaskControlFailed {
            task_id,
            reason: "the task has ended".into(),
        }],
        None => vec![AgentMsg::TaskControlFailed {
            task_id,
            reason: "the task is not running on this agent (finished or unknown)".into(),
        }],
    }
}

/// Each running task's job-control state, restated after a reconnect so
/// that a confirmation lost with the old connection is repaired.
pub(super) fn reports(running: &HashMap<String, Control>) -> Vec<AgentMsg> {
    let mut ids: Vec<&String> = running.keys().collect();
    ids.sort();
    ids.into_iter()
        .filter_map(|id| {
            let at = running.get(id)?.suspended_at.load(Ordering::Relaxed);
            let task_id = id.clone();
            Some(if at > 0 {
                AgentMsg::TaskSuspended { task_id, at }
            } else {
                AgentMsg::TaskResumed {
                    task_id,
                    at: now_ms(),
                }
            })
        })
        .collect()
}

/// The message for a job-control answer of the executor, noting the
/// task's suspension for `reports`.
pub(super) fn relay(task_id: &str, ev: JobEvent, suspended_at: &AtomicI64) -> AgentMsg {
    let task_id = task_id.to_string();
    match ev {
        JobEvent::Suspended { at } => {
            suspended_at.store(at, Ordering::Relaxed);
            AgentMsg::TaskSuspended { task_id, at }
        }
        JobEvent::Resumed { at } => {
            suspended_at.store(0, Ordering::Relaxed);
            AgentMsg::TaskResumed { task_id, at }
        }
        JobEvent::ControlFailed { reason } => AgentMsg::TaskControlFailed { task_id, reason },
    }
}
