//! Session records and recordings (drover extensions on the TAT endpoint):
//! `DescribeSessions` lists terminal sessions (who, where, as whom, when,
//! how long, bytes, state), each row visible only when the caller may
//! describe sessions on its instance (with the instance's tags);
//! `DescribeSessionRecording` returns a recording as asciicast v2 text in
//! pages; and the console downloads a whole file from
//! `GET /console/sessions/<id>.cast` with its sign-in cookie.
//!
//! A session id that does not exist is decided as an unknown instance, so
//! a restricted caller gets the same refusal for it as for a session it
//! may not see.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::Request as HttpRequest;
use serde_json::{json, Value};

use super::audit::{self, Trail};
use super::decided::Request;
use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::{envelope, json_reply, Api, Reply};
use crate::gate::Authorized;
use crate::policy::Action;
use crate::session::asciicast;
use crate::store::recordings::{self, SessionQuery, SessionRecord, State};
use crate::store::{instances, Entity, StoreError};
use crate::timefmt::{iso, now_ms};

/// Recorded bytes one DescribeSessionRecording page covers at most.
pub const PAGE_BYTES: usize = 1 << 20;
/// Largest file the console download builds (it is built in memory);
/// longer recordings are read in pages through the API.
const MAX_CAST_BYTES: usize = 512 << 20;
/// Downloads built at once, bounding the memory they take.
static DOWNLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn state_of(v: &str) -> R<State> {
    match v.to_ascii_uppercase().as_str() {
        "LIVE" => Ok(State::Live),
        "ENDED" => Ok(State::Ended),
        _ => Err(ApiError::value(format!(
            "the state filter takes LIVE or ENDED, not {v:?}"
        ))),
    }
}

fn session_json(s: &SessionRecord, now: i64) -> Value {
    let end = s.ended_ms.unwrap_or(now);
    json!({
        "SessionId": s.id,
        "InstanceId": s.instance_id,
        "UserName": s.user_name,
        "Uin": s.user_uin,
        "Via": s.via,
        "ClientAddress": s.client,
        "LoginUser": s.login_user,
        "Command": s.command,
        "State": if s.ended_ms.is_some() { "ENDED" } else { "LIVE" },
        "StartTime": iso(s.started_ms),
        "EndTime": s.ended_ms.map(iso),
        "DurationMs": (end - s.started_ms).max(0),
        "ExitCode": s.exit_code,
        "EndReason": s.end_reason,
        "Cols": s.cols,
        "Rows": s.rows,
        "RecordInput": s.record_input,
        "BytesOut": s.counters.bytes_out,
        "BytesIn": s.counters.bytes_in,
        "RecordedBytes": s.counters.recorded_bytes,
        "DroppedBytes": s.counters.dropped_bytes,
        "Truncated": s.counters.truncated,
    })
}

/// DescribeSessions: Filters `session-id`, `instance-id`, `user` (uin or
/// name), `state` (LIVE, ENDED); Limit/Offset; newest first.
pub async fn describe(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let filters = q.filters(&["session-id", "instance-id", "user", "state"], false)?;
    let page = q.page()?;
    q.finish()?;
    let query = SessionQuery {
        ids: filters.get("session-id"),
        instance_ids: filters.get("instance-id"),
        users: filters.get("user"),
        states: filters
            .get("state")
            .iter()
            .map(|v| state_of(v))
            .collect::<R<Vec<_>>>()?,
    };
    let vis = api.visibility(a.who());
    let fetch = vis.fetch(page);
    let act = Action::DescribeSessions.policy_name();
    let (total, rows) = api
        .store
        .read(move |c| {
            let (total, rows) = recordings::list(c, &query, fetch)?;
            // Each row by its instance's current tags, looked up once.
            let mut tags: HashMap<String, String> = HashMap::new();
            if !vis.all() {
                for s in &rows {
                    if !tags.contains_key(&s.instance_id) {
                        let t = instances::get_instance(c, &s.instance_id)
                            .map(|i| i.tags)
                            .unwrap_or_else(|_| "[]".into());
                        tags.insert(s.instance_id.clone(), t);
                    }
                }
            }
            Ok(vis.page(total, rows, page, |s| {
                let t = tags.get(&s.instance_id).map_or("[]", String::as_str);
                vis.sees(act, &[vis.instance(&s.instance_id, t)])
            }))
        })
        .await?;
    let now = now_ms();
    let set: Vec<Value> = rows.iter().map(|s| session_json(s, now)).collect();
    Ok(json!({ "TotalCount": total, "SessionSet": set }))
}

async fn stored(api: &Api, id: &str) -> R<SessionRecord> {
    let lookup = id.to_string();
    api.store
        .read(move |c| recordings::get(c, &lookup))
        .await?
        .ok_or_else(|| StoreError::missing(Entity::Session, id).into())
}

