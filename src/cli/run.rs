//! `drover run`: run a command on instances and print each instance's
//! output and final status as it finishes. Exits 0 only if all succeeded.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::client::Client;
use crate::tls::Trust;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Server URL, e.g. https://10.0.0.5:8443 (or the profile's).
    #[arg(long, env = "DROVER_SERVER")]
    pub server: Option<String>,
    /// CA bundle to trust for the server (e.g. the server's DATA_DIR/tls/cert.pem).
    #[arg(long, env = "DROVER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Trust the server by its certificate's SHA-256 (hex) instead of a CA file.
    #[arg(long, env = "DROVER_FINGERPRINT")]
    pub fingerprint: Option<String>,
    #[arg(long, env = "TENCENTCLOUD_SECRET_ID")]
    pub secret_id: Option<String>,
    #[arg(long, env = "TENCENTCLOUD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A JSON profile with any of: server, ca_file, fingerprint, secret_id, secret_key.
    /// Default: ~/.config/drover/profile.json when it exists.
    #[arg(long, env = "DROVER_PROFILE")]
    pub profile: Option<PathBuf>,
    /// Instance ids, comma-separated.
    #[arg(
        short = 'i',
        long = "instances",
        value_delimiter = ',',
        conflicts_with = "all"
    )]
    pub instances: Vec<String>,
    /// Every registered instance.
    #[arg(long)]
    pub all: bool,
    /// Select instances by tag instead of by id (repeatable, ANDed):
    /// `tag:NAME=V1,V2`, `tag-key=K1,K2` or `all`; resolved by the server.
    #[arg(long = "target", conflicts_with_all = ["all", "instances"])]
    pub targets: Vec<String>,
    /// At most this many (or this percentage, `10%`) of the tasks at once.
    #[arg(long)]
    pub max_concurrency: Option<String>,
    /// Stop starting tasks once more than this many (or `10%`) failed.
    #[arg(long)]
    pub max_errors: Option<String>,
    /// SHELL, PYTHON, POWERSHELL or BAT.
    #[arg(long = "type", default_value = "SHELL")]
    pub command_type: String,
    /// Seconds before the command is killed.
    #[arg(long, default_value_t = 60)]
    pub timeout: i64,
    /// Run as this user on the instances.
    #[arg(long)]
    pub user: Option<String>,
    /// Working directory on the instances.
    #[arg(long)]
    pub workdir: Option<String>,
    /// The command line (joined with spaces) to run.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(serde::Deserialize, Default)]
struct Profile {
    server: Option<String>,
    ca_file: Option<PathBuf>,
    fingerprint: Option<String>,
    secret_id: Option<String>,
    secret_key: Option<String>,
}

fn load_profile(path: Option<&PathBuf>) -> anyhow::Result<Profile> {
    let default =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/drover/profile.json"));
    let (path, required) = match path {
        Some(p) => (p.clone(), true),
        None => match default {
            Some(p) if p.exists() => (p, false),
            _ => return Ok(Profile::default()),
        },
    };
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("profile {}", path.display())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
        Err(e) => Err(e).with_context(|| format!("profile {}", path.display())),
    }
}

/// Builds a client from flags, environment and profile (in that order).
fn client(a: &RunArgs) -> anyhow::Result<Client> {
    let p = load_profile(a.profile.as_ref())?;
    let server = a
        .server
        .clone()
        .or(p.server)
        .context("no server: pass --server or set DROVER_SERVER")?;
    let id = a
        .secret_id
        .clone()
        .or(p.secret_id)
        .context("no SecretId: set TENCENTCLOUD_SECRET_ID")?;
    let key = a
        .secret_key
        .clone()
        .or(p.secret_key)
        .context("no SecretKey: set TENCENTCLOUD_SECRET_KEY")?;
    let trust = match (
        a.ca_file.clone().or(p.ca_file),
        a.fingerprint.clone().or(p.fingerprint),
    ) {
        (Some(ca), _) => Trust::CaFile(ca),
        (None, Some(fp)) => Trust::pinned_hex(&fp)?,
        (None, None) => bail!("no way to trust the server: pass --ca-file or --fingerprint"),
    };
    Ok(Client::new(&server, &id, &key, &trust)?)
}

async fn all_instances(c: &Client) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let r = c
            .call(
                "DescribeRegisterInstances",
                &json!({ "Offset": ids.len(), "Limit": 100 }),
            )
            .await?;
        let set = r["RegisterInstanceSet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ids.extend(
            set.iter()
                .filter_map(|i| i["InstanceId"].as_str().map(String::from)),
        );
        let total = r["TotalCount"].as_u64().unwrap_or(0) as usize;
        if set.is_empty() || ids.len() >= total {
            return Ok(ids);
        }
    }
}

