//! One session's relay task, between its client's halves (`SessionTx`,
//! `SessionRx`) and its channel on the agent's connection, and what a
//! forwarded agent's connections need (`agent_connect`).
//!
//! Flow control: the agent may send `SESSION_WINDOW` bytes of output
//! beyond what the relay has passed to the client; the relay passes data
//! on through a small bounded queue (`EVENT_QUEUE` frames) and grants the
//! agent credit for each frame the queue took, so a client that stops
//! reading stops the shell's output within one window plus that queue.
//! Input waits in `SessionTx::send` for the agent's credit (a semaphore
//! filled by the agent's `SessionCredit`), so a client cannot push more
//! than the agent's window either.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::record::Recorder;
use super::{Limits, SessionError};
use crate::dispatch::{Channel, Dispatcher, FromAgent};
use crate::protocol::{ServerMsg, SESSION_CHUNK, SESSION_WINDOW};

/// Events queued towards one client (each at most `SESSION_CHUNK` bytes).
const EVENT_QUEUE: usize = 16;
/// Client requests queued towards the relay.
const CTL_QUEUE: usize = 32;
/// Connections to a session's forwarded agent open at once (ssh-add and
/// ssh each hold one for a moment); more are refused.
pub(super) const MAX_AGENT_CONNS: usize = 8;
/// What a session's client receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Terminal output.
    Data(Bytes),
    /// The shell (or command) ended; every process it started was killed.
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The session ended otherwise (client, limit, administrator, agent or
    /// server gone); the reason is fit to show.
    Closed { reason: String },
}

enum Ctl {
    Input(Bytes),
    Resize(u16, u16),
    Eof,
    Close,
}

/// The client's sending half. Cloneable; every call fails with
/// `SessionError::Ended` once the session is over.
#[derive(Clone)]
pub struct SessionTx {
    ctl: mpsc::Sender<Ctl>,
    /// Input bytes the agent will still take (its window, topped up by
    /// its credits).
    credit: Arc<Semaphore>,
}

impl SessionTx {
    /// Sends input, waiting for the agent's credit as needed.
    pub async fn send(&self, bytes: &[u8]) -> Result<(), SessionError> {
        for chunk in bytes.chunks(SESSION_CHUNK) {
            let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            self.credit
                .acquire_many(n)
                .await
                .map_err(|_| SessionError::Ended)?
                .forget();
            self.ctl
                .send(Ctl::Input(Bytes::copy_from_slice(chunk)))
                .await
                .map_err(|_| SessionError::Ended)?;
        }
        Ok(())
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SessionError> {
        let (cols, rows) = (cols.clamp(1, 1000), rows.clamp(1, 1000));
        self.ctl
            .send(Ctl::Resize(cols, rows))
            .await
            .map_err(|_| SessionError::Ended)
    }

    /// The client's input ended (the terminal's EOF character is sent).
    pub async fn eof(&self) -> Result<(), SessionError> {
        self.ctl
            .send(Ctl::Eof)
            .await
            .map_err(|_| SessionError::Ended)
    }

    /// Ends the session (also what dropping every `SessionTx` does).
    pub async fn close(&self) {
        let _ = self.ctl.send(Ctl::Close).await;
    }
}

/// The client's receiving half.
pub struct SessionRx {
    rx: mpsc::Receiver<SessionEvent>,
}

impl SessionRx {
    /// The next event; None after `Exit` or `Closed`.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        self.rx.recv().await
    }
}

/// An open session.
pub struct SessionIo {
    pub id: String,
    pub tx: SessionTx,
    pub rx: SessionRx,
    /// With agent forwarding granted (and an agent that can): one
    /// `SessionIo` per connection a process of the session makes to its
    /// `SSH_AUTH_SOCK`, to be relayed to the client's agent (the caller
    /// opens an `auth-agent@openssh.com` channel for each; dropping one
    /// closes that connection). Ends with the session.
    pub agent: Option<mpsc::Receiver<SessionIo>>,
    /// Why agent forwarding, although allowed, is not there (the agent
    /// cannot do it).
    pub agent_missing: Option<String>,
}

/// Waits for the agent's answer to an open on `ch`: the input window it
/// grants, or why it did not open `what`.
pub(super) async fn opened(
    ch: &mut Channel,
    timeout: Duration,
    what: &str,
) -> Result<u32, SessionError> {
    match tokio::time::timeout(timeout, ch.from_agent.recv()).await {
        Ok(Some(FromAgent::Opened { window, .. })) => Ok(window),
        Ok(Some(FromAgent::Failed { reason })) | Ok(Some(FromAgent::Exit { reason, .. })) => {
            ch.ended = true;
            Err(SessionError::StartFailed(reason))
        }
        Ok(Some(_)) => Err(SessionError::StartFailed(
            "the agent answered out of order".into(),
        )),
        Ok(None) => Err(SessionError::Offline),
        Err(_) => Err(SessionError::StartFailed(format!(
            "the agent did not start {what} in time"
        ))),
    }
}

