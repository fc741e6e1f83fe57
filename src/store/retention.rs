//! Retention: what an appliance forgets, so keeping everything does not
//! fill its disk. Invocations (with their tasks, output, webhook
//! deliveries, and the unsaved commands RunCommand made for them) and
//! invoker records go after `--retention-days`; the audit log is kept
//! separately and longer (`--audit-retention-days`), and terminal session
//! recordings by their own setting (`--session-retention-days`, counted
//! from the session's end; a live session is never removed). Expired
//! console sessions and client tokens go as well. An invocation with a task that
//! has not ended is never removed, however old.
//!
//! Work is done in small batches, each its own transaction, so pruning a
//! large backlog never holds the writer for long.

use rusqlite::{params, Connection};

use super::Result;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Invocations removed per transaction.
const BATCH: i64 = 500;

/// How long things are kept, in days; `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub days: Option<u32>,
    pub audit_days: Option<u32>,
    /// Terminal sessions and their recordings.
    pub session_days: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            days: Some(90),
            audit_days: Some(365),
            session_days: Some(90),
        }
    }
}

impl Retention {
    /// From command-line day counts, where 0 means "keep forever".
    pub fn from_days(days: u32, audit_days: u32) -> Retention {
        Retention {
            days: (days > 0).then_some(days),
            audit_days: (audit_days > 0).then_some(audit_days),
            ..Retention::default()
        }
    }

    /// Days terminal sessions and recordings are kept (0: forever).
    pub fn with_session_days(self, days: u32) -> Retention {
        Retention {
            session_days: (days > 0).then_some(days),
            ..self
        }
    }

    /// Whether anything is ever pruned.
    pub fn prunes(&self) -> bool {
        self.days.is_some() || self.audit_days.is_some() || self.session_days.is_some()
    }
}

/// What one prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pruned {
    pub invocations: usize,
    pub audit_events: usize,
    /// Terminal sessions (with their recordings).
    pub sessions: usize,
    pub other: usize,
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, o: Pruned) {
        self.invocations += o.invocations;
        self.audit_events += o.audit_events;
        self.sessions += o.sessions;
        self.other += o.other;
    }
}

fn cutoff(now: i64, days: Option<u32>) -> Option<i64> {
    days.map(|d| now - i64::from(d) * DAY_MS)
}

