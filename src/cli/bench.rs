//! `drover bench-scale N` (hidden; run through `scripts/bench-scale`): one
//! real server process and N simulated agents in this process
//! (`bench_sim`), then the figures of issue 12 — time until all are
//! connected, server memory and idle CPU, reconnection after a server
//! restart (attempts per agent: the backoff and jitter at work), a
//! RunCommand fan-out to all N, paging DescribeInvocationTasks over the
//! tasks, and another client's DescribeInvocations latency meanwhile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::bench_sim::{self, SimConfig, SimStats};
use super::stats::pct;
use crate::agent::link::Endpoint;
use crate::client::Client;
use crate::tls::Trust;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Number of simulated agents.
    pub n: usize,
    /// Scratch directory for the server's data (must not exist yet).
    #[arg(long)]
    pub work: PathBuf,
    /// Spread the first connections over this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub ramp_ms: u64,
    /// Seconds to sample idle CPU with everything connected.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// API-only load instead of the rest: disconnect the agents, then
    /// call RunCommand on the offline instances for this many seconds.
    #[arg(long, default_value_t = 0)]
    pub load_secs: u64,
    /// Instances per RunCommand of the load.
    #[arg(long, default_value_t = 10)]
    pub load_per_call: usize,
    /// Concurrent API clients of the load.
    #[arg(long, default_value_t = 8)]
    pub load_clients: usize,
}

/// InstanceIds per RunCommand (TAT's limit).
const PER_CALL: usize = 200;

struct Server {
    child: Child,
    dir: PathBuf,
}

