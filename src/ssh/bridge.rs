//! The one place the gateway calls the session transport (`src/session/`):
//! `open` decides `tat:StartSession` for the signed-in person on the
//! instance and login user they asked for — the same decision the console
//! takes — and opens the session through the instance's agent. The channel
//! task (`channel.rs`) sees only the types below, so the transport's
//! interface is used here and nowhere else in the gateway.

use bytes::Bytes;

use super::handler::Person;
use super::Ctx;

/// What the person asked the channel to run.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read by the transport once it lands
pub(super) struct Request {
    /// The exec request's command; `None` for a login shell.
    pub command: Option<String>,
    pub cols: u16,
    pub rows: u16,
}

/// What happens in a session, as the channel relays it.
#[derive(Debug)]
#[allow(dead_code)] // made by the transport once it lands
pub(super) enum Event {
    Data(Bytes),
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    Closed {
        reason: String,
    },
}

/// Why a session was not opened, in words for the person's terminal.
#[derive(Debug, Clone)]
pub(super) struct Refusal(pub String);

/// An open session.
pub(super) struct Opened {
    pub id: String,
    pub tx: Tx,
    pub rx: Rx,
}

/// Input towards the session.
pub(super) struct Tx(std::convert::Infallible);

/// Events from the session.
pub(super) struct Rx(std::convert::Infallible);

impl Tx {
    /// Sends keystrokes or stdin; waits for the session's flow-control
    /// credit. An error means the session is gone.
    pub async fn send(&self, _data: Bytes) -> Result<(), ()> {
        match self.0 {}
    }

    pub async fn resize(&self, _cols: u16, _rows: u16) {
        match self.0 {}
    }

    pub async fn eof(&self) {
        match self.0 {}
    }

    pub async fn close(&self) {
        match self.0 {}
    }
}

impl Rx {
    pub async fn recv(&mut self) -> Option<Event> {
        match self.0 {}
    }
}

/// Decides and opens a session for `person`.
pub(super) async fn open(_ctx: &Ctx, person: &Person, _req: Request) -> Result<Opened, Refusal> {
    Err(Refusal(format!(
        "sessions on {} are not available on this server yet",
        person.target.instance_id
    )))
}
