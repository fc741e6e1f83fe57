//! The server end of an agent's WebSocket: challenge, register or hello,
//! then the message loop. An agent proves its identity on every connection
//! by signing the server's fresh nonce with its registered Ed25519 key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use ring::signature::{UnparsedPublicKey, ED25519};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{Dispatcher, AGENT_QUEUE};
use crate::metrics::METRICS;
use crate::protocol::{self, AgentMsg, MachineInfo, Outcome, ServerMsg};
use crate::store::instances::{self, Instance, Refusal};
use crate::store::invocations::{self, Finish};
use crate::store::status::TaskStatus;
use crate::timefmt::now_ms;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

fn encode(msg: &ServerMsg) -> Message {
    Message::Text(serde_json::to_string(msg).unwrap_or_default())
}

fn verify(public_key_b64: &str, nonce: &str, claim: &str, sig_b64: &str) -> bool {
    let (Ok(pk), Ok(sig)) = (B64.decode(public_key_b64), B64.decode(sig_b64)) else {
        return false;
    };
    pk.len() == 32
        && UnparsedPublicKey::new(&ED25519, pk)
            .verify(&protocol::auth_message(nonce, claim), &sig)
            .is_ok()
}

fn refusal_text(r: Refusal) -> (&'static str, String) {
    let (code, text) = match r {
        Refusal::Unknown => (
            "RegisterCodeNotFound",
            "the register code is not known to this server",
        ),
        Refusal::Disabled => (
            "RegisterCodeDisabled",
            "the register code has been disabled",
        ),
        Refusal::Expired => ("RegisterCodeExpired", "the register code has expired"),
        Refusal::UsedUp => (
            "RegisterLimitExceeded",
            "the register code has reached its RegisterLimit",
        ),
        Refusal::OutsideIpRange => (
            "IpAddressNotAllowed",
            "this machine's address is outside the register code's IpAddressRange",
        ),
        Refusal::TagKeyNotAllowed(key) => {
            return (
                "TagKeyNotAllowed",
                format!(
                    "the register code does not let agents set the tag key {key:?}; tags that \
                     drive targeting and policy come from the code's Tags, its \
                     AllowedAgentTagKeys, or ModifyInstanceTags (nothing was registered)"
                ),
            )
        }
    };
    (code, text.to_string())
}

fn instance_from(machine: &MachineInfo, id: &str, public_key: &str, now: i64) -> Instance {
    Instance {
        id: id.to_string(),
        public_key: public_key.to_string(),
        machine_id: machine.machine_id.clone(),
        system_name: machine.system_name.clone(),
        hostname: machine.hostname.clone(),
        local_ip: machine.local_ip.clone(),
        agent_version: machine.agent_version.clone(),
        command_types: serde_json::to_string(&machine.command_types)
            .unwrap_or_else(|_| "[]".into()),
        tags: "[]".into(),
        last_seen_ms: now,
        created_ms: now,
        updated_ms: now,
        ..Default::default()
    }
}

/// The tags an agent asked for, as the instances table stores them
/// ({"Key","Value"} JSON); a repeated key keeps its last value.
fn agent_tags(tags: &[protocol::AgentTag]) -> Result<String, (&'static str, String)> {
    if let Some(why) = protocol::tag_keys_problem(tags.iter().map(|t| t.key.as_str())) {
        return Err(("InvalidTags", why));
    }
    let mut out: Vec<serde_json::Value> = Vec::new();
    for t in tags {
        out.retain(|v| v["Key"] != t.key.as_str());
        out.push(serde_json::json!({"Key": t.key, "Value": t.value}));
    }
    Ok(serde_json::Value::Array(out).to_string())
}

/// Who is connecting: the instance, the tasks its journal holds, and
/// whether it understands job control.
struct Hello {
    instance_id: String,
    known: Vec<String>,
    job_control: bool,
}

fn job_control(features: &[String]) -> bool {
    features.iter().any(|f| f == protocol::FEATURE_JOB_CONTROL)
}

