//! The agent: runs on a managed machine, keeps one outbound connection to
//! the server, and runs the tasks it is sent.
//!
//! Data flow:
//!
//! ```text
//! link (TLS WebSocket) ──ServerMsg──► tasks (registry) ──spawn──► exec ─► launch (process)
//!        ▲                              │   ▲                      │
//!        └──────── AgentMsg outbox ◄────┘   └── journal (disk) ◄───┘ output, results
//! ```
//!
//! * `identity` the Ed25519 key, state.json and machine facts;
//! * `link` connection, handshake and session;
//! * `tasks` the registry between link, journal and running tasks;
//! * `exec`/`launch`/`output` one task's process, its output and its end;
//! * `journal` what survives disconnects and restarts (`journal_entry` what
//!   it holds of a task, `journal_log` its record format, `journal_legacy`
//!   the layout of older agents);
//! * `session`/`session_spawn` interactive sessions (a shell in a
//!   pseudo-terminal, relayed with per-session flow control); `forward`
//!   port forwards on the same channels (`relay`: what both exchange with
//!   the link); `auth_socket` a session's forwarded ssh agent;
//!   `session_marks` what a crash must not leave running;
//! * `cgroup` one cgroup v2 per task, where the machine allows;
//! * `spawn` a task's process started straight inside its cgroup (clone3);
//! * `sys`/`ptysys`/`spawn` the only unsafe code; `procinfo` /proc reading.
//!
//! Guarantees: one cancellation token stops everything; a `Rejected` from
//! the server ends the agent with an error instead of retrying; other link
//! failures are retried with capped, jittered exponential backoff.

mod auth_socket;
pub mod cgroup;
pub mod exec;
mod forward;
pub mod identity;
mod jobctl;
pub mod journal;
mod journal_entry;
mod journal_legacy;
mod journal_log;
pub mod launch;
pub mod link;
pub mod mask;
pub mod output;
pub mod procinfo;
mod ptysys;
mod relay;
pub mod session;
mod session_marks;
mod session_spawn;
mod spawn;
mod sys;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::{self, AgentMsg};
use crate::tls::{TlsError, Trust};
use identity::{IdentityError, Key, State};
use journal::{Journal, JournalError};
use link::{Endpoint, LinkError};
use tasks::Tasks;

const BACKOFF_START: Duration = Duration::from_millis(300);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long shutdown waits for running tasks to be stopped and journaled.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What the agent is told on its command line.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub server: Option<String>,
    /// The full register code value, `drv1.<fp>.<secret>`.
    pub register_code: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Tags asked for at registration (`--tag key=value`); ignored once
    /// registered, since tags then belong to the server's API.
    pub tags: Vec<protocol::AgentTag>,
    /// Most tasks run at once (`--max-tasks`); more wait, journaled, until
    /// a slot frees. Announced to the server, which then sends no more.
    pub max_tasks: u32,
    /// Put each task in its own cgroup v2 when the machine allows it
    /// (`--no-task-cgroups` turns it off, e.g. to test the fallback).
    pub task_cgroups: bool,
}

impl std::fmt::Debug for Config {
    // The register code is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("server", &self.server)
            .field("register_code", &self.register_code.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("tags", &self.tags)
            .field("max_tasks", &self.max_tasks)
            .field("task_cgroups", &self.task_cgroups)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Link(#[from] LinkError),
}

impl AgentError {
    /// Stable code for logs and exit handling.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::Config(_) => "Agent.Config",
            AgentError::DataDir { .. } => "Agent.DataDir",
            AgentError::Identity(_) => "Agent.Identity",
            AgentError::Journal(_) => "Agent.Journal",
            AgentError::Tls(_) => "Agent.Tls",
            AgentError::Link(LinkError::Rejected { .. }) => "Agent.Rejected",
            AgentError::Link(_) => "Agent.Link",
        }
    }
}

/// How this agent introduces itself on the next connection.
enum Auth {
    Register {
        secret: String,
        state: State,
        tags: Vec<protocol::AgentTag>,
    },
    Hello {
        state: State,
    },
}

