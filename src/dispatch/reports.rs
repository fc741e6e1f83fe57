//! Applies what an agent reports about its tasks (TaskStarted, Output,
//! TaskFinished, job-control answers) to the store.
//!
//! Guarantees:
//! * a report changes only the sender's own tasks: a task id that belongs
//!   to another instance, or to none, changes nothing (and gets no Ack);
//! * every number is range-checked before it is used: times within
//!   [0, `protocol::MAX_TIME_MS`], offsets and lengths within
//!   `protocol::MAX_OUTPUT_LEN`, exit codes within i32; a report that fails
//!   a check is dropped whole and logged, so nothing is half-applied;
//! * deadlines are computed on the server's clock, never from a time the
//!   agent sent;
//! * `Ack` follows only a committed write. A write that fails returns an
//!   error, on which `link` closes the connection: the agent keeps its
//!   journal entry and, on reconnecting, resends the task's output from
//!   offset 0 and its result, so nothing it reported is lost to a full
//!   disk or a failing database;
//! * output is complete or says it is not: a result whose reported length
//!   exceeds what the server holds (bytes the agent could not resend) is
//!   stored with `reported_len`, so the API shows Complete false and counts
//!   the missing bytes in Dropped.

use crate::metrics::METRICS;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::Dispatcher;
use crate::protocol::{AgentMsg, Outcome, ServerMsg, MAX_OUTPUT_LEN, MAX_TIME_MS};
use crate::store::invocations::{self, Finish, Task};
use crate::store::status::TaskStatus;
use crate::store::StoreError;
use crate::timefmt::now_ms;

/// Longest error_info kept from an agent (characters).
const MAX_ERROR_INFO: usize = 4096;

fn valid_time(t: i64) -> bool {
    (0..=MAX_TIME_MS).contains(&t)
}

