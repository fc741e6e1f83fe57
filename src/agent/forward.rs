//! Port forwards on the agent: a session channel whose far end is a TCP
//! connection the agent makes from the instance (`ForwardOpen`, decided on
//! the server as `tat:ForwardPort` for that host and port) instead of a
//! shell. It is what `ssh -L` and `ssh -W` through the gateway reach, with
//! no port open on the instance.
//!
//! The bytes move like a terminal's, with the same credit both ways: the
//! relay reads the connection only while it holds output credit, and input
//! goes to a writer task that grants credit back as it writes, so a peer
//! that does not read cannot make the agent buffer more than one window,
//! and reading never waits on writing (an echo server cannot deadlock it).
//! The session ends when the peer closes the connection (after the client's
//! EOF, if any, was passed on as a half-close), on an error, or when the
//! server closes the channel. `pipe` also carries the connections to a
//! session's forwarded ssh agent (`auth_socket`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::relay::{Cmd, Out};
use crate::protocol::{AgentMsg, SESSION_CHUNK, SESSION_WINDOW};

/// How long the connection to the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect and what the server granted.
pub(super) struct Target {
    pub channel: u32,
    pub host: String,
    pub port: u16,
    /// Output bytes we may send before more credit.
    pub window: u32,
}

/// Runs one forward to its end; always ends with `SessionFailed` or
/// `SessionExit`.
pub(super) async fn run(
    t: Target,
    out: mpsc::Sender<Out>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    stop: CancellationToken,
) {
    let channel = t.channel;
    let connect = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((t.host.as_str(), t.port)),
    );
    let stream = tokio::select! {
        _ = stop.cancelled() => return,
        r = connect => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(&out, channel, format!("connecting to {} port {}: {e}", t.host, t.port)).await,
            Err(_) => return failed(&out, channel, format!("connecting to {} port {}: timed out", t.host, t.port)).await,
        },
    };
    let _ = stream.set_nodelay(true);
    pipe(stream, channel, t.window, out, cmds, stop).await;
}

/// Relays an open connection on `channel` (with `window` bytes of output
/// credit) until either side ends it: answers `SessionOpened` first and
/// `SessionExit` last.
pub(super) async fn pipe<S>(
    stream: S,
    channel: u32,
    window: u32,
    out: mpsc::Sender<Out>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let opened = AgentMsg::SessionOpened {
        channel,
        pid: 0,
        window: SESSION_WINDOW,
    };
    if out.send(Out::Msg(Box::new(opened))).await.is_err() {
        return;
    }
    let (mut rd, wr) = tokio::io::split(stream);
    let inflight = Arc::new(AtomicU64::new(0));
    let (to_writer, writer_rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_side(
        channel,
        wr,
        writer_rx,
        out.clone(),
        inflight.clone(),
    ));
    let mut credit = u64::from(window);
    let mut buf = vec![0u8; SESSION_CHUNK];
    let reason = loop {
        tokio::select! {
            _ = stop.cancelled() => break "the agent's connection ended".to_string(),
            cmd = cmds.recv() => match cmd {
                None => break "the agent's connection ended".to_string(),
                Some(Cmd::Input(d)) => {
                    let held = inflight.fetch_add(d.len() as u64, Ordering::AcqRel) + d.len() as u64;
                    if held > u64::from(SESSION_WINDOW) {
                        break "input beyond the session's window".to_string();
                    }
                    if to_writer.send(Some(d)).is_err() {
                        break "the forwarded connection was reset".to_string();
                    }
                }
                Some(Cmd::Eof) => {
                    let _ = to_writer.send(None);
                }
                Some(Cmd::Credit(n)) => credit += u64::from(n),
                Some(Cmd::Resize(..)) | Some(Cmd::AuthAgent { .. }) => {}
                Some(Cmd::Close(reason)) => break reason,
            },
            r = rd.read(&mut buf[..usize::try_from(credit).unwrap_or(SESSION_CHUNK).min(SESSION_CHUNK)]), if credit > 0 => match r {
                // The peer closed: the forward is over.
                Ok(0) => break String::new(),
                Ok(n) => {
                    credit -= n as u64;
                    if out.send(Out::Data(channel, buf[..n].to_vec())).await.is_err() {
                        break "the agent's connection ended".to_string();
                    }
                }
                Err(e) => break format!("the forwarded connection failed: {e}"),
            },
            w = &mut writer => match w {
                Ok(Ok(())) => {
                    // Half-closed after the client's EOF; keep reading.
                    writer = tokio::spawn(std::future::pending::<std::io::Result<()>>());
                }
                _ => break "the forwarded connection was reset".to_string(),
            },
        }
    };
    writer.abort();
    let exit = AgentMsg::SessionExit {
        channel,
        code: None,
        signal: None,
        reason,
    };
    let _ = out.send(Out::Msg(Box::new(exit))).await;
}

/// Writes the client's bytes in order, granting credit for each write;
/// `None` half-closes the connection.
async fn write_side<S: AsyncWrite>(
    channel: u32,
    mut wr: WriteHalf<S>,
    mut rx: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    out: mpsc::Sender<Out>,
    inflight: Arc<AtomicU64>,
) -> std::io::Result<()> {
    while let Some(item) = rx.recv().await {
        let Some(d) = item else {
            return wr.shutdown().await;
        };
        wr.write_all(&d).await?;
        inflight.fetch_sub(d.len() as u64, Ordering::AcqRel);
        let credit = AgentMsg::SessionCredit {
            channel,
            bytes: u32::try_from(d.len()).unwrap_or(u32::MAX),
        };
        if out.send(Out::Msg(Box::new(credit))).await.is_err() {
            break;
        }
    }
    // The relay went away: nothing more to write.
    std::future::pending().await
}

async fn failed(out: &mpsc::Sender<Out>, channel: u32, reason: String) {
    tracing::info!(channel, "port forward not opened: {reason}");
    let _ = out
        .send(Out::Msg(Box::new(AgentMsg::SessionFailed {
            channel,
            reason,
        })))
        .await;
}