/// One batch of pruning. `done` is true when nothing was left to remove.
pub fn prune_batch(conn: &Connection, r: &Retention, now: i64) -> Result<(Pruned, bool)> {
    let mut p = Pruned::default();
    if let Some(before) = cutoff(now, r.days) {
        let ids: Vec<String> = {
            let mut st = conn.prepare(
                "SELECT id FROM invocations i WHERE created_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.invocation_id = i.id AND t.status NOT IN
                    ('DELIVER_FAILED','START_FAILED','SUCCESS','FAILED','TIMEOUT','TASK_TIMEOUT','CANCELLED','TERMINATED'))
                 ORDER BY created_ms LIMIT ?2",
            )?;
            let rows = st.query_map(params![before, BATCH], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in &ids {
            // Deliveries first (their attempts follow by foreign key), then
            // the webhook, then the invocation (tasks and output follow).
            conn.execute(
                "DELETE FROM webhook_deliveries WHERE invocation_id = ?1",
                params![id],
            )?;
            conn.execute("DELETE FROM webhooks WHERE owner_id = ?1", params![id])?;
            let cmd: Option<String> = conn
                .query_row(
                    "SELECT command_id FROM invocations WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .ok();
            p.invocations += conn.execute("DELETE FROM invocations WHERE id = ?1", params![id])?;
            // The unsaved command RunCommand made for it, once unused.
            if let Some(cmd) = cmd {
                p.other += conn.execute(
                    "DELETE FROM commands WHERE id = ?1 AND saved = 0
                     AND NOT EXISTS (SELECT 1 FROM invocations WHERE command_id = ?1)",
                    params![cmd],
                )?;
            }
        }
        if (ids.len() as i64) == BATCH {
            return Ok((p, false));
        }
        p.other += conn.execute(
            "DELETE FROM invoker_records WHERE invoke_ms < ?1",
            params![before],
        )?;
    }
    if let Some(before) = cutoff(now, r.audit_days) {
        p.audit_events = conn.execute(
            "DELETE FROM audit_events WHERE id IN
             (SELECT id FROM audit_events WHERE time_ms < ?1 ORDER BY id LIMIT ?2)",
            params![before, BATCH * 10],
        )?;
        if p.audit_events as i64 == BATCH * 10 {
            return Ok((p, false));
        }
    }
    if let Some(before) = cutoff(now, r.session_days) {
        // Recordings are large: fewer sessions per transaction.
        p.sessions = super::recordings::prune(conn, before, BATCH / 10)?;
        if p.sessions as i64 == BATCH / 10 {
            return Ok((p, false));
        }
    }
    p.other += conn.execute(
        "DELETE FROM console_sessions WHERE expires_ms < ?1",
        params![now],
    )?;
    p.other += super::client_tokens::prune(conn, now)?;
    Ok((p, true))
}

/// Prunes everything due, batch after batch (for `drover admin prune`).
pub fn prune_all(conn: &mut Connection, r: &Retention, now: i64) -> Result<Pruned> {
    let mut total = Pruned::default();
    loop {
        let tx = conn.transaction()?;
        let (p, done) = prune_batch(&tx, r, now)?;
        tx.commit()?;
        total += p;
        if done {
            return Ok(total);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::invocations::{fixtures, insert};
    use crate::store::status::TaskStatus::{Running, Success};

    #[test]
    fn old_finished_invocations_go_running_ones_and_recent_ones_stay() {
        let mut c = crate::store::test_conn();
        let now = 1_000 * DAY_MS;
        let old = now - 100 * DAY_MS;
        for (id, status, at) in [
            ("inv-old", Success, old),
            ("inv-run", Running, old),
            ("inv-new", Success, now - DAY_MS),
        ] {
            let mut i = fixtures::invocation(id);
            i.created_ms = at;
            let t = fixtures::task(&format!("invt-{id}"), id, "mi-1", status);
            insert(&c, &i, &[t]).unwrap();
            c.execute(
                "INSERT INTO task_output(task_id, offset, data) VALUES (?1, 0, x'78')",
                params![format!("invt-{id}")],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO audit_events (time_ms, request_id, principal, secret_id, source_ip,
             service, action, resources, decision, deciding_statement, outcome)
             VALUES (?1, 'r', 'root', '', '', 'tat', 'X', '', 'Allow', '', 'ok')",
            params![now - 200 * DAY_MS],
        )
        .unwrap();
        let r = Retention {
            days: Some(90),
            audit_days: Some(365),
            session_days: None,
        };
        let p = prune_all(&mut c, &r, now).unwrap();
        assert_eq!(p.invocations, 1);
        assert_eq!(p.audit_events, 0, "audit is kept longer");
        let left: Vec<String> = c
            .prepare("SELECT id FROM invocations ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(left, ["inv-new", "inv-run"]);
        let outputs: i64 = c
            .query_row("SELECT count(*) FROM task_output", [], |r| r.get(0))
            .unwrap();
        assert_eq!(outputs, 2, "the old invocation's output went with it");
        let p = prune_all(&mut c, &Retention::from_days(90, 100), now).unwrap();
        assert_eq!(p.audit_events, 1);
        assert_eq!(Retention::from_days(0, 0).days, None);
    }

    #[test]
    fn sessions_go_after_their_own_retention_live_ones_stay() {
        use crate::store::recordings::{self, tests::session};
        let mut c = crate::store::test_conn();
        let now = 1_000 * DAY_MS;
        for (id, start) in [
            ("ses-old", now - 40 * DAY_MS),
            ("ses-live", now - 40 * DAY_MS),
        ] {
            recordings::insert(&c, &session(id, "mi-1", "ann", start)).unwrap();
        }
        recordings::finish(&c, "ses-old", now - 39 * DAY_MS, Some(0), "exit").unwrap();
        let keep = Retention::from_days(0, 0).with_session_days(60);
        assert_eq!(prune_all(&mut c, &keep, now).unwrap().sessions, 0);
        let forever = Retention::from_days(0, 0).with_session_days(0);
        assert!(!forever.prunes());
        assert_eq!(prune_all(&mut c, &forever, now).unwrap().sessions, 0);
        let p = prune_all(&mut c, &keep.with_session_days(30), now).unwrap();
        assert_eq!(p.sessions, 1);
        assert!(recordings::get(&c, "ses-old").unwrap().is_none());
        assert!(recordings::get(&c, "ses-live").unwrap().is_some());
    }
}
