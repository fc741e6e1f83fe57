//! The session hub: opens sessions on agents' connections, holds the
//! registry of live sessions (for the limits and for `terminate`), and
//! starts one relay task per session (`relay`) between its client and its
//! channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::record::{self, Recorder};
use super::relay::{opened, AgentSide, Relay, SessionIo, MAX_AGENT_CONNS};
use super::{Limits, SessionError, SessionPlan, Via};
use crate::dispatch::{ChannelError, Dispatcher};
use crate::gate::Authorized;
use crate::protocol::{ServerMsg, SESSION_WINDOW};
use crate::store::Store;
use crate::timefmt::now_ms;

/// TERM the session's shell gets: what xterm.js and OpenSSH's clients
/// understand.
const TERM: &str = "xterm-256color";

/// A live session, as the registry knows it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: String,
    pub instance_id: String,
    /// "root" or a sub-user's uin.
    pub user_id: String,
    pub user_name: String,
    pub login_user: String,
    pub via: Via,
    pub client: String,
    pub started_ms: i64,
}

struct Entry {
    info: LiveSession,
    stop: CancellationToken,
    /// Why `terminate` ended it.
    reason: Arc<Mutex<Option<String>>>,
}

struct Inner {
    dispatch: Arc<Dispatcher>,
    store: Store,
    limits: Limits,
    recording: record::Settings,
    live: Mutex<HashMap<String, Entry>>,
    shutdown: CancellationToken,
}

/// The hub: a cloneable handle in the server's state.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

/// A place in the registry; removed when dropped (the session ended, or
/// never opened).
struct Slot {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.inner.live.lock() {
            m.remove(&self.id);
        }
    }
}

