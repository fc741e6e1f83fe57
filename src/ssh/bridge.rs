//! The one place the gateway calls the session transport (`src/session/`):
//! `open` asks for a session for the signed-in person on the instance and
//! as the login user their ssh name chose. `api::ssh_auth` decides
//! `tat:StartSession` with the person's policies of this moment — the same
//! decision the console's terminal takes — audits it, and opens the session
//! through the instance's agent.

use std::net::SocketAddr;

use crate::api::ssh_auth::SshPlan;
use crate::api::Principal;
use crate::session::SessionIo;

use super::target::Target;
use super::Ctx;

/// Who signed in on a connection, and what for.
#[derive(Clone)]
pub(super) struct Person {
    pub principal: Principal,
    pub target: Target,
    pub peer: SocketAddr,
}

/// What the person asked the channel to run.
#[derive(Debug, Clone)]
pub(super) struct Request {
    /// The exec request's command; `None` for a login shell.
    pub command: Option<String>,
    pub cols: u16,
    pub rows: u16,
    /// Whether the client asked for a pty. An exec without one runs with
    /// pipes, so its output arrives byte for byte (`ssh host -- cat f`).
    pub pty: bool,
    /// A port forward (direct-tcpip: ssh -L / -W) instead of a shell.
    pub forward: Option<crate::session::Forward>,
    /// The client asked for agent forwarding (ssh -A).
    pub agent_forward: bool,
}

/// Why a session was not opened, in words for the person's terminal.
#[derive(Debug, Clone)]
pub(super) struct Refusal(pub String);

/// Decides and opens a session for `person`.
pub(super) async fn open(ctx: &Ctx, person: &Person, req: Request) -> Result<SessionIo, Refusal> {
    let plan = SshPlan {
        instance_id: person.target.instance_id.clone(),
        login_user: person.target.login().to_string(),
        command: req.command,
        cols: req.cols,
        rows: req.rows,
        pty: req.pty,
        forward: req.forward,
        agent_forward: req.agent_forward,
    };
    ctx.api
        .ssh_open_session(&person.principal, plan, person.peer)
        .await
        .map_err(|e| Refusal(e.message))
}
