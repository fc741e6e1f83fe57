//! One session channel of an ssh connection, from its first request to its
//! close. Until the shell or exec request it only takes notes (the pty's
//! size); then it asks `bridge::open` for a session and relays:
//!
//! * client → session: data (the session's flow control pushes back on the
//!   channel, and through russh's bounded queue on the connection),
//!   window changes as resizes, EOF; a close or a lost connection closes
//!   the session, so no shell is left behind on the instance;
//! * session → client: output within the client's window, then the exit
//!   status (or signal), EOF and close.
//!
//! A refused session writes the reason to the client's stderr and closes
//! the channel with exit status 1; nothing ran.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelWriteHalf, Sig};

use super::bridge::{self, Person, Request};
use super::Ctx;
use crate::session::{Forward, SessionEvent as Event, SessionIo, SessionRx};

/// Input a client may send before its shell or command starts (OpenSSH
/// sends stdin as soon as the channel is open); more is a misuse.
const EARLY_INPUT_MAX: usize = 64 * 1024;
const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Exit status reported when no session was opened.
const REFUSED_STATUS: u32 = 1;

/// A terminal dimension as the session takes it: 1..=1000.
fn dim(v: u32, default: u16) -> u16 {
    if v == 0 {
        default
    } else {
        v.min(1000) as u16
    }
}

/// What the channel learned before it started.
struct Start {
    request: Request,
    early_input: BytesMut,
    early_eof: bool,
}

/// Reads requests until the shell or exec request: `None` if the channel
/// closed first, an error (for the client's stderr) if it misbehaved.
async fn until_start(channel: &mut russh::ChannelReadHalf) -> Option<Result<Start, String>> {
    let (mut cols, mut rows) = (DEFAULT_COLS, DEFAULT_ROWS);
    let mut early_input = BytesMut::new();
    let mut early_eof = false;
    let mut pty = false;
    let mut agent_forward = false;
    loop {
        let command = match channel.wait().await? {
            ChannelMsg::RequestPty {
                col_width,
                row_height,
                ..
            } => {
                cols = dim(col_width, DEFAULT_COLS);
                rows = dim(row_height, DEFAULT_ROWS);
                pty = true;
                continue;
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                cols = dim(col_width, cols);
                rows = dim(row_height, rows);
                continue;
            }
            ChannelMsg::Data { data } => {
                if early_input.len() + data.len() > EARLY_INPUT_MAX {
                    return Some(Err(format!(
                        "more than {EARLY_INPUT_MAX} bytes of input before a shell or command"
                    )));
                }
                early_input.extend_from_slice(&data);
                continue;
            }
            ChannelMsg::Eof => {
                early_eof = true;
                continue;
            }
            ChannelMsg::AgentForward { .. } => {
                agent_forward = true;
                continue;
            }
            ChannelMsg::Close => return None,
            ChannelMsg::RequestShell { .. } => None,
            ChannelMsg::Exec { command, .. } => match String::from_utf8(command) {
                Ok(c) => Some(c),
                Err(_) => return Some(Err("the command is not valid UTF-8".into())),
            },
            // Refused by the handler; nothing to note.
            _ => continue,
        };
        return Some(Ok(Start {
            request: Request {
                command,
                cols,
                rows,
                pty,
                forward: None,
                agent_forward,
            },
            early_input,
            early_eof,
        }));
    }
}

/// Runs one session channel to its end.
pub(super) async fn run(ctx: Arc<Ctx>, person: Person, channel: Channel<Msg>, handle: Handle) {
    let id = channel.id();
    let (mut read, write) = channel.split();
    let start = match until_start(&mut read).await {
        None => return,
        Some(Err(why)) => return refuse(&write, &why).await,
        Some(Ok(s)) => s,
    };
    let asked_agent = start.request.agent_forward;
    let mut io = match bridge::open(&ctx, &person, start.request).await {
        Ok(io) => io,
        Err(refusal) => return refuse(&write, &refusal.0).await,
    };
    tracing::debug!(session = %io.id, channel = ?id, "ssh session open");
    match (io.agent.take(), io.agent_missing.take()) {
        (Some(conns), _) => {
            tokio::spawn(agent_connections(conns, handle.clone()));
        }
        (None, Some(why)) => {
            let line = format!("drover: no agent forwarding: {why}\r\n");
            let _ = write.extended_data_bytes(1, Bytes::from(line)).await;
        }
        (None, None) if asked_agent => {
            let line = "drover: agent forwarding was not granted (it takes tat:ForwardAgent on this instance as this login user)\r\n";
            let _ = write.extended_data_bytes(1, Bytes::from(line)).await;
        }
        (None, None) => {}
    }
    relay(io, read, write, handle, start.early_input, start.early_eof).await;
}

