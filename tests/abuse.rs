//! Hostile load against a real server: half-sent requests from one source
//! (slowloris), slow bodies, and oversized messages before authentication.
//! Each test checks that the server stays answerable for others and that
//! what the attacker holds is closed by the server within its bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Harness;
use drover::server::OpsSettings;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Short limits, so the test sees the server act within seconds.
fn tight() -> OpsSettings {
    let mut ops = OpsSettings::default();
    ops.net.per_source = 64;
    ops.net.pending_per_source = 32;
    ops.net.header_timeout = Duration::from_secs(3);
    ops.net.request_timeout = Duration::from_secs(4);
    ops
}

/// A TCP connection to `to` from the loopback address `from`, so one test
/// can play several sources.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{from}:0").parse().unwrap())?;
    s.connect(to).await
}

/// Resolves when the server has closed `s` (EOF or reset).
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn tls_to(h: &Harness, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = drover::tls::Trust::CaFile(h.data_dir().join("tls").join("cert.pem"))
        .client_config()
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_from_one_source_do_not_take_the_server_down() {
    let mut h = Harness::start_ops(tight()).await;
    let id = h.add_agent().await;
    // A baseline call, so "quickly" means relative to this machine's speed.
    let t = Instant::now();
    h.call("DescribeRegions", json!({})).await;
    let baseline = t.elapsed();

    // 300 connections from 127.0.0.2 that start a TLS handshake and stall.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = connect_from("127.0.0.2", h.addr).await {
            let _ = s.write_all(&[0x16, 0x03, 0x01]).await;
            stalled.push(s);
        }
    }
    // Five more from 127.0.0.3 that finish TLS and send half a header.
    let mut half = Vec::new();
    for _ in 0..5 {
        let tcp = connect_from("127.0.0.3", h.addr).await.unwrap();
        let mut s = tls_to(&h, tcp).await;
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
            .await
            .unwrap();
        half.push(s);
    }
    let started = Instant::now();
    // Only the per-source limit's worth of them is still open: 32 pending
    // (in the TLS handshake) and the rest waiting for one of those slots
    // without any TLS work (the check can only err towards fewer: anything
    // it misses closes later anyway).
    let mut open = 0;
    for s in stalled.iter_mut() {
        let mut b = [0u8; 16];
        if tokio::time::timeout(Duration::from_millis(20), s.read(&mut b))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    assert!(
        open <= 64,
        "{open} stalled connections from one source were kept"
    );

    // Meanwhile a normal client (127.0.0.1) and the agent are served.
    let t = Instant::now();
    h.call("DescribeRegions", json!({})).await;
    let during = t.elapsed();
    assert!(
        during < baseline * 20 + Duration::from_secs(5),
        "API call took {during:?} during the flood (baseline {baseline:?})"
    );
    let task = h.run_one("echo still-here", &id, json!({})).await;
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");
    // A new agent reaches the WebSocket endpoint and registers meanwhile.
    let newcomer = h.add_agent().await;
    let task = h.run_one("echo newcomer", &newcomer, json!({})).await;
    assert_eq!(task["TaskStatus"], "SUCCESS", "{task}");

    // Every stalled connection is closed by the server: those over the
    // per-source limit at once, the others when the header timeout ends.
    let limit = Duration::from_secs(3) + Duration::from_secs(20);
    for s in stalled.iter_mut() {
        tokio::time::timeout(limit, closed_by_server(s))
            .await
            .expect("a stalled TLS handshake was not closed");
    }
    for s in half.iter_mut() {
        tokio::time::timeout(limit, closed_by_server(s))
            .await
            .expect("a half-sent request was not closed");
    }
    assert!(started.elapsed() < limit + Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_pending_bound_wait_for_a_slot() {
    // A fleet behind one address that connects at once: two pending slots,
    // held by two connections that stall in the TLS handshake.
    let mut ops = OpsSettings::default();
    ops.net.pending_per_source = 2;
    let h = Arc::new(Harness::start_ops(ops).await);
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.6", h.addr).await.unwrap();
        s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(s);
    }
    let queued_before = drover::metrics::METRICS.conn_queued.get();
    // Six more from the same source queue behind them instead of being
    // closed (before, each was closed at once and its handshake failed).
    let waiting: Vec<_> = (0..6)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let tcp = connect_from("127.0.0.6", h.addr).await.unwrap();
                let mut s = tls_to(&h, tcp).await;
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut reply = Vec::new();
                let _ = s.read_to_end(&mut reply).await;
                String::from_utf8_lossy(&reply).to_string()
            })
        })
        .collect();
    common::wait_for(
        "six queued connections",
        Duration::from_secs(60),
        || async {
            (drover::metrics::METRICS.conn_queued.get() >= queued_before + 6).then_some(())
        },
    )
    .await;
    // That source's full slots do not hold up another source.
    h.call("DescribeRegions", json!({})).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "served while both slots were held"
    );
    // The stalled ones go away: the queued ones are served in their turn.
    drop(stalled);
    for w in waiting {
        let reply = tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("a queued connection was not served")
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_body_is_cut_off_with_request_timeout() {
    let h = Harness::start_ops(tight()).await;
    let tcp = connect_from("127.0.0.4", h.addr).await.unwrap();
    let mut s = tls_to(&h, tcp).await;
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut reply))
        .await
        .expect("the server kept a dripping body open")
        .ok();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeout"), "{text}");
    assert!(t.elapsed() >= Duration::from_secs(3), "cut off too early");
    // The server still serves.
    h.call("DescribeRegions", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_before_authentication_is_cut_off_early() {
    let h = Harness::start_ops(tight()).await;
    let tcp = connect_from("127.0.0.5", h.addr).await.unwrap();
    let mut s = tls_to(&h, tcp).await;
    s.write_all(
        format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            drover::protocol::AGENT_PATH
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // One 1 MiB text message where Register/Hello belongs: a Heartbeat
    // padded with spaces. Read whole, it parses and the server answers
    // Rejected (a Heartbeat is no Register); with the pre-authentication
    // budget the server stops reading after a few KB and drops the
    // connection without a word.
    const MIB: usize = 1 << 20;
    let mut msg = br#"{"type":"Heartbeat""#.to_vec();
    msg.resize(MIB - 1, b' ');
    msg.push(b'}');
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(msg.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]); // mask key 0: payload as is
    frame.extend_from_slice(&msg);
    let (mut rd, mut wr) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&frame).await;
        let _ = wr.flush().await;
        wr
    });
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut b = [0u8; 4096];
        loop {
            match rd.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&b[..n]),
            }
        }
    })
    .await
    .expect("the server kept the connection open");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("Challenge"), "{text}");
    assert!(
        !text.contains("Rejected"),
        "the server read the whole message: {text}"
    );
    writer.abort();
    h.call("DescribeRegions", json!({})).await;
}

