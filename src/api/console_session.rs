//! `GET /console/session`: the browser's terminal, a WebSocket onto one
//! interactive session (`session::Sessions`).
//!
//! Authenticated like `/console/push`: the signed-in session's cookie, and
//! an `Origin` that is this host (a cross-site page cannot ride the
//! cookie into a socket); a `Csrf` query parameter, when given, must be
//! the session's CSRF token. The query names the session:
//! `InstanceId`, `User` (the login account, default `root`), `Cols`,
//! `Rows`. The decision (`tat:StartSession` on the instance with
//! `tat:login_user`) is taken after the upgrade, so a refusal can say why
//! on the socket before it closes.
//!
//! Frames: binary in both directions are raw terminal bytes. Text frames
//! are JSON control: client → `{"type":"resize","cols":N,"rows":N}`;
//! server → `{"type":"opened","sessionId":"ses-…"}`,
//! `{"type":"exit","code":N|null,"signal":N|null}`, and
//! `{"type":"error","code":"<TAT code>","message":"…"}` (a refusal, or a
//! session closed for another reason: idle, length, administrator, agent
//! gone — code FailedOperation.SessionClosed), each followed by a close.
//! The console session is re-checked every 20 s; a signed-out user's
//! terminal ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, Code};
use super::{json_reply, Api, Principal, Reply};
use crate::session::{self, SessionEvent, SessionPlan, Via, Who};

/// How often the console session behind a terminal is checked again.
const RECHECK: Duration = Duration::from_secs(20);
/// Largest frame a browser may send (a paste is chunked by the browser).
const MAX_CLIENT_FRAME: usize = 1 << 20;

/// The session a terminal asks for, read from the query.
#[derive(Debug)]
struct Ask {
    instance_id: String,
    user: String,
    cols: u16,
    rows: u16,
    csrf: Option<String>,
}

fn parse_query(query: &str) -> Result<Ask, ApiError> {
    let mut ask = Ask {
        instance_id: String::new(),
        user: "root".into(),
        cols: 80,
        rows: 24,
        csrf: None,
    };
    let num = |k: &str, v: &str| -> Result<u16, ApiError> {
        v.parse::<u16>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::value(format!("{k} must be a number in 1..=1000")))
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "InstanceId" => ask.instance_id = v.into_owned(),
            "User" => ask.user = v.into_owned(),
            "Cols" => ask.cols = num("Cols", &v)?,
            "Rows" => ask.rows = num("Rows", &v)?,
            "Csrf" => ask.csrf = Some(v.into_owned()),
            other => return Err(ApiError::unknown_param(other)),
        }
    }
    if ask.instance_id.is_empty() {
        return Err(ApiError::missing("InstanceId"));
    }
    Ok(ask)
}

