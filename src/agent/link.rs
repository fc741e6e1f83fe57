//! The agent's one outbound connection: TCP, TLS (pinned or CA-verified),
//! WebSocket at `/agent/ws`, the Challenge → Register/Hello → Welcome
//! handshake, then a session that relays server commands to the task
//! registry and task messages to the server.
//!
//! Guarantees: nothing is sent before the server proved its certificate;
//! every wait has a bound (connect, handshake, and a silent server is
//! dropped after three heartbeat periods); each session ends on shutdown,
//! on any I/O error, or on a `Rejected`, which is reported as such so the
//! caller can stop retrying. Frames are JSON text, one message each, and
//! incoming messages are capped in size.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::session::{Out, Sessions};
use super::tasks::Tasks;
use crate::protocol::{AgentMsg, ServerMsg, AGENT_PATH, HEARTBEAT_SECS};

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest server message accepted; a RunTask carries at most a script.
const MAX_MESSAGE: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("bad server URL {0:?}: want https://HOST[:PORT]")]
    BadUrl(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("websocket: {0}")]
    Ws(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("the server closed the connection")]
    Closed,
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server refused this agent; retrying will not help.
    #[error("the server rejected this agent ({code}): {message}")]
    Rejected { code: String, message: String },
}

impl From<tokio_tungstenite::tungstenite::Error> for LinkError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        LinkError::Ws(Box::new(e))
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP literal, without brackets.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `https://HOST[:PORT][/...]`; IPv6 literals in brackets.
    pub fn parse(url: &str) -> Result<Endpoint, LinkError> {
        let bad = || LinkError::BadUrl(url.to_string());
        let rest = url.trim().strip_prefix("https://").ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => 443,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), 443),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Endpoint { host, port })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn ws_url(&self) -> String {
        format!("wss://{}{AGENT_PATH}", self.authority())
    }
}

/// Opens TCP, TLS and the WebSocket; returns the socket's local address too.
pub async fn connect(
    ep: &Endpoint,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(Ws, IpAddr), LinkError> {
    let addr = ep.authority();
    let tcp = timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((ep.host.as_str(), ep.port)),
    )
    .await
    .map_err(|_| LinkError::Timeout("connecting"))?
    .map_err(|source| LinkError::Connect {
        addr: addr.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let local_ip = tcp
        .local_addr()
        .map_err(|source| LinkError::Connect {
            addr: addr.clone(),
            source,
        })?
        .ip();
    // ServerName parses IP literals into IpAddress names itself.
    let name =
        ServerName::try_from(ep.host.clone()).map_err(|_| LinkError::BadUrl(ep.host.clone()))?;
    let tls = timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| LinkError::Timeout("in the TLS handshake"))?
    .map_err(|source| LinkError::Tls { addr, source })?;
    // Flush each message (they are batched already) and cap what the
    // server may make us buffer.
    let cfg = WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE),
        max_frame_size: Some(MAX_MESSAGE),
        write_buffer_size: 0,
        ..Default::default()
    };
    let (ws, _resp) = timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::client_async_with_config(ep.ws_url(), tls, Some(cfg)),
    )
    .await
    .map_err(|_| LinkError::Timeout("in the WebSocket upgrade"))??;
    Ok((ws, local_ip))
}

pub async fn send(ws: &mut Ws, msg: &AgentMsg) -> Result<(), LinkError> {
    let json = serde_json::to_string(msg).map_err(|e| LinkError::Protocol(e.to_string()))?;
    ws.send(Message::text(json)).await?;
    Ok(())
}