/// Runs the agent until `shutdown` fires (Ok) or the server rejects it.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), AgentError> {
    sys::cloexec_inherited_fds();
    let dir = cfg.data_dir.clone();
    prepare_data_dir(&dir)?;
    let key = Key::load_or_generate(&dir)?;
    let (mut auth, trust) = resolve_auth(&cfg)?;
    let server = match &auth {
        Auth::Register { state, .. } | Auth::Hello { state } => state.server.clone(),
    };
    let endpoint = Endpoint::parse(&server)?;
    let tls = Arc::new(trust.client_config()?);

    let journal = Journal::open(&dir.join("journal"))?;
    let work_root = work_root_for(&dir);
    clear_dir(&work_root);
    launch::prepare_work_root(&work_root).map_err(|source| AgentError::DataDir {
        path: work_root.clone(),
        source,
    })?;
    let cgroups = if cfg.task_cgroups {
        let tag = crate::sign::sha256_hex(dir.to_string_lossy().as_bytes());
        cgroup::Cgroups::detect(&tag[..16])
    } else {
        None
    };
    // Before the tasks' own recovery, which tidies cgroups it does not know.
    session_marks::Marks::new(&dir).sweep(cgroups.as_ref());
    let (mut tasks, mut outbox) = Tasks::new(
        journal,
        work_root,
        shutdown.clone(),
        cgroups.clone(),
        cfg.max_tasks,
    );
    tasks.recover();

    let result = connect_loop(
        &endpoint,
        tls,
        &key,
        &mut auth,
        &dir,
        &mut tasks,
        &mut outbox,
        &shutdown,
        cgroups.clone(),
    )
    .await;
    // Tasks stop themselves on the same token; give them a moment to be
    // killed and journaled so their results survive the restart.
    shutdown.cancel();
    let wait = tasks.wait_all();
    let drain = async { while outbox.recv().await.is_some() {} };
    tokio::select! {
        _ = wait => {}
        _ = drain => {}
        _ = tokio::time::sleep(SHUTDOWN_WAIT) => tracing::warn!("tasks did not stop in time"),
    }
    if let Some(cgs) = &cgroups {
        cgs.remove();
    }
    result
}

fn prepare_data_dir(dir: &std::path::Path) -> Result<(), AgentError> {
    crate::fsutil::create_private_dir(dir).map_err(|source| AgentError::DataDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Where the tasks' script files live. A root agent runs tasks as other
/// users, who must be able to reach their own script wherever the data dir
/// is (its ancestors may be closed to them), so it uses a directory under
/// /run, which only root can create entries in; the data dir stays 0700.
/// A non-root agent runs everything as itself and keeps scripts at home.
fn work_root_for(dir: &std::path::Path) -> PathBuf {
    if sys::euid() != 0 || !std::path::Path::new("/run").is_dir() {
        return dir.join("work");
    }
    let tag = crate::sign::sha256_hex(dir.to_string_lossy().as_bytes());
    PathBuf::from("/run/drover-agent").join(&tag[..16])
}

/// Script files (and the per-task directories of older agents) left by a
/// crash hold nothing anyone needs.
fn clear_dir(dir: &std::path::Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(e.path());
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn resolve_auth(cfg: &Config) -> Result<(Auth, Trust), AgentError> {
    if let Some(mut state) = State::load(&cfg.data_dir)? {
        if let Some(s) = &cfg.server {
            state.server = s.clone();
        }
        let trust = match &cfg.ca_file {
            Some(ca) => Trust::CaFile(ca.clone()),
            None => state.trust().ok_or_else(|| {
                AgentError::Config("state.json names neither a fingerprint nor a CA file".into())
            })?,
        };
        return Ok((Auth::Hello { state }, trust));
    }
    let code = cfg.register_code.as_deref().ok_or_else(|| {
        AgentError::Config("this agent is not registered yet: --register-code is required".into())
    })?;
    let server = cfg.server.clone().ok_or_else(|| {
        AgentError::Config("this agent is not registered yet: --server is required".into())
    })?;
    let (fp, secret) = protocol::parse_register_code(code).ok_or_else(|| {
        AgentError::Config(
            "the register code is malformed (want drv1.<fingerprint>.<secret>)".into(),
        )
    })?;
    let trust = match &cfg.ca_file {
        Some(ca) => Trust::CaFile(ca.clone()),
        None => Trust::pinned_hex(fp)?,
    };
    let state = State {
        instance_id: String::new(),
        server,
        fingerprint: cfg.ca_file.is_none().then(|| fp.to_string()),
        ca_file: cfg.ca_file.clone(),
    };
    Ok((
        Auth::Register {
            secret: secret.to_string(),
            state,
            tags: cfg.tags.clone(),
        },
        trust,
    ))
}

/// Exponential backoff with jitter: each wait is uniform in [d/2, d].
/// Shared with the agent simulator (`cli::bench`), which measures it.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: BACKOFF_START,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = BACKOFF_START;
    }

    pub(crate) fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
        d.mul_f64(0.5 + frac / 2.0)
    }
}