/// What a session with a forwarded agent needs to carry the connections
/// its processes make to their `SSH_AUTH_SOCK`.
pub(super) struct AgentSide {
    /// Towards the client: one `SessionIo` per connection.
    pub conns: mpsc::Sender<SessionIo>,
    pub dispatch: Arc<Dispatcher>,
    /// Connections open at once, at most `MAX_AGENT_CONNS`.
    pub open: Arc<Semaphore>,
    /// Ends every connection when the session ends.
    pub stop: CancellationToken,
}

pub(super) struct Relay {
    pub ch: Channel,
    pub stop: CancellationToken,
    pub reason: Arc<Mutex<Option<String>>>,
    pub limits: Limits,
    /// Taken by `finish` when the session ends.
    pub recorder: Option<Recorder>,
    /// A port forward or an agent connection: its bytes are counted (if
    /// recorded at all), not kept.
    pub forward: bool,
    /// Set when the session's agent is forwarded.
    pub agent: Option<AgentSide>,
    /// What is given back when the relay ends: the session's place in
    /// the hub's registry, or an agent connection's place among its
    /// session's (agent connections count as part of their session).
    pub _place: Box<dyn Send + Sync>,
}

/// The relay's ends of the client's halves.
struct Ends {
    ctl: mpsc::Receiver<Ctl>,
    events: mpsc::Sender<SessionEvent>,
    credit: Arc<Semaphore>,
}

/// How the relay loop ended.
enum End {
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    Closed(String),
}

impl Relay {
    /// Starts relaying with the agent's input `window`; returns the
    /// client's halves.
    pub(super) fn start(self, window: u32) -> (SessionTx, SessionRx) {
        let credit = Arc::new(Semaphore::new(
            usize::try_from(window.min(SESSION_WINDOW)).unwrap_or(0),
        ));
        let (ctl_tx, ctl_rx) = mpsc::channel(CTL_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let ends = Ends {
            ctl: ctl_rx,
            events: ev_tx,
            credit: credit.clone(),
        };
        tokio::spawn(self.run(ends));
        (
            SessionTx {
                ctl: ctl_tx,
                credit,
            },
            SessionRx { rx: ev_rx },
        )
    }

    async fn run(mut self, mut ends: Ends) {
        let end = self.relay(&mut ends).await;
        if let Some(agent) = &self.agent {
            agent.stop.cancel();
        }
        // No more input: a blocked `send` returns Ended.
        ends.credit.close();
        let (event, what) = match end {
            End::Exit { code, signal } => (SessionEvent::Exit { code, signal }, "exited"),
            End::Closed(reason) => (SessionEvent::Closed { reason }, "closed"),
        };
        if let Some(rec) = self.recorder.take() {
            let (code, reason) = match &event {
                SessionEvent::Exit { code, signal } => (
                    *code,
                    signal
                        .map_or_else(|| "exited".to_string(), |s| format!("killed by signal {s}")),
                ),
                SessionEvent::Closed { reason } => (None, reason.clone()),
                SessionEvent::Data(_) => (None, String::new()),
            };
            // Written in the background; nothing waits for the disk.
            drop(rec.finish(code, &reason));
        }
        tracing::info!(channel = self.ch.id, instance = %self.ch.instance_id(), "session {what}: {event:?}");
        // The client may be gone or not reading: a bounded wait.
        let _ = tokio::time::timeout(Duration::from_secs(5), ends.events.send(event)).await;
        // Dropping the channel tells the agent to close, unless it ended
        // the session itself.
    }

    fn terminated(&self) -> String {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "the server is shutting down".into())
    }

