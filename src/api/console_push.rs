//! The console's push socket, `GET /console/push` (WebSocket), behind the
//! same signed-in session and the same gate as every API call. The browser
//! says what it watches (`{"Watch":"inv-…"}` or `{"Watch":"*"}`); whenever
//! the dispatcher reports task activity the server re-reads that view *as
//! the signed-in user* through `Api::call` (`console_views::gate`) and
//! sends it, so the browser never polls and never sees what the gate would
//! refuse. The console's read-only views (`/console/can`, `/groups`,
//! `/validate-policy`) are in `console_views.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::console_views::{gate, tasks_of};
use super::error::{ApiError, Code};
use super::{json_reply, Api, Principal, Reply, Service};
use crate::store::invocations as invs;

/// Bursts of agent reports (output chunks of many hosts) collapse into one
/// re-read per this interval.
const SETTLE: Duration = Duration::from_millis(250);
/// How often a push channel re-checks that its session still stands.
const RECHECK: Duration = Duration::from_secs(20);
/// One live view, read as the user: the invocation and its tasks (compact).
async fn invocation_view(
    api: &Api,
    p: &Principal,
    ip: std::net::IpAddr,
    inv: &str,
) -> Result<Value, ApiError> {
    let r = gate(
        api,
        p,
        ip,
        Service::Tat,
        "DescribeInvocations",
        json!({ "InvocationIds": [inv] }),
    )
    .await?;
    let invocation = r["InvocationSet"].get(0).cloned().ok_or_else(|| {
        ApiError::new(
            Code::ResourceNotFoundInvocationNotFound,
            format!("invocation {inv} does not exist"),
        )
    })?;
    let ids = task_ids(api, inv).await?;
    let tasks: Vec<Value> = tasks_of(api, p, ip, inv)
        .await?
        .into_iter()
        .map(|t| {
            let len = ids
                .get(t["InvocationTaskId"].as_str().unwrap_or(""))
                .copied();
            json!({
                "InvocationTaskId": t["InvocationTaskId"],
                "InstanceId": t["InstanceId"],
                "TaskStatus": t["TaskStatus"],
                "ExitCode": t["TaskResult"]["ExitCode"],
                "ExecStartTime": t["TaskResult"]["ExecStartTime"],
                "ExecEndTime": t["TaskResult"]["ExecEndTime"],
                "ErrorInfo": t["ErrorInfo"],
                "OutputLen": len.unwrap_or(0),
            })
        })
        .collect();
    Ok(json!({ "Type": "invocation", "Invocation": invocation, "Tasks": tasks }))
}

/// Stored output length of every task of `inv`, so the browser knows how
/// far each output has grown and fetches only the new slice.
async fn task_ids(api: &Api, inv: &str) -> Result<HashMap<String, i64>, ApiError> {
    let inv = inv.to_string();
    Ok(api
        .store
        .read(move |c| invs::tasks_of(c, std::slice::from_ref(&inv)))
        .await?
        .into_iter()
        .map(|t| (t.id, t.output_len))
        .collect())
}

/// Upgrades `GET /console/push` to a WebSocket for a signed-in user.
/// Browsers send Origin on every WebSocket handshake, and it must be this
/// host: a cross-site page cannot ride the session cookie into a socket.
pub async fn upgrade(
    api: Arc<Api>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Reply {
    let (parts, _) = Request::new(()).into_parts();
    let mut head = parts;
    head.headers = req.headers().clone();
    head.uri = req.uri().clone();
    let origin_ok = head.headers.contains_key("origin") && super::console::same_origin(&head);
    let deny = |code: Code, msg: &str| {
        json_reply(
            StatusCode::FORBIDDEN,
            &json!({"Response": {"Error": {"Code": code, "Message": msg}}}),
        )
    };
    if !origin_ok {
        return deny(
            Code::UnauthorizedOperation,
            "cross-origin console requests are refused",
        );
    }
    let principal = match super::console::session(&api, &head).await {
        Ok((_, _, p)) => p,
        Err(e) => return deny(e.code, &e.message),
    };
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let Some(accept) = key else {
        return deny(Code::InvalidParameter, "websocket upgrade required");
    };
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(&mut req).await {
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
            tokio::select! {
                _ = serve_push(api, head, principal, peer, ws) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    });
    let mut r = json_reply(StatusCode::SWITCHING_PROTOCOLS, &Value::Null);
    *r.body_mut() = Default::default();
    let h = r.headers_mut();
    h.remove(hyper::header::CONTENT_TYPE);
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

async fn serve_push<S>(
    api: Arc<Api>,
    head: Parts,
    p: Principal,
    peer: SocketAddr,
    mut ws: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut activity = api.dispatch.activity.subscribe();
    let mut watch: Option<String> = None;
    let mut dirty = false;
    let mut last_check = tokio::time::Instant::now();
    let ip = peer.ip();
    loop {
        let settle = tokio::time::sleep(SETTLE);
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    watch = v["Watch"].as_str().map(str::to_string);
                    dirty = watch.is_some();
                }
                Some(Ok(Message::Ping(d))) => { let _ = ws.send(Message::Pong(d)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
            r = activity.changed() => {
                if r.is_err() { return; }
                dirty = watch.is_some();
                continue;
            }
            _ = settle, if dirty => {}
        }
        if !dirty {
            continue;
        }
        dirty = false;
        if last_check.elapsed() > RECHECK {
            if super::console::session(&api, &head).await.is_err() {
                let _ = ws
                    .send(Message::Text(
                        json!({"Type": "error", "Code": Code::AuthFailureSessionExpired,
                               "Message": "the session has ended"})
                        .to_string(),
                    ))
                    .await;
                return;
            }
            last_check = tokio::time::Instant::now();
        }
        let msg = match watch.as_deref() {
            Some("*") => Ok(json!({"Type": "activity"})),
            Some(inv) => invocation_view(&api, &p, ip, inv).await,
            None => continue,
        };
        let text = match msg {
            Ok(v) => v.to_string(),
            Err(e) => json!({"Type": "error", "Code": e.code, "Message": e.message}).to_string(),
        };
        if ws.send(Message::Text(text)).await.is_err() {
            return;
        }
    }
}
