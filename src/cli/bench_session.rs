//! `drover bench-session` (hidden; `scripts/bench-session` builds the
//! release binary and runs it): interactive session speed, end to end.
//!
//! It starts a real `drover server` and a real `drover agent` (this binary,
//! as child processes, so their memory is measured apart from the client),
//! signs in to the console and opens a root terminal over
//! `/console/session`, exactly as a browser does. Then:
//! 1. throughput: `cat` of a file of `--mib` MiB (base64 text) through the
//!    shell's terminal, the agent, the server and the WebSocket, counted
//!    until a marker printed after it; the server's and agent's resident
//!    memory is sampled meanwhile;
//! 2. keystroke round trip: `--keys` times, one byte typed at the shell's
//!    prompt and the time until its echo arrives (then erased).
//!
//! Everything it starts and its temporary directory are removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args, Debug)]
pub struct BenchSessionArgs {
    /// Size of the file `cat` prints, in MiB.
    #[arg(long, default_value_t = 512)]
    pub mib: u64,
    /// Keystrokes timed.
    #[arg(long, default_value_t = 300)]
    pub keys: usize,
}

/// Kills a child when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the work directory when dropped.
struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

async fn wait_file(path: &Path, within: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if !s.trim().is_empty() {
                return Ok(s.trim().to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("{} did not appear", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls(addr: &str, cfg: &Arc<rustls::ClientConfig>) -> anyhow::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    Ok(tokio_rustls::TlsConnector::from(cfg.clone())
        .connect(name, tcp)
        .await?)
}

async fn sign_in(addr: &str, cfg: &Arc<rustls::ClientConfig>, pw: &str) -> anyhow::Result<String> {
    let body = json!({"UserName": "root", "Password": pw}).to_string();
    let mut s = tls(addr, cfg).await?;
    let req = format!(
        "POST /console/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply);
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.split(';').next().unwrap_or("").to_string())
        })
        .ok_or_else(|| anyhow!("console sign-in failed: {text}"))
}

type Ws = tokio_tungstenite::WebSocketStream<Tls>;

/// Reads binary frames until `needle` appears in what arrived; returns the
/// bytes received.
async fn read_until(ws: &mut Ws, needle: &[u8], within: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + within;
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, ws.next()).await.map_err(|_| {
            anyhow!(
                "timed out waiting for {:?}",
                String::from_utf8_lossy(needle)
            )
        })?;
        match m {
            Some(Ok(Message::Binary(b))) => {
                total += b.len() as u64;
                tail.extend_from_slice(&b);
                if tail.windows(needle.len()).any(|w| w == needle) {
                    return Ok(total);
                }
                let keep = tail.len().saturating_sub(needle.len());
                tail.drain(..keep);
            }
            Some(Ok(Message::Text(t))) if t.contains("\"error\"") || t.contains("\"exit\"") => {
                bail!("the session ended: {t}")
            }
            Some(Ok(_)) => {}
            _ => bail!("the socket closed"),
        }
    }
}