    async fn relay(&mut self, ends: &mut Ends) -> End {
        let started = Instant::now();
        let max = tokio::time::sleep(self.limits.max_duration);
        let idle = tokio::time::sleep(self.limits.idle_timeout);
        tokio::pin!(max, idle);
        // Output bytes the agent may still send us, and those passed on
        // but not yet granted back (granted in batches of a quarter
        // window, so a stream costs one credit message per 256 KiB).
        let mut outstanding = u64::from(SESSION_WINDOW);
        let mut ungranted: u64 = 0;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return End::Closed(self.terminated()),
                _ = &mut max => return End::Closed(format!(
                    "the session reached its maximum length ({} s)",
                    started.elapsed().as_secs())),
                _ = &mut idle => return End::Closed(format!(
                    "the session was idle for {} s", self.limits.idle_timeout.as_secs())),
                c = ends.ctl.recv() => match c {
                    Some(Ctl::Input(b)) => {
                        idle.as_mut().reset(Instant::now() + self.limits.idle_timeout);
                        match &self.recorder {
                            Some(rec) if self.forward => rec.count(0, b.len()),
                            Some(rec) => rec.input(&b),
                            None => {}
                        }
                        if self.ch.data(&b).await.is_err() {
                            return End::Closed("the instance's agent disconnected".into());
                        }
                    }
                    Some(Ctl::Resize(cols, rows)) => {
                        if let Some(rec) = &self.recorder {
                            rec.resize(cols, rows);
                        }
                        let m = ServerMsg::SessionResize { channel: self.ch.id, cols, rows };
                        let _ = self.ch.control(&m).await;
                    }
                    Some(Ctl::Eof) => {
                        let _ = self.ch.control(&ServerMsg::SessionEof { channel: self.ch.id }).await;
                    }
                    Some(Ctl::Close) | None => return End::Closed("closed by the client".into()),
                },
                m = self.ch.from_agent.recv() => match m {
                    Some(FromAgent::Data(d)) => {
                        idle.as_mut().reset(Instant::now() + self.limits.idle_timeout);
                        let n = d.len() as u64;
                        if n > outstanding {
                            return End::Closed("the agent sent more than its window".into());
                        }
                        outstanding -= n;
                        match &self.recorder {
                            Some(rec) if self.forward => rec.count(d.len(), 0),
                            Some(rec) => rec.output(&d),
                            None => {}
                        }
                        let sent = tokio::select! {
                            r = ends.events.send(SessionEvent::Data(Bytes::from(d))) => r.is_ok(),
                            _ = self.stop.cancelled() => return End::Closed(self.terminated()),
                        };
                        if !sent {
                            return End::Closed("the client went away".into());
                        }
                        ungranted += n;
                        if ungranted >= u64::from(SESSION_WINDOW / 4) {
                            let bytes = u32::try_from(ungranted).unwrap_or(u32::MAX);
                            outstanding += ungranted;
                            ungranted = 0;
                            let _ = self.ch.control(&ServerMsg::SessionCredit { channel: self.ch.id, bytes }).await;
                        }
                    }
                    Some(FromAgent::Credit(n)) => {
                        let room = Semaphore::MAX_PERMITS - ends.credit.available_permits();
                        ends.credit.add_permits((n as usize).min(room));
                    }
                    Some(FromAgent::AuthAgentConnect { request }) => self.agent_connect(request).await,
                    Some(FromAgent::Exit { code, signal, reason }) => {
                        self.ch.ended = true;
                        return if reason.is_empty() {
                            End::Exit { code, signal }
                        } else {
                            End::Closed(reason)
                        };
                    }
                    Some(FromAgent::Failed { reason }) => {
                        self.ch.ended = true;
                        return End::Closed(reason);
                    }
                    Some(FromAgent::Opened { .. }) => {}
                    None => return End::Closed("the instance's agent disconnected".into()),
                },
            }
        }
    }
}

impl Relay {
    /// A process of the session connected to its forwarded-agent socket:
    /// carry the connection on a channel of its own, handed to the client
    /// once the agent has taken it, or refuse it (no forwarding granted,
    /// or too many at once).
    async fn agent_connect(&self, request: u32) {
        let session = self.ch.id;
        // Granted, within the limit, and a channel to carry it.
        let place = self.agent.as_ref().and_then(|agent| {
            let permit = agent.open.clone().try_acquire_owned().ok()?;
            let sub = agent
                .dispatch
                .open_channel(self.ch.instance_id(), false)
                .ok()?;
            Some((agent, permit, sub))
        });
        let Some((agent, permit, mut sub)) = place else {
            let refuse = ServerMsg::AuthAgentChannel {
                channel: session,
                request,
                data_channel: None,
                window: 0,
            };
            let _ = self.ch.control(&refuse).await;
            return;
        };
        let take = ServerMsg::AuthAgentChannel {
            channel: session,
            request,
            data_channel: Some(sub.id),
            window: SESSION_WINDOW,
        };
        if self.ch.control(&take).await.is_err() {
            return;
        }
        let conns = agent.conns.clone();
        let stop = agent.stop.clone();
        let limits = self.limits.clone();
        tokio::spawn(async move {
            let Ok(window) = opened(&mut sub, limits.open_timeout, "the agent connection").await
            else {
                return;
            };
            let relay = Relay {
                ch: sub,
                stop,
                reason: Arc::default(),
                limits,
                recorder: None,
                forward: true,
                agent: None,
                _place: Box::new(permit),
            };
            let (tx, rx) = relay.start(window);
            let io = SessionIo {
                id: String::new(),
                tx,
                rx,
                agent: None,
                agent_missing: None,
            };
            // A client that is gone (or not taking connections) drops it,
            // which closes the connection on the instance.
            let _ = conns.send(io).await;
        });
    }
}
