//! Aggregate counts for the metrics endpoint: cheap, read-only queries.

use rusqlite::Connection;

use super::Result;

/// Number of tasks in each status, statuses sorted.
pub fn tasks_by_status(c: &Connection) -> Result<Vec<(String, i64)>> {
    let mut st =
        c.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status ORDER BY status")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_tasks_per_status() {
        let c = super::super::test_conn();
        assert!(tasks_by_status(&c).unwrap().is_empty());
        c.execute_batch("PRAGMA foreign_keys = OFF;").unwrap();
        for (id, st) in [("t1", "SUCCESS"), ("t2", "SUCCESS"), ("t3", "RUNNING")] {
            c.execute(
                "INSERT INTO tasks (id, invocation_id, instance_id, command_id, status,
                    deadline_ms, created_ms, updated_ms)
                 VALUES (?1, 'inv-1', 'mi-1', 'cmd-1', ?2, 0, 0, 0)",
                [id, st],
            )
            .unwrap();
        }
        assert_eq!(
            tasks_by_status(&c).unwrap(),
            vec![("RUNNING".into(), 1), ("SUCCESS".into(), 2)]
        );
    }
}
