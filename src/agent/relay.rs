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
}
