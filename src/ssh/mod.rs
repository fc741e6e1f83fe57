//! The ssh gateway (`drover server --ssh-listen ADDR`): standard ssh
//! clients reach a session on an instance through the appliance, with no
//! port open on the instance, as `ssh -p 2222 PERSON+INSTANCE[+LOGIN]@host`.
//!
//! * `hostkey`: the gateway's Ed25519 host key, made on first start.
//! * `target`: what the ssh user name asks for (who, where, as whom).
//! * `handler`: one russh handler per connection — authentication against
//!   drover's identities (registered public keys, console passwords; see
//!   `api::ssh_auth`), and the protocol-level answers to channel requests
//!   (port, agent and X11 forwarding, subsystems and env are refused).
//! * `channel`: one task per session channel, turning the channel's
//!   messages into session input and session events into channel output.
//! * `bridge`: the one place that calls the session transport: it decides
//!   `tat:StartSession` for the person (the same decision as the console)
//!   and opens the session on the instance's agent.
//!
//! Bounds before authentication: connections per source and in total
//! (`netguard::ConnLimits`, with "pending" meaning not yet signed in), a
//! login grace time after which an unauthenticated connection is cut, a
//! bounded number of authentication attempts, and a constant rejection time
//! so a refusal tells nothing by its timing.

mod bridge;
mod channel;
mod handler;
pub mod hostkey;
pub mod target;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::server::Config as RusshConfig;
use russh::{MethodKind, MethodSet, SshId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::ssh_auth::SshInfo;
use crate::api::Api;
use crate::netguard::{ConnLimits, Limits};

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("ssh host key {path}: {reason}")]
    HostKey { path: PathBuf, reason: String },
    #[error("cannot listen for ssh on {0}: {1}")]
    Listen(String, std::io::Error),
}

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on, e.g. `0.0.0.0:2222`.
    pub listen: String,
    /// Time a connection has to authenticate before it is cut.
    pub login_grace: Duration,
    /// Authentication attempts per connection.
    pub max_auth_attempts: usize,
    /// Session channels one connection may hold at once.
    pub max_channels: usize,
    /// Connections per source and in total; "pending" is not yet signed in.
    pub limits: Limits,
}

/// Defaults of the limits `drover server` can change (`--ssh-*`).
pub const DEFAULT_LOGIN_GRACE_SECS: u64 = 60;
pub const DEFAULT_PER_SOURCE: usize = 64;
pub const DEFAULT_PENDING_PER_SOURCE: usize = 16;
pub const DEFAULT_TOTAL: usize = 4096;

impl Settings {
    pub fn new(listen: impl Into<String>) -> Settings {
        Settings {
            listen: listen.into(),
            login_grace: Duration::from_secs(DEFAULT_LOGIN_GRACE_SECS),
            max_auth_attempts: 6,
            max_channels: 8,
            limits: Limits {
                per_source: DEFAULT_PER_SOURCE,
                pending_per_source: DEFAULT_PENDING_PER_SOURCE,
                total: DEFAULT_TOTAL,
                ..Limits::default()
            },
        }
    }
}

/// Everything a connection needs from the server.
pub(crate) struct Ctx {
    pub api: Arc<Api>,
    pub settings: Settings,
    pub shutdown: CancellationToken,
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub info: SshInfo,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the gateway beside a running server: loads (or makes) the host
/// key, binds the listener and accepts until `shutdown`.
pub async fn start(
    api: Arc<Api>,
    data_dir: &Path,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<Gateway, SshError> {
    let host = hostkey::load_or_generate(data_dir)?;
    let listener = TcpListener::bind(&settings.listen)
        .await
        .map_err(|e| SshError::Listen(settings.listen.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| SshError::Listen(settings.listen.clone(), e))?;
    let info = SshInfo {
        address: addr.to_string(),
        port: addr.port(),
        fingerprint: host.fingerprint.clone(),
        host_key: host.public_line.clone(),
    };
    let _ = api.ssh_info.set(info.clone());
    let _ = std::fs::write(data_dir.join("ssh.addr"), addr.to_string());
    let config = Arc::new(russh_config(&settings, host.key));
    let ctx = Arc::new(Ctx {
        api,
        settings,
        shutdown: shutdown.clone(),
    });
    let task = tokio::spawn(accept_loop(listener, config, ctx));
    tracing::info!(%addr, fingerprint = %info.fingerprint, "drover ssh gateway listening");
    Ok(Gateway { addr, info, task })
}

fn russh_config(s: &Settings, key: russh::keys::PrivateKey) -> RusshConfig {
    RusshConfig {
        server_id: SshId::Standard("SSH-2.0-drover".into()),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        // Every refusal takes this long, whatever was checked, so neither
        // an unknown person nor a wrong key shows in the timing. The
        // client's first "none" probe only asks which methods exist.
        auth_rejection_time: Duration::from_millis(300),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: s.max_auth_attempts,
        // A silent client is found by keepalives, not by cutting idle
        // shells; the session's own idle limit belongs to the transport.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 3,
        nodelay: true,
        ..RusshConfig::default()
    }
}

async fn accept_loop(listener: TcpListener, config: Arc<RusshConfig>, ctx: Arc<Ctx>) {
    let conns = ConnLimits::new(ctx.settings.limits.clone());
    loop {
        let (tcp, peer) = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("ssh accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(admission) = conns.admit(peer.ip()) else {
            tracing::debug!(%peer, "ssh connection refused: limit reached");
            continue;
        };
        tokio::spawn(handler::serve(
            ctx.clone(),
            config.clone(),
            tcp,
            peer,
            admission,
        ));
    }
}
