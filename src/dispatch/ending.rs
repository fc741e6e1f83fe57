//! The one way a task ends on the server. Inside the write transaction,
//! `end_task` (the server ends it: sweep, cancel before delivery, a lost
//! journal, a stopped roll-out) or `finish_task` (its agent reported the
//! end) applies the guarded final state and, when it was the invocation's
//! last task, queues the webhook notification in the same transaction.
//! After the commit the caller hands the invocations to
//! `Dispatcher::tasks_ended`, which takes the roll-out step and wakes the
//! webhook sender.

use rusqlite::Connection;

use crate::store::invocations::{self, Finish};
use crate::store::status::TaskStatus;
use crate::store::Result;

/// Ends a task the agent did not end, if it is in one of `from`.
/// Returns whether it ended (a task never leaves a final state).
pub(crate) fn end_task(
    c: &Connection,
    task_id: &str,
    from: &[TaskStatus],
    to: TaskStatus,
    why: &str,
    now: i64,
) -> Result<bool> {
    let ended = invocations::end_without_agent(c, task_id, from, to, why, now)?;
    if ended {
        crate::notify::task_final(c, task_id, now)?;
    }
    Ok(ended)
}

/// Records the end its agent reported. Returns whether it ended now (a
/// TASK_TIMEOUT the sweep guessed is replaced by the agent's real result).
pub(crate) fn finish_task(c: &Connection, task_id: &str, f: &Finish<'_>, now: i64) -> Result<bool> {
    let ended = invocations::finish(c, task_id, f, now)?;
    if ended {
        crate::notify::task_final(c, task_id, now)?;
    }
    Ok(ended)
}
