//! Invocations, their tasks, and task output.
//!
//! Every state change is a guarded UPDATE (`WHERE status IN (...)`), so a
//! late or repeated message from an agent can never move a task backwards
//! or out of a final state.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::query::{Page, Where};
use super::status::TaskStatus::{self, *};
use super::{not_found, placeholders, Result};

#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: String,
    pub command_id: String,
    pub command_name: String,
    pub description: String,
    /// The content as submitted (placeholders intact), base64.
    pub content: String,
    /// The substituted script actually sent to agents, sealed (it may hold
    /// hidden parameter values).
    pub delivery_enc: Vec<u8>,
    pub command_type: String,
    pub timeout: i64,
    pub working_directory: String,
    pub username: String,
    /// JSON text with hidden values already masked.
    pub parameters: String,
    pub default_parameters: String,
    pub cos_bucket_url: String,
    pub cos_key_prefix: String,
    pub source: String,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The target selector (JSON array of {"Key","Values"}) the instances
    /// were resolved from; None when the caller listed InstanceIds. The
    /// resolved instances are the tasks' instances.
    pub targets: Option<String>,
    /// Rate control as given ("10" or "10%"); None when not used.
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub invocation_id: String,
    pub instance_id: String,
    pub command_id: String,
    pub status: TaskStatus,
    pub exit_code: Option<i64>,
    pub error_info: String,
    pub output_len: i64,
    pub deadline_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub exec_start_ms: i64,
    pub exec_end_ms: i64,
    /// Held back by MaxConcurrency: PENDING, not handed to dispatch, and
    /// out of the sweep's sight until the roll-out releases it.
    pub held: bool,
    /// Output length the agent reported when the task ended (0 before).
    /// More than `output_len` means bytes were lost: the output is shown
    /// as incomplete, and the missing bytes are counted in Dropped.
    pub reported_len: i64,
}

impl Task {
    /// Bytes the agent produced that the server does not hold.
    pub fn missing_output(&self) -> i64 {
        (self.reported_len - self.output_len).max(0)
    }
}

const INV_COLUMNS: &str = "id, command_id, command_name, description, content, delivery_enc,
    command_type, timeout, working_directory, username, parameters, default_parameters,
    cos_bucket_url, cos_key_prefix, source, created_by, created_ms, updated_ms, targets,
    max_concurrency, max_errors";

const TASK_COLUMNS: &str = "id, invocation_id, instance_id, command_id, status, exit_code,
    error_info, output_len, deadline_ms, created_ms, updated_ms, start_ms, end_ms,
    exec_start_ms, exec_end_ms, held, COALESCE(reported_len, 0)";

/// The columns a new task is written with (`reported_len` comes later).
const INSERT_TASK_COLUMNS: &str = "id, invocation_id, instance_id, command_id, status, exit_code,
    error_info, output_len, deadline_ms, created_ms, updated_ms, start_ms, end_ms,
    exec_start_ms, exec_end_ms, held";

fn inv_from_row(r: &Row<'_>) -> rusqlite::Result<Invocation> {
    Ok(Invocation {
        id: r.get(0)?,
        command_id: r.get(1)?,
        command_name: r.get(2)?,
        description: r.get(3)?,
        content: r.get(4)?,
        delivery_enc: r.get(5)?,
        command_type: r.get(6)?,
        timeout: r.get(7)?,
        working_directory: r.get(8)?,
        username: r.get(9)?,
        parameters: r.get(10)?,
        default_parameters: r.get(11)?,
        cos_bucket_url: r.get(12)?,
        cos_key_prefix: r.get(13)?,
        source: r.get(14)?,
        created_by: r.get(15)?,
        created_ms: r.get(16)?,
        updated_ms: r.get(17)?,
        targets: r.get(18)?,
        max_concurrency: r.get(19)?,
        max_errors: r.get(20)?,
    })
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let s: String = r.get(4)?;
    Ok(Task {
        id: r.get(0)?,
        invocation_id: r.get(1)?,
        instance_id: r.get(2)?,
        command_id: r.get(3)?,
        status: TaskStatus::parse(&s).unwrap_or(Failed),
        exit_code: r.get(5)?,
        error_info: r.get(6)?,
        output_len: r.get(7)?,
        deadline_ms: r.get(8)?,
        created_ms: r.get(9)?,
        updated_ms: r.get(10)?,
        start_ms: r.get(11)?,
        end_ms: r.get(12)?,
        exec_start_ms: r.get(13)?,
        exec_end_ms: r.get(14)?,
        held: r.get(15)?,
        reported_len: r.get(16)?,
    })
}