/// Carries each connection a process of the session makes to its
/// forwarded agent socket to the client's agent, on an
/// `auth-agent@openssh.com` channel of its own; ends with the session.
async fn agent_connections(mut conns: tokio::sync::mpsc::Receiver<SessionIo>, handle: Handle) {
    while let Some(io) = conns.recv().await {
        let handle = handle.clone();
        tokio::spawn(async move {
            // A client with no agent refuses the open: dropping `io`
            // closes the connection on the instance.
            let Ok(channel) = handle.channel_open_agent().await else {
                return;
            };
            let (read, write) = channel.split();
            relay(io, read, write, handle, BytesMut::new(), false).await;
        });
    }
}

/// Runs a port forward channel (direct-tcpip: `ssh -L`, `ssh -W`): the
/// open is answered only once the session is decided and the agent has
/// connected, so a refusal is the client's "open failed" and nothing was
/// connected.
pub(super) async fn forward(
    ctx: Arc<Ctx>,
    person: Person,
    channel: Channel<Msg>,
    to: Forward,
    reply: ChannelOpenHandle,
    handle: Handle,
) {
    let req = Request {
        command: None,
        cols: DEFAULT_COLS,
        rows: DEFAULT_ROWS,
        pty: false,
        forward: Some(to),
        agent_forward: false,
    };
    let io = match bridge::open(&ctx, &person, req).await {
        Ok(io) => io,
        Err(refusal) => {
            tracing::info!(person = %person.principal.name, "port forward refused: {}", refusal.0);
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
    };
    reply.accept().await;
    let id = channel.id();
    let (read, write) = channel.split();
    tracing::debug!(session = %io.id, channel = ?id, "ssh port forward open");
    relay(io, read, write, handle, BytesMut::new(), false).await;
}

/// Moves bytes both ways between an open channel and its session until
/// either ends; the session ends with the channel.
async fn relay(
    io: SessionIo,
    mut read: russh::ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    handle: Handle,
    early_input: BytesMut,
    early_eof: bool,
) {
    let SessionIo { tx, rx, .. } = io;
    let id = write.id();
    let mut out = tokio::spawn(relay_output(rx, write, handle, id));
    let mut input_ok = true;
    if !early_input.is_empty() {
        input_ok = tx.send(&early_input).await.is_ok();
    }
    if early_eof {
        input_ok = tx.eof().await.is_ok();
    }
    if input_ok {
        loop {
            tokio::select! {
                _ = &mut out => break,
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if tx.send(&data).await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                        let _ = tx.resize(dim(col_width, DEFAULT_COLS), dim(row_height, DEFAULT_ROWS)).await;
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = tx.eof().await;
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
    }
    // However the channel ended, the session ends with it.
    tx.close().await;
    if !out.is_finished() {
        // The client went away: output has nowhere to go.
        out.abort();
    }
}

/// Relays the session's events to the client until the session ends.
async fn relay_output(
    mut rx: SessionRx,
    write: ChannelWriteHalf<Msg>,
    handle: Handle,
    id: ChannelId,
) {
    let mut exit = None;
    let mut closed = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            // Waits for the client's window: a client that stops reading
            // stops the session's output, not the server's memory.
            Event::Data(b) => {
                if write.data_bytes(b).await.is_err() {
                    return;
                }
            }
            // Both are final: the session is over.
            Event::Exit { code, signal } => {
                exit = Some((code, signal));
                break;
            }
            Event::Closed { reason } => {
                closed = Some(reason);
                break;
            }
        }
    }
    match (exit, closed) {
        (Some((_, Some(sig))), _) => {
            let _ = handle
                .exit_signal_request(id, signal_of(sig), false, String::new(), String::new())
                .await;
        }
        (Some((Some(code), None)), _) => {
            let _ = write.exit_status(code.clamp(0, 255) as u32).await;
        }
        (_, Some(reason)) => {
            let line = format!("\r\ndrover: session closed: {reason}\r\n");
            let _ = write.extended_data_bytes(1, Bytes::from(line)).await;
        }
        _ => {}
    }
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// Writes why nothing runs to the client's stderr and ends the channel.
async fn refuse(write: &ChannelWriteHalf<Msg>, why: &str) {
    let line = format!("drover: {why}\r\n");
    let _ = write.extended_data_bytes(1, Bytes::from(line)).await;
    let _ = write.exit_status(REFUSED_STATUS).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// The ssh name of a signal number (RFC 4254 names them without "SIG").
fn signal_of(n: i32) -> Sig {
    match n {
        1 => Sig::HUP,
        2 => Sig::INT,
        3 => Sig::QUIT,
        4 => Sig::ILL,
        6 => Sig::ABRT,
        8 => Sig::FPE,
        9 => Sig::KILL,
        10 => Sig::USR1,
        11 => Sig::SEGV,
        13 => Sig::PIPE,
        14 => Sig::ALRM,
        15 => Sig::TERM,
        other => Sig::Custom(format!("SIG{other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_bounded() {
        assert_eq!(dim(0, 80), 80);
        assert_eq!(dim(132, 80), 132);
        assert_eq!(dim(u32::MAX, 80), 1000);
    }
}
