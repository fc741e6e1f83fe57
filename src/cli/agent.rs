//! `drover agent`: the executor on a managed machine.
//!
//! Runs the agent on a single-threaded runtime (it is I/O-bound and must
//! stay small) until SIGTERM or Ctrl-C. A rejection by the server is fatal
//! and exits with status 1 rather than retrying forever.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::agent::{self, link::LinkError, AgentError};
use crate::protocol::AgentTag;

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The server's base URL, e.g. https://10.0.0.5:8443.
    #[arg(long, env = "DROVER_SERVER")]
    pub server: Option<String>,
    /// Register code value from CreateRegisterCode (needed the first time only).
    #[arg(long, env = "DROVER_REGISTER_CODE", hide_env_values = true)]
    pub register_code: Option<String>,
    /// Where the agent keeps its identity key and task journal.
    #[arg(long, default_value = "/var/lib/drover-agent")]
    pub data_dir: PathBuf,
    /// Trust the server through this CA bundle instead of the pinned fingerprint.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// A tag for this instance, `key=value` (repeatable). Sent when the agent
    /// registers; a register code's tag of the same key wins.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<AgentTag>,
    /// Most tasks run at once; more wait (the server queues them). Told to
    /// the server, which sends no more than this.
    #[arg(long, env = "DROVER_AGENT_MAX_TASKS", default_value_t = crate::protocol::DEFAULT_MAX_TASKS,
          value_parser = clap::value_parser!(u32).range(1..=512))]
    pub max_tasks: u32,
    /// Do not give tasks their own cgroup v2 even where the machine allows
    /// it; track them by process group and a DROVER_TASK_ID mark instead.
    #[arg(long, env = "DROVER_AGENT_NO_TASK_CGROUPS")]
    pub no_task_cgroups: bool,
}

fn parse_tag(s: &str) -> Result<AgentTag, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not key=value"))?;
    Ok(AgentTag {
        key: key.to_string(),
        value: value.to_string(),
    })
}

pub fn main(args: AgentArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing();
    if let Some(why) = crate::protocol::tag_keys_problem(args.tags.iter().map(|t| t.key.as_str())) {
        anyhow::bail!("--tag: {why}");
    }
    let cfg = agent::Config {
        data_dir: args.data_dir,
        server: args.server,
        register_code: args.register_code,
        ca_file: args.ca_file,
        tags: args.tags,
        max_tasks: args.max_tasks,
        task_cgroups: !args.no_task_cgroups,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = rt.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down");
            on_signal.cancel();
        });
        anyhow::Ok(agent::run(cfg, shutdown).await)
    })?;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(AgentError::Link(LinkError::Rejected { code, message })) => {
            eprintln!("drover agent: the server rejected this agent ({code}): {message}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(anyhow::Error::new(e).context("drover agent")),
    }
}
