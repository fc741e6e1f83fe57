//! Interactive sessions on the agent: one relay task per session between
//! the server's link and a pseudo-terminal (`session_spawn`).
//!
//! Sessions live as long as the connection that opened them: `Sessions`
//! belongs to one link session, and when it is dropped (the link went
//! away, or the agent shuts down) every session is closed and every
//! process it started killed. Nothing is journaled: a session cannot be
//! resumed over a new connection.
//!
//! Flow control, both ways, in bytes (like SSH channel windows):
//! * output: the relay reads the terminal only while it holds credit (the
//!   server's `SessionOpen.window`, topped up by `SessionCredit` as the
//!   client takes data), so a `cat` of a huge file waits in the kernel's
//!   terminal buffer and then in `cat` itself, not in our memory;
//! * input: the server sends at most `SESSION_WINDOW` bytes beyond what
//!   the relay has written to the terminal (it answers each write with a
//!   `SessionCredit`); more is a protocol violation that ends the session.
//!
//! Output frames and control messages share one bounded queue (`Out`), so
//! a session's `SessionExit` always follows its last data.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cgroup::Cgroups;
use super::session_marks::{Marks, SESSION_ENV};
use super::session_spawn::{self, OpenSpec, Spawned};
use super::{procinfo, ptysys, sys};
use crate::protocol::{AgentMsg, ServerMsg, SESSION_CHUNK, SESSION_WINDOW};

/// Most sessions one agent runs at once.
const MAX_SESSIONS: usize = 64;
/// Frames queued towards the link, all sessions together.
const OUT_QUEUE: usize = 64;
/// Connections to a session's forwarded agent waiting for the server's
/// answer; more wait in the socket's backlog.
const AGENT_PENDING: usize = 8;
/// How long output may still drain after the shell exited before the
/// session ends anyway (a process that escaped the session may hold the
/// terminal open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

use super::auth_socket::AuthSocket;
pub use super::relay::Out;
use super::relay::{AgentConn, Cmd};

