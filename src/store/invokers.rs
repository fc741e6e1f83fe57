//! Invokers (TAT's scheduled execution) and the record of each trigger.
//!
//! `last_fired_ms` is the scheduled time of the last trigger handled (fired,
//! missed or failed); `claim` advances it in the same transaction that
//! creates the trigger's invocation, so a trigger is never handled twice.

use rusqlite::{params, Connection, Row};

use super::query::{page_of, Page, Where};
use super::{not_found, Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct Invoker {
    pub id: String,
    pub name: String,
    /// Always "SCHEDULE" today.
    pub kind: String,
    pub command_id: String,
    pub username: String,
    /// JSON object text, or None when the invoker gives no parameters.
    pub parameters: Option<String>,
    pub instance_ids: Vec<String>,
    pub enable: bool,
    /// "ONCE" or "RECURRENCE".
    pub policy: String,
    /// The crontab expression (RECURRENCE), else "".
    pub recurrence: String,
    /// The time to run (ONCE), else 0.
    pub invoke_time_ms: i64,
    /// JSON array text of {"Key","Value"}.
    pub tags: String,
    pub last_fired_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Target selector (JSON array of {"Key","Values"}) resolved at each
    /// trigger instead of `instance_ids`; None: the ids are used.
    pub targets: Option<String>,
    /// Rate control for each trigger's invocation, as given.
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    /// Whose authority the invoker's triggers run with: "root" or a
    /// sub-user's uin (who created it or last changed it). Each trigger is
    /// decided against that user's policy of the moment; "" (an invoker
    /// from before creators were recorded) runs nothing.
    pub created_by: String,
}

const COLUMNS: &str = "id, name, type, command_id, username, parameters, instance_ids, enable,
    policy, recurrence, invoke_time_ms, tags, last_fired_ms, created_ms, updated_ms, targets,
    max_concurrency, max_errors, created_by";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Invoker> {
    let ids: String = r.get(6)?;
    Ok(Invoker {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        command_id: r.get(3)?,
        username: r.get(4)?,
        parameters: r.get(5)?,
        instance_ids: serde_json::from_str(&ids).unwrap_or_default(),
        enable: r.get(7)?,
        policy: r.get(8)?,
        recurrence: r.get(9)?,
        invoke_time_ms: r.get(10)?,
        tags: r.get(11)?,
        last_fired_ms: r.get(12)?,
        created_ms: r.get(13)?,
        updated_ms: r.get(14)?,
        targets: r.get(15)?,
        max_concurrency: r.get(16)?,
        max_errors: r.get(17)?,
        created_by: r.get(18)?,
    })
}

fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

pub fn insert(conn: &Connection, i: &Invoker) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO invokers({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"
        ),
        params![
            i.id,
            i.name,
            i.kind,
            i.command_id,
            i.username,
            i.parameters,
            ids_json(&i.instance_ids),
            i.enable,
            i.policy,
            i.recurrence,
            i.invoke_time_ms,
            i.tags,
            i.last_fired_ms,
            i.created_ms,
            i.updated_ms,
            i.targets,
            i.max_concurrency,
            i.max_errors,
            i.created_by
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Invoker> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM invokers WHERE id = ?1"),
        params![id],
        from_row,
    )
    .map_err(not_found(super::Entity::Invoker, id))
}

/// Replaces every mutable field (and the schedule's starting point).
pub fn update(conn: &Connection, i: &Invoker) -> Result<()> {
    let n = conn.execute(
        "UPDATE invokers SET name=?2, type=?3, command_id=?4, username=?5, parameters=?6,
            instance_ids=?7, enable=?8, policy=?9, recurrence=?10, invoke_time_ms=?11,
            last_fired_ms=?12, updated_ms=?13, targets=?14, max_concurrency=?15, max_errors=?16,
            created_by=?17
         WHERE id=?1",
        params![
            i.id,
            i.name,
            i.kind,
            i.command_id,
            i.username,
            i.parameters,
            ids_json(&i.instance_ids),
            i.enable,
            i.policy,
            i.recurrence,
            i.invoke_time_ms,
            i.last_fired_ms,
            i.updated_ms,
            i.targets,
            i.max_concurrency,
            i.max_errors,
            i.created_by
        ],
    )?;
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Invoker, i.id.clone()));
    }
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    if conn.execute("DELETE FROM invokers WHERE id = ?1", params![id])? == 0 {
        return Err(StoreError::missing(super::Entity::Invoker, id));
    }
    Ok(())
}

/// Enables or disables. Enabling starts the schedule afresh from `now`:
/// triggers that fell while it was disabled are not run later.
pub fn set_enable(conn: &Connection, id: &str, enable: bool, now: i64) -> Result<()> {
    let n = if enable {
        conn.execute(
            "UPDATE invokers SET enable = 1, updated_ms = ?2,
                last_fired_ms = CASE WHEN enable = 1 THEN last_fired_ms ELSE ?2 END
             WHERE id = ?1",
            params![id, now],
        )?
    } else {
        conn.execute(
            "UPDATE invokers SET enable = 0, updated_ms = ?2 WHERE id = ?1",
            params![id, now],
        )?
    };
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Invoker, id));
    }
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct InvokerQuery {
    pub ids: Vec<String>,
    pub command_ids: Vec<String>,
    pub kinds: Vec<String>,
}

