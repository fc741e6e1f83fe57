//! The audit trail of API calls: what each request was, who made it, what
//! was decided and how it ended; and DescribeAuditEvents, the drover
//! extension that reads it back.

use super::decided::Request;
use crate::gate::Authorized;
use std::net::SocketAddr;

use hyper::http::request::Parts;
use serde_json::{json, Value};

use super::request::{Params, R};
use super::{
    error::{ApiError, Code},
    Api,
};
use crate::store::audit::{self, AuditEvent, AuditQuery};

/// What a request revealed about itself on the way through `serve`.
#[derive(Default)]
pub struct Trail {
    pub principal: String,
    pub secret_id: String,
    pub service: String,
    pub resources: Vec<String>,
    pub decision: String,
    pub deciding_statement: String,
    /// The request's id and peer, set by a door that writes the event
    /// itself after the call (`Api::serve`). With them, an action that
    /// writes anyway (RunCommand, InvokeCommand) puts its success event
    /// into its own transaction: one write job per call, not two.
    pub context: Option<(String, SocketAddr)>,
    /// The event went in with the action's transaction: the door writes
    /// no second one.
    pub written: bool,
}

impl Trail {
    /// Takes the claimed SecretId and service from the Authorization header,
    /// before (and whether or not) the signature verifies.
    pub fn note_credential(&mut self, parts: &Parts) {
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::sign::parse_authorization);
        if let Some(a) = auth {
            // Bounded: the header is the caller's to fill.
            self.secret_id = a.secret_id.chars().take(128).collect();
            self.service = a.service.chars().take(32).collect();
        }
    }

    /// The event of this call succeeding, when the door gave the context
    /// for it (`None`: the door writes it after the call as usual).
    pub fn success_event(&self, action: &str) -> Option<AuditEvent> {
        let (request_id, peer) = self.context.clone()?;
        let t = Trail {
            principal: self.principal.clone(),
            secret_id: self.secret_id.clone(),
            service: self.service.clone(),
            resources: self.resources.clone(),
            decision: self.decision.clone(),
            deciding_statement: self.deciding_statement.clone(),
            context: None,
            written: false,
        };
        Some(t.into_event(&request_id, peer, action, "Success".to_string()))
    }

    pub fn into_event(
        self,
        request_id: &str,
        peer: SocketAddr,
        action: &str,
        outcome: String,
    ) -> AuditEvent {
        AuditEvent {
            time_ms: crate::timefmt::now_ms(),
            time: String::new(),
            request_id: request_id.to_string(),
            principal: self.principal,
            secret_id: self.secret_id,
            source_ip: peer.ip().to_string(),
            service: self.service,
            action: action.chars().take(128).collect(),
            resources: self.resources,
            decision: self.decision,
            deciding_statement: self.deciding_statement,
            outcome,
        }
    }
}

/// Appends one event. A failure to audit is logged loudly but does not turn
/// a finished call into an error. A failure before authentication (no
/// principal) is written in detail only up to a few per source and minute;
/// the rest become one summary row (`abuse::PreAuthAudit`).
pub async fn record(api: &Api, event: AuditEvent) {
    let mut rows = Vec::new();
    if event.principal.is_empty() && event.outcome != "Success" {
        let ip = event
            .source_ip
            .parse()
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let (detail, summaries) = api.abuse.pre_auth.note(ip, &event.outcome, event.time_ms);
        rows.extend(summaries);
        if detail {
            rows.push(event);
        }
    } else {
        rows.push(event);
    }
    write(api, rows).await;
}

/// Writes the summaries of pre-authentication windows that have ended
/// (all of them with `i64::MAX`); the server calls it periodically and at
/// shutdown, so a burst's count is written even when the source goes quiet.
impl Api {
    pub async fn flush_pre_auth_audit(&self, now_ms: i64) {
        let rows = self.abuse.pre_auth.flush(now_ms);
        write(self, rows).await;
    }
}

async fn write(api: &Api, rows: Vec<AuditEvent>) {
    if rows.is_empty() {
        return;
    }
    // The caller's answer waits for its audit row: ahead of the queue.
    let r = api
        .store
        .write_first(move |c| rows.iter().try_for_each(|e| audit::append(c, e)))
        .await;
    if let Err(e) = r {
        tracing::error!("audit log write failed: {e}");
    }
}

pub async fn describe(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let filters = q.filters(
        &["action", "principal", "outcome", "decision", "request-id"],
        false,
    )?;
    let start = q.opt_str("StartTime")?;
    let end = q.opt_str("EndTime")?;
    let page = q.page()?;
    q.finish()?;
    let parse = |name: &str, v: Option<String>| -> R<Option<i64>> {
        v.map(|s| {
            crate::timefmt::parse_iso(&s).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameterValueInvalidTimeFormat,
                    format!("{name} must look like 2024-01-02T03:04:05Z"),
                )
            })
        })
        .transpose()
    };
    let query = AuditQuery {
        actions: filters.get("action"),
        principals: filters.get("principal"),
        outcomes: filters.get("outcome"),
        decisions: filters.get("decision"),
        request_ids: filters.get("request-id"),
        since_ms: parse("StartTime", start)?,
        until_ms: parse("EndTime", end)?,
    };
    let (total, rows) = api
        .store
        .read(move |c| audit::list(c, &query, page))
        .await?;
    Ok(json!({ "TotalCount": total, "AuditEventSet": rows }))
}
