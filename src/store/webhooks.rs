//! Webhook notifications: the webhook of an invocation or invoker, the
//! durable queue of deliveries, and every attempt made.
//!
//! A webhook's key is stored only sealed (`secret_enc`, associated data
//! `webhook:<owner_id>`); a delivery carries a copy of that ciphertext and the
//! owner it is bound to, so it can still be sent after its invoker is gone.
//! `invocation_id` is UNIQUE in `webhook_deliveries`: an invocation is
//! notified at most once, whichever of its tasks ends last and however often
//! that is reported.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::invocations::{self, Invocation, Task};
use super::query::{page_of, Page, Where};
use super::Result;

/// The webhook of an invocation (`inv-…`) or an invoker (`ivk-…`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub owner_id: String,
    pub url: String,
    /// The HMAC key sealed with the associated data `webhook:<owner_id>`.
    pub secret_enc: Vec<u8>,
    /// For an invocation started by an invoker: that invoker.
    pub invoker_id: Option<String>,
    pub created_ms: i64,
}

fn config_from_row(r: &Row<'_>) -> rusqlite::Result<Config> {
    Ok(Config {
        owner_id: r.get(0)?,
        url: r.get(1)?,
        secret_enc: r.get(2)?,
        invoker_id: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

/// Sets (or replaces) the webhook of `c.owner_id`.
pub fn put(conn: &Connection, c: &Config) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO webhooks(owner_id, url, secret_enc, invoker_id, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![c.owner_id, c.url, c.secret_enc, c.invoker_id, c.created_ms],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, owner_id: &str) -> Result<Option<Config>> {
    Ok(conn
        .query_row(
            "SELECT owner_id, url, secret_enc, invoker_id, created_ms FROM webhooks
             WHERE owner_id = ?1",
            params![owner_id],
            config_from_row,
        )
        .optional()?)
}

/// Removes the webhook of `owner_id`, if it has one.
pub fn delete(conn: &Connection, owner_id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM webhooks WHERE owner_id = ?1",
        params![owner_id],
    )?;
    Ok(())
}

/// The webhook URL of each of `owners` that has one.
pub fn urls(conn: &Connection, owners: &[String]) -> Result<HashMap<String, String>> {
    let mut st = conn.prepare("SELECT url FROM webhooks WHERE owner_id = ?1")?;
    let mut out = HashMap::new();
    for o in owners {
        if let Some(url) = st
            .query_row(params![o], |r| r.get::<_, String>(0))
            .optional()?
        {
            out.insert(o.clone(), url);
        }
    }
    Ok(out)
}

/// An invocation whose every task is final, has a webhook, and has not been
/// queued for notification yet.
pub struct Finished {
    pub webhook: Config,
    pub invocation: Invocation,
    pub tasks: Vec<Task>,
}

/// What `task_id`'s end means for notification: `Some` when it was the last
/// task of an invocation that has a webhook and no delivery yet.
pub fn finished_invocation(conn: &Connection, task_id: &str) -> Result<Option<Finished>> {
    let Some(inv_id) = conn
        .query_row(
            "SELECT invocation_id FROM tasks WHERE id = ?1",
            params![task_id],
            |r| r.get::<_, String>(0),
        )
        .optional()?
    else {
        return Ok(None);
    };
    // Most invocations have no webhook: one primary-key lookup decides that.
    let Some(webhook) = get(conn, &inv_id)? else {
        return Ok(None);
    };
    let tasks = invocations::tasks_of(conn, std::slice::from_ref(&inv_id))?;
    if tasks.is_empty() || tasks.iter().any(|t| !t.status.is_final()) {
        return Ok(None);
    }
    let queued: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM webhook_deliveries WHERE invocation_id = ?1)",
        params![inv_id],
        |r| r.get(0),
    )?;
    if queued {
        return Ok(None);
    }
    let invocation = invocations::get(conn, &inv_id)?;
    Ok(Some(Finished {
        webhook,
        invocation,
        tasks,
    }))
}

/// Delivery states as DescribeWebhookDeliveries shows them.
pub const PENDING: &str = "PENDING";
pub const DELIVERED: &str = "DELIVERED";
pub const FAILED: &str = "FAILED";

/// One notification to send (or sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub invocation_id: String,
    pub invoker_id: Option<String>,
    pub url: String,
    /// The owner the sealed key is bound to.
    pub secret_owner: String,
    pub secret_enc: Vec<u8>,
    /// The JSON body, fixed when the delivery is queued.
    pub body: String,
    pub status: String,
    pub attempts: i64,
    /// When the next attempt is due (PENDING only).
    pub next_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const COLUMNS: &str = "id, invocation_id, invoker_id, url, secret_owner, secret_enc, body,
    status, attempts, next_ms, created_ms, updated_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        invocation_id: r.get(1)?,
        invoker_id: r.get(2)?,
        url: r.get(3)?,
        secret_owner: r.get(4)?,
        secret_enc: r.get(5)?,
        body: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        next_ms: r.get(9)?,
        created_ms: r.get(10)?,
        updated_ms: r.get(11)?,
    })
}

