//! The server end of an agent's WebSocket: challenge, register or hello,
//! then the message loop. An agent proves its identity on every connection
//! by signing the server's fresh nonce with its registered Ed25519 key.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures_util::{FutureExt, SinkExt, StreamExt};
use ring::signature::{UnparsedPublicKey, ED25519};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{ChannelKinds, Dispatcher, FromAgent, AGENT_QUEUE};
use crate::metrics::METRICS;
use crate::protocol::{self, AgentMsg, MachineInfo, ServerMsg};
use crate::store::instances::{self, Instance, Refusal};
use crate::store::invocations;
use crate::store::status::TaskStatus;
use crate::timefmt::now_ms;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Most messages of one agent applied together (see `reports::handle`).
const MAX_FOLD: usize = 64;

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
    sessions: bool,
    kinds: ChannelKinds,
    max_tasks: Option<u32>,
}

fn job_control(features: &[String]) -> bool {
    features.iter().any(|f| f == protocol::FEATURE_JOB_CONTROL)
}

fn sessions(features: &[String]) -> bool {
    features.iter().any(|f| f == protocol::FEATURE_SESSIONS)
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
            max_tasks,
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
                    sessions: sessions(&features),
                    kinds: ChannelKinds::of(&features),
                    max_tasks,
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
            max_tasks,
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
                sessions: sessions(&features),
                kinds: ChannelKinds::of(&features),
                max_tasks,
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
        Ok(Some(Frame::Msg(m))) => *m,
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
        sessions,
        kinds,
        max_tasks,
    } = hello;
    let heartbeat = d.settings.heartbeat_secs.max(1);
    if sink
        .send(encode(&ServerMsg::Welcome {
            instance_id: instance_id.clone(),
            heartbeat_secs: Some(heartbeat),
        }))
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%peer, instance = %instance_id, "agent connected");
    METRICS.agent_connects.inc();
    let (tx, mut rx) = mpsc::channel::<ServerMsg>(AGENT_QUEUE);
    let (session_tx, mut session_rx) = mpsc::channel::<Message>(super::channels::SESSION_QUEUE);
    let serial = d.attach(
        &instance_id,
        tx.clone(),
        job_control,
        max_tasks,
        sessions.then_some(session_tx),
        kinds,
    );
    let writer = tokio::spawn(async move {
        loop {
            // Tasks first: a session's data never delays a RunTask or Ack.
            let frame = tokio::select! {
                biased;
                m = rx.recv() => match m {
                    Some(m) => encode(&m),
                    None => break,
                },
                Some(f) = session_rx.recv() => f,
            };
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    if let Err(e) = reconcile(&d, &instance_id, &known, &tx).await {
        tracing::warn!(instance = %instance_id, "reconcile failed: {e}");
    }
    drop(tx);
    // An agent that says nothing (not even its heartbeat) for this long is
    // frozen or cut off behind a connection that looks open: drop it, so
    // it shows Offline and its tasks follow the offline rules.
    let silence = Duration::from_secs(heartbeat * u64::from(protocol::MISSED_HEARTBEATS));
    let mut last_heard_ms = now_ms();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = tokio::time::timeout(silence, next_msg(&mut stream)) => m,
        };
        let msg = match msg {
            Ok(Some(Frame::Msg(m))) => {
                last_heard_ms = now_ms();
                *m
            }
            Ok(Some(Frame::Data(b))) => {
                last_heard_ms = now_ms();
                route_data(&d, &instance_id, serial, &b);
                continue;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(instance = %instance_id, "agent silent for {silence:?}; dropping it");
                break;
            }
        };
        let Some(msg) = session_msg(&d, &instance_id, serial, msg) else {
            continue;
        };
        // Whatever else this agent has already sent is applied with it, in
        // one store job: while one batch waits for its commit the next
        // gathers, so an agent's reports never queue one commit each.
        // Session frames among them go to their channels at once.
        let mut batch = vec![msg];
        let mut closed = false;
        while batch.len() < MAX_FOLD {
            match next_msg(&mut stream).now_or_never() {
                Some(Some(Frame::Msg(m))) => {
                    batch.extend(session_msg(&d, &instance_id, serial, *m));
                }
                Some(Some(Frame::Data(b))) => route_data(&d, &instance_id, serial, &b),
                Some(None) => {
                    closed = true;
                    break;
                }
                None => break,
            }
        }
        let beat = batch.iter().all(|m| matches!(m, AgentMsg::Heartbeat));
        if let Err(e) = super::reports::handle(&d, &instance_id, batch).await {
            // Nothing was acknowledged: closing makes the agent reconnect
            // and resend what it holds, once the store works again.
            tracing::warn!(instance = %instance_id, "agent message not stored ({e}); closing the connection");
            break;
        }
        if !beat {
            d.touched();
        }
        if closed {
            break;
        }
    }
    d.detach(&instance_id, serial);
    writer.abort();
    let id = instance_id.clone();
    // Last seen when last heard from, not when given up on.
    let _ = d
        .store
        .write(move |c| instances::touch(c, &id, last_heard_ms))
        .await;
    tracing::info!(instance = %instance_id, "agent disconnected");
}