/// The next protocol message; control frames are handled by tungstenite
/// (pongs are sent for pings) and skipped here.
async fn recv(ws: &mut Ws) -> Result<ServerMsg, LinkError> {
    loop {
        match ws.next().await {
            None => return Err(LinkError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t)
                    .map_err(|e| LinkError::Protocol(format!("bad message: {e}")))
            }
            Some(Ok(Message::Close(_))) => return Err(LinkError::Closed),
            Some(Ok(Message::Binary(_))) => {
                return Err(LinkError::Protocol("unexpected binary frame".into()))
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// What the server's `Welcome` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub instance_id: String,
    /// Heartbeat period the server expects.
    pub heartbeat: Duration,
}

/// Runs the handshake: waits for the challenge, lets `answer` build the
/// Register/Hello for its nonce, and returns what Welcome said.
pub async fn handshake(
    ws: &mut Ws,
    answer: impl FnOnce(&str) -> AgentMsg,
) -> Result<Welcome, LinkError> {
    let run = async {
        let nonce = match recv(ws).await? {
            ServerMsg::Challenge { nonce } => nonce,
            ServerMsg::Rejected { code, message } => {
                return Err(LinkError::Rejected { code, message })
            }
            other => {
                return Err(LinkError::Protocol(format!(
                    "expected Challenge, got {other:?}"
                )))
            }
        };
        send(ws, &answer(&nonce)).await?;
        match recv(ws).await? {
            ServerMsg::Welcome {
                instance_id,
                heartbeat_secs,
            } => Ok(Welcome {
                instance_id,
                // Bounded both ways: a server cannot make us spin or go quiet.
                heartbeat: Duration::from_secs(
                    heartbeat_secs.unwrap_or(HEARTBEAT_SECS).clamp(1, 300),
                ),
            }),
            ServerMsg::Rejected { code, message } => Err(LinkError::Rejected { code, message }),
            other => Err(LinkError::Protocol(format!(
                "expected Welcome, got {other:?}"
            ))),
        }
    };
    timeout(HANDSHAKE_TIMEOUT, run)
        .await
        .map_err(|_| LinkError::Timeout("waiting for the server's handshake"))?
}

/// What one connection relays: tasks (journaled, outliving the
/// connection) and interactive sessions (ending with it).
pub struct Relays<'a> {
    pub tasks: &'a mut Tasks,
    pub outbox: &'a mut mpsc::Receiver<AgentMsg>,
    pub sessions: &'a mut Sessions,
    pub session_out: &'a mut mpsc::Receiver<Out>,
}

/// After Welcome: resends the journal, then relays until shutdown or error.
/// Returns Ok(()) only on shutdown.
pub async fn session(
    ws: &mut Ws,
    relays: Relays<'_>,
    shutdown: &CancellationToken,
    period: Duration,
) -> Result<(), LinkError> {
    let Relays {
        tasks,
        outbox,
        sessions,
        session_out,
    } = relays;
    // The server keeps only bytes beyond what it has, so a full resend is
    // safe and covers whatever was lost while disconnected.
    let mut replay = tasks.replay();
    while let Some(msg) = replay.next_msg() {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = send(ws, &msg) => r?,
        }
    }
    for msg in tasks.control_reports() {
        send(ws, &msg).await?;
    }
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            frame = ws.next() => {
                last_heard = Instant::now();
                let msg = match frame {
                    None | Some(Ok(Message::Close(_))) => return Err(LinkError::Closed),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Message::Text(t))) => serde_json::from_str::<ServerMsg>(&t)
                        .map_err(|e| LinkError::Protocol(format!("bad message: {e}")))?,
                    Some(Ok(Message::Binary(b))) => {
                        let (channel, data) = crate::protocol::decode_data(&b)
                            .ok_or_else(|| LinkError::Protocol("short data frame".into()))?;
                        sessions.data(channel, data);
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let Some(msg) = sessions.handle(msg) else {
                    continue;
                };
                for reply in tasks.handle(msg) {
                    send(ws, &reply).await?;
                }
            }
            Some(out) = session_out.recv() => match out {
                Out::Msg(m) => send(ws, &m).await?,
                Out::Data(channel, data) => {
                    ws.send(Message::Binary(crate::protocol::encode_data(channel, &data))).await?;
                }
            },
            Some(msg) = outbox.recv() => {
                tasks.note_sent(&msg);
                send(ws, &msg).await?;
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > period * crate::protocol::MISSED_HEARTBEATS {
                    return Err(LinkError::Timeout("waiting for the server (no traffic, no pongs)"));
                }
                send(ws, &AgentMsg::Heartbeat).await?;
                // A pong proves the server is alive even if it has nothing to say.
                ws.send(Message::Ping(Vec::new())).await?;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_urls() {
        let ep = Endpoint::parse("https://10.0.0.5:8443").unwrap();
        assert_eq!(
            ep,
            Endpoint {
                host: "10.0.0.5".into(),
                port: 8443
            }
        );
        assert_eq!(ep.ws_url(), "wss://10.0.0.5:8443/agent/ws");
        let ep = Endpoint::parse("https://drover.example.com/").unwrap();
        assert_eq!(ep.port, 443);
        let ep = Endpoint::parse("https://[::1]:9000/x").unwrap();
        assert_eq!(ep.host, "::1");
        assert_eq!(ep.ws_url(), "wss://[::1]:9000/agent/ws");
        for bad in [
            "http://h:1",
            "h:1",
            "https://",
            "https://h:x",
            "https://u@h:1",
            "https://[::1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn connect_fails_cleanly_when_nothing_listens() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let cfg = crate::tls::Trust::Pinned([0; 32]).client_config().unwrap();
        let ep = Endpoint {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(matches!(
            connect(&ep, Arc::new(cfg)).await,
            Err(LinkError::Connect { .. })
        ));
    }
}