#[allow(clippy::too_many_arguments)]
async fn connect_loop(
    endpoint: &Endpoint,
    tls: Arc<rustls::ClientConfig>,
    key: &Key,
    auth: &mut Auth,
    dir: &std::path::Path,
    tasks: &mut Tasks,
    outbox: &mut mpsc::Receiver<AgentMsg>,
    shutdown: &CancellationToken,
    cgroups: Option<cgroup::Cgroups>,
) -> Result<(), AgentError> {
    let mut backoff = Backoff::new();
    loop {
        let known = tasks.known_tasks();
        let max_tasks = tasks.max_tasks();
        let attempt = async {
            let (mut ws, local_ip) = link::connect(endpoint, tls.clone()).await?;
            let machine = identity::machine_info(local_ip);
            let welcome = link::handshake(&mut ws, |nonce| {
                let mut msg = match &*auth {
                    Auth::Register { secret, tags, .. } => {
                        key.register(nonce, secret, machine, tags.clone())
                    }
                    Auth::Hello { state } => key.hello(nonce, &state.instance_id, machine, known),
                };
                if let AgentMsg::Register { max_tasks: m, .. }
                | AgentMsg::Hello { max_tasks: m, .. } = &mut msg
                {
                    *m = Some(max_tasks);
                }
                msg
            })
            .await?;
            Ok::<_, LinkError>((ws, welcome))
        };
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = drain_while(attempt, tasks, outbox) => r,
        };
        match connected {
            Ok((mut ws, welcome)) => {
                let instance_id = welcome.instance_id;
                if let Auth::Register { state, .. } = &*auth {
                    let mut state = state.clone();
                    state.instance_id = instance_id.clone();
                    state.save(dir)?;
                    tracing::info!("registered as {instance_id}");
                    *auth = Auth::Hello { state };
                } else {
                    tracing::info!("connected as {instance_id}");
                }
                backoff.reset();
                // Sessions live as long as this connection.
                let (mut sessions, mut session_out) = session::Sessions::new(
                    cgroups.clone(),
                    session_marks::Marks::new(dir),
                    shutdown,
                );
                let relays = link::Relays {
                    tasks,
                    outbox,
                    sessions: &mut sessions,
                    session_out: &mut session_out,
                };
                match link::session(&mut ws, relays, shutdown, welcome.heartbeat).await {
                    Ok(()) => return Ok(()),
                    Err(e @ LinkError::Rejected { .. }) => return Err(e.into()),
                    Err(e) => tracing::warn!("connection lost: {e}"),
                }
            }
            Err(e @ LinkError::Rejected { .. }) => return Err(e.into()),
            Err(e @ LinkError::BadUrl(_)) => return Err(e.into()),
            Err(e) => tracing::warn!("cannot reach the server: {e}"),
        }
        let wait = backoff.step();
        tracing::debug!("reconnecting in {wait:?}");
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = drain_while(tokio::time::sleep(wait), tasks, outbox) => {}
        }
    }
}

/// Runs `fut` while consuming the outbox, so tasks are never blocked on a
/// link that is down; what they report is in the journal for the replay.
async fn drain_while<F: std::future::Future>(
    fut: F,
    tasks: &mut Tasks,
    outbox: &mut mpsc::Receiver<AgentMsg>,
) -> F::Output {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            Some(msg) = outbox.recv() => tasks.note_sent(&msg),
        }
    }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
