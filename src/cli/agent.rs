//! `drover agent`: the executor on a managed machine.

use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn main(_args: AgentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet built")
}