pub fn list(conn: &Connection, q: &InvokerQuery, page: Page) -> Result<(i64, Vec<Invoker>)> {
    let mut w = Where::default();
    w.any_of("id", &q.ids)
        .any_of("command_id", &q.command_ids)
        .any_of("type", &q.kinds);
    page_of(
        conn,
        "invokers",
        COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        from_row,
    )
}

/// Every enabled invoker: what the scheduler plans from.
pub fn enabled(conn: &Connection) -> Result<Vec<Invoker>> {
    let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM invokers WHERE enable = 1"))?;
    let rows = st
        .query_map([], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// True when some invoker runs `command_id` (such a command cannot be deleted).
pub fn command_in_use(conn: &Connection, command_id: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM invokers WHERE command_id = ?1",
        params![command_id],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Marks the trigger scheduled at `scheduled_ms` as handled and records it.
/// `Refused(crate::store::Rule::InvokerTriggerHandled)` when the invoker is gone, disabled, or already past that
/// trigger: the caller's transaction then rolls back, so nothing runs twice.
pub fn claim(conn: &Connection, id: &str, scheduled_ms: i64, rec: &Record) -> Result<()> {
    let n = conn.execute(
        "UPDATE invokers SET last_fired_ms = ?2
         WHERE id = ?1 AND enable = 1 AND last_fired_ms < ?2",
        params![id, scheduled_ms],
    )?;
    if n == 0 {
        return Err(StoreError::Refused(
            crate::store::Rule::InvokerTriggerHandled,
            format!("invoker {id} trigger at {scheduled_ms} already handled"),
        ));
    }
    conn.execute(
        "INSERT INTO invoker_records(invoker_id, invoke_ms, reason, invocation_id, result)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, rec.invoke_ms, rec.reason, rec.invocation_id, rec.result],
    )?;
    Ok(())
}

/// One trigger of an invoker.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub invoker_id: String,
    /// When it was fired (or, for a missed one, when it was due).
    pub invoke_ms: i64,
    pub reason: String,
    /// The invocation it started; "" when none was.
    pub invocation_id: String,
    /// Stored only when no invocation carries the result ("MISSED", "FAILED").
    pub result: String,
}

pub fn records(
    conn: &Connection,
    invoker_ids: &[String],
    page: Page,
) -> Result<(i64, Vec<Record>)> {
    let mut w = Where::default();
    w.any_of("invoker_id", invoker_ids);
    page_of(
        conn,
        "invoker_records",
        "invoker_id, invoke_ms, reason, invocation_id, result",
        &w,
        "invoke_ms DESC, id DESC",
        page,
        |r| {
            Ok(Record {
                invoker_id: r.get(0)?,
                invoke_ms: r.get(1)?,
                reason: r.get(2)?,
                invocation_id: r.get(3)?,
                result: r.get(4)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> Invoker {
        Invoker {
            id: id.into(),
            name: "n".into(),
            kind: "SCHEDULE".into(),
            command_id: "cmd-aaaaaaaa".into(),
            username: "root".into(),
            parameters: None,
            instance_ids: vec!["mi-aaaaaaaa".into()],
            enable: true,
            policy: "ONCE".into(),
            recurrence: String::new(),
            invoke_time_ms: 5_000,
            tags: "[]".into(),
            last_fired_ms: 1_000,
            created_ms: 1_000,
            updated_ms: 1_000,
            targets: None,
            max_concurrency: None,
            max_errors: None,
            created_by: "root".into(),
        }
    }

    fn rec(id: &str, at: i64) -> Record {
        Record {
            invoker_id: id.into(),
            invoke_ms: at,
            reason: "scheduled".into(),
            invocation_id: String::new(),
            result: "MISSED".into(),
        }
    }

    #[test]
    fn claim_is_once_only_and_disable_restarts_on_enable() {
        let c = super::super::test_conn();
        insert(&c, &sample("ivk-aaaaaaaa")).unwrap();
        assert_eq!(get(&c, "ivk-aaaaaaaa").unwrap().instance_ids.len(), 1);
        claim(&c, "ivk-aaaaaaaa", 5_000, &rec("ivk-aaaaaaaa", 5_000)).unwrap();
        assert!(matches!(
            claim(&c, "ivk-aaaaaaaa", 5_000, &rec("ivk-aaaaaaaa", 5_000)),
            Err(StoreError::Refused(
                crate::store::Rule::InvokerTriggerHandled,
                _
            ))
        ));
        let page = Page {
            offset: 0,
            limit: 20,
        };
        let (n, rows) = records(&c, &["ivk-aaaaaaaa".into()], page).unwrap();
        assert_eq!((n, rows[0].result.as_str()), (1, "MISSED"));
        set_enable(&c, "ivk-aaaaaaaa", false, 7_000).unwrap();
        assert!(claim(&c, "ivk-aaaaaaaa", 8_000, &rec("ivk-aaaaaaaa", 8_000)).is_err());
        assert!(enabled(&c).unwrap().is_empty());
        set_enable(&c, "ivk-aaaaaaaa", true, 9_000).unwrap();
        assert_eq!(get(&c, "ivk-aaaaaaaa").unwrap().last_fired_ms, 9_000);
        assert!(command_in_use(&c, "cmd-aaaaaaaa").unwrap());
        delete(&c, "ivk-aaaaaaaa").unwrap();
        assert_eq!(records(&c, &[], page).unwrap().0, 0);
        assert!(matches!(
            delete(&c, "ivk-aaaaaaaa"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