impl Sessions {
    /// `shutdown` ends every session with the server.
    pub fn new(
        dispatch: Arc<Dispatcher>,
        store: Store,
        limits: Limits,
        recording: record::Settings,
        shutdown: CancellationToken,
    ) -> Sessions {
        Sessions {
            inner: Arc::new(Inner {
                dispatch,
                store,
                limits,
                recording,
                live: Mutex::new(HashMap::new()),
                shutdown,
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The server's recording settings (for `session::decide`).
    pub fn recording(&self) -> &record::Settings {
        &self.inner.recording
    }

    /// The live sessions.
    pub fn live(&self) -> Vec<LiveSession> {
        self.inner
            .live
            .lock()
            .map(|m| m.values().map(|e| e.info.clone()).collect())
            .unwrap_or_default()
    }

    /// One live session.
    pub fn get(&self, id: &str) -> Option<LiveSession> {
        self.inner.live.lock().ok()?.get(id).map(|e| e.info.clone())
    }

    /// Ends a live session (its client sees `Closed { reason }`, and the
    /// agent kills its processes). False when no such session is live.
    pub fn terminate(&self, id: &str, reason: &str) -> bool {
        let Ok(m) = self.inner.live.lock() else {
            return false;
        };
        let Some(e) = m.get(id) else {
            return false;
        };
        if let Ok(mut r) = e.reason.lock() {
            r.get_or_insert_with(|| reason.to_string());
        }
        e.stop.cancel();
        true
    }

    /// Takes a place in the registry, within the limits.
    fn reserve(&self, plan: &SessionPlan) -> Result<(Slot, Entry), SessionError> {
        let limits = &self.inner.limits;
        let mut m = self
            .inner
            .live
            .lock()
            .map_err(|_| SessionError::Limit("the session registry is unavailable".into()))?;
        let of_user = m
            .values()
            .filter(|e| e.info.user_id == plan.who.user_id)
            .count();
        if of_user >= limits.per_user {
            return Err(SessionError::Limit(format!(
                "you already have {of_user} sessions open (at most {} per user)",
                limits.per_user
            )));
        }
        let on_instance = m
            .values()
            .filter(|e| e.info.instance_id == plan.instance_id)
            .count();
        if on_instance >= limits.per_instance {
            return Err(SessionError::Limit(format!(
                "instance {} already has {on_instance} sessions open (at most {} per instance)",
                plan.instance_id, limits.per_instance
            )));
        }
        let id = record::new_session_id();
        let entry = Entry {
            info: LiveSession {
                id: id.clone(),
                instance_id: plan.instance_id.clone(),
                user_id: plan.who.user_id.clone(),
                user_name: plan.who.name.clone(),
                login_user: plan.login_user.clone(),
                via: plan.via,
                client: plan.client.clone(),
                started_ms: now_ms(),
            },
            stop: self.inner.shutdown.child_token(),
            reason: Arc::default(),
        };
        let mine = Entry {
            info: entry.info.clone(),
            stop: entry.stop.clone(),
            reason: entry.reason.clone(),
        };
        m.insert(id.clone(), entry);
        Ok((
            Slot {
                inner: self.inner.clone(),
                id,
            },
            mine,
        ))
    }

    /// Opens a decided session: asks the agent to start the shell and, once
    /// it runs, returns the client's halves.
    pub async fn open(&self, plan: Authorized<SessionPlan>) -> Result<SessionIo, SessionError> {
        let plan = plan.into_inner();
        let (slot, entry) = self.reserve(&plan)?;
        let forward = plan.forward.is_some();
        let mut ch = match self.inner.dispatch.open_channel(&plan.instance_id, forward) {
            Ok(ch) => ch,
            Err(ChannelError::Offline) => return Err(self.offline_or_missing(&plan).await),
            Err(ChannelError::Unsupported) => return Err(SessionError::Unsupported),
            Err(ChannelError::Exhausted) => {
                return Err(SessionError::Limit(
                    "the instance's agent carries too many sessions".into(),
                ))
            }
        };
        let agent_forward = plan.agent_forward && ch.kinds.agent_forward;
        let open = match &plan.forward {
            Some(f) => ServerMsg::ForwardOpen {
                channel: ch.id,
                host: f.host.clone(),
                port: f.port,
                window: SESSION_WINDOW,
            },
            None => ServerMsg::SessionOpen {
                channel: ch.id,
                user: plan.login_user.clone(),
                command: plan.command.clone(),
                cols: plan.cols,
                rows: plan.rows,
                window: SESSION_WINDOW,
                term: TERM.into(),
                pipes: plan.command.is_some() && plan.exec_without_pty,
                agent_forward,
            },
        };
        ch.control(&open).await.map_err(|_| SessionError::Offline)?;
        let window = opened(&mut ch, self.inner.limits.open_timeout, "the shell").await?;
        let recorder = Recorder::start(
            self.inner.store.clone(),
            record::Meta {
                id: entry.info.id.clone(),
                user_uin: plan.who.uin.clone(),
                user_name: plan.who.name.clone(),
                via: plan.via.as_str().into(),
                client: plan.client.clone(),
                instance_id: plan.instance_id.clone(),
                login_user: plan.login_user.clone(),
                command: plan
                    .forward
                    .as_ref()
                    .map(super::Forward::describe)
                    .or_else(|| plan.command.clone()),
                cols: plan.cols,
                rows: plan.rows,
                term: TERM.into(),
                shell: String::new(),
                record_input: plan.record_input,
            },
            &self.inner.recording,
        );
        let (agent_tx, agent_rx) = if agent_forward {
            let (tx, rx) = mpsc::channel(MAX_AGENT_CONNS);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let relay = Relay {
            ch,
            stop: entry.stop.clone(),
            reason: entry.reason.clone(),
            limits: self.inner.limits.clone(),
            recorder: Some(recorder),
            forward,
            agent: agent_tx.map(|conns| AgentSide {
                conns,
                dispatch: self.inner.dispatch.clone(),
                open: Arc::new(Semaphore::new(MAX_AGENT_CONNS)),
                stop: entry.stop.child_token(),
            }),
            _place: Box::new(slot),
        };
        tracing::info!(
            session = %entry.info.id,
            instance = %plan.instance_id,
            user = %plan.who.user_id,
            login = %plan.login_user,
            via = plan.via.as_str(),
            agent_forward,
            "session opened"
        );
        let (tx, rx) = relay.start(window);
        Ok(SessionIo {
            id: entry.info.id,
            tx,
            rx,
            agent: agent_rx,
            agent_missing: (plan.agent_forward && !agent_forward).then(|| {
                "the instance's agent is too old for agent forwarding (upgrade it)".to_string()
            }),
        })
    }

    async fn offline_or_missing(&self, plan: &SessionPlan) -> SessionError {
        let id = plan.instance_id.clone();
        let exists = self
            .inner
            .store
            .read(move |c| Ok(crate::store::instances::get_instance(c, &id).is_ok()))
            .await
            .unwrap_or(true);
        if exists {
            SessionError::Offline
        } else {
            SessionError::NoInstance(plan.instance_id.clone())
        }
    }
}
