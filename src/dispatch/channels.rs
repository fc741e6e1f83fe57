//! Session channels over an agent's connection: the server's half of the
//! multiplexing that lets interactive sessions share the agent's one
//! WebSocket with tasks.
//!
//! Each connection of an agent that lists `protocol::FEATURE_SESSIONS`
//! has a second, bounded queue towards the agent (session control and
//! binary data frames; the writer prefers the task queue, so a busy
//! session never delays a RunTask, Ack or cancel) and a table of open
//! channels. The connection's reader hands each session frame to its
//! channel without waiting (`route`): agent output is bounded by the
//! credit the session hub grants, so the reader never blocks on a slow
//! client and heartbeats and task reports keep flowing.
//!
//! A channel belongs to one connection: when the connection ends its
//! table goes with it, every channel's receiver sees the end, and the hub
//! reports the session closed. `session/` sits above dispatch and builds
//! on `open_channel`; dispatch knows nothing of users or policy.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::Dispatcher;
use crate::protocol::ServerMsg;

/// Frames queued towards one agent for all its sessions together.
pub(super) const SESSION_QUEUE: usize = 256;

/// What an agent said about one channel.
#[derive(Debug)]
pub enum FromAgent {
    Opened {
        pid: u32,
        window: u32,
    },
    Failed {
        reason: String,
    },
    Credit(u32),
    Data(Vec<u8>),
    /// A process of the session connected to its forwarded-agent socket.
    AuthAgentConnect {
        request: u32,
    },
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
        reason: String,
    },
}

/// What an agent's session channels may carry besides terminals, from the
/// features it announced (an older agent drops its connection on a
/// message it does not know, so nothing else is sent to it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelKinds {
    /// `protocol::FEATURE_FORWARD`: port forwards (`ForwardOpen`).
    pub forward: bool,
    /// `protocol::FEATURE_AGENT_FORWARD`: ssh agent forwarding.
    pub agent_forward: bool,
}

impl ChannelKinds {
    pub(super) fn of(features: &[String]) -> ChannelKinds {
        let has = |name: &str| features.iter().any(|f| f == name);
        ChannelKinds {
            forward: has(crate::protocol::FEATURE_FORWARD),
            agent_forward: has(crate::protocol::FEATURE_AGENT_FORWARD),
        }
    }
}

/// The open channels of one connection.
#[derive(Default)]
pub(super) struct Table {
    routes: HashMap<u32, mpsc::UnboundedSender<FromAgent>>,
    next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("the instance's agent is not connected")]
    Offline,
    #[error("the instance's agent is too old for sessions (upgrade it)")]
    Unsupported,
    #[error("the agent's connection has too many sessions open")]
    Exhausted,
}

/// Most channels one connection carries at once.
const MAX_CHANNELS: usize = 256;

/// One open channel: send towards the agent, receive what it says. Dropping
/// it forgets the route and, unless the agent already ended the session,
/// tells the agent to close it.
pub struct Channel {
    d: Arc<Dispatcher>,
    instance_id: String,
    serial: u64,
    pub id: u32,
    to_agent: mpsc::Sender<Message>,
    pub from_agent: mpsc::UnboundedReceiver<FromAgent>,
    /// What the agent's connection can carry.
    pub kinds: ChannelKinds,
    /// The agent reported the end (or the open failed): no close needed.
    pub ended: bool,
}

impl Channel {
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Sends a control message; Err when the connection is gone.
    pub async fn control(&self, msg: &ServerMsg) -> Result<(), ChannelError> {
        let text = serde_json::to_string(msg).map_err(|_| ChannelError::Offline)?;
        self.to_agent
            .send(Message::Text(text))
            .await
            .map_err(|_| ChannelError::Offline)
    }

    /// Sends terminal input as one binary frame.
    pub async fn data(&self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.to_agent
            .send(Message::Binary(crate::protocol::encode_data(
                self.id, bytes,
            )))
            .await
            .map_err(|_| ChannelError::Offline)
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Ok(mut m) = self.d.agents.lock() {
            if let Some(c) = m.get_mut(&self.instance_id) {
                if c.serial == self.serial {
                    c.channels.routes.remove(&self.id);
                }
            }
        }
        if !self.ended {
            let close = ServerMsg::SessionClose {
                channel: self.id,
                reason: "closed by the server".into(),
            };
            if let Ok(text) = serde_json::to_string(&close) {
                let _ = self.to_agent.try_send(Message::Text(text));
            }
        }
    }
}

impl Dispatcher {
    /// Opens a channel to an instance's agent (the caller then sends
    /// `SessionOpen` on it).
    /// `forward`: the channel is for a port forward, which needs an agent
    /// that announced it (an older one would drop its connection on it).
    pub fn open_channel(
        self: &Arc<Self>,
        instance_id: &str,
        forward: bool,
    ) -> Result<Channel, ChannelError> {
        let mut m = self.agents.lock().map_err(|_| ChannelError::Offline)?;
        let c = m.get_mut(instance_id).ok_or(ChannelError::Offline)?;
        let to_agent = c.sessions.clone().ok_or(ChannelError::Unsupported)?;
        if forward && !c.kinds.forward {
            return Err(ChannelError::Unsupported);
        }
        let table = &mut c.channels;
        if table.routes.len() >= MAX_CHANNELS {
            return Err(ChannelError::Exhausted);
        }
        let mut id = table.next;
        while table.routes.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        table.next = id.wrapping_add(1);
        let (tx, rx) = mpsc::unbounded_channel();
        table.routes.insert(id, tx);
        Ok(Channel {
            d: self.clone(),
            instance_id: instance_id.to_string(),
            serial: c.serial,
            id,
            to_agent,
            from_agent: rx,
            kinds: c.kinds,
            ended: false,
        })
    }

    /// Hands what an agent said to its channel, without waiting. Unknown
    /// channels (closed meanwhile) are ignored; the end of a session
    /// removes its route.
    pub(super) fn route(&self, instance_id: &str, serial: u64, channel: u32, what: FromAgent) {
        let Ok(mut m) = self.agents.lock() else {
            return;
        };
        let Some(c) = m.get_mut(instance_id).filter(|c| c.serial == serial) else {
            return;
        };
        let last = matches!(what, FromAgent::Exit { .. } | FromAgent::Failed { .. });
        if let Some(tx) = c.channels.routes.get(&channel) {
            let _ = tx.send(what);
        }
        if last {
            c.channels.routes.remove(&channel);
        }
    }
}