pub fn insert(conn: &Connection, inv: &Invocation, tasks: &[Task]) -> Result<()> {
    let i = inv;
    conn.execute(
        &format!("INSERT INTO invocations({INV_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"),
        params![
            i.id, i.command_id, i.command_name, i.description, i.content, i.delivery_enc,
            i.command_type, i.timeout, i.working_directory, i.username, i.parameters,
            i.default_parameters, i.cos_bucket_url, i.cos_key_prefix, i.source, i.created_by,
            i.created_ms, i.updated_ms, i.targets, i.max_concurrency, i.max_errors
        ],
    )?;
    let mut st = conn.prepare(&format!(
        "INSERT INTO tasks({INSERT_TASK_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"
    ))?;
    for t in tasks {
        st.execute(params![
            t.id,
            t.invocation_id,
            t.instance_id,
            t.command_id,
            t.status.as_str(),
            t.exit_code,
            t.error_info,
            t.output_len,
            t.deadline_ms,
            t.created_ms,
            t.updated_ms,
            t.start_ms,
            t.end_ms,
            t.exec_start_ms,
            t.exec_end_ms,
            t.held
        ])?;
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Invocation> {
    conn.query_row(
        &format!("SELECT {INV_COLUMNS} FROM invocations WHERE id = ?1"),
        params![id],
        inv_from_row,
    )
    .map_err(not_found(super::Entity::Invocation, id))
}

pub fn get_task(conn: &Connection, id: &str) -> Result<Task> {
    conn.query_row(
        &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"),
        params![id],
        task_from_row,
    )
    .map_err(not_found(super::Entity::Task, id))
}

fn query_tasks(
    conn: &Connection,
    where_sql: &str,
    p: Vec<rusqlite::types::Value>,
) -> Result<Vec<Task>> {
    let mut st = conn.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks{where_sql}"))?;
    let rows = st
        .query_map(params_from_iter(p.iter()), task_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Tasks of the given invocations, in creation order.
pub fn tasks_of(conn: &Connection, invocation_ids: &[String]) -> Result<Vec<Task>> {
    let mut w = Where::default();
    w.any_of("invocation_id", invocation_ids);
    if invocation_ids.is_empty() {
        return Ok(Vec::new());
    }
    query_tasks(
        conn,
        &format!("{} ORDER BY created_ms, id", w.sql()),
        w.params,
    )
}

#[derive(Default, Debug, Clone)]
pub struct InvocationQuery {
    pub ids: Vec<String>,
    pub command_ids: Vec<String>,
    pub created_by: Vec<String>,
    /// An instance-kind filter other than ours matches nothing.
    pub match_nothing: bool,
}

pub fn list(conn: &Connection, q: &InvocationQuery, page: Page) -> Result<(i64, Vec<Invocation>)> {
    let mut w = Where::default();
    if q.match_nothing {
        w.clause("0".into(), vec![]);
    }
    w.any_of("id", &q.ids)
        .any_of("command_id", &q.command_ids)
        .any_of("created_by", &q.created_by);
    super::query::page_of(
        conn,
        "invocations",
        INV_COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        inv_from_row,
    )
}

#[derive(Default, Debug, Clone)]
pub struct TaskQuery {
    pub ids: Vec<String>,
    pub invocation_ids: Vec<String>,
    pub instance_ids: Vec<String>,
    pub command_ids: Vec<String>,
}

pub fn list_tasks(conn: &Connection, q: &TaskQuery, page: Page) -> Result<(i64, Vec<Task>)> {
    let mut w = Where::default();
    w.any_of("id", &q.ids)
        .any_of("invocation_id", &q.invocation_ids)
        .any_of("instance_id", &q.instance_ids)
        .any_of("command_id", &q.command_ids);
    super::query::page_of(
        conn,
        "tasks",
        TASK_COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        task_from_row,
    )
}

fn set_status(
    conn: &Connection,
    task_id: &str,
    from: &[TaskStatus],
    to: TaskStatus,
    now: i64,
) -> Result<bool> {
    let mut p: Vec<rusqlite::types::Value> = vec![
        to.as_str().to_string().into(),
        now.into(),
        task_id.to_string().into(),
    ];
    p.extend(from.iter().map(|s| s.as_str().to_string().into()));
    let n = conn.execute(
        &format!(
            "UPDATE tasks SET status = ?, updated_ms = ? WHERE id = ? AND status IN ({})",
            placeholders(from.len())
        ),
        params_from_iter(p.iter()),
    )?;
    Ok(n > 0)
}

/// PENDING/DELIVER_DELAYED → DELIVERING, with a new deadline for the agent's answer.
pub fn mark_delivering(
    conn: &Connection,
    task_id: &str,
    deadline_ms: i64,
    now: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = 'DELIVERING', deadline_ms = ?2, updated_ms = ?3,
            start_ms = CASE WHEN start_ms = 0 THEN ?3 ELSE start_ms END, error_info = ''

         WHERE id = ?1 AND held = 0 AND status IN ('PENDING', 'DELIVER_DELAYED', 'DELIVERING')",
        params![task_id, deadline_ms, now],
    )?;
    Ok(n > 0)
}

/// PENDING → DELIVER_DELAYED: the instance is offline; it waits until its deadline.
pub fn mark_delayed(conn: &Connection, task_id: &str, now: i64) -> Result<bool> {
    set_status(conn, task_id, &[Pending], DeliverDelayed, now)
}

/// The agent started the process.
pub fn mark_running(
    conn: &Connection,
    task_id: &str,
    started_at: i64,
    deadline_ms: i64,
    now: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = 'RUNNING', exec_start_ms = ?2, deadline_ms = ?3, updated_ms = ?4
         WHERE id = ?1 AND status IN ('PENDING', 'DELIVER_DELAYED', 'DELIVERING')",
        params![task_id, started_at, deadline_ms, now],
    )?;
    Ok(n > 0)
}

/// Appends the part of `data` (at `offset`) that is beyond what was
/// received. Returns the number of bytes stored. A gap (offset past the end)
/// is refused rather than stored with a hole: the agent resends from 0 on
/// reconnect. Output cap (`limits::max_output`): bytes past it are counted
/// in `output_capped` (reported as Dropped, output not Complete) and not
/// stored. A final task takes output only as its end allows (below).
pub fn append_output(conn: &Connection, task_id: &str, offset: i64, data: &[u8]) -> Result<usize> {
    let Some((len, capped, status, reported)) = conn
        .query_row(
            "SELECT output_len, output_capped, status, reported_len FROM tasks WHERE id = ?1",
            params![task_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(0);
    };
    // Once the agent has reported a task's end, the task only takes the
    // bytes the agent reported having (a resend that fills what a failed
    // write lost), never more. A task the server ended without the agent
    // (TASK_TIMEOUT of a silent agent) still takes its output, since the
    // agent's late report may yet replace that end; the cap bounds it.
    let data = match (TaskStatus::parse(&status), reported) {
        (None, _) => return Ok(0),
        // Ended by the server with no report (cancelled, never delivered)
        // other than TASK_TIMEOUT: nothing more to say.
        (Some(s), None) if s.is_final() && s != TaskStatus::TaskTimeout => return Ok(0),
        (Some(s), Some(reported)) if s.is_final() => {
            let limit = reported - offset;
            if limit <= 0 {
                return Ok(0);
            }
            &data[..data.len().min(limit as usize)]
        }
        _ => data,
    };
    let end = offset + data.len() as i64;
    if offset > len || end <= len {
        return Ok(0);
    }
    let new = &data[(len - offset) as usize..];
    let stored = len - capped;
    let room = match super::limits::max_output(conn)? {
        _ if capped > 0 => 0,
        Some(cap) => (cap - stored).max(0) as usize,
        None => new.len(),
    };
    let keep = &new[..room.min(new.len())];
    if !keep.is_empty() {
        conn.execute(
            "INSERT INTO task_output(task_id, offset, data) VALUES (?1, ?2, ?3)",
            params![task_id, len, keep],
        )?;
    }
    conn.execute(
        "UPDATE tasks SET output_len = ?2, output_capped = output_capped + ?3 WHERE id = ?1",
        params![task_id, end, (new.len() - keep.len()) as i64],
    )?;
    Ok(keep.len())
}

/// Bytes of a task's output not stored because of the output cap.
pub fn output_capped(conn: &Connection, task_id: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT output_capped FROM tasks WHERE id = ?1",
            params![task_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Up to `limit` bytes of a task's output starting at `offset`.
pub fn read_output(conn: &Connection, task_id: &str, offset: i64, limit: i64) -> Result<Vec<u8>> {
    let mut st = conn.prepare(
        "SELECT offset, data FROM task_output WHERE task_id = ?1 AND offset + length(data) > ?2
         ORDER BY offset",
    )?;
    let mut rows = st.query(params![task_id, offset])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let at: i64 = r.get(0)?;
        let data: Vec<u8> = r.get(1)?;
        let skip = (offset - at).max(0) as usize;
        let want = (limit as usize).saturating_sub(out.len());
        out.extend_from_slice(
            &data[skip.min(data.len())..][..want.min(data.len().saturating_sub(skip))],
        );
        if out.len() as i64 >= limit {
            break;
        }
    }
    Ok(out)
}

/// The facts an agent reports when a task ends.
pub struct Finish<'a> {
    pub status: TaskStatus,
    pub exit_code: Option<i64>,
    pub exec_start_ms: i64,
    pub exec_end_ms: i64,
    pub reported_len: i64,
    pub error_info: &'a str,
}

/// Records a task's end unless it already ended. Returns whether it changed.
///
/// TASK_TIMEOUT is the one final state an agent's report may still replace:
/// it is the server's guess that a silent agent's task is lost, and when the
/// agent comes back (it was frozen, or the server could not store its
/// result) with what really happened, the real exit wins.
pub fn finish(conn: &Connection, task_id: &str, f: &Finish<'_>, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = ?2, exit_code = ?3, exec_start_ms = CASE WHEN ?4 > 0 THEN ?4 ELSE exec_start_ms END,
            exec_end_ms = ?5, reported_len = ?6, error_info = ?7, end_ms = ?8, updated_ms = ?8,
            start_ms = CASE WHEN start_ms = 0 THEN ?8 ELSE start_ms END
         WHERE id = ?1 AND status NOT IN
            ('DELIVER_FAILED','START_FAILED','SUCCESS','FAILED','TIMEOUT','CANCELLED','TERMINATED')",
        params![
            task_id, f.status.as_str(), f.exit_code, f.exec_start_ms, f.exec_end_ms,
            f.reported_len, super::limits::clip(f.error_info, super::limits::MAX_ERROR_INFO), now
        ],
    )?;
    Ok(n > 0)
}

/// Ends a task without an agent report (cancel before delivery, delivery
/// failure, unresponsive agent), from any of `from`.
pub fn end_without_agent(
    conn: &Connection,
    task_id: &str,
    from: &[TaskStatus],
    to: TaskStatus,
    error_info: &str,
    now: i64,
) -> Result<bool> {
    let mut p2: Vec<rusqlite::types::Value> = vec![
        to.as_str().to_string().into(),
        error_info.to_string().into(),
        now.into(),
        now.into(),
        task_id.to_string().into(),
    ];
    p2.extend(from.iter().map(|s| s.as_str().to_string().into()));
    let n = conn.execute(
        &format!(
            "UPDATE tasks SET status = ?, error_info = ?, end_ms = ?, updated_ms = ?
             WHERE id = ? AND status IN ({})",
            placeholders(from.len())
        ),
        params_from_iter(p2.iter()),
    )?;
    Ok(n > 0)
}

/// Marks a running task CANCELLING; true if it was running, suspended or
/// being delivered. A suspended task's deadline moves back by the time it
/// spent suspended (its agent's timeout clock was paused as long).
pub fn mark_cancelling(conn: &Connection, task_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET status = 'CANCELLING', updated_ms = ?2,
            deadline_ms = deadline_ms + CASE WHEN status = 'SUSPENDED'
                THEN MAX(0, ?2 - suspended_ms) ELSE 0 END,
            suspended_ms = 0
         WHERE id = ?1 AND status IN ('DELIVERING', 'RUNNING', 'SUSPENDED')",
        params![task_id, now],
    )?;
    Ok(n > 0)
}

/// Hands the next waiting tasks of an instance to delivery: counts the
/// tasks it holds (DELIVERING, RUNNING, CANCELLING, SUSPENDED), marks the
/// oldest waiting ones (PENDING or DELIVER_DELAYED, not held by a roll-out)
/// DELIVERING up to `slots`, and gives those still waiting `reason` as
/// their ErrorInfo. Returns (task id, invocation id) of the tasks to send.
pub fn take_for_delivery(
    conn: &Connection,
    instance_id: &str,
    slots: u32,
    deadline_ms: i64,
    now: i64,
    reason: &str,
) -> Result<Vec<(String, String)>> {
    let busy: i64 = conn.query_row(
        "SELECT COUNT(*) FROM tasks WHERE instance_id = ?1
           AND status IN ('DELIVERING','RUNNING','CANCELLING','SUSPENDED')",
        params![instance_id],
        |r| r.get(0),
    )?;
    let free = (i64::from(slots) - busy).max(0);
    let mut st = conn.prepare_cached(
        "SELECT id, invocation_id FROM tasks WHERE instance_id = ?1 AND held = 0
           AND status IN ('PENDING','DELIVER_DELAYED') ORDER BY created_ms, id LIMIT ?2",
    )?;
    let picked = st
        .query_map(params![instance_id, free], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    let mut out = Vec::with_capacity(picked.len());
    for (id, inv) in picked {
        if mark_delivering(conn, &id, deadline_ms, now)? {
            out.push((id, inv));
        }
    }
    // Those left waiting say why, once (the reason does not change while
    // they wait), and an online agent's queue is not "delayed".
    if free == 0 || out.len() as i64 == free {
        conn.execute(
            "UPDATE tasks SET status = 'PENDING', error_info = ?2, updated_ms = ?3
             WHERE instance_id = ?1 AND held = 0 AND status IN ('PENDING','DELIVER_DELAYED')
               AND error_info <> ?2",
            params![instance_id, reason, now],
        )?;
    }
    Ok(out)
}

/// Moves the delivery deadline of tasks queued behind an online agent's
/// busy slots: they wait for the agent, which is there, not for an
/// offline instance.
pub fn extend_queued(conn: &Connection, task_ids: &[String], deadline_ms: i64) -> Result<()> {
    let mut st = conn.prepare_cached(
        "UPDATE tasks SET deadline_ms = ?2 WHERE id = ?1 AND status IN ('PENDING','DELIVER_DELAYED')",
    )?;
    for id in task_ids {
        st.execute(params![id, deadline_ms])?;
    }
    Ok(())
}

/// Tasks an instance should be running or be told about when it connects
/// (a task held back by MaxConcurrency is not yet one of them).
pub fn open_for_instance(conn: &Connection, instance_id: &str) -> Result<Vec<Task>> {
    query_tasks(
        conn,
        " WHERE instance_id = ? AND held = 0 AND status IN ('PENDING','DELIVER_DELAYED','DELIVERING','RUNNING','CANCELLING','SUSPENDED') ORDER BY created_ms",
        vec![instance_id.to_string().into()],
    )
}

/// Invocations that still hold tasks back (the roll-out resumes them on
/// start-up).
pub fn with_held_tasks(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT DISTINCT invocation_id FROM tasks WHERE held = 1 AND status = 'PENDING'",
    )?;
    let rows = st
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Those of `ids` that have rate control (MaxConcurrency or MaxErrors).
pub fn rate_controlled(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT 1 FROM invocations WHERE id = ?1
           AND (max_concurrency IS NOT NULL OR max_errors IS NOT NULL)",
    )?;
    let mut out = Vec::new();
    for id in ids {
        if st.exists(params![id])? {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// Releases a held task to dispatch: its delivery deadline starts now.
pub fn release(conn: &Connection, task_id: &str, deadline_ms: i64, now: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tasks SET held = 0, deadline_ms = ?2, updated_ms = ?3
         WHERE id = ?1 AND held = 1 AND status = 'PENDING'",
        params![task_id, deadline_ms, now],
    )?;
    Ok(n > 0)
}

/// Unfinished tasks whose deadline has passed. A SUSPENDED task has no
/// running deadline: it is not looked at until it is resumed or cancelled.
pub fn overdue(conn: &Connection, now: i64) -> Result<Vec<Task>> {
    query_tasks(
        conn,
        " WHERE status IN ('PENDING','DELIVER_DELAYED','DELIVERING','RUNNING','CANCELLING') AND deadline_ms < ? AND held = 0",
        vec![now.into()],
    )
}

/// Rows for unit tests elsewhere in the crate (dispatch, notify), so each
/// does not spell out every column.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn invocation(id: &str) -> Invocation {
        Invocation {
            id: id.into(),
            command_id: "cmd-1".into(),
            command_name: "n".into(),
            description: String::new(),
            content: String::new(),
            delivery_enc: vec![],
            command_type: "SHELL".into(),
            timeout: 60,
            working_directory: String::new(),
            username: String::new(),
            parameters: "{}".into(),
            default_parameters: "{}".into(),
            cos_bucket_url: String::new(),
            cos_key_prefix: String::new(),
            source: "USER".into(),
            created_by: "USER".into(),
            created_ms: 1,
            updated_ms: 1,
            targets: None,
            max_concurrency: None,
            max_errors: None,
        }
    }

    pub fn task(id: &str, invocation_id: &str, instance_id: &str, status: TaskStatus) -> Task {
        Task {
            id: id.into(),
            invocation_id: invocation_id.into(),
            instance_id: instance_id.into(),
            command_id: "cmd-1".into(),
            status,
            exit_code: None,
            error_info: String::new(),
            output_len: 0,
            deadline_ms: 100,
            created_ms: 1,
            updated_ms: 1,
            start_ms: 0,
            end_ms: 0,
            exec_start_ms: 0,
            exec_end_ms: 0,
            held: false,
            reported_len: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::invocation as inv;
    use super::*;

    fn task(id: &str, inv: &str) -> Task {
        fixtures::task(id, inv, "mi-1", Pending)
    }

    #[test]
    fn output_past_the_cap_is_counted_not_stored_and_final_tasks_take_none() {
        let c = crate::store::test_conn();
        insert(&c, &inv("inv-1"), &[task("invt-1", "inv-1")]).unwrap();
        crate::store::limits::set_max_output(&c, 8).unwrap();
        assert_eq!(append_output(&c, "invt-1", 0, b"hello ").unwrap(), 6);
        assert_eq!(append_output(&c, "invt-1", 6, b"world!").unwrap(), 2);
        assert_eq!(append_output(&c, "invt-1", 12, b"more").unwrap(), 0);
        // A resend of what was counted changes nothing.
        assert_eq!(append_output(&c, "invt-1", 6, b"world!").unwrap(), 0);
        assert_eq!(read_output(&c, "invt-1", 0, 100).unwrap(), b"hello wo");
        assert_eq!(get_task(&c, "invt-1").unwrap().output_len, 16);
        assert_eq!(output_capped(&c, "invt-1").unwrap(), 8);
        let f = Finish {
            status: Success,
            exit_code: Some(0),
            exec_start_ms: 1,
            exec_end_ms: 2,
            reported_len: 16,
            error_info: &"e".repeat(10_000),
        };
        assert!(finish(&c, "invt-1", &f, 3).unwrap());
        assert_eq!(append_output(&c, "invt-1", 16, b"late").unwrap(), 0);
        assert_eq!(get_task(&c, "invt-1").unwrap().output_len, 16);
        let t = get_task(&c, "invt-1").unwrap();
        assert_eq!(t.error_info.len(), crate::store::limits::MAX_ERROR_INFO);
    }

    #[test]
    fn a_final_task_takes_back_only_the_bytes_it_reported() {
        let c = crate::store::test_conn();
        insert(&c, &inv("inv-1"), &[task("invt-1", "inv-1")]).unwrap();
        assert_eq!(append_output(&c, "invt-1", 0, b"abcd").unwrap(), 4);
        let f = Finish {
            status: Success,
            exit_code: Some(0),
            exec_start_ms: 1,
            exec_end_ms: 2,
            reported_len: 10,
            error_info: "",
        };
        assert!(finish(&c, "invt-1", &f, 3).unwrap());
        // The resend fills the gap up to the reported 10 bytes, no further.
        assert_eq!(append_output(&c, "invt-1", 4, b"efghijEXTRA").unwrap(), 6);
        assert_eq!(append_output(&c, "invt-1", 10, b"more").unwrap(), 0);
        assert_eq!(read_output(&c, "invt-1", 0, 100).unwrap(), b"abcdefghij");
    }

    #[test]
    fn output_resend_is_idempotent_and_reads_by_range() {
        let c = crate::store::test_conn();
        insert(&c, &inv("inv-1"), &[task("invt-1", "inv-1")]).unwrap();
        assert_eq!(append_output(&c, "invt-1", 0, b"hello ").unwrap(), 6);
        assert_eq!(append_output(&c, "invt-1", 0, b"hello ").unwrap(), 0);
        assert_eq!(append_output(&c, "invt-1", 3, b"lo world").unwrap(), 5);
        assert_eq!(append_output(&c, "invt-1", 20, b"gap").unwrap(), 0);
        assert_eq!(read_output(&c, "invt-1", 0, 100).unwrap(), b"hello world");
        assert_eq!(read_output(&c, "invt-1", 4, 3).unwrap(), b"o w");
        assert_eq!(get_task(&c, "invt-1").unwrap().output_len, 11);
    }

    #[test]
    fn final_states_are_final() {
        let c = crate::store::test_conn();
        insert(&c, &inv("inv-1"), &[task("invt-1", "inv-1")]).unwrap();
        assert!(mark_delivering(&c, "invt-1", 500, 2).unwrap());
        assert!(mark_running(&c, "invt-1", 3, 600, 3).unwrap());
        let f = Finish {
            status: Success,
            exit_code: Some(0),
            exec_start_ms: 3,
            exec_end_ms: 4,
            reported_len: 0,
            error_info: "",
        };
        assert!(finish(&c, "invt-1", &f, 4).unwrap());
        assert!(!finish(
            &c,
            "invt-1",
            &Finish {
                status: Failed,
                ..f
            },
            5
        )
        .unwrap());
        assert!(!mark_running(&c, "invt-1", 6, 600, 6).unwrap());
        assert!(!end_without_agent(&c, "invt-1", &[Running], TaskTimeout, "x", 7).unwrap());
        assert_eq!(get_task(&c, "invt-1").unwrap().status, Success);
        assert!(overdue(&c, 10_000).unwrap().is_empty());
    }
}