pub fn main(a: BenchSessionArgs) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(a))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run(a: BenchSessionArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let work = Work(std::env::temp_dir().join(crate::ids::new_id("bench-session")));
    let data = work.0.join("server");
    let agent_dir = work.0.join("agent");
    let (id, key) = super::admin::create_root_key(&data)?;
    let password = format!("Bench-{}", crate::ids::new_id("pw"));
    super::admin::set_root_password(&data, &password)?;
    let quiet = |c: &mut Command| {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("DROVER_LOG", "warn");
    };
    let mut cmd = Command::new(&exe);
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    quiet(&mut cmd);
    let server = Proc(cmd.spawn().context("starting the server")?);
    let addr = wait_file(&data.join("server.addr"), Duration::from_secs(60)).await?;
    let fp = crate::tls::load_or_generate(&data)?.fingerprint();
    let trust = crate::tls::Trust::pinned_hex(&fp)?;
    let cfg = Arc::new(trust.client_config()?);
    let url = format!("https://{addr}");
    let client = crate::client::Client::new(&url, &id, &key, &trust)?;
    let code = client
        .call("CreateRegisterCode", &json!({"RegisterLimit": 1}))
        .await?;
    let code = code["RegisterCodeValue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut cmd = Command::new(&exe);
    cmd.args([
        "agent",
        "--server",
        &url,
        "--register-code",
        &code,
        "--data-dir",
    ])
    .arg(&agent_dir)
    .env_remove("DROVER_REGISTER_CODE");
    quiet(&mut cmd);
    let agent = Proc(cmd.spawn().context("starting the agent")?);
    let state = wait_file(&agent_dir.join("state.json"), Duration::from_secs(60)).await?;
    let state: serde_json::Value = serde_json::from_str(&state)?;
    let instance = state["instance_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cookie = sign_in(&addr, &cfg, &password).await?;

    // The agent may need a moment after registering to be online.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ws = loop {
        let mut req = format!(
            "wss://{addr}/console/session?InstanceId={instance}&User=root&Cols=200&Rows=50"
        )
        .into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        req.headers_mut()
            .insert("origin", format!("https://{addr}").parse()?);
        let (mut ws, _) = tokio_tungstenite::client_async(req, tls(&addr, &cfg).await?).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"opened\"") => break ws,
            other if Instant::now() > deadline => bail!("no session: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };

    let file = work.0.join("big.txt");
    let raw = a.mib * 1024 * 1024 / 4 * 3;
    let prep = format!(
        "head -c {raw} /dev/zero | base64 > {}; echo READY-$((40+2))\r",
        file.display()
    );
    ws.send(Message::Binary(prep.into_bytes())).await?;
    read_until(&mut ws, b"READY-42", Duration::from_secs(300)).await?;
    let size = std::fs::metadata(&file)?.len();

    // 1. Throughput, with the server's and agent's memory sampled.
    let (spid, apid) = (server.0.id(), agent.0.id());
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peaks = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let (mut s, mut a) = (0, 0);
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                s = rss_kib(spid, "VmRSS:").max(s);
                a = rss_kib(apid, "VmRSS:").max(a);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (s, a)
        })
    };
    let cat = format!("cat {}; echo DONE-$((40+4))\r", file.display());
    let t0 = Instant::now();
    ws.send(Message::Binary(cat.into_bytes())).await?;
    let got = read_until(&mut ws, b"DONE-44", Duration::from_secs(600)).await?;
    let secs = t0.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (srv_rss, agent_rss) = peaks.await.unwrap_or((0, 0));
    // The prompt, before timing keys at it.
    read_until(&mut ws, b"# ", Duration::from_secs(30)).await?;
    let mib = got as f64 / (1024.0 * 1024.0);
    println!(
        "throughput: cat of {:.0} MiB file: {mib:.1} MiB received in {secs:.2} s = {:.1} MiB/s \
         (target >= 50)",
        size as f64 / (1024.0 * 1024.0),
        mib / secs
    );
    println!(
        "memory during cat (peak VmRSS): server {:.1} MiB, agent {:.1} MiB",
        srv_rss as f64 / 1024.0,
        agent_rss as f64 / 1024.0
    );

    // 2. Keystroke round trips at the prompt.
    let mut rtt = Vec::with_capacity(a.keys);
    for _ in 0..a.keys {
        let t = Instant::now();
        ws.send(Message::Binary(b"x".to_vec())).await?;
        read_until(&mut ws, b"x", Duration::from_secs(10)).await?;
        rtt.push(t.elapsed());
        ws.send(Message::Binary(vec![0x7f])).await?;
        // The erase echoes as a backspace (and maybe an erase-line).
        read_until(&mut ws, b"\x08", Duration::from_secs(10)).await?;
    }
    rtt.sort();
    let ms: Vec<f64> = rtt.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let pct = |p: f64| super::stats::pct(&ms, p);
    println!(
        "keystroke round trip ({} keys): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 5)",
        rtt.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let _ = ws.send(Message::Binary(b"exit\r".to_vec())).await;
    let _ = ws.close(None).await;
    drop(agent);
    drop(server);
    Ok(())
}