/// One HTTPS request on its own connection; returns the status line and body.
async fn raw_post(h: &Harness, path: &str, body: &str) -> (String, String) {
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    let mut s = tls_to(h, tcp).await;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let text = String::from_utf8_lossy(&reply).to_string();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_sign_ins_is_throttled_and_root_still_served() {
    let h = Harness::start().await;
    let t = Instant::now();
    h.call("DescribeRegions", json!({})).await;
    let baseline = t.elapsed();
    let h = Arc::new(h);
    let flood_started = Instant::now();
    let floods: Vec<_> = (0..64)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let body = json!({"UserName": format!("nobody{i}"), "Password": "wrong-password"});
                raw_post(&h, "/console/login", &body.to_string()).await
            })
        })
        .collect();
    let t = Instant::now();
    h.call("DescribeRegions", json!({})).await;
    let during = t.elapsed();
    let mut throttled = 0;
    let mut failed = 0;
    for f in floods {
        let (status, body) = f.await.unwrap();
        if body.contains("RequestLimitExceeded") {
            throttled += 1;
        } else {
            assert!(body.contains("AuthFailure.LoginFailed"), "{status} {body}");
            failed += 1;
        }
    }
    // At most the per-source burst (20) was hashed, plus one attempt per
    // 3 s the flood took to arrive (a slow machine); the rest were refused
    // without hashing.
    let refilled = flood_started.elapsed().as_secs() as usize / 3 + 1;
    assert!(failed <= 20 + refilled, "{failed} sign-ins were hashed");
    assert!(throttled >= 64 - 20 - refilled, "{throttled} throttled");
    assert_eq!(throttled + failed, 64);
    assert!(
        during < baseline * 20 + Duration::from_secs(5),
        "an API call took {during:?} during the flood (baseline {baseline:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_requests_leave_bounded_audit_rows_with_a_count() {
    let mut h = Harness::start().await;
    let bogus = h.client_as(&format!("AKID{}", "x".repeat(3000)), "not-the-key");
    let started = Instant::now();
    for _ in 0..150 {
        let e = bogus.call("DescribeRegions", &json!({})).await.unwrap_err();
        assert_eq!(common::code(&e), "AuthFailure.SecretIdNotFound");
    }
    let detailed = h
        .call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "outcome", "Values": ["AuthFailure.SecretIdNotFound"]}], "Limit": 100}),
        )
        .await;
    let n = detailed["TotalCount"].as_i64().unwrap();
    // 30 per source and minute (more minutes only on a very slow machine).
    let minutes = started.elapsed().as_secs() as i64 / 60 + 1;
    assert!((1..=30 * minutes).contains(&n), "{n} detailed rows");
    for e in detailed["AuditEventSet"].as_array().unwrap() {
        assert!(e["SecretId"].as_str().unwrap().len() <= 128, "{e}");
    }
    // The rest is counted in one summary row per source and minute, written
    // when the minute ends or, as here, when the server stops.
    h.restart_server().await;
    // Every failure is accounted for: detailed rows plus the counts.
    let counted = |rows: &[Value]| -> i64 {
        rows.iter()
            .map(|r| {
                let o = r["Outcome"].as_str().unwrap();
                o.split(' ').next().unwrap().parse::<i64>().unwrap()
            })
            .sum()
    };
    let summaries = common::wait_for("the summary rows", Duration::from_secs(30), || async {
        let r = h
            .call(
                "DescribeAuditEvents",
                json!({"Filters": [{"Name": "action", "Values": ["PreAuthFailures"]}]}),
            )
            .await;
        let rows = r["AuditEventSet"].as_array().cloned().unwrap_or_default();
        (!rows.is_empty() && counted(&rows) + n == 150).then_some(rows)
    })
    .await;
    for s in &summaries {
        assert_eq!(s["SourceIp"], "127.0.0.1", "{s}");
        assert!(
            s["Outcome"]
                .as_str()
                .unwrap()
                .contains("more requests failed"),
            "{s}"
        );
    }
}