/// The sessions of one connection.
pub struct Sessions {
    live: HashMap<u32, mpsc::UnboundedSender<Cmd>>,
    out: mpsc::Sender<Out>,
    cgroups: Option<Cgroups>,
    /// Where live sessions are noted for the clean-up after a crash.
    marks: Marks,
    /// Cancelled when the connection ends (this value is dropped).
    stop: CancellationToken,
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sessions {
    pub fn new(
        cgroups: Option<Cgroups>,
        marks: Marks,
        shutdown: &CancellationToken,
    ) -> (Sessions, mpsc::Receiver<Out>) {
        let (out, rx) = mpsc::channel(OUT_QUEUE);
        (
            Sessions {
                live: HashMap::new(),
                out,
                cgroups,
                marks,
                stop: shutdown.child_token(),
            },
            rx,
        )
    }

    /// Takes a session message; hands any other message back.
    pub fn handle(&mut self, msg: ServerMsg) -> Option<ServerMsg> {
        self.live.retain(|_, tx| !tx.is_closed());
        let (channel, cmd) = match msg {
            ServerMsg::SessionOpen {
                channel,
                user,
                command,
                cols,
                rows,
                window,
                term,
                pipes,
                agent_forward,
            } => {
                let spec = OpenSpec {
                    user: &user,
                    command: command.as_deref(),
                    cols,
                    rows,
                    term: &term,
                    pipes,
                    agent_forward,
                };
                self.open(channel, &spec, window);
                return None;
            }
            ServerMsg::ForwardOpen {
                channel,
                host,
                port,
                window,
            } => {
                let target = super::forward::Target {
                    channel,
                    host,
                    port,
                    window,
                };
                self.open_forward(target);
                return None;
            }
            ServerMsg::AuthAgentChannel {
                channel,
                request,
                data_channel,
                window,
            } => {
                self.agent_channel(channel, request, data_channel, window);
                return None;
            }
            ServerMsg::SessionResize {
                channel,
                cols,
                rows,
            } => (channel, Cmd::Resize(cols, rows)),
            ServerMsg::SessionCredit { channel, bytes } => (channel, Cmd::Credit(bytes)),
            ServerMsg::SessionEof { channel } => (channel, Cmd::Eof),
            ServerMsg::SessionClose { channel, reason } => (channel, Cmd::Close(reason)),
            other => return Some(other),
        };
        if let Some(tx) = self.live.get(&channel) {
            let _ = tx.send(cmd);
        }
        None
    }

    /// Input bytes for a channel (a binary frame from the server).
    pub fn data(&mut self, channel: u32, bytes: &[u8]) {
        if let Some(tx) = self.live.get(&channel) {
            let _ = tx.send(Cmd::Input(bytes.to_vec()));
        }
    }

    /// Whether a new session may take `channel`; if not, the server is
    /// told why.
    fn may_open(&self, channel: u32) -> bool {
        let reason = if self.live.contains_key(&channel) {
            format!("channel {channel} is in use")
        } else if self.live.len() >= MAX_SESSIONS {
            format!("this agent already runs {MAX_SESSIONS} sessions")
        } else {
            return true;
        };
        refuse(&self.out, channel, reason);
        false
    }

    /// Hands the server's answer about a connection to session
    /// `channel`'s forwarded agent to that session, with the channel
    /// that carries it (registered here, like a forward's).
    fn agent_channel(&mut self, channel: u32, request: u32, data: Option<u32>, window: u32) {
        let Some(session) = self.live.get(&channel).cloned() else {
            if let Some(dc) = data {
                refuse(&self.out, dc, "the session has ended".into());
            }
            return;
        };
        let conn = match data {
            Some(dc) if self.may_open(dc) => {
                let (tx, cmds) = mpsc::unbounded_channel();
                self.live.insert(dc, tx);
                Some(AgentConn {
                    channel: dc,
                    window,
                    cmds,
                })
            }
            _ => None,
        };
        // Only a channel registered here is undone (a refused one may be
        // another session's).
        let registered = conn.as_ref().map(|c| c.channel);
        if session.send(Cmd::AuthAgent { request, conn }).is_err() {
            if let Some(dc) = registered {
                self.live.remove(&dc);
                refuse(&self.out, dc, "the session has ended".into());
            }
        }
    }

    fn open_forward(&mut self, target: super::forward::Target) {
        if !self.may_open(target.channel) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.live.insert(target.channel, tx);
        tokio::spawn(super::forward::run(
            target,
            self.out.clone(),
            rx,
            self.stop.clone(),
        ));
    }

    fn open(&mut self, channel: u32, spec: &OpenSpec<'_>, window: u32) {
        if !self.may_open(channel) {
            return;
        }
        match session_spawn::spawn(spec, self.cgroups.as_ref()) {
            Ok(sp) => {
                self.marks.record(&sp.id, sp.pid);
                let (tx, rx) = mpsc::unbounded_channel();
                self.live.insert(channel, tx);
                let relay = Relay {
                    channel,
                    out: self.out.clone(),
                    credit: u64::from(window),
                    marks: self.marks.clone(),
                };
                tokio::spawn(relay.run(sp, rx, self.stop.clone()));
            }
            Err(reason) => {
                tracing::info!(channel, "session not started: {reason}");
                refuse(&self.out, channel, reason);
            }
        }
    }
}

/// Tells the server a session did not open.
fn refuse(out: &mpsc::Sender<Out>, channel: u32, reason: String) {
    let out = out.clone();
    tokio::spawn(async move {
        let _ = out
            .send(Out::Msg(Box::new(AgentMsg::SessionFailed {
                channel,
                reason,
            })))
            .await;
    });
}

struct Relay {
    channel: u32,
    out: mpsc::Sender<Out>,
    /// Output bytes we may still send.
    credit: u64,
    marks: Marks,
}

/// Why the loop ended early (None: the shell exited and output drained).
type Ended = Option<String>;

impl Relay {
    async fn run(
        mut self,
        mut sp: Spawned,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        stop: CancellationToken,
    ) {
        let opened = AgentMsg::SessionOpened {
            channel: self.channel,
            pid: u32::try_from(sp.pid).unwrap_or(0),
            window: SESSION_WINDOW,
        };
        let ended = if self.out.send(Out::Msg(Box::new(opened))).await.is_err() {
            Some("the connection ended".to_string())
        } else {
            self.relay(&mut sp, &mut cmds, &stop).await
        };
        kill_all(&sp);
        let status = match sp.child.try_wait() {
            Ok(Some(st)) => Some(st),
            _ => tokio::time::timeout(DRAIN_AFTER_EXIT, sp.child.wait())
                .await
                .ok()
                .and_then(Result::ok),
        };
        if let Some(cg) = &sp.cgroup {
            // Emptied by the kill; a moment may pass before the kernel
            // lets the directory go.
            for _ in 0..20 {
                if cg.remove() || !cg.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.marks.forget(&sp.id);
        let exit = AgentMsg::SessionExit {
            channel: self.channel,
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            reason: ended.unwrap_or_default(),
        };
        let _ = self.out.send(Out::Msg(Box::new(exit))).await;
    }

    async fn relay(
        &mut self,
        sp: &mut Spawned,
        cmds: &mut mpsc::UnboundedReceiver<Cmd>,
        stop: &CancellationToken,
    ) -> Ended {
        let mut pending: Vec<u8> = Vec::new();
        // Connections to the forwarded agent awaiting the server's answer,
        // and what carries them once answered (ended with the session).
        let mut agent_waiting = HashMap::new();
        let mut next_request: u32 = 0;
        let agent_stop = stop.child_token();
        let _agent_stop = agent_stop.clone().drop_guard();
        // Pipes: close stdin once what was sent before EOF is written.
        let mut eof_pending = false;
        let mut output_done = false;
        let mut exited = false;
        let drain_deadline = tokio::time::sleep(Duration::from_secs(u64::MAX >> 2));
        tokio::pin!(drain_deadline);
        loop {
            if exited && output_done {
                return None;
            }
            if eof_pending && pending.is_empty() {
                sp.writer = None;
                eof_pending = false;
            }
            tokio::select! {
                _ = stop.cancelled() => return Some("the agent's connection ended".into()),
                cmd = cmds.recv() => match cmd {
                    None => return Some("the agent's connection ended".into()),
                    Some(Cmd::Input(d)) => {
                        // The server keeps to our window; slack for the
                        // EOF characters we add ourselves.
                        if pending.len() + d.len() > SESSION_WINDOW as usize + 64 {
                            return Some("input beyond the session's window".into());
                        }
                        // After EOF on pipes, stdin is closed: dropped.
                        if sp.writer.is_some() && !eof_pending {
                            pending.extend_from_slice(&d);
                        }
                    }
                    Some(Cmd::Resize(cols, rows)) => {
                        if sp.pty {
                            let _ = ptysys::set_winsize(
                                sp.reader.get_ref().as_fd(), cols.max(1), rows.max(1));
                        }
                    }
                    Some(Cmd::Credit(n)) => self.credit += u64::from(n),
                    Some(Cmd::Eof) if sp.pty => pending.push(sp.veof),
                    Some(Cmd::Eof) => eof_pending = true,
                    Some(Cmd::Close(reason)) => return Some(reason),
                    Some(Cmd::AuthAgent { request, conn }) => {
                        let stream = agent_waiting.remove(&request);
                        match (stream, conn) {
                            (Some(stream), Some(c)) => {
                                tokio::spawn(super::forward::pipe(
                                    stream, c.channel, c.window, self.out.clone(), c.cmds, agent_stop.clone()));
                            }
                            (None, Some(c)) => refuse(&self.out, c.channel, "no such agent connection".into()),
                            // Refused: dropping the connection closes it.
                            (_, None) => {}
                        }
                    }
                },
                conn = accept_agent(sp.auth_socket.as_ref()), if agent_waiting.len() < AGENT_PENDING => {
                    if let Ok(stream) = conn {
                        let request = next_request;
                        next_request = next_request.wrapping_add(1);
                        agent_waiting.insert(request, stream);
                        let ask = AgentMsg::AuthAgentConnect { channel: self.channel, request };
                        if self.out.send(Out::Msg(Box::new(ask))).await.is_err() {
                            return Some("the agent's connection ended".into());
                        }
                    }
                }
                r = sp.reader.readable(), if self.credit > 0 && !output_done => {
                    if r.is_err() {
                        output_done = true;
                        continue;
                    }
                    let want = usize::try_from(self.credit).unwrap_or(SESSION_CHUNK).min(SESSION_CHUNK);
                    let (buf, done) = read_burst(&sp.reader, want).await;
                    output_done |= done;
                    if !buf.is_empty() {
                        self.credit -= buf.len() as u64;
                        if self.out.send(Out::Data(self.channel, buf)).await.is_err() {
                            return Some("the agent's connection ended".into());
                        }
                    }
                }
                r = writable(&sp.writer), if !pending.is_empty() && !output_done && sp.writer.is_some() => {
                    let Some(mut guard) = r else {
                        pending.clear();
                        continue;
                    };
                    match guard.try_io(|f| f.get_ref().write(&pending)) {
                        Ok(Ok(k)) => {
                            pending.drain(..k);
                            let credit = AgentMsg::SessionCredit {
                                channel: self.channel,
                                bytes: u32::try_from(k).unwrap_or(u32::MAX),
                            };
                            if self.out.send(Out::Msg(Box::new(credit))).await.is_err() {
                                return Some("the agent's connection ended".into());
                            }
                        }
                        Ok(Err(_)) => pending.clear(),
                        Err(_would_block) => {}
                    }
                }
                st = sp.child.wait(), if !exited => {
                    exited = true;
                    let _ = st;
                    // What the shell left behind goes with it; their
                    // output already in the terminal still drains.
                    kill_all(sp);
                    drain_deadline.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                }
                _ = &mut drain_deadline, if exited => return None,
            }
        }
    }
}

/// The next connection to the session's forwarded agent (never, without
/// one).
async fn accept_agent(socket: Option<&AuthSocket>) -> std::io::Result<tokio::net::UnixStream> {
    match socket {
        Some(s) => s.accept().await,
        None => std::future::pending().await,
    }
}

/// The input side, once it can take bytes (None: closed, or failed).
async fn writable(
    w: &Option<tokio::io::unix::AsyncFd<std::fs::File>>,
) -> Option<tokio::io::unix::AsyncFdReadyGuard<'_, std::fs::File>> {
    w.as_ref()?.writable().await.ok()
}

/// Output at least this large in one go means a program is streaming
/// (the terminal hands over about 4 KiB per read): wait a moment for more
/// and send it as one frame.
const STREAMING: usize = 2048;
/// How long a streaming burst waits for more output.
const COALESCE: Duration = Duration::from_micros(500);

/// Reads what the terminal has, up to `want` bytes; true when the terminal
/// hung up (every slave descriptor closed: EIO). Interactive output (an
/// echo, a prompt) goes at once; a stream is gathered into frames of up
/// to `want` bytes, so a `cat` costs a frame per 64 KiB, not per 4 KiB.
async fn read_burst(
    master: &tokio::io::unix::AsyncFd<std::fs::File>,
    want: usize,
) -> (Vec<u8>, bool) {
    let mut buf = vec![0u8; want];
    let mut n = 0;
    loop {
        let ready = if n == 0 {
            master.readable().await.ok()
        } else {
            tokio::time::timeout(COALESCE, master.readable())
                .await
                .ok()
                .and_then(Result::ok)
        };
        let Some(mut guard) = ready else {
            break;
        };
        while n < want {
            match guard.try_io(|f| f.get_ref().read(&mut buf[n..])) {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    buf.truncate(n);
                    return (buf, true);
                }
                Ok(Ok(k)) => n += k,
                Err(_would_block) => break,
            }
        }
        if n >= want || n < STREAMING {
            break;
        }
    }
    buf.truncate(n);
    (buf, false)
}

/// Kills every process of the session: through its cgroup where it has
/// one, and by session id (the shell's jobs each have their own process
/// group, but all share its session) in any case; without a cgroup also
/// by the environment mark, which `setsid` daemons keep.
fn kill_all(sp: &Spawned) {
    if let Some(cg) = &sp.cgroup {
        cg.kill();
    }
    let _ = sys::signal_group(sp.pid, libc::SIGKILL);
    let mut pids = procinfo::live_session_members(sp.pid);
    if sp.cgroup.is_none() {
        pids.extend(procinfo::marked(SESSION_ENV, &sp.id));
    }
    for pid in pids {
        let _ = sys::signal_pid(pid, libc::SIGKILL);
    }
}
