//! The integration harness: a real server in-process on a temporary data
//! directory, a signed client, and real `drover agent` processes, each with
//! its own data directory, killed when dropped.
//!
//! Everything waits by polling a condition against a deadline; nothing
//! sleeps for a fixed time where a state can be observed instead.

#![allow(dead_code)]

pub mod forger;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tempfile::TempDir;

pub use drover::client::{Client, ClientError};
use drover::dispatch::Settings;
use drover::server::{self, Config, Running};
use drover::tls::Trust;

pub const FINAL: [&str; 8] = [
    "DELIVER_FAILED",
    "START_FAILED",
    "SUCCESS",
    "FAILED",
    "TIMEOUT",
    "TASK_TIMEOUT",
    "CANCELLED",
    "TERMINATED",
];

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Short timings so that delivery failures and sweeps happen within a test.
pub fn test_settings() -> Settings {
    Settings {
        deliver_timeout_ms: 60_000,
        result_grace_ms: 5_000,
        sweep_interval_ms: 200,
        ..Settings::default()
    }
}

/// Fast webhook retries (4 attempts, 100 ms doubling to 400 ms), so retry
/// and failure paths finish within a test.
pub fn test_webhook_settings() -> drover::notify::Settings {
    drover::notify::Settings {
        max_attempts: 4,
        first_backoff_ms: 100,
        max_backoff_ms: 400,
        attempt_timeout_ms: 5_000,
        poll_ms: 100,
        allow: Default::default(),
    }
}

/// Polls `f` every 100 ms until it yields `Some`, or panics with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `drover agent` process.
pub struct Agent {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub instance_id: String,
}

impl Agent {
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the agent again on its data directory, without a register code.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// Kills it and starts it again with these `drover agent` arguments.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        self.child = Some(spawn_agent_with(None, self.dir.path(), None, extra));
    }

    /// Waits for the process to exit by itself and returns its status code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns `drover agent`; `server`/`code` are passed when given.
pub fn spawn_agent(server: Option<&str>, dir: &Path, code: Option<&str>) -> Child {
    spawn_agent_with(server, dir, code, &[])
}

