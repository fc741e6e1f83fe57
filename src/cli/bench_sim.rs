//! The agent simulator of `drover bench-scale`: N agents in one process,
//! each a tokio task with its own Ed25519 key and its own TLS WebSocket,
//! speaking the real protocol through the agent's own code (`agent::link`
//! for connect and handshake, `identity::Key` for Register/Hello proofs,
//! `agent::Backoff` between attempts). A `RunTask` is answered at once with
//! `TaskStarted`, one `Output` and `TaskFinished`, without running
//! anything, so what is measured is the server.
//!
//! It is a benchmark tool: a simulated agent that the server rejects stops,
//! and every other failure is counted and retried like a real agent does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::agent::identity::{self, Key};
use crate::agent::link::{self, Endpoint, LinkError, Ws};
use crate::agent::Backoff;
use crate::protocol::{AgentMsg, Outcome, ServerMsg, HEARTBEAT_SECS};

/// What all simulated agents did, for the benchmark's figures.
#[derive(Default)]
pub struct SimStats {
    /// Connection attempts (TCP connect started).
    pub attempts: AtomicU64,
    /// Handshakes completed (Welcome received).
    pub welcomed: AtomicU64,
    /// Attempts that failed before Welcome.
    pub failures: AtomicU64,
    /// Of those, TCP connects refused: no server listened (a restart).
    pub refused: AtomicU64,
    /// Agents the server rejected (they stop).
    pub rejected: AtomicU64,
    /// Tasks answered.
    pub tasks: AtomicU64,
}

impl SimStats {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// One simulated agent's settings, shared by all.
#[derive(Clone)]
pub struct SimConfig {
    pub endpoint: Endpoint,
    pub tls: Arc<rustls::ClientConfig>,
    /// The secret part of the register code.
    pub secret: String,
}

/// Runs one simulated agent until `stop`.
pub async fn agent(cfg: SimConfig, stats: Arc<SimStats>, stop: CancellationToken) {
    let Ok(key) = Key::generate() else {
        stats.rejected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut instance_id: Option<String> = None;
    let mut backoff = Backoff::new();
    loop {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = connect(&cfg, &key, instance_id.as_deref());
        let r = tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => r,
        };
        match r {
            Ok((mut ws, id)) => {
                stats.welcomed.fetch_add(1, Ordering::Relaxed);
                instance_id = Some(id);
                backoff.reset();
                tokio::select! {
                    _ = stop.cancelled() => {
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ = session(&mut ws, &stats) => {}
                }
            }
            Err(LinkError::Rejected { .. }) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if let LinkError::Connect { source, .. } = &e {
                    if source.kind() == std::io::ErrorKind::ConnectionRefused {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff.step()) => {}
        }
    }
}

async fn connect(cfg: &SimConfig, key: &Key, id: Option<&str>) -> Result<(Ws, String), LinkError> {
    let (mut ws, local_ip) = link::connect(&cfg.endpoint, cfg.tls.clone()).await?;
    let mut machine = identity::machine_info(local_ip);
    machine.hostname = format!("sim-{}", &key.public_b64()[..8]);
    let id = link::handshake(&mut ws, |nonce| match id {
        Some(id) => key.hello(nonce, id, machine, Vec::new()),
        None => key.register(nonce, &cfg.secret, machine, Vec::new()),
    })
    .await?;
    Ok((ws, id.instance_id))
}

/// Heartbeats (at a random phase, so N agents do not beat together) and
/// instant answers to RunTask, until the connection ends.
async fn session(ws: &mut Ws, stats: &SimStats) {
    let period = Duration::from_secs(HEARTBEAT_SECS);
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    let phase = period.mul_f64(f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX));
    let mut beat = tokio::time::interval_at(Instant::now() + phase, period);
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if link::send(ws, &AgentMsg::Heartbeat).await.is_err() {
                    return;
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => continue,
                };
                let Ok(ServerMsg::RunTask(spec)) = serde_json::from_str::<ServerMsg>(&text) else {
                    continue;
                };
                if answer(ws, &spec.task_id).await.is_err() {
                    return;
                }
                stats.tasks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The three messages of a task that printed "hi" and exited 0, sent as
/// one flush.
async fn answer(ws: &mut Ws, task_id: &str) -> Result<(), LinkError> {
    let now = crate::timefmt::now_ms();
    let msgs = [
        AgentMsg::TaskStarted {
            task_id: task_id.to_string(),
            started_at: now,
        },
        AgentMsg::Output {
            task_id: task_id.to_string(),
            offset: 0,
            data: B64.encode(b"hi\n"),
        },
        AgentMsg::TaskFinished {
            task_id: task_id.to_string(),
            outcome: Outcome::Success,
            exit_code: Some(0),
            started_at: now,
            ended_at: now,
            output_len: 3,
            error_info: String::new(),
        },
    ];
    for m in &msgs {
        let json = serde_json::to_string(m).map_err(|e| LinkError::Protocol(e.to_string()))?;
        ws.feed(Message::text(json)).await?;
    }
    ws.flush().await?;
    Ok(())
}