/// Decides who is connecting, or refuses.
async fn authenticate(
    d: &Dispatcher,
    first: AgentMsg,
    nonce: &str,
    peer: SocketAddr,
) -> Result<Hello, (&'static str, String)> {
    let now = now_ms();
    match first {
        AgentMsg::Register {
            register_code,
            public_key,
            signature,
            machine,
            tags,
            features,
            ..
        } => {
            let tags = agent_tags(&tags)?;
            if !verify(
                &public_key,
                nonce,
                &protocol::register_claim(&public_key),
                &signature,
            ) {
                return Err((
                    "SignatureInvalid",
                    "the registration signature does not verify".into(),
                ));
            }
            let hash = crate::sign::sha256_hex(register_code.as_bytes());
            let mut inst = instance_from(&machine, &crate::ids::new_id("mi"), &public_key, now);
            inst.tags = tags;
            let ip = peer.ip();
            let outcome = d
                .store
                .write(move |c| {
                    let r = instances::register(
                        c,
                        &hash,
                        |range| crate::iprange::contains(range, ip),
                        &mut inst,
                        now,
                    )?;
                    Ok(r.map(|()| inst.id.clone()))
                })
                .await
                .map_err(|e| ("RegisterFailed", e.to_string()))?;
            match outcome {
                Ok(id) => Ok(Hello {
                    instance_id: id,
                    known: Vec::new(),
                    job_control: job_control(&features),
                }),
                Err(r) => Err(refusal_text(r)),
            }
        }
        AgentMsg::Hello {
            instance_id,
            signature,
            machine,
            known_tasks,
            features,
            ..
        } => {
            let id = instance_id.clone();
            let inst = d
                .store
                .read(move |c| instances::get_instance(c, &id))
                .await
                .map_err(|_| {
                    (
                        "InstanceNotFound",
                        format!("instance {instance_id} is not registered here (deleted?)"),
                    )
                })?;
            if !verify(
                &inst.public_key,
                nonce,
                &protocol::hello_claim(&instance_id),
                &signature,
            ) {
                return Err((
                    "SignatureInvalid",
                    "the signature does not match the instance's registered key".into(),
                ));
            }
            let fresh = instance_from(&machine, &instance_id, &inst.public_key, now);
            let _ = d
                .store
                .write(move |c| instances::update_seen(c, &fresh, now))
                .await;
            Ok(Hello {
                instance_id,
                known: known_tasks,
                job_control: job_control(&features),
            })
        }
        _ => Err(("ProtocolError", "expected Register or Hello".into())),
    }
}

/// Serves one agent connection until it closes or the server shuts down.
/// `authenticated` runs once the agent has proven its identity (the caller
/// lifts its pre-authentication bounds then).
pub async fn serve_agent<S>(
    d: Arc<Dispatcher>,
    ws: WebSocketStream<S>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    authenticated: impl FnOnce(),
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let nonce = B64.encode(crate::ids::random_bytes::<32>());
    if sink
        .send(encode(&ServerMsg::Challenge {
            nonce: nonce.clone(),
        }))
        .await
        .is_err()
    {
        return;
    }
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, next_msg(&mut stream)).await {
        Ok(Some(m)) => m,
        _ => return,
    };
    let hello = match authenticate(&d, first, &nonce, peer).await {
        Ok(v) => v,
        Err((code, message)) => {
            tracing::info!(%peer, code, "agent refused: {message}");
            METRICS.agent_rejects.inc();
            let _ = sink
                .send(encode(&ServerMsg::Rejected {
                    code: code.into(),
                    message,
                }))
                .await;
            let _ = sink.close().await;
            return;
        }
    };
    authenticated();
    let Hello {
        instance_id,
        known,
        job_control,
    } = hello;
    if sink
        .send(encode(&ServerMsg::Welcome {
            instance_id: instance_id.clone(),
        }))
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%peer, instance = %instance_id, "agent connected");
    METRICS.agent_connects.inc();
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(AGENT_QUEUE);
    let serial = d.attach(&instance_id, tx.clone(), job_control);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(encode(&m)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    if let Err(e) = reconcile(&d, &instance_id, &known, &tx).await {
        tracing::warn!(instance = %instance_id, "reconcile failed: {e}");
    }
    drop(tx);
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = next_msg(&mut stream) => m,
        };
        let Some(msg) = msg else { break };
        let beat = matches!(msg, AgentMsg::Heartbeat);
        if let Err(e) = handle(&d, &instance_id, msg).await {
            tracing::warn!(instance = %instance_id, "agent message failed: {e}");
        }
        if !beat {
            d.touched();
        }
    }
    d.detach(&instance_id, serial);
    writer.abort();
    let id = instance_id.clone();
    let _ = d
        .store
        .write(move |c| instances::touch(c, &id, now_ms()))
        .await;
    tracing::info!(instance = %instance_id, "agent disconnected");
}

