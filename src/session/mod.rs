//! Interactive sessions: a terminal on an instance, relayed through its
//! agent's existing connection, for the console's WebSocket and the ssh
//! gateway alike.
//!
//! The interface (what `api`, `ssh` and the console build on):
//!
//! ```text
//! let plan = SessionPlan { instance_id, login_user, command: None, cols, rows,
//!                          via: Via::Console, client: peer, who };
//! let ok: Authorized<SessionPlan> =
//!     session::decide(&gate, &grants, &recording_settings, plan).await?;
//! let SessionIo { id, tx, mut rx, agent } = sessions.open(ok).await?;
//! tx.send(b"ls\r").await?;          // waits for the agent's input credit
//! tx.resize(120, 40).await?; tx.eof().await?; tx.close().await;
//! while let Some(ev) = rx.recv().await {   // Data(Bytes) | Exit{code, signal} | Closed{reason}
//! }                                        // rx.recv() passing Data on grants output credit
//! // With plan.agent_forward granted: io.agent yields one SessionIo per
//! // connection a process of the session makes to its SSH_AUTH_SOCK.
//! sessions.terminate(&id, "reason");       // admin: ends a live session
//! ```
//!
//! * `decide` takes `tat:StartSession` on the instance (with its tags) with
//!   the login user as the condition key `tat:login_user`, and whether the
//!   input is recorded (`record::input_required`); only it builds the
//!   `Authorized<SessionPlan>` that `Sessions::open` takes
//!   (`Sessions::recording()` gives the server's recording settings).
//! * `Sessions` (`hub.rs`) is a cloneable handle in the server's state. It
//!   applies the limits (sessions per user and per instance, idle time,
//!   length), opens a channel on the agent's connection
//!   (`dispatch::Channel`), and runs one relay task per session that moves
//!   bytes between the client and the agent with credit-based flow control
//!   in both directions, so memory per session is bounded and a busy
//!   session cannot hold up tasks, heartbeats or other sessions.
//! * A session ends when the shell exits (`Exit`), when the client closes
//!   it or goes away, when the agent's connection ends, on a limit, on
//!   `terminate`, or when the server shuts down (`Closed { reason }`); in
//!   every case the agent kills every process the session started.
//! * `record` keeps every session's recording on the server (the hub feeds
//!   it what it relays) and `asciicast` turns a recording into an
//!   asciicast v2 file.

pub mod asciicast;
mod hub;
pub mod record;
mod relay;

pub use hub::Sessions;
pub use relay::{SessionEvent, SessionIo, SessionRx, SessionTx};

use std::time::Duration;

use crate::gate::{self, Authorized, Check, Gate, Grants};
use crate::store::StoreError;

/// Where a session's client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Via {
    #[default]
    Console,
    Ssh,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Console => "console",
            Via::Ssh => "ssh",
        }
    }
}

/// Who opens a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Who {
    /// "root" for the account, a sub-user's uin otherwise (as
    /// `Principal::user_id`).
    pub user_id: String,
    pub name: String,
    pub uin: String,
}

/// What a session is to be: decided whole by `decide`.
#[derive(Debug, Clone, Default)]
pub struct SessionPlan {
    pub instance_id: String,
    /// The account on the instance (a login name, e.g. `root`, `ann`).
    pub login_user: String,
    /// A one-shot command (ssh exec) instead of a login shell.
    pub command: Option<String>,
    pub cols: u16,
    pub rows: u16,
    pub via: Via,
    /// The client's address, for the record.
    pub client: String,
    pub who: Who,
    /// With a `command` only: run it with pipes instead of a terminal
    /// (what OpenSSH's `ssh host -- cmd` without `-t` expects: output
    /// byte for byte, no echo, no CRLF; stdout and stderr arrive together
    /// as `Data`; `eof()` closes its stdin). Ignored for a shell.
    pub exec_without_pty: bool,
    /// Whether the session's input is recorded too. Set by `decide` (the
    /// server setting or a `tat:RecordSessionInput` policy on the
    /// instance); whatever the caller put here is overwritten, so the
    /// person being recorded cannot turn it off.
    pub record_input: bool,
    /// A port forward instead of a shell: the agent connects to this host
    /// and port from the instance and the session carries the bytes
    /// (ssh -L / -W). Decided as `tat:ForwardPort`, not `tat:StartSession`.
    pub forward: Option<Forward>,
    /// The client asks for its ssh agent to be forwarded into the session
    /// (ssh -A). `decide` leaves it set only where `tat:ForwardAgent`
    /// allows it; the session then gets an `SSH_AUTH_SOCK` whose
    /// connections reach the client's agent (`SessionIo::agent`).
    pub agent_forward: bool,
}

