//! The metrics endpoint serves real values after a real run: a server, a
//! real agent process, a command with output, then `GET /metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_values_of_a_real_run() {
    let mut h = Harness::start().await;
    let running = h.server.as_ref().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(drover::server::metrics::serve(
        listener,
        running.api.clone(),
        running.shutdown.clone(),
    ));

    let (_, before) = get(addr, "/metrics").await;
    assert_eq!(value(&before, "drover_agents_connected"), 0.0);
    assert!(!before.contains("drover_tasks{"), "{before}");

    let id = h.add_agent().await;
    let inv = h.run("echo hello; echo world >&2", &[id], json!({})).await;
    let tasks = h.wait_final(&inv, Duration::from_secs(60)).await;
    assert_eq!(tasks[0]["TaskStatus"], "SUCCESS", "{tasks:?}");

    let (head, text) = get(addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(value(&text, "drover_agents_connected"), 1.0);
    assert_eq!(value(&text, "drover_tasks{status=\"SUCCESS\"}"), 1.0);
    assert_eq!(value(&text, "drover_task_completion_seconds_count"), 1.0);
    assert_eq!(value(&text, "drover_task_delivery_seconds_count"), 1.0);
    assert!(value(&text, "drover_task_completion_seconds_sum") > 0.0);
    assert!(value(&text, "drover_agent_connections_total") >= 1.0);
    assert!(value(&text, "drover_agent_messages_total") >= 3.0);
    assert!(value(&text, "drover_store_batch_jobs_count") >= 2.0);
    assert!(value(&text, "drover_store_commit_seconds_count") >= 2.0);
    assert!(value(&text, "drover_last_task_end_timestamp_seconds") > 1.6e9);
    assert_eq!(
        value(
            &text,
            "drover_api_request_seconds_count{action=\"RunCommand\"}"
        ),
        1.0
    );
    // The agent's stage stamps arrived with the result.
    for stage in [
        "store",
        "push",
        "deliver",
        "journal",
        "spawn",
        "first_output",
        "run",
        "finish",
        "report",
        "commit",
    ] {
        let n = value(
            &text,
            &format!("drover_task_stage_seconds_count{{stage=\"{stage}\"}}"),
        );
        assert!(n >= 1.0, "stage {stage}: {n}");
    }
    let run_sum = value(&text, "drover_task_stage_seconds_sum{stage=\"run\"}");
    assert!(run_sum > 0.0 && run_sum < 60.0, "run took {run_sum} s");

    let (head, _) = get(addr, "/other").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}