/// A task's whole output, fetched in slices.
pub async fn full_output(c: &Client, task_id: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let r = c
            .call(
                "DescribeInvocationTaskOutput",
                &json!({ "InvocationTaskId": task_id, "Offset": out.len() }),
            )
            .await?;
        let chunk = B64
            .decode(r["Output"].as_str().unwrap_or(""))
            .context("output is not base64")?;
        let total = r["TotalSize"].as_u64().unwrap_or(0) as usize;
        out.extend_from_slice(&chunk);
        if chunk.is_empty() || out.len() >= total {
            return Ok(out);
        }
    }
}

const FINAL: [&str; 8] = [
    "SUCCESS",
    "FAILED",
    "TIMEOUT",
    "TASK_TIMEOUT",
    "CANCELLED",
    "TERMINATED",
    "DELIVER_FAILED",
    "START_FAILED",
];

/// Waits for every task of `invocation` and prints each as it finishes.
/// Returns how many did not succeed.
pub async fn follow(
    c: &Client,
    invocation: &str,
    out: &mut impl std::io::Write,
) -> anyhow::Result<usize> {
    let mut done = HashSet::new();
    let mut failed = 0;
    let mut delay = Duration::from_millis(50);
    loop {
        let r = c
            .call(
                "DescribeInvocationTasks",
                &json!({ "Filters": [{ "Name": "invocation-id", "Values": [invocation] }], "Limit": 100 }),
            )
            .await?;
        let tasks = r["InvocationTaskSet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for t in &tasks {
            let id = t["InvocationTaskId"].as_str().unwrap_or("");
            let status = t["TaskStatus"].as_str().unwrap_or("");
            if !FINAL.contains(&status) || done.contains(id) {
                continue;
            }
            done.insert(id.to_string());
            if status != "SUCCESS" {
                failed += 1;
            }
            print_task(c, t, out).await?;
        }
        if !tasks.is_empty() && done.len() >= tasks.len() {
            return Ok(failed);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

async fn print_task(c: &Client, t: &Value, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let id = t["InvocationTaskId"].as_str().unwrap_or("");
    let status = t["TaskStatus"].as_str().unwrap_or("");
    // Null when no exit code is known (never ran, killed by a signal).
    let exit = t["TaskResult"]["ExitCode"]
        .as_i64()
        .map_or_else(|| "unknown".to_string(), |c| c.to_string());
    let output = full_output(c, id).await?;
    writeln!(
        out,
        "=== {} {status} (exit {exit}) ===",
        t["InstanceId"].as_str().unwrap_or("")
    )?;
    out.write_all(&output)?;
    if !output.is_empty() && !output.ends_with(b"\n") {
        writeln!(out)?;
    }
    if let Some(info) = t["ErrorInfo"].as_str().filter(|s| !s.is_empty()) {
        writeln!(out, "--- {info}")?;
    }
    out.flush()?;
    Ok(())
}

/// `tag:env=prod,stage` → {"Key": "tag:env", "Values": ["prod", "stage"]}.
fn target(s: &str) -> Value {
    match s.split_once('=') {
        Some((k, v)) => json!({"Key": k, "Values": v.split(',').collect::<Vec<_>>()}),
        None => json!({ "Key": s }),
    }
}

pub fn main(a: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let c = client(&a)?;
        let ids = if a.all {
            all_instances(&c).await?
        } else {
            a.instances.clone()
        };
        if ids.is_empty() && a.targets.is_empty() {
            bail!("no instances: pass -i ID,..., --target or --all");
        }
        let mut req = json!({
            "Content": B64.encode(a.command.join(" ")),
            "CommandType": a.command_type,
            "Timeout": a.timeout,
        });
        if a.targets.is_empty() {
            req["InstanceIds"] = json!(ids);
        } else {
            req["Targets"] = a.targets.iter().map(|t| target(t)).collect();
        }
        if let Some(m) = &a.max_concurrency {
            req["MaxConcurrency"] = json!(m);
        }
        if let Some(m) = &a.max_errors {
            req["MaxErrors"] = json!(m);
        }
        if let Some(u) = &a.user {
            req["Username"] = json!(u);
        }
        if let Some(w) = &a.workdir {
            req["WorkingDirectory"] = json!(w);
        }
        let r = c.call("RunCommand", &req).await?;
        let inv = r["InvocationId"].as_str().unwrap_or("").to_string();
        if a.targets.is_empty() {
            eprintln!("invocation {inv} on {} instance(s)", ids.len());
        } else {
            eprintln!("invocation {inv} on the instances --target selects");
        }
        let failed = follow(&c, &inv, &mut std::io::stdout()).await?;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
