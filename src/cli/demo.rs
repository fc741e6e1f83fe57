//! `drover demo`: a newcomer's first look. Starts a server on a fresh data
//! dir and three local agents (this same binary, as child processes with
//! their own data dirs) through a register code, runs a sample command on
//! all of them, prints what each printed, then serves until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::json;

use crate::client::Client;
use crate::dispatch::Settings;
use crate::server::{self, Config};
use crate::tls::Trust;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Data directory (default: a new temporary one, removed on exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address for the demo server.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// How many local agents to start.
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// Stop after the sample command instead of waiting for Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

const SAMPLE: &str = "echo \"hello from $(hostname) as $(id -un)\"; uname -sr; uptime";

struct Cleanup {
    dir: Option<PathBuf>,
    agents: Vec<tokio::process::Child>,
}

impl Cleanup {
    async fn stop_agents(&mut self) {
        for a in &mut self.agents {
            if let Some(pid) = a.id() {
                // SIGTERM first, so agents leave a clean journal.
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
        }
        for a in &mut self.agents {
            if tokio::time::timeout(Duration::from_secs(5), a.wait())
                .await
                .is_err()
            {
                let _ = a.kill().await;
            }
        }
        self.agents.clear();
    }

    async fn run(&mut self) {
        self.stop_agents().await;
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn main(a: DemoArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing_quiet();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(demo(a))
}

async fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let (dir, temporary) = match a.data_dir {
        Some(d) => (d, false),
        None => {
            let d = std::env::temp_dir().join(format!("drover-demo-{}", std::process::id()));
            (d, true)
        }
    };
    let mut cleanup = Cleanup {
        dir: temporary.then(|| dir.clone()),
        agents: Vec::new(),
    };
    let result = run_demo(&a.listen, a.agents, a.once, &dir, &mut cleanup).await;
    cleanup.run().await;
    result
}

async fn run_demo(
    listen: &str,
    n_agents: usize,
    once: bool,
    dir: &std::path::Path,
    cleanup: &mut Cleanup,
) -> anyhow::Result<ExitCode> {
    let running = server::start(Config {
        data_dir: dir.join("server"),
        listen: listen.to_string(),
        tls_cert: None,
        tls_key: None,
        region: "ap-guangzhou".into(),
        settings: Settings::default(),
        schedule: Default::default(),
        webhooks: Default::default(),
        ops: Default::default(),
        allow_unsigned_payload: false,
    })
    .await?;
    let url = format!("https://{}", running.addr);
    let (id, key) = super::admin::create_root_key(&dir.join("server"))?;
    let c = Client::new(&url, &id, &key, &Trust::CaFile(running.cert_path.clone()))?;
    let code = c
        .call(
            "CreateRegisterCode",
            &json!({
                "Description": "drover demo", "InstanceNamePrefix": "demo",
                "RegisterLimit": n_agents.max(1), "Tags": [{"Key": "env", "Value": "demo"}],
                // The agents say which role they play; nothing else.
                "AllowedAgentTagKeys": ["role"],
            }),
        )
        .await?;
    let value = code["RegisterCodeValue"].as_str().unwrap_or("").to_string();
    let exe = std::env::current_exe().context("locating the drover binary")?;
    for i in 1..=n_agents {
        // Every third agent plays a database, the rest web servers, so
        // `--target tag:role=...` has something to pick from.
        let role = if i % 3 == 0 { "role=db" } else { "role=web" };
        let child = tokio::process::Command::new(&exe)
            .args([
                "agent",
                "--server",
                &url,
                "--register-code",
                &value,
                "--tag",
                role,
                "--data-dir",
            ])
            .arg(dir.join(format!("agent-{i}")))
            .env("DROVER_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("starting a demo agent")?;
        cleanup.agents.push(child);
    }
    println!("drover demo: server at {url}, starting {n_agents} agents ...");
    let ids = wait_online(&c, n_agents).await?;
    println!("{} instances online: {}\n", ids.len(), ids.join(", "));
    println!("$ {SAMPLE}\n");
    let r = c
        .call(
            "RunCommand",
            &json!({
                "Content": base64::engine::general_purpose::STANDARD.encode(SAMPLE),
                "InstanceIds": ids,
                "CommandName": "demo-hello",
            }),
        )
        .await?;
    let inv = r["InvocationId"].as_str().unwrap_or("").to_string();
    let failed = super::run::follow(&c, &inv, &mut std::io::stdout()).await?;
    let profile = dir.join("profile.json");
    let profile_body = json!({
        "server": url, "ca_file": running.cert_path, "secret_id": id, "secret_key": key,
    });
    crate::fsutil::write_private(&profile, profile_body.to_string().as_bytes())?;
    println!(
        "\nInvocation {inv}: {}",
        if failed == 0 {
            "SUCCESS on every instance"
        } else {
            "some instances failed"
        }
    );
    // Root's console password: the demo's own sign-in, printed below.
    let console_password = crate::ids::random_token(16);
    super::admin::set_root_password(&dir.join("server"), &console_password)?;
    // tccli ignores REQUESTS_CA_BUNDLE unless certifi is pointed at it
    // (README, "The official SDK and tccli"); this shim does that, so the
    // printed tccli line works as printed.
    let shim = dir.join("tccli-ca");
    crate::fsutil::create_private_dir(&shim)?;
    std::fs::write(
        shim.join("sitecustomize.py"),
        "import os\ntry:\n    import certifi\n    certifi.where = lambda: os.environ[\"REQUESTS_CA_BUNDLE\"]\nexcept ImportError:\n    pass\n",
    )?;
    let exe_q = shell_quote(&exe.display().to_string());
    let profile_q = shell_quote(&profile.display().to_string());
    println!(
        "\nWeb console  : {url}/   (accept the self-signed certificate; its SHA-256 is {})",
        running.fingerprint
    );
    println!("Sign in as   : root");
    println!("Password     : {console_password}");
    println!("\nAPI endpoint : {url}   (Tencent Cloud TAT API 2020-10-28)");
    println!("CA file      : {}", running.cert_path.display());
    println!("SecretId     : {id}");
    println!("SecretKey    : {key}");
    println!("\nTry, in another terminal:");
    println!("  {exe_q} run --profile {profile_q} --all -- 'df -h /'");
    println!(
        "  {exe_q} run --profile {profile_q} --target tag:role=web --max-concurrency 1 -- 'hostname; sleep 1'"
    );
    println!(
        "  PYTHONPATH={} REQUESTS_CA_BUNDLE={} tccli tat DescribeRegisterInstances --endpoint {} --region ap-guangzhou --secretId {id} --secretKey {key}",
        shell_quote(&shim.display().to_string()),
        shell_quote(&running.cert_path.display().to_string()),
        running.addr
    );
    println!("  (tccli: pip install tccli; see README.md, \"The official SDK and tccli\")");
    if !once {
        println!("\nPress Ctrl-C to stop the demo and remove its data.");
        super::server::wait_for_signal().await;
    }
    // Agents first, so none of them sees its server vanish.
    cleanup.stop_agents().await;
    running.stop().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn wait_online(c: &Client, n: usize) -> anyhow::Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .call(
                "DescribeAutomationAgentStatus",
                &json!({ "Filters": [{ "Name": "agent-status", "Values": ["Online"] }], "Limit": 100 }),
            )
            .await?;
        let ids: Vec<String> = r["AutomationAgentSet"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|a| a["InstanceId"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() >= n {
            return Ok(ids);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("only {} of {n} agents came online within 30 s", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Quotes `s` for a POSIX shell when it holds anything but safe characters,
/// so printed commands paste correctly whatever the paths contain.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quote_leaves_plain_paths_and_quotes_the_rest() {
        assert_eq!(super::shell_quote("/tmp/x/drover"), "/tmp/x/drover");
        assert_eq!(super::shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