impl Server {
    fn start(dir: &Path, listen: &str) -> anyhow::Result<Server> {
        let _ = std::fs::remove_file(dir.join("server.addr"));
        let _ = std::fs::remove_file(dir.join("metrics.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))?;
        // DROVER_BENCH_SERVER_BIN: another build's server under the same
        // simulator and measurements (an A/B of server builds).
        let exe = match std::env::var_os("DROVER_BENCH_SERVER_BIN") {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::current_exe()?,
        };
        let child = Command::new(exe)
            .args([
                "server",
                "--listen",
                listen,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            // Every simulated agent connects from 127.0.0.1, where a real
            // fleet has one address per machine: lift the per-source bound.
            .args(["--max-connections-per-source", "1000000"])
            .args(["--max-connections", "1000000"])
            .arg("--data-dir")
            .arg(dir)
            .env("DROVER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the server")?;
        Ok(Server {
            child,
            dir: dir.to_path_buf(),
        })
    }

    async fn addr(&self, file: &str) -> anyhow::Result<String> {
        let path = self.dir.join(file);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = std::fs::read_to_string(&path) {
                if !s.trim().is_empty() {
                    return Ok(s.trim().to_string());
                }
            }
            if Instant::now() > until {
                bail!("the server wrote no {file}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SIGTERM, so the server shuts down as in production.
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let _ = self.child.wait();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One series of the server's /metrics.
async fn metric(addr: &str, series: &str) -> anyhow::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

fn proc_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// utime + stime of a process in clock ticks (100 per second on Linux).
fn proc_cpu_ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = s.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

async fn wait_connected(maddr: &str, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let c = metric(maddr, "drover_agents_connected")
            .await
            .unwrap_or(0.0);
        if c as usize >= n {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > limit {
            bail!("only {c} of {n} agents connected after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(d: f64) -> String {
    format!("{:.1} ms", d * 1e3)
}

pub fn main(a: BenchArgs) -> anyhow::Result<ExitCode> {
    super::init_tracing_quiet();
    if a.n == 0 {
        bail!("N must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(a))?;
    Ok(ExitCode::SUCCESS)
}

async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let sdir = a.work.join("server");
    let (id, key) = super::admin::create_root_key(&sdir)?;
    let (id2, key2) = super::admin::create_root_key(&sdir)?;
    let mut server = Server::start(&sdir, "127.0.0.1:0")?;
    let addr = server.addr("server.addr").await?;
    let maddr = server.addr("metrics.addr").await?;
    let url = format!("https://{addr}");
    let trust = Trust::CaFile(sdir.join("tls").join("cert.pem"));
    let client = Client::new(&url, &id, &key, &trust)?;
    let code = client
        .call(
            "CreateRegisterCode",
            &json!({"RegisterLimit": a.n.min(10_000)}),
        )
        .await?;
    let value = code["RegisterCodeValue"].as_str().unwrap_or_default();
    let (fp, secret) =
        crate::protocol::parse_register_code(value).context("malformed register code")?;
    let cfg = SimConfig {
        endpoint: Endpoint::parse(&url)?,
        tls: Arc::new(Trust::pinned_hex(fp)?.client_config()?),
        secret: secret.to_string(),
    };
    let stats = Arc::new(SimStats::default());
    let stop = CancellationToken::new();
    println!(
        "drover scale benchmark: {} simulated agents, 1 server ({} CPUs)",
        a.n,
        num_cpus()
    );

    // 1. First connection (registration) of every agent.
    let t0 = Instant::now();
    for i in 0..a.n {
        tokio::spawn(bench_sim::agent(cfg.clone(), stats.clone(), stop.clone()));
        if a.ramp_ms > 0 && i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(a.ramp_ms * 100 / a.n as u64)).await;
        }
    }
    let limit = Duration::from_secs(120 + a.n as u64 / 50);
    wait_connected(&maddr, a.n, limit).await?;
    println!(
        "  registration           all {} connected and Online {:.2} s after the first attempt \
         ({} attempts, {} failed, {} of them refused: no server listening)",
        a.n,
        t0.elapsed().as_secs_f64(),
        stats.get(&stats.attempts),
        stats.get(&stats.failures),
        stats.get(&stats.refused)
    );

    if a.load_secs > 0 {
        stop.cancel();
        let ids = instance_ids(&client, a.n).await?;
        let until = Instant::now() + Duration::from_secs(60);
        while metric(&maddr, "drover_agents_connected").await? > 0.0 {
            if Instant::now() > until {
                bail!("agents still connected after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let load = super::bench_load::Load {
            url,
            secret_id: id,
            secret_key: key,
            trust,
            secs: a.load_secs,
            per_call: a.load_per_call,
            clients: a.load_clients,
        };
        super::bench_load::run(load, ids).await?;
        let batch = metric(&maddr, "drover_store_batch_jobs_sum").await?
            / metric(&maddr, "drover_store_batch_jobs_count")
                .await?
                .max(1.0);
        println!("                         store: mean {batch:.1} jobs per transaction");
        server.stop();
        return Ok(());
    }

    // 2. Idle: memory and CPU with everything connected.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = proc_cpu_ticks(server.pid());
    tokio::time::sleep(Duration::from_secs(a.idle_secs)).await;
    let c1 = proc_cpu_ticks(server.pid());
    let idle_cpu = (c1 - c0) as f64 / 100.0 / a.idle_secs as f64 * 100.0;
    println!(
        "  server idle            RSS {:.1} MiB, CPU {idle_cpu:.1}% of one core over {} s \
         (heartbeats every {} s); this process (all agents) RSS {:.1} MiB",
        proc_rss_mib(server.pid()),
        a.idle_secs,
        crate::protocol::HEARTBEAT_SECS,
        proc_rss_mib(std::process::id())
    );

    // 3. Server restart: everyone reconnects with backoff and jitter.
    let attempts0 = stats.get(&stats.attempts);
    let (failures0, refused0) = (stats.get(&stats.failures), stats.get(&stats.refused));
    server.stop();
    let down = Instant::now();
    // The same address: the agents know it.
    let mut server = Server::start(&sdir, &addr)?;
    server.addr("server.addr").await?;
    let maddr = server.addr("metrics.addr").await?;
    let up = down.elapsed();
    let back = wait_connected(&maddr, a.n, limit).await?;
    let attempts = stats.get(&stats.attempts) - attempts0;
    println!(
        "  server restart         all {} Online {:.2} s after the new server was up \
         (restart took {:.2} s); {} connection attempts = {:.2} per agent; {} failed, \
         {} of them refused while no server listened",
        a.n,
        back.as_secs_f64(),
        up.as_secs_f64(),
        attempts,
        attempts as f64 / a.n as f64,
        stats.get(&stats.failures) - failures0,
        stats.get(&stats.refused) - refused0
    );
    println!(
        "  server after reconnect RSS {:.1} MiB",
        proc_rss_mib(server.pid())
    );

    // 4. Fan-out to all N, while another client reads the invocation list.
    let ids = instance_ids(&client, a.n).await?;
    let client = Arc::new(client);
    let other = Client::new(&url, &id2, &key2, &trust)?;
    let other_stop = CancellationToken::new();
    let reader = tokio::spawn(reader_loop(other, other_stop.clone()));
    let window0 = window_sums(&maddr).await?;
    let tasks0 = stats.get(&stats.tasks);
    let t0 = Instant::now();
    let mut calls = Vec::new();
    let lanes = 4;
    let chunks: Vec<Vec<String>> = ids.chunks(PER_CALL).map(<[String]>::to_vec).collect();
    let per_lane = chunks.len().div_ceil(lanes);
    for lane in chunks.chunks(per_lane.max(1)) {
        let lane = lane.to_vec();
        let c = Client::new(&url, &id, &key, &trust)?;
        calls.push(tokio::spawn(async move {
            let mut invs = Vec::new();
            for part in lane {
                let r = c
                    .call(
                        "RunCommand",
                        &json!({"Content": B64.encode("true"), "InstanceIds": part}),
                    )
                    .await?;
                invs.push(r["InvocationId"].as_str().unwrap_or_default().to_string());
            }
            anyhow::Ok(invs)
        }));
    }
    let mut invs = Vec::new();
    for c in calls {
        invs.extend(c.await??);
    }
    let sent = t0.elapsed();
    wait_success(&client, &invs).await?;
    let done = t0.elapsed();
    other_stop.cancel();
    let mut lat = reader.await?;
    let window1 = window_sums(&maddr).await?;
    lat.sort_by(f64::total_cmp);
    println!(
        "  RunCommand -> SUCCESS  {:.2} s for {} tasks in {} invocations (calls sent in {:.2} s); \
         {} tasks answered by the simulator",
        done.as_secs_f64(),
        ids.len(),
        invs.len(),
        sent.as_secs_f64(),
        stats.get(&stats.tasks) - tasks0
    );
    println!(
        "  other client meanwhile DescribeInvocations x{}: p50 {} p99 {} max {}",
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 1.0))
    );
    // Where a read call's time went meanwhile: every API call waits for its
    // audit row's write (the one writer) before it answers.
    let mean = |i: usize| {
        let n = window1[i].0 - window0[i].0;
        (
            n,
            if n > 0.0 {
                (window1[i].1 - window0[i].1) / n
            } else {
                0.0
            },
        )
    };
    let (n_di, di) = mean(0);
    let (n_audit, audit) = mean(1);
    let (n_commit, commit) = mean(2);
    println!(
        "  server during fan-out  DescribeInvocations mean {} (n={n_di}); audit row write of the calls other than RunCommand mean {} (n={n_audit}); store commit mean {} (n={n_commit})",
        ms(di),
        ms(audit),
        ms(commit)
    );

    // 5. Paging over the tasks.
    let t0 = Instant::now();
    let (mut pages, mut seen, mut worst) = (0, 0usize, 0f64);
    for inv in &invs {
        let mut offset = 0;
        loop {
            let q0 = Instant::now();
            let r = client
                .call(
                    "DescribeInvocationTasks",
                    &json!({"Filters": [{"Name": "invocation-id", "Values": [inv]}],
                            "HideOutput": true, "Limit": 100, "Offset": offset}),
                )
                .await?;
            worst = worst.max(q0.elapsed().as_secs_f64());
            pages += 1;
            let got = r["InvocationTaskSet"].as_array().map_or(0, Vec::len);
            seen += got;
            offset += 100;
            if got == 0 || offset >= r["TotalCount"].as_u64().unwrap_or(0) as usize {
                break;
            }
        }
    }
    let took = t0.elapsed().as_secs_f64();
    println!(
        "  DescribeInvocationTasks {seen} tasks in {pages} pages of 100: {:.2} s, mean {} per page, max {}",
        took,
        ms(took / pages.max(1) as f64),
        ms(worst)
    );
    println!(
        "  server RSS after       {:.1} MiB",
        proc_rss_mib(server.pid())
    );
    server_means(&maddr).await?;
    stop.cancel();
    server.stop();
    if seen != ids.len() {
        bail!("paging saw {seen} tasks, expected {}", ids.len());
    }
    Ok(())
}

/// (count, sum) of the series the fan-out window is measured by:
/// DescribeInvocations calls, audit-row writes, store commits.
async fn window_sums(maddr: &str) -> anyhow::Result<[(f64, f64); 3]> {
    let mut out = [(0.0, 0.0); 3];
    for (slot, (name, labels)) in out.iter_mut().zip([
        (
            "drover_api_request_seconds",
            "{action=\"DescribeInvocations\"}",
        ),
        ("drover_task_stage_seconds", "{stage=\"audit\"}"),
        ("drover_store_commit_seconds", ""),
    ]) {
        *slot = (
            metric(maddr, &format!("{name}_count{labels}")).await?,
            metric(maddr, &format!("{name}_sum{labels}")).await?,
        );
    }
    Ok(out)
}

/// Count and mean of one histogram series of the server's /metrics.
async fn hist_mean(maddr: &str, name: &str, labels: &str) -> anyhow::Result<(f64, f64)> {
    let l = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let sum = metric(maddr, &format!("{name}_sum{l}")).await?;
    let count = metric(maddr, &format!("{name}_count{l}")).await?;
    Ok((count, if count > 0.0 { sum / count } else { 0.0 }))
}

/// Means of the server's own histograms since its (re)start: where the
/// server spent the fan-out.
async fn server_means(maddr: &str) -> anyhow::Result<()> {
    let api = "drover_api_request_seconds";
    let stage = "drover_task_stage_seconds";
    let mut line = String::from("  server means           ");
    for (label, name, labels) in [
        ("RunCommand", api, "action=\"RunCommand\""),
        ("DescribeInvocations", api, "action=\"DescribeInvocations\""),
        ("store write", stage, "stage=\"store\""),
        ("push", stage, "stage=\"push\""),
        ("audit (other calls)", stage, "stage=\"audit\""),
        ("result commit", stage, "stage=\"commit\""),
        ("store commit", "drover_store_commit_seconds", ""),
    ] {
        let (n, m) = hist_mean(maddr, name, labels).await?;
        line.push_str(&format!("{label} {} (n={n}); ", ms(m)));
    }
    let (_, jobs) = hist_mean(maddr, "drover_store_batch_jobs", "").await?;
    line.push_str(&format!("{jobs:.1} jobs per store transaction"));
    println!("{line}");
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn instance_ids(c: &Client, n: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let r = c
            .call(
                "DescribeRegisterInstances",
                &json!({"Limit": 100, "Offset": ids.len()}),
            )
            .await?;
        let set = r["RegisterInstanceSet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if set.is_empty() {
            break;
        }
        ids.extend(
            set.iter()
                .filter_map(|i| i["InstanceId"].as_str().map(String::from)),
        );
    }
    if ids.len() != n {
        bail!("{} instances registered, expected {n}", ids.len());
    }
    Ok(ids)
}

async fn wait_success(c: &Client, invs: &[String]) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let mut done = 0;
        for part in invs.chunks(100) {
            let r = c
                .call(
                    "DescribeInvocations",
                    &json!({"InvocationIds": part, "Limit": 100}),
                )
                .await?;
            for i in r["InvocationSet"].as_array().cloned().unwrap_or_default() {
                match i["InvocationStatus"].as_str() {
                    Some("SUCCESS") => done += 1,
                    Some("FAILED" | "PARTIAL_FAILED" | "TIMEOUT" | "CANCELLED") => {
                        bail!("invocation ended {}", i["InvocationStatus"])
                    }
                    _ => {}
                }
            }
        }
        if done == invs.len() {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("{done} of {} invocations SUCCESS after 300 s", invs.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Another API user: DescribeInvocations in a loop; the latencies (s).
async fn reader_loop(c: Client, stop: CancellationToken) -> Vec<f64> {
    let mut lat = Vec::new();
    while !stop.is_cancelled() {
        let t = Instant::now();
        let r: Result<Value, _> = c.call("DescribeInvocations", &json!({"Limit": 20})).await;
        if r.is_ok() {
            lat.push(t.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lat
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_from_proc() {
        let me = std::process::id();
        assert!(proc_rss_mib(me) > 0.0);
        let busy = (0..2_000_000u64).fold(0u64, |a, x| a.wrapping_add(x * x));
        assert!(busy > 0);
        let _ = proc_cpu_ticks(me);
        assert_eq!(proc_cpu_ticks(u32::MAX), 0);
    }
}