/// Queues `d` unless its invocation already has a delivery. Returns whether
/// it was queued.
pub fn enqueue(conn: &Connection, d: &Delivery) -> Result<bool> {
    let n = conn.execute(
        &format!(
            "INSERT OR IGNORE INTO webhook_deliveries({COLUMNS})
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        ),
        params![
            d.id,
            d.invocation_id,
            d.invoker_id,
            d.url,
            d.secret_owner,
            d.secret_enc,
            d.body,
            d.status,
            d.attempts,
            d.next_ms,
            d.created_ms,
            d.updated_ms
        ],
    )?;
    Ok(n > 0)
}

/// Takes up to `limit` pending deliveries due at `now` and leases them until
/// `lease_until`: a delivery being sent is not picked again, and one whose
/// sender died (a crash mid-attempt) becomes due again when the lease ends.
pub fn claim_due(
    conn: &Connection,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Delivery>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE status = 'PENDING' AND next_ms <= ?1
         ORDER BY next_ms LIMIT ?2"
    ))?;
    let due = st
        .query_map(params![now, limit], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for d in &due {
        conn.execute(
            "UPDATE webhook_deliveries SET next_ms = ?2 WHERE id = ?1",
            params![d.id, lease_until],
        )?;
    }
    Ok(due)
}

/// The earliest time a pending delivery is due, if any is pending.
pub fn next_due(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MIN(next_ms) FROM webhook_deliveries WHERE status = 'PENDING'",
        [],
        |r| r.get(0),
    )?)
}

/// One attempt at sending a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub at_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub http_status: Option<i64>,
    /// Why the attempt failed; "" when it succeeded.
    pub error: String,
}

/// Records attempt `a` and what follows from it: `status` (PENDING with the
/// next attempt at `next_ms`, or DELIVERED / FAILED).
pub fn record_attempt(conn: &Connection, a: &Attempt, status: &str, next_ms: i64) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO webhook_attempts(delivery_id, attempt, at_ms, http_status, error)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![a.delivery_id, a.attempt, a.at_ms, a.http_status, a.error],
    )?;
    conn.execute(
        "UPDATE webhook_deliveries SET attempts = ?2, status = ?3, next_ms = ?4, updated_ms = ?5
         WHERE id = ?1 AND status = 'PENDING'",
        params![a.delivery_id, a.attempt, status, next_ms, a.at_ms],
    )?;
    Ok(())
}

/// Deliveries of one invocation or of the invocations of one invoker.
#[derive(Debug, Default, Clone)]
pub struct DeliveryQuery {
    pub invocation_ids: Vec<String>,
    pub invoker_ids: Vec<String>,
}

pub fn list(conn: &Connection, q: &DeliveryQuery, page: Page) -> Result<(i64, Vec<Delivery>)> {
    let mut w = Where::default();
    w.any_of("invocation_id", &q.invocation_ids)
        .any_of("invoker_id", &q.invoker_ids);
    page_of(
        conn,
        "webhook_deliveries",
        COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        from_row,
    )
}

/// Every attempt of the given deliveries, oldest first.
pub fn attempts_of(conn: &Connection, delivery_ids: &[String]) -> Result<Vec<Attempt>> {
    let mut st = conn.prepare(
        "SELECT delivery_id, attempt, at_ms, http_status, error FROM webhook_attempts
         WHERE delivery_id = ?1 ORDER BY attempt",
    )?;
    let mut out = Vec::new();
    for id in delivery_ids {
        let rows = st
            .query_map(params![id], |r| {
                Ok(Attempt {
                    delivery_id: r.get(0)?,
                    attempt: r.get(1)?,
                    at_ms: r.get(2)?,
                    http_status: r.get(3)?,
                    error: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.extend(rows);
    }
    Ok(out)
}

/// The delivery state of each of `invocation_ids` that has a delivery.
pub fn statuses(conn: &Connection, invocation_ids: &[String]) -> Result<HashMap<String, String>> {
    let mut st = conn.prepare("SELECT status FROM webhook_deliveries WHERE invocation_id = ?1")?;
    let mut out = HashMap::new();
    for id in invocation_ids {
        if let Some(s) = st
            .query_row(params![id], |r| r.get::<_, String>(0))
            .optional()?
        {
            out.insert(id.clone(), s);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;