/// Where a port forward connects, from the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub host: String,
    pub port: u16,
}

impl Forward {
    /// What the session's record shows as its command.
    pub fn describe(&self) -> String {
        if self.host.contains(':') {
            format!("port forward to [{}]:{}", self.host, self.port)
        } else {
            format!("port forward to {}:{}", self.host, self.port)
        }
    }
}

/// Most bytes of a forward's host name (DNS's limit).
const MAX_HOST: usize = 253;

/// The one spelling of `host` that is decided and connected to, or None
/// if it is not a DNS name or an IP address literal. Addresses take their
/// canonical form (`::ffff:127.0.0.1` is `127.0.0.1`), and the other
/// numeric spellings the resolver would also take (`127.1`, `2130706433`,
/// `0x7f.1`) are refused, so a policy naming an address names every way
/// to write it. Nothing else (spaces, slashes, brackets, `%zone`s)
/// reaches the agent.
fn canonical_host(host: &str) -> Option<String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(ip.to_canonical().to_string());
    }
    let labels_ok = !host.is_empty()
        && host.len() <= MAX_HOST
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
    // A name's last label is never numeric; inet_aton's forms end in one.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|c| c.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
    (labels_ok && !numeric).then(|| host.to_ascii_lowercase())
}

/// Server settings for sessions (`drover server` flags).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A session with no input and no output for this long is closed.
    pub idle_timeout: Duration,
    /// No session lasts longer than this.
    pub max_duration: Duration,
    /// Live sessions one user may hold at once.
    pub per_user: usize,
    /// Live sessions one instance may carry at once.
    pub per_instance: usize,
    /// How long the agent has to start the shell.
    pub open_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_timeout: Duration::from_secs(30 * 60),
            max_duration: Duration::from_secs(12 * 3600),
            per_user: 10,
            per_instance: 20,
            open_timeout: Duration::from_secs(15),
        }
    }
}