/// Upgrades `GET /console/session` for a signed-in user.
pub async fn upgrade(
    api: Arc<Api>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Reply {
    let (mut head, _) = Request::new(()).into_parts();
    head.headers = req.headers().clone();
    head.uri = req.uri().clone();
    let deny = |status: StatusCode, e: ApiError| {
        json_reply(
            status,
            &json!({"Response": {"Error": {"Code": e.code, "Message": e.message}}}),
        )
    };
    let origin_ok = head.headers.contains_key("origin") && super::console::same_origin(&head);
    if !origin_ok {
        return deny(
            StatusCode::FORBIDDEN,
            ApiError::new(
                Code::UnauthorizedOperation,
                "cross-origin console requests are refused",
            ),
        );
    }
    let (session, principal) = match super::console::session(&api, &head).await {
        Ok((_, s, p)) => (s, p),
        Err(e) => return deny(StatusCode::FORBIDDEN, e),
    };
    let ask = match parse_query(head.uri.query().unwrap_or("")) {
        Ok(a) => a,
        Err(e) => return deny(StatusCode::BAD_REQUEST, e),
    };
    if let Some(given) = &ask.csrf {
        if !super::console::csrf_matches(given, &session) {
            return deny(
                StatusCode::FORBIDDEN,
                ApiError::new(Code::UnauthorizedOperation, "the Csrf token is wrong"),
            );
        }
    }
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let Some(accept) = key else {
        return deny(
            StatusCode::BAD_REQUEST,
            ApiError::new(Code::InvalidParameter, "websocket upgrade required"),
        );
    };
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(&mut req).await {
            let cfg = WebSocketConfig {
                max_message_size: Some(MAX_CLIENT_FRAME),
                max_frame_size: Some(MAX_CLIENT_FRAME),
                ..WebSocketConfig::default()
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, Some(cfg)).await;
            tokio::select! {
                _ = serve(&api, &head, principal, ask, peer, ws) => {}
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

fn error_frame(e: &ApiError) -> Message {
    Message::Text(json!({"type": "error", "code": e.code, "message": e.message}).to_string())
}

/// Decides and opens the session, recording the attempt in the audit trail.
async fn open(
    api: &Api,
    p: &Principal,
    ask: Ask,
    peer: SocketAddr,
) -> Result<session::SessionIo, ApiError> {
    let plan = SessionPlan {
        instance_id: ask.instance_id.clone(),
        login_user: ask.user.clone(),
        command: None,
        cols: ask.cols,
        rows: ask.rows,
        via: Via::Console,
        client: peer.to_string(),
        who: Who {
            user_id: p.user_id.clone(),
            name: p.name.clone(),
            uin: p.uin.clone(),
        },
        exec_without_pty: false,
        record_input: false,
        forward: None,
        // A browser has no ssh agent to forward.
        agent_forward: false,
    };
    api.open_session(p, plan, "console", peer).await
}

async fn serve<S>(
    api: &Api,
    head: &hyper::http::request::Parts,
    p: Principal,
    ask: Ask,
    peer: SocketAddr,
    ws: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let io = match open(api, &p, ask, peer).await {
        Ok(io) => io,
        Err(e) => {
            let _ = sink.send(error_frame(&e)).await;
            let _ = sink.close().await;
            return;
        }
    };
    let session::SessionIo { id, tx, mut rx, .. } = io;
    let opened = json!({"type": "opened", "sessionId": id}).to_string();
    if sink.send(Message::Text(opened)).await.is_err() {
        tx.close().await;
        return;
    }
    // Browser → session. Ends when the browser closes or goes away.
    let input = async {
        while let Some(Ok(m)) = stream.next().await {
            let ok = match m {
                Message::Binary(b) => tx.send(&b).await.is_ok(),
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if v["type"] == "resize" {
                        let dim = |k: &str| {
                            v[k].as_u64()
                                .and_then(|n| u16::try_from(n).ok())
                                .unwrap_or(0)
                        };
                        let (cols, rows) = (dim("cols"), dim("rows"));
                        cols == 0 || rows == 0 || tx.resize(cols, rows).await.is_ok()
                    } else {
                        true
                    }
                }
                Message::Close(_) => false,
                _ => true,
            };
            if !ok {
                break;
            }
        }
    };
    // Session → browser, until the session ends.
    let output = async {
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let frame = match ev {
                        Some(SessionEvent::Data(b)) => Message::Binary(b.to_vec()),
                        Some(SessionEvent::Exit { code, signal }) => Message::Text(
                            json!({"type": "exit", "code": code, "signal": signal}).to_string(),
                        ),
                        Some(SessionEvent::Closed { reason }) => error_frame(&ApiError::new(
                            Code::FailedOperationSessionClosed,
                            reason,
                        )),
                        None => break,
                    };
                    let last = !matches!(frame, Message::Binary(_));
                    if sink.send(frame).await.is_err() || last {
                        break;
                    }
                }
                _ = recheck.tick() => {
                    if super::console::session(api, head).await.is_err() {
                        api.sessions.terminate(&id, "the console session has ended");
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    tokio::select! {
        _ = input => {}
        _ = output => {}
    }
    // Either side ended: the session ends with it (a no-op once it has).
    tx.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_strictly() {
        let a = parse_query("InstanceId=mi-1&User=ann&Cols=120&Rows=40").unwrap_or_else(|e| {
            unreachable!("{e:?}");
        });
        assert_eq!(
            (a.instance_id.as_str(), a.user.as_str(), a.cols, a.rows),
            ("mi-1", "ann", 120, 40)
        );
        let d = parse_query("InstanceId=mi-1").unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!((d.user.as_str(), d.cols, d.rows), ("root", 80, 24));
        for bad in [
            "",
            "User=root",
            "InstanceId=mi-1&Cols=0",
            "InstanceId=mi-1&Rows=x",
            "InstanceId=mi-1&Evil=1",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }
}