/// The task if it exists and belongs to `owner`; None otherwise (unknown,
/// deleted, or another instance's: the same answer, so an agent learns
/// nothing about other instances' task ids).
fn own_task(
    c: &rusqlite::Connection,
    task_id: &str,
    owner: &str,
) -> crate::store::Result<Option<Task>> {
    match invocations::get_task(c, task_id) {
        Ok(t) if t.instance_id == owner => Ok(Some(t)),
        Ok(_) | Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn outcome_status(o: Outcome) -> TaskStatus {
    match o {
        Outcome::Success => TaskStatus::Success,
        Outcome::Failed => TaskStatus::Failed,
        Outcome::Timeout => TaskStatus::Timeout,
        Outcome::Terminated => TaskStatus::Terminated,
        Outcome::StartFailed => TaskStatus::StartFailed,
    }
}

fn refuse(instance_id: &str, what: &str) -> crate::store::Result<()> {
    tracing::warn!(instance = %instance_id, "agent message refused: {what}");
    Ok(())
}

/// One task report, checked and ready for the store.
enum Op {
    Started {
        task_id: String,
        started_at: i64,
    },
    Output {
        task_id: String,
        offset: i64,
        bytes: Vec<u8>,
    },
    Finished {
        task_id: String,
        result: Reported,
    },
}

/// A task's result as the agent reported it, checked.
struct Reported {
    outcome: Outcome,
    exit_code: Option<i64>,
    started_at: i64,
    ended_at: i64,
    reported_len: i64,
    error_info: String,
}

/// Checks a task report's numbers; None (logged) when it fails a check.
fn check(instance_id: &str, msg: AgentMsg) -> Option<Op> {
    let refused = |what: &str| {
        let _ = refuse(instance_id, what);
        None
    };
    match msg {
        AgentMsg::TaskStarted {
            task_id,
            started_at,
        } => {
            if !valid_time(started_at) {
                return refused("TaskStarted with an impossible started_at");
            }
            Some(Op::Started {
                task_id,
                started_at,
            })
        }
        AgentMsg::Output {
            task_id,
            offset,
            data,
        } => {
            let Ok(bytes) = B64.decode(data) else {
                return refused("Output that is not base64");
            };
            let end = offset.checked_add(bytes.len() as u64);
            let Some(offset) = end
                .filter(|e| *e <= MAX_OUTPUT_LEN)
                .and_then(|_| i64::try_from(offset).ok())
            else {
                return refused("Output beyond the largest offset");
            };
            Some(Op::Output {
                task_id,
                offset,
                bytes,
            })
        }
        AgentMsg::TaskFinished {
            task_id,
            outcome,
            exit_code,
            started_at,
            ended_at,
            output_len,
            error_info,
        } => {
            let exit_ok = exit_code.is_none_or(|c| i32::try_from(c).is_ok());
            if !exit_ok || !valid_time(started_at) || !valid_time(ended_at) {
                return refused("TaskFinished with an impossible time or exit code");
            }
            let Some(reported_len) = (output_len <= MAX_OUTPUT_LEN)
                .then(|| i64::try_from(output_len).ok())
                .flatten()
            else {
                return refused("TaskFinished with an impossible output length");
            };
            Some(Op::Finished {
                task_id,
                result: Reported {
                    outcome,
                    exit_code,
                    started_at,
                    ended_at,
                    reported_len,
                    error_info: error_info.chars().take(MAX_ERROR_INFO).collect(),
                },
            })
        }
        _ => None,
    }
}

/// Applies the messages an authenticated agent sent, in order. The task
/// reports among them (TaskStarted, Output, TaskFinished of any of its
/// tasks) go to the store as one write job, so a task that starts, prints
/// and ends at once costs one job and one commit wait, not three; a
/// job-control report in between flushes what came before it. An error
/// means a write failed (nothing of the job was applied); the caller ends
/// the connection so the agent resends.
pub(super) async fn handle(
    d: &Dispatcher,
    instance_id: &str,
    msgs: Vec<AgentMsg>,
) -> crate::store::Result<()> {
    let mut ops = Vec::new();
    for msg in msgs {
        METRICS.agent_messages.inc();
        match msg {
            AgentMsg::Heartbeat => d.heartbeat(instance_id),
            AgentMsg::TaskStarted { .. }
            | AgentMsg::Output { .. }
            | AgentMsg::TaskFinished { .. } => ops.extend(check(instance_id, msg)),
            AgentMsg::TaskSuspended { .. }
            | AgentMsg::TaskResumed { .. }
            | AgentMsg::TaskControlFailed { .. } => {
                apply(d, instance_id, std::mem::take(&mut ops)).await?;
                super::jobctl::apply_report(d, instance_id, msg).await?;
            }
            AgentMsg::TaskTimings { task_id, timings } => {
                d.pushed
                    .record(&task_id, &timings, crate::timefmt::now_us());
            }
            // Routed to their channels by the connection (`link::session_msg`).
            AgentMsg::SessionOpened { .. }
            | AgentMsg::SessionFailed { .. }
            | AgentMsg::SessionCredit { .. }
            | AgentMsg::AuthAgentConnect { .. }
            | AgentMsg::SessionExit { .. } => {}
            AgentMsg::Register { .. } | AgentMsg::Hello { .. } => {}
        }
    }
    apply(d, instance_id, ops).await
}

/// Writes checked task reports in one store job, then acknowledges the
/// results it committed and moves the ended invocations on.
async fn apply(d: &Dispatcher, instance_id: &str, ops: Vec<Op>) -> crate::store::Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let grace = d.settings.result_grace_ms;
    let owner = instance_id.to_string();
    let read_at = std::time::Instant::now();
    METRICS.agent_report_ops.observe(ops.len() as f64);
    // A result frees a slot: the agent's next queued tasks are taken in
    // the same job (no second write job per result), and sent after the
    // Acks. Only when something of this agent ended.
    let handout = ops
        .iter()
        .any(|o| matches!(o, Op::Finished { .. }))
        .then(|| d.handout_to(std::slice::from_ref(&owner)));
    let handout_w = handout.as_ref().map(|h| h.write_part());
    let (finished, taken, rated) = d
        .store
        .write(move |c| {
            let mut finished = Vec::new();
            for op in ops {
                match op {
                    Op::Started {
                        task_id,
                        started_at,
                    } => started(c, &task_id, &owner, started_at, now, grace)?,
                    Op::Output {
                        task_id,
                        offset,
                        bytes,
                    } => {
                        if own_task(c, &task_id, &owner)?.is_some() {
                            invocations::append_output(c, &task_id, offset, &bytes)?;
                        }
                    }
                    Op::Finished { task_id, result } => {
                        let applied = finish(c, &task_id, &owner, result, now)?;
                        finished.push((task_id, applied));
                    }
                }
            }
            let ended: Vec<String> = finished
                .iter()
                .filter_map(|(_, a)| a.clone().flatten())
                .collect();
            let taken = match handout_w.filter(|_| !ended.is_empty()) {
                Some(w) => Some(w.write(c)?),
                None => None,
            };
            // Which of them the roll-out must see, sorted out here rather
            // than in one more read per result.
            let rated = invocations::rate_controlled(c, &ended)?;
            Ok((finished, taken, rated))
        })
        .await?;
    let mut ended = Vec::new();
    for (task_id, applied) in finished {
        METRICS.stages.commit.observe_duration(read_at.elapsed());
        // Not the sender's task: no Ack, nothing learned.
        let Some(inv) = applied else {
            let _ = refuse(instance_id, "TaskFinished for a task of another instance");
            continue;
        };
        // Committed (or already final, or deleted): the agent may forget it.
        if let Some(tx) = d.sender(instance_id) {
            let _ = tx.send(ServerMsg::Ack { task_id }).await;
        }
        ended.extend(inv);
    }
    if !ended.is_empty() {
        d.tasks_ended_sorted(rated).await;
    }
    // Slots are free: the next queued tasks, taken above, go out.
    if let (Some(h), Some(taken)) = (handout, taken) {
        d.send_handout(h, taken).await;
    }
    Ok(())
}

fn started(
    c: &rusqlite::Connection,
    task_id: &str,
    owner: &str,
    started_at: i64,
    now: i64,
    grace: i64,
) -> crate::store::Result<()> {
    let Some(t) = own_task(c, task_id, owner)? else {
        return Ok(());
    };
    let inv = invocations::get(c, &t.invocation_id)?;
    // The server's clock decides the deadline.
    let deadline = now
        .saturating_add(inv.timeout.max(0).saturating_mul(1000))
        .saturating_add(grace);
    if invocations::mark_running(c, task_id, started_at, deadline, now)? {
        let waited = (now - t.created_ms).max(0) as f64 / 1e3;
        METRICS.task_delivery.observe(waited);
    }
    Ok(())
}

/// Stores a result. None: not the sender's task; Some(None): applied (or
/// already final, or deleted); Some(Some(inv)): it ended its task, of
/// invocation `inv`.
fn finish(
    c: &rusqlite::Connection,
    task_id: &str,
    owner: &str,
    r: Reported,
    now: i64,
) -> crate::store::Result<Option<Option<String>>> {
    let t = match invocations::get_task(c, task_id) {
        Ok(t) => t,
        // Deleted meanwhile: the agent may forget it.
        Err(StoreError::NotFound { .. }) => return Ok(Some(None)),
        Err(e) => return Err(e),
    };
    if t.instance_id != owner {
        return Ok(None);
    }
    let mut status = outcome_status(r.outcome);
    // A kill we did not ask for, while we were cancelling, is still a cancel.
    if t.status == TaskStatus::Cancelling && status != TaskStatus::Success {
        status = TaskStatus::Terminated;
    }
    let mut error_info = r.error_info;
    let missing = r.reported_len - t.output_len;
    if missing > 0 {
        let note = format!(
            "output incomplete: {missing} of {} bytes were lost",
            r.reported_len
        );
        error_info = if error_info.is_empty() {
            note
        } else {
            format!("{error_info}; {note}")
        };
    }
    let f = Finish {
        status,
        exit_code: r.exit_code,
        exec_start_ms: r.started_at,
        exec_end_ms: r.ended_at,
        reported_len: r.reported_len,
        error_info: &error_info,
    };
    let ended = super::finish_task(c, task_id, &f, now)?;
    if ended {
        METRICS.task_ended(t.created_ms, now);
    }
    Ok(Some(ended.then_some(t.invocation_id)))
}
