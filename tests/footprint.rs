//! Streaming a 200 MB output through a real agent keeps both sides' memory
//! bounded: output flows in chunks (agent pipe → journal → WebSocket →
//! store, which keeps up to its per-task cap), never whole. Peak RSS is
//! read from /proc (VmHWM).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::json;

const MIB: u64 = 1024 * 1024;
const OUTPUT: u64 = 200 * MIB;

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_output_streams_in_bounded_memory() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let agent_pid = h.agents[0].child.as_ref().unwrap().id();
    let me = std::process::id();
    let server_before = status_kib(me, "VmRSS:") * 1024;
    let inv = h
        .run(
            &format!("head -c {OUTPUT} /dev/zero | tr '\\0' x"),
            std::slice::from_ref(&id),
            json!({"Timeout": 600}),
        )
        .await;
    let tasks = h.wait_final(&inv, Duration::from_secs(600)).await;
    let t = &tasks[0];
    assert_eq!(t["TaskStatus"], "SUCCESS", "{t}");
    assert_eq!(t["TaskResult"]["Dropped"], OUTPUT - 24 * 1024, "{t}");
    let agent_peak = status_kib(agent_pid, "VmHWM:") * 1024;
    let server_peak = status_kib(me, "VmHWM:") * 1024;
    eprintln!(
        "200 MiB output: agent peak RSS {:.1} MiB, server (test process) peak {:.1} MiB from {:.1} MiB",
        agent_peak as f64 / MIB as f64,
        server_peak as f64 / MIB as f64,
        server_before as f64 / MIB as f64
    );
    // Both bounds are far below the output's size: holding it whole (or
    // its base64) anywhere would break them.
    assert!(
        agent_peak < 64 * MIB,
        "agent peak RSS {} MiB",
        agent_peak / MIB
    );
    assert!(
        server_peak < server_before + 96 * MIB,
        "server (test process) peak RSS {} MiB, {} MiB before",
        server_peak / MIB,
        server_before / MIB
    );
    // The store keeps what its per-task cap allows (all of it without a
    // cap), ending with the output's last bytes.
    let first = h
        .call(
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": t["InvocationTaskId"], "Offset": 0, "Limit": 10}),
        )
        .await;
    let total = first["TotalSize"].as_u64().unwrap();
    assert!(total > 1 << 20 && total <= OUTPUT, "{first}");
    let r = h
        .call(
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": t["InvocationTaskId"], "Offset": total - 10, "Limit": 100}),
        )
        .await;
    assert_eq!(common::unb64(r["Output"].as_str().unwrap()), b"xxxxxxxxxx");
}