/// Why a session was not opened (or a call on it failed). `api/error.rs`
/// maps these to TAT codes.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Invalid(String),
    #[error("you are not authorized to perform {} on {} as login user {login_user}", .denied.action, .denied.resource)]
    Denied {
        denied: gate::Denied,
        login_user: String,
    },
    #[error("the instance {0} does not exist")]
    NoInstance(String),
    #[error("the instance's agent is not connected")]
    Offline,
    #[error("the instance's agent is too old for sessions; upgrade it")]
    Unsupported,
    #[error("{0}")]
    Limit(String),
    #[error("the session could not start: {0}")]
    StartFailed(String),
    #[error("the session has ended")]
    Ended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most characters of a login name (useradd's limit is 32).
const MAX_LOGIN: usize = 32;
/// Most bytes of an exec command.
const MAX_COMMAND: usize = 64 << 10;

/// Whether `name` looks like a login name (POSIX portable names, as
/// useradd accepts them): the agent resolves it, but nothing else may
/// even reach the agent. The one rule for the console and ssh alike.
pub fn valid_login(name: &str) -> bool {
    let mut b = name.bytes();
    let first_ok = matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_');
    first_ok
        && name.len() <= MAX_LOGIN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

impl SessionPlan {
    /// The plan's own checks, before any decision.
    fn validate(&self) -> Result<(), SessionError> {
        if self.instance_id.is_empty() || self.instance_id.len() > 64 {
            return Err(SessionError::Invalid("InstanceId is required".into()));
        }
        if !valid_login(&self.login_user) {
            return Err(SessionError::Invalid(format!(
                "User {:?} is not a valid login name",
                self.login_user
            )));
        }
        if self.command.as_ref().is_some_and(|c| c.len() > MAX_COMMAND) {
            return Err(SessionError::Invalid(format!(
                "the command is longer than {MAX_COMMAND} bytes"
            )));
        }
        if let Some(f) = &self.forward {
            if canonical_host(&f.host).as_deref() != Some(f.host.as_str()) || f.port == 0 {
                return Err(SessionError::Invalid(format!(
                    "{:?} port {} is not a host and port to forward to",
                    f.host, f.port
                )));
            }
            if self.command.is_some() || self.agent_forward {
                return Err(SessionError::Invalid(
                    "a port forward runs no command and forwards no agent".into(),
                ));
            }
        }
        if !(1..=1000).contains(&self.cols) || !(1..=1000).contains(&self.rows) {
            return Err(SessionError::Invalid(
                "Cols and Rows must lie in 1..=1000".into(),
            ));
        }
        Ok(())
    }
}

/// Decides `tat:StartSession` on the plan's instance (with its tags) for
/// `grants`, with the login user as `tat:login_user` — or, for a port
/// forward, `tat:ForwardPort` with its host and port as `tat:forward_host`
/// and `tat:forward_port`. The only way to an `Authorized<SessionPlan>`.
pub async fn decide(
    gate: &Gate,
    grants: &Grants,
    recording: &record::Settings,
    mut plan: SessionPlan,
) -> Result<Authorized<SessionPlan>, SessionError> {
    if let Some(f) = plan.forward.as_mut() {
        if let Some(host) = canonical_host(&f.host) {
            f.host = host;
        }
    }
    plan.validate()?;
    let resources = gate
        .instance_resources(std::slice::from_ref(&plan.instance_id))
        .await?;
    let mut grants = grants.clone();
    let action = match &plan.forward {
        // A forward carries a connection's bytes, not a terminal: nothing
        // to replay, so it is recorded as who, where, to what and how much.
        Some(f) => {
            plan.record_input = false;
            grants.set_forward(&f.host, f.port);
            crate::policy::FORWARD_PORT
        }
        None => {
            plan.record_input = resources
                .first()
                .is_some_and(|r| record::input_required(recording, &grants, r));
            grants.set_login_user(&plan.login_user);
            // Its own decision, with the same login user: a refusal leaves
            // the session without the agent rather than refusing it.
            plan.agent_forward =
                plan.agent_forward && grants.allows(crate::policy::FORWARD_AGENT, &resources);
            crate::policy::START_SESSION
        }
    };
    let checks = [Check::new(action, resources)];
    let login_user = plan.login_user.clone();
    gate::authorize(&grants, &checks, plan)
        .map_err(|denied| SessionError::Denied { denied, login_user })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_are_checked_before_anything() {
        for ok in ["root", "ann", "svc_backup", "a.b-c", "_x"] {
            assert!(valid_login(ok), "{ok}");
        }
        for bad in ["", "-x", "a b", "a;b", "../x", "ä", &"a".repeat(33)] {
            assert!(!valid_login(bad), "{bad}");
        }
    }

    #[test]
    fn forward_hosts_have_one_spelling() {
        for (given, canonical) in [
            ("localhost", "localhost"),
            ("DB.Lab.example", "db.lab.example"),
            ("127.0.0.1", "127.0.0.1"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("a-1.b", "a-1.b"),
            ("host1.lab", "host1.lab"),
        ] {
            assert_eq!(canonical_host(given).as_deref(), Some(canonical), "{given}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "[::1]",
            "fe80::1%eth0",
            "-a",
            "a..b",
            "a_b",
            "127.1",
            "2130706433",
            "0x7f.1",
            "0x7F000001",
            "10.0.0.010",
            &"a".repeat(64),
        ] {
            assert_eq!(canonical_host(bad), None, "{bad}");
        }
    }
}