/// `spawn_agent` with more `drover agent` arguments.
pub fn spawn_agent_with(
    server: Option<&str>,
    dir: &Path,
    code: Option<&str>,
    extra: &[&str],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.arg("agent").arg("--data-dir").arg(dir).args(extra);
    if let Some(s) = server {
        cmd.arg("--server").arg(s);
    }
    if let Some(c) = code {
        cmd.arg("--register-code").arg(c);
    }
    cmd.env_remove("DROVER_SERVER")
        .env_remove("DROVER_REGISTER_CODE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("DROVER_TEST_AGENT_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    cmd.spawn().unwrap()
}

/// The instance id an agent saved after registering, if any.
pub fn saved_instance_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("state.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["instance_id"].as_str().map(str::to_string)
}

pub struct Harness {
    pub dir: TempDir,
    pub settings: Settings,
    /// Scheduler settings used when the server (re)starts.
    pub schedule: drover::scheduler::Settings,
    /// Webhook delivery timing used when the server (re)starts.
    pub webhooks: drover::notify::Settings,
    /// Connection limits, output cap and retention used when the server (re)starts.
    pub ops: drover::server::OpsSettings,
    pub server: Option<Running>,
    pub addr: std::net::SocketAddr,
    pub client: Client,
    pub secret_id: String,
    pub secret_key: String,
    pub code_value: String,
    pub agents: Vec<Agent>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(test_settings()).await
    }

    pub async fn start_with(settings: Settings) -> Harness {
        Self::start_full(settings, test_webhook_settings()).await
    }

    /// A server with these dispatch and webhook settings.
    pub async fn start_full(settings: Settings, webhooks: drover::notify::Settings) -> Harness {
        Self::start_all(settings, webhooks, Default::default()).await
    }

    /// A server with these dispatch, webhook and operational settings.
    pub async fn start_ops(ops: drover::server::OpsSettings) -> Harness {
        Self::start_all(test_settings(), test_webhook_settings(), ops).await
    }

    async fn start_all(
        settings: Settings,
        webhooks: drover::notify::Settings,
        ops: drover::server::OpsSettings,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        let (id, key) = drover::cli::admin::create_root_key(&data).unwrap();
        let schedule = drover::scheduler::Settings::default();
        let running = server::start(config(
            &data,
            "127.0.0.1:0",
            &settings,
            schedule,
            webhooks.clone(),
            ops.clone(),
        ))
        .await
        .unwrap();
        let addr = running.addr;
        let client = new_client(&format!("https://{addr}"), &id, &key, &running.cert_path);
        let code = client
            .call("CreateRegisterCode", &json!({"RegisterLimit": 100}))
            .await
            .unwrap();
        Harness {
            dir,
            settings,
            schedule,
            webhooks,
            ops,
            server: Some(running),
            addr,
            client,
            secret_id: id,
            secret_key: key,
            code_value: code["RegisterCodeValue"].as_str().unwrap().to_string(),
            agents: Vec::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A new client to this server with the given credentials.
    pub fn client_as(&self, id: &str, key: &str) -> Client {
        new_client(
            &self.url(),
            id,
            key,
            &self.data_dir().join("tls").join("cert.pem"),
        )
    }

    /// The raw JSON text of a call's `Response`, or of its error.
    pub async fn call_raw(&self, action: &str, params: Value) -> String {
        match self.client.call(action, &params).await {
            Ok(v) => v.to_string(),
            Err(e) => e.to_string(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub async fn call(&self, action: &str, params: Value) -> Value {
        match self.client.call(action, &params).await {
            Ok(v) => v,
            Err(e) => panic!("{action} {params}: {e}"),
        }
    }

    pub async fn call_err(&self, action: &str, params: Value) -> ClientError {
        match self.client.call(action, &params).await {
            Ok(v) => panic!("{action} {params} should fail but returned {v}"),
            Err(e) => e,
        }
    }

    /// Starts `n` agents with the harness's register code and waits until
    /// all are Online; returns their indices in `self.agents`.
    pub async fn add_agents(&mut self, n: usize) -> Vec<usize> {
        self.add_agents_with(n, &[]).await
    }

    /// `add_agents` with more `drover agent` arguments.
    pub async fn add_agents_with(&mut self, n: usize, extra: &[&str]) -> Vec<usize> {
        let code = self.code_value.clone();
        let mut idx = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let child = spawn_agent_with(Some(&self.url()), dir.path(), Some(&code), extra);
            self.agents.push(Agent {
                dir,
                child: Some(child),
                instance_id: String::new(),
            });
            idx.push(self.agents.len() - 1);
        }
        for &i in &idx {
            let d = self.agents[i].dir.path().to_path_buf();
            let id = wait_for("agent registration", Duration::from_secs(30), || {
                let d = d.clone();
                async move { saved_instance_id(&d) }
            })
            .await;
            self.agents[i].instance_id = id;
        }
        let ids: Vec<String> = idx
            .iter()
            .map(|&i| self.agents[i].instance_id.clone())
            .collect();
        self.wait_online(&ids).await;
        idx
    }

    pub async fn add_agent(&mut self) -> String {
        let i = self.add_agents(1).await[0];
        self.agents[i].instance_id.clone()
    }

    pub fn agent_ids(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.instance_id.clone()).collect()
    }

    /// `AgentStatus` of an instance (Online/Offline).
    pub async fn agent_status(&self, id: &str) -> String {
        let r = self
            .call(
                "DescribeAutomationAgentStatus",
                json!({"InstanceIds": [id]}),
            )
            .await;
        r["AutomationAgentSet"][0]["AgentStatus"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn wait_status(&self, ids: &[String], want: &str) {
        for id in ids {
            wait_for(
                &format!("{id} to be {want}"),
                Duration::from_secs(30),
                || async { (self.agent_status(id).await == want).then_some(()) },
            )
            .await;
        }
    }

    pub async fn wait_online(&self, ids: &[String]) {
        self.wait_status(ids, "Online").await;
    }

    /// RunCommand of a shell script; returns the invocation id.
    pub async fn run(&self, script: &str, ids: &[String], extra: Value) -> String {
        let mut p = json!({"Content": b64(script), "InstanceIds": ids});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                p[k] = v;
            }
        }
        let r = self.call("RunCommand", p).await;
        r["InvocationId"].as_str().unwrap().to_string()
    }

    /// All tasks of an invocation (with output inline when `hide_output` is false).
    pub async fn tasks(&self, inv: &str, hide_output: bool) -> Vec<Value> {
        let r = self
            .call(
                "DescribeInvocationTasks",
                json!({
                    "Filters": [{"Name": "invocation-id", "Values": [inv]}],
                    "HideOutput": hide_output,
                    "Limit": 100,
                }),
            )
            .await;
        r["InvocationTaskSet"].as_array().unwrap().clone()
    }

    pub async fn invocation(&self, inv: &str) -> Value {
        let r = self
            .call("DescribeInvocations", json!({"InvocationIds": [inv]}))
            .await;
        r["InvocationSet"][0].clone()
    }

    /// Waits until every task of `inv` is final; returns them with output.
    pub async fn wait_final(&self, inv: &str, timeout: Duration) -> Vec<Value> {
        wait_for(&format!("{inv} to finish"), timeout, || async {
            let ts = self.tasks(inv, false).await;
            let done = !ts.is_empty()
                && ts
                    .iter()
                    .all(|t| FINAL.contains(&t["TaskStatus"].as_str().unwrap_or("")));
            done.then_some(ts)
        })
        .await
    }

    /// Waits until some task of `inv` has status `want`; returns it.
    pub async fn wait_task_status(&self, inv: &str, want: &str, timeout: Duration) -> Value {
        wait_for(
            &format!("a task of {inv} to be {want}"),
            timeout,
            || async {
                self.tasks(inv, true)
                    .await
                    .into_iter()
                    .find(|t| t["TaskStatus"] == want)
            },
        )
        .await
    }

    /// Runs a script on one instance and returns its single final task.
    pub async fn run_one(&self, script: &str, id: &str, extra: Value) -> Value {
        let inv = self.run(script, &[id.to_string()], extra).await;
        self.wait_final(&inv, Duration::from_secs(30))
            .await
            .remove(0)
    }

    /// The whole output of a task, read through DescribeInvocationTaskOutput
    /// in pages of `page` bytes.
    pub async fn full_output(&self, task_id: &str, page: i64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let r = self
                .call(
                    "DescribeInvocationTaskOutput",
                    json!({"InvocationTaskId": task_id, "Offset": out.len(), "Limit": page}),
                )
                .await;
            let chunk = unb64(r["Output"].as_str().unwrap());
            let total = r["TotalSize"].as_i64().unwrap() as usize;
            out.extend_from_slice(&chunk);
            if out.len() >= total || chunk.is_empty() {
                assert_eq!(out.len(), total, "output pages must add up to TotalSize");
                return out;
            }
        }
    }

    /// Stops the server and starts a new one on the same data directory and
    /// address, then waits until every running agent is Online again.
    pub async fn restart_server(&mut self) {
        self.stop_server().await;
        self.start_server().await;
        let ids: Vec<String> = self
            .agents
            .iter()
            .filter(|a| a.child.is_some() && !a.instance_id.is_empty())
            .map(|a| a.instance_id.clone())
            .collect();
        self.wait_online(&ids).await;
    }

    pub async fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    pub async fn start_server(&mut self) {
        let cfg = config(
            &self.data_dir(),
            &self.addr.to_string(),
            &self.settings,
            self.schedule,
            self.webhooks.clone(),
            self.ops.clone(),
        );
        // The old listener's port may take a moment to be free again.
        let running = wait_for(
            "the server to listen again",
            Duration::from_secs(20),
            || {
                let cfg = cfg.clone();
                async move { server::start(cfg).await.ok() }
            },
        )
        .await;
        assert_eq!(running.addr, self.addr);
        // The kept-alive connection belonged to the old server.
        self.client = self.client_as(&self.secret_id, &self.secret_key);
        self.server = Some(running);
    }

    /// Counts of (commands, invocations) for "nothing changed" checks.
    pub async fn counts(&self) -> (i64, i64) {
        let c = self.call("DescribeCommands", json!({})).await;
        let i = self.call("DescribeInvocations", json!({})).await;
        (
            c["TotalCount"].as_i64().unwrap(),
            i["TotalCount"].as_i64().unwrap(),
        )
    }

    pub async fn instance_count(&self) -> i64 {
        let r = self.call("DescribeRegisterInstances", json!({})).await;
        r["TotalCount"].as_i64().unwrap()
    }
}

pub fn new_client(url: &str, id: &str, key: &str, cert: &Path) -> Client {
    Client::new(url, id, key, &Trust::CaFile(cert.to_path_buf())).unwrap()
}

/// The TAT error code of a failed call ("" when the call did not get an answer).
pub fn code(e: &ClientError) -> &str {
    e.code().unwrap_or("")
}

fn config(
    data: &Path,
    listen: &str,
    settings: &Settings,
    schedule: drover::scheduler::Settings,
    webhooks: drover::notify::Settings,
    ops: drover::server::OpsSettings,
) -> Config {
    Config {
        data_dir: data.to_path_buf(),
        listen: listen.to_string(),
        tls_cert: None,
        tls_key: None,
        region: "ap-guangzhou".into(),
        settings: settings.clone(),
        schedule,
        webhooks,
        ops,
        allow_unsigned_payload: false,
    }
}

/// Decoded inline output of a task.
pub fn output_of(task: &Value) -> String {
    String::from_utf8(unb64(task["TaskResult"]["Output"].as_str().unwrap_or(""))).unwrap()
}

/// True when some process's command line contains `marker`.
pub fn process_alive(marker: &str) -> bool {
    Command::new("pgrep")
        .arg("-f")
        .arg(marker)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