/// Hands a session data frame to its channel (a malformed one is dropped).
fn route_data(d: &Dispatcher, instance_id: &str, serial: u64, frame: &[u8]) {
    if let Some((channel, data)) = protocol::decode_data(frame) {
        d.route(instance_id, serial, channel, FromAgent::Data(data.to_vec()));
    }
}

/// Routes a session message to its channel; hands any other back.
fn session_msg(d: &Dispatcher, instance_id: &str, serial: u64, msg: AgentMsg) -> Option<AgentMsg> {
    let (channel, what) = match msg {
        AgentMsg::SessionOpened {
            channel,
            pid,
            window,
        } => (channel, FromAgent::Opened { pid, window }),
        AgentMsg::SessionFailed { channel, reason } => (channel, FromAgent::Failed { reason }),
        AgentMsg::SessionCredit { channel, bytes } => (channel, FromAgent::Credit(bytes)),
        AgentMsg::AuthAgentConnect { channel, request } => {
            (channel, FromAgent::AuthAgentConnect { request })
        }
        AgentMsg::SessionExit {
            channel,
            code,
            signal,
            reason,
        } => (
            channel,
            FromAgent::Exit {
                code,
                signal,
                reason,
            },
        ),
        other => return Some(other),
    };
    d.route(instance_id, serial, channel, what);
    None
}

/// One frame from an agent: a JSON message, or a binary session data frame.
enum Frame {
    Msg(Box<AgentMsg>),
    Data(Vec<u8>),
}

/// The next frame; None when the connection ends. Text frames that don't
/// parse are skipped, not fatal: a newer agent may send more.
async fn next_msg<S>(
    stream: &mut futures_util::stream::SplitStream<WebSocketStream<S>>,
) -> Option<Frame>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => match serde_json::from_str(&t) {
                Ok(m) => return Some(Frame::Msg(Box::new(m))),
                Err(e) => tracing::debug!("unparsable agent frame: {e}"),
            },
            Ok(Message::Binary(b)) => return Some(Frame::Data(b)),
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
            // Sent before, perhaps lost with the old connection: again (the
            // agent's journal makes a repeat harmless). Waiting tasks go out
            // through the pump below, as slots allow.
            TaskStatus::Delivering if !agent_has_it => {
                let inv_id = t.invocation_id.clone();
                let inv = d.store.read(move |c| invocations::get(c, &inv_id)).await?;
                let _ = tx.send(ServerMsg::RunTask(d.spec(&inv, &t.id)?)).await;
            }
            s if s.is_undelivered() => {}
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
    d.pump(instance_id).await
}
