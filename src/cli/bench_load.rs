//! API-only load for `drover bench-scale --load-secs`: C clients call
//! RunCommand back to back on offline instances for S seconds, so nothing
//! executes and what is measured is the API, the policy decision and the
//! store's batching writer. Prints calls/s, tasks/s and call latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

use crate::client::Client;
use crate::tls::Trust;

/// How to load the server.
pub struct Load {
    pub url: String,
    pub secret_id: String,
    pub secret_key: String,
    pub trust: Trust,
    pub secs: u64,
    pub per_call: usize,
    pub clients: usize,
}

/// Runs the load over `ids` (offline instances) and prints the figures.
pub async fn run(l: Load, ids: Vec<String>) -> anyhow::Result<()> {
    let ids = Arc::new(ids);
    let until = Instant::now() + Duration::from_secs(l.secs);
    let t0 = Instant::now();
    let mut lanes = Vec::new();
    for lane in 0..l.clients.max(1) {
        let c = Client::new(&l.url, &l.secret_id, &l.secret_key, &l.trust)?;
        let (ids, per_call) = (ids.clone(), l.per_call.clamp(1, 200));
        lanes.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut at = lane * per_call;
            let content = B64.encode("true");
            while Instant::now() < until {
                let part: Vec<&String> =
                    (0..per_call).map(|i| &ids[(at + i) % ids.len()]).collect();
                at += per_call * 7;
                let q0 = Instant::now();
                c.call(
                    "RunCommand",
                    &json!({"Content": content, "InstanceIds": part}),
                )
                .await?;
                lat.push(q0.elapsed().as_secs_f64());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for lane in lanes {
        lat.extend(lane.await??);
    }
    let took = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let calls = lat.len() as f64;
    let per_call = l.per_call.clamp(1, 200);
    println!(
        "  API load               {} clients x {:.1} s, RunCommand of {per_call} offline instances each",
        l.clients.max(1),
        took
    );
    println!(
        "                         {:.0} calls/s, {:.0} tasks/s created; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        calls / took,
        calls * per_call as f64 / took,
        super::stats::pct(&lat, 0.5) * 1e3,
        super::stats::pct(&lat, 0.99) * 1e3,
        super::stats::pct(&lat, 1.0) * 1e3
    );
    Ok(())
}