/// DescribeSessionRecording: `SessionId`, `Offset` (the chunk to start
/// at, from `NextOffset`; 0, the default, includes the header line).
/// Returns `Cast` (asciicast v2 lines), `NextOffset`, and `Complete` once
/// the session has ended and the page reached the end of its recording.
pub async fn recording(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = a.one("SessionId")?;
    let offset = q.opt_i64("Offset")?.unwrap_or(0);
    q.finish()?;
    if offset < 0 {
        return Err(ApiError::new(
            Code::InvalidParameterValueRange,
            "Offset must be 0 or more",
        ));
    }
    let s = stored(api, &id).await?;
    let truncated = s.counters.truncated;
    let p = api
        .store
        .read(move |c| asciicast::page(c, &s, offset, PAGE_BYTES))
        .await?;
    Ok(json!({
        "SessionId": id,
        "Format": "asciicast-v2",
        "Cast": p.text,
        "Offset": offset,
        "NextOffset": p.next,
        "Complete": p.complete,
        "Truncated": truncated,
    }))
}

/// The session id of a console download path, if it is one.
pub fn cast_path(path: &str) -> Option<&str> {
    path.strip_prefix("/console/sessions/")?
        .strip_suffix(".cast")
        .filter(|id| crate::ids::is_valid(id, crate::session::record::SESSION_ID_PREFIX))
}

/// `GET /console/sessions/<id>.cast`: the whole recording as a file, for
/// the console's replay and download. Signed in by the session cookie
/// (SameSite=Strict) like every console call; being a read, it needs no
/// CSRF token, so a plain link works. Decided by the gate exactly as
/// DescribeSessionRecording, and audited under that name.
pub async fn serve_cast(api: Arc<Api>, req: HttpRequest<Incoming>, peer: SocketAddr) -> Reply {
    let request_id = crate::ids::request_id();
    let (parts, _body) = req.into_parts();
    let mut trail = Trail {
        service: "console".into(),
        ..Default::default()
    };
    let action = Action::DescribeSessionRecording.api_name();
    let result = cast(&api, &parts, peer, &mut trail).await;
    let outcome = match &result {
        Ok(_) => "Success".to_string(),
        Err(e) => e.code.to_string(),
    };
    audit::record(&api, trail.into_event(&request_id, peer, action, outcome)).await;
    match result {
        Ok((id, text)) => {
            let mut r = Reply::new(Full::new(Bytes::from(text)));
            let h = r.headers_mut();
            h.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-asciicast"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.cast\"")) {
                h.insert(hyper::header::CONTENT_DISPOSITION, v);
            }
            secure_headers(&mut r);
            r
        }
        Err(e) => {
            let status = e.download_status();
            let mut r = json_reply(status, &envelope(&request_id, Err(e)));
            secure_headers(&mut r);
            r
        }
    }
}

fn secure_headers(r: &mut Reply) {
    let h = r.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
}

async fn cast(
    api: &Api,
    parts: &hyper::http::request::Parts,
    peer: SocketAddr,
    trail: &mut Trail,
) -> R<(String, String)> {
    if !super::console::same_origin(parts) {
        return Err(ApiError::new(
            Code::UnauthorizedOperation,
            "cross-origin console requests are refused",
        ));
    }
    // A browser marks requests another site started; refuse those too
    // (the cookie is SameSite=Strict, this is belt and braces).
    if parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(ApiError::new(
            Code::UnauthorizedOperation,
            "cross-site console requests are refused",
        ));
    }
    let (_, _, p) = super::console::session(api, parts).await?;
    trail.principal = p.user_id.clone();
    let id = cast_path(parts.uri.path())
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidParameterValueInvalidSessionId,
                "the path must be /console/sessions/ses-xxxxxxxx.cast",
            )
        })?
        .to_string();
    trail.resources = vec![id.clone()];
    let mut q = Params::parse(json!({ "SessionId": id }).to_string().as_bytes())?;
    let a = api
        .decide(
            &p,
            Action::DescribeSessionRecording,
            &mut q,
            Some(peer.ip()),
            trail,
        )
        .await?;
    let id = a.one("SessionId")?;
    let s = stored(api, &id).await?;
    let _permit = DOWNLOADS
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    let mut text = String::new();
    let mut offset = 0;
    loop {
        let s = s.clone();
        let page = api
            .store
            .read(move |c| asciicast::page(c, &s, offset, PAGE_BYTES))
            .await?;
        text.push_str(&page.text);
        if text.len() > MAX_CAST_BYTES {
            return Err(ApiError::new(
                Code::ResourceUnavailableRecordingTooLarge,
                "this recording is too large to download at once; read it in pages with \
                 DescribeSessionRecording",
            ));
        }
        // A live session's file ends where its recording is now.
        if page.complete || page.next == offset {
            break;
        }
        offset = page.next;
    }
    Ok((id, text))
}