/// The next protocol message; None when the connection ends. Frames that
/// don't parse are skipped, not fatal: a newer agent may send more.
async fn next_msg<S>(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
) -> Option<AgentMsg>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => match serde_json::from_str(&t) {
                Ok(m) => return Some(m),
                Err(e) => tracing::debug!("unparsable agent frame: {e}"),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Brings the server's view of an instance's tasks in line with the agent's
/// journal after a (re)connect.
async fn reconcile(
    d: &Dispatcher,
    instance_id: &str,
    known: &[String],
    tx: &mpsc::Sender<ServerMsg>,
) -> crate::store::Result<()> {
    let id = instance_id.to_string();
    let open = d
        .store
        .read(move |c| invocations::open_for_instance(c, &id))
        .await?;
    let now = now_ms();
    let mut lost = Vec::new();
    for t in open {
        let agent_has_it = known.contains(&t.id);
        match t.status {
            s if s.is_undelivered() => {
                let tid = t.id.clone();
                let inv_id = t.invocation_id.clone();
                let deadline = now + d.settings.deliver_timeout_ms;
                let inv = d
                    .store
                    .write(move |c| {
                        invocations::mark_delivering(c, &tid, deadline, now)?;
                        invocations::get(c, &inv_id)
                    })
                    .await?;
                let _ = tx.send(ServerMsg::RunTask(d.spec(&inv, &t.id)?)).await;
            }
            // A suspended task stays suspended across a reconnect; the
            // agent restates its state (`Tasks::control_reports`).
            TaskStatus::Suspended if agent_has_it => {}
            TaskStatus::Cancelling if agent_has_it => {
                let _ = tx
                    .send(ServerMsg::CancelTask {
                        task_id: t.id.clone(),
                    })
                    .await;
            }
            _ if !agent_has_it => lost.push((t.id.clone(), t.invocation_id.clone())),
            _ => {}
        }
    }
    if !lost.is_empty() {
        let ended = d
            .store
            .write(move |c| {
                let mut ended = Vec::new();
                for (id, inv) in &lost {
                    if super::end_task(
                        c,
                        id,
                        &[
                            TaskStatus::Running,
                            TaskStatus::Cancelling,
                            TaskStatus::Suspended,
                        ],
                        TaskStatus::Failed,
                        "the agent has no record of this task (its journal was lost)",
                        now,
                    )? {
                        ended.push(inv.clone());
                    }
                }
                Ok(ended)
            })
            .await?;
        d.tasks_ended(ended).await;
    }
    Ok(())
}

fn outcome_status(o: Outcome) -> TaskStatus {
    match o {
        Outcome::Success => TaskStatus::Success,
        Outcome::Failed => TaskStatus::Failed,
        Outcome::Timeout => TaskStatus::Timeout,
        Outcome::Terminated => TaskStatus::Terminated,
        Outcome::StartFailed => TaskStatus::StartFailed,
    }
}

async fn handle(d: &Dispatcher, instance_id: &str, msg: AgentMsg) -> crate::store::Result<()> {
    let now = now_ms();
    METRICS.agent_messages.inc();
    match msg {
        AgentMsg::Heartbeat => d.heartbeat(instance_id),
        AgentMsg::TaskStarted {
            task_id,
            started_at,
        } => {
            let grace = d.settings.result_grace_ms;
            d.store
                .write(move |c| {
                    let t = invocations::get_task(c, &task_id)?;
                    let inv = invocations::get(c, &t.invocation_id)?;
                    let deadline = started_at.max(now) + inv.timeout * 1000 + grace;
                    let ran = invocations::mark_running(c, &task_id, started_at, deadline, now)?;
                    if ran {
                        let waited = (now - t.created_ms).max(0) as f64 / 1e3;
                        METRICS.task_delivery.observe(waited);
                    }
                    Ok(ran)
                })
                .await?;
        }
        AgentMsg::Output {
            task_id,
            offset,
            data,
        } => {
            let Ok(bytes) = B64.decode(data) else {
                return Ok(());
            };
            let owner = instance_id.to_string();
            d.store
                .write(move |c| {
                    // An agent may only write to its own tasks.
                    let t = invocations::get_task(c, &task_id)?;
                    if t.instance_id == owner {
                        invocations::append_output(c, &task_id, offset as i64, &bytes)?;
                    }
                    Ok(())
                })
                .await?;
        }
        AgentMsg::TaskFinished {
            task_id,
            outcome,
            exit_code,
            started_at,
            ended_at,
            output_len,
            error_info,
        } => {
            let owner = instance_id.to_string();
            let tid = task_id.clone();
            let read_at = std::time::Instant::now();
            let mine = d
                .store
                .write(move |c| {
                    let t = invocations::get_task(c, &tid)?;
                    if t.instance_id != owner {
                        return Ok(None);
                    }
                    let mut status = outcome_status(outcome);
                    // A kill we did not ask for, while we were cancelling, is still a cancel.
                    if t.status == TaskStatus::Cancelling && status != TaskStatus::Success {
                        status = TaskStatus::Terminated;
                    }
                    let f = Finish {
                        status,
                        exit_code,
                        exec_start_ms: started_at,
                        exec_end_ms: ended_at,
                        reported_len: output_len as i64,
                        error_info: &error_info,
                    };
                    let ended = super::finish_task(c, &tid, &f, now)?;
                    if ended {
                        METRICS.task_ended(t.created_ms, now);
                    }
                    Ok(Some(ended.then_some(t.invocation_id)))
                })
                .await;
            METRICS.stages.commit.observe_duration(read_at.elapsed());
            // Ack also for a task we no longer know (deleted), so the agent
            // can drop it from its journal.
            let known = !matches!(mine, Ok(None));
            if known {
                if let Some(tx) = d.sender(instance_id) {
                    let _ = tx.send(ServerMsg::Ack { task_id }).await;
                }
            }
            if let Some(Some(inv)) = mine? {
                d.tasks_ended(vec![inv]).await;
            }
        }
        AgentMsg::TaskSuspended { .. }
        | AgentMsg::TaskResumed { .. }
        | AgentMsg::TaskControlFailed { .. } => {
            super::jobctl::apply_report(d, instance_id, msg).await?;
        }
        AgentMsg::TaskTimings { task_id, timings } => {
            d.pushed
                .record(&task_id, &timings, crate::timefmt::now_us());
        }
        AgentMsg::Register { .. } | AgentMsg::Hello { .. } => {}
    }
    Ok(())
}
