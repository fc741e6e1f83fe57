//! Job control of tasks: RUNNING ⇄ SUSPENDED, as the agent confirms it.
//!
//! Both changes are guarded UPDATEs like every task state change, so a late
//! or repeated confirmation is harmless and a task never leaves a final
//! state. `suspended_ms` (server clock) records when a task was suspended:
//! on resume the deadline moves back by the time spent suspended, because
//! the agent paused the task's timeout clock for as long.

use rusqlite::{params, Connection};

use super::Result;

/// RUNNING → SUSPENDED. Returns whether the task changed.
pub fn mark_suspended(conn: &Connection, task_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = 'SUSPENDED', suspended_ms = ?2, updated_ms = ?2
         WHERE id = ?1 AND status = 'RUNNING'",
        params![task_id, now],
    )?;
    Ok(n > 0)
}

/// SUSPENDED → RUNNING, the deadline extended by the time suspended.
/// Returns whether the task changed.
pub fn mark_resumed(conn: &Connection, task_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = 'RUNNING', updated_ms = ?2,
            deadline_ms = deadline_ms + MAX(0, ?2 - suspended_ms), suspended_ms = 0
         WHERE id = ?1 AND status = 'SUSPENDED'",
        params![task_id, now],
    )?;
    Ok(n > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::invocations::{self as invs, Finish};
    use crate::store::status::TaskStatus::*;

    fn running_task(c: &Connection) {
        c.execute_batch(
            "INSERT INTO invocations(id, command_id, command_name, description, content,
                delivery_enc, command_type, timeout, working_directory, username, parameters,
                default_parameters, cos_bucket_url, cos_key_prefix, source, created_by,
                created_ms, updated_ms)
             VALUES ('inv-1','cmd-1','n','','',x'','SHELL',60,'','','{}','{}','','','USER',
                'USER',1,1);
             INSERT INTO tasks(id, invocation_id, instance_id, command_id, status, deadline_ms,
                created_ms, updated_ms)
             VALUES ('invt-1','inv-1','mi-1','cmd-1','RUNNING',10000,1,1);",
        )
        .unwrap();
    }

    #[test]
    fn suspend_pauses_the_deadline_and_resume_extends_it() {
        let c = crate::store::test_conn();
        running_task(&c);
        assert!(mark_suspended(&c, "invt-1", 2_000).unwrap());
        assert!(
            !mark_suspended(&c, "invt-1", 2_500).unwrap(),
            "repeat is a no-op"
        );
        let t = invs::get_task(&c, "invt-1").unwrap();
        assert_eq!(t.status, Suspended);
        // Long past its deadline, a suspended task is not overdue.
        assert!(invs::overdue(&c, 50_000).unwrap().is_empty());
        assert!(mark_resumed(&c, "invt-1", 7_000).unwrap());
        assert!(!mark_resumed(&c, "invt-1", 8_000).unwrap());
        let t = invs::get_task(&c, "invt-1").unwrap();
        assert_eq!((t.status, t.deadline_ms), (Running, 15_000));
        assert!(invs::overdue(&c, 14_000).unwrap().is_empty());
        assert_eq!(invs::overdue(&c, 15_001).unwrap().len(), 1);
    }

    #[test]
    fn a_suspended_task_can_be_cancelled_or_finished_but_not_revived() {
        let c = crate::store::test_conn();
        running_task(&c);
        assert!(mark_suspended(&c, "invt-1", 2_000).unwrap());
        assert!(invs::mark_cancelling(&c, "invt-1", 5_000).unwrap());
        let t = invs::get_task(&c, "invt-1").unwrap();
        assert_eq!((t.status, t.deadline_ms), (Cancelling, 13_000));
        assert!(!mark_resumed(&c, "invt-1", 6_000).unwrap());
        let f = Finish {
            status: Terminated,
            exit_code: None,
            exec_start_ms: 1,
            exec_end_ms: 6,
            reported_len: 0,
            error_info: "cancelled",
        };
        assert!(invs::finish(&c, "invt-1", &f, 6_000).unwrap());
        assert!(!mark_suspended(&c, "invt-1", 7_000).unwrap());
        assert_eq!(invs::get_task(&c, "invt-1").unwrap().status, Terminated);
    }
}
