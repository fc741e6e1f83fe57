//! The audit log: one row per API call and per console login. Append-only
//! from the API's point of view — nothing here updates or deletes a row.

use rusqlite::{params, params_from_iter, Connection, Row};
use serde::Serialize;

use super::query::{Page, Where};
use super::Result;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AuditEvent {
    #[serde(skip)]
    pub time_ms: i64,
    /// `YYYY-MM-DDThh:mm:ssZ`, filled in when read.
    pub time: String,
    pub request_id: String,
    /// The caller's user id ("root" for the account); empty when the
    /// request never authenticated.
    pub principal: String,
    /// The SecretId the request claimed (never the secret).
    pub secret_id: String,
    pub source_ip: String,
    pub service: String,
    pub action: String,
    /// Resource ids the request named.
    pub resources: Vec<String>,
    /// "allow", "deny", or "" when no decision was reached.
    pub decision: String,
    /// The statement(s) that decided, as the policy engine explains them.
    pub deciding_statement: String,
    /// "Success" or the error code returned.
    pub outcome: String,
}

pub fn append(conn: &Connection, e: &AuditEvent) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_events(time_ms, request_id, principal, secret_id, source_ip, service,
            action, resources, decision, deciding_statement, outcome)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
        params![
            e.time_ms,
            e.request_id,
            e.principal,
            e.secret_id,
            e.source_ip,
            e.service,
            e.action,
            serde_json::to_string(&e.resources).unwrap_or_else(|_| "[]".into()),
            e.decision,
            e.deciding_statement,
            e.outcome
        ],
    )?;
    Ok(())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let resources: String = r.get(7)?;
    let time_ms: i64 = r.get(0)?;
    Ok(AuditEvent {
        time_ms,
        time: crate::timefmt::iso(time_ms),
        request_id: r.get(1)?,
        principal: r.get(2)?,
        secret_id: r.get(3)?,
        source_ip: r.get(4)?,
        service: r.get(5)?,
        action: r.get(6)?,
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        decision: r.get(8)?,
        deciding_statement: r.get(9)?,
        outcome: r.get(10)?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub actions: Vec<String>,
    pub principals: Vec<String>,
    pub outcomes: Vec<String>,
    pub decisions: Vec<String>,
    pub request_ids: Vec<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

fn where_of(q: &AuditQuery) -> Where {
    let mut w = Where::default();
    w.any_of("action", &q.actions)
        .any_of("principal", &q.principals)
        .any_of("outcome", &q.outcomes)
        .any_of("decision", &q.decisions)
        .any_of("request_id", &q.request_ids);
    if let Some(s) = q.since_ms {
        w.clause("time_ms >= ?".into(), vec![s.into()]);
    }
    if let Some(u) = q.until_ms {
        w.clause("time_ms <= ?".into(), vec![u.into()]);
    }
    w
}

const COLUMNS: &str = "time_ms, request_id, principal, secret_id, source_ip, service, action,
    resources, decision, deciding_statement, outcome";

/// Newest first.
pub fn list(conn: &Connection, q: &AuditQuery, page: Page) -> Result<(i64, Vec<AuditEvent>)> {
    let w = where_of(q);
    super::query::page_of(conn, "audit_events", COLUMNS, &w, "id DESC", page, from_row)
}

/// Oldest first, for export: calls `each` per event without holding them all.
pub fn for_each(conn: &Connection, q: &AuditQuery, mut each: impl FnMut(AuditEvent)) -> Result<()> {
    let w = where_of(q);
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_events{} ORDER BY id",
        w.sql()
    ))?;
    let mut rows = st.query(params_from_iter(w.params.iter()))?;
    while let Some(r) = rows.next()? {
        each(from_row(r)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_filters_and_exports_in_order() {
        let c = crate::store::test_conn();
        for (i, action) in ["RunCommand", "DescribeCommands", "RunCommand"]
            .iter()
            .enumerate()
        {
            let e = AuditEvent {
                time_ms: 1000 + i as i64,
                request_id: format!("r{i}"),
                principal: "root".into(),
                action: action.to_string(),
                resources: vec!["mi-1".into()],
                outcome: "Success".into(),
                ..Default::default()
            };
            append(&c, &e).unwrap();
        }
        let page = Page {
            offset: 0,
            limit: 10,
        };
        let q = AuditQuery {
            actions: vec!["RunCommand".into()],
            ..Default::default()
        };
        let (n, rows) = list(&c, &q, page).unwrap();
        assert_eq!(n, 2);
        assert_eq!(rows[0].request_id, "r2");
        assert_eq!(rows[0].resources, vec!["mi-1".to_string()]);
        let q = AuditQuery {
            since_ms: Some(1001),
            ..Default::default()
        };
        let mut seen = Vec::new();
        for_each(&c, &q, |e| seen.push(e.request_id)).unwrap();
        assert_eq!(seen, vec!["r1".to_string(), "r2".to_string()]);
    }
}
