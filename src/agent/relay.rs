//! What a session channel's relay exchanges with the rest of the agent:
//! `Out` towards the server (through the link, all sessions sharing one
//! bounded queue) and `Cmd` from the server for one channel. Shared by the
//! shell relays (`session`) and the port forwards (`forward`).

use crate::protocol::AgentMsg;

/// What the relays send towards the server.
#[derive(Debug)]
pub enum Out {
    Msg(Box<AgentMsg>),
    /// Output of a channel: one binary frame.
    Data(u32, Vec<u8>),
}

/// What the server asked of one channel.
pub(super) enum Cmd {
    Input(Vec<u8>),
    Resize(u16, u16),
    Credit(u32),
    Eof,
    Close(String),
    /// The server's answer to the session's `AuthAgentConnect` `request`:
    /// the channel that carries that connection, or None (refused).
    AuthAgent {
        request: u32,
        conn: Option<AgentConn>,
    },
}

/// A channel the server opened for one connection to a session's
/// forwarded agent.
pub(super) struct AgentConn {
    pub channel: u32,
    pub window: u32,
    pub cmds: tokio::sync::mpsc::UnboundedReceiver<Cmd>,
}
