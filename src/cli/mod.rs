//! The command line: one file per subcommand. The only place `anyhow` is
//! used; everything below returns typed errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod agent;
pub mod backup;
pub mod bench;
mod bench_load;
pub mod bench_session;
mod bench_sim;
pub mod demo;
pub mod run;
pub mod server;
mod stats;

#[derive(Parser, Debug)]
#[command(
    name = "drover",
    version,
    about = "Run commands on many machines from one place"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the control plane: HTTPS API, storage, web console, dispatcher.
    Server(server::ServerArgs),
    /// Run the executor on a managed machine.
    Agent(agent::AgentArgs),
    /// Start a server and three local agents and run a command on them.
    Demo(demo::DemoArgs),
    /// Run a command on instances and print what each one printed.
    Run(run::RunArgs),
    /// Set-up tasks on the server's data directory.
    Admin(admin::AdminArgs),
    /// Benchmark: a server and N simulated agents (scripts/bench-scale).
    #[command(hide = true)]
    BenchScale(bench::BenchArgs),
    /// Benchmark: interactive session throughput and keystroke round trip
    /// (scripts/bench-session).
    #[command(hide = true)]
    BenchSession(bench_session::BenchSessionArgs),
}

/// Default data directory of the server.
pub fn default_server_dir() -> PathBuf {
    PathBuf::from("/var/lib/drover")
}

/// Log targets that print message payloads at debug/trace level: the
/// WebSocket library logs whole frames (task scripts, secret values to mask),
/// so they are capped at `info` whatever DROVER_LOG asks for.
const PAYLOAD_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// DROVER_LOG (or `default`), with the payload-printing targets capped.
pub fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    for t in PAYLOAD_TARGETS {
        // A directive for the same target replaces the user's one.
        if let Ok(d) = format!("{t}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter("info"))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Warnings only: for commands whose own output is the point (the demo).
pub fn init_tracing_quiet() {
    let filter = log_filter("warn");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(a) => server::main(a),
        Command::Agent(a) => agent::main(a),
        Command::Demo(a) => demo::main(a),
        Command::Run(a) => run::main(a),
        Command::Admin(a) => admin::main(a),
        Command::BenchScale(a) => bench::main(a),
        Command::BenchSession(a) => bench_session::main(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drover: {e:#}");
            ExitCode::from(2)
        }
    }
}
