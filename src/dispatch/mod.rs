//! Dispatch: the live side of the control plane. It knows which agents are
//! connected, pushes tasks to them the moment they exist (no polling), applies
//! what agents report, and moves tasks whose agent stays silent to
//! DELIVER_FAILED or TASK_TIMEOUT on a fixed schedule.
//!
//! Every path that makes tasks final calls `Dispatcher::tasks_ended`, the
//! one hook for what follows a task's end (today: the next wave of a
//! rate-controlled invocation, `rollout`).

mod channels;
mod ending;
mod jobctl;
mod link;
mod pump;
mod reports;
pub mod rollout;
mod sweep;
mod timings;

pub use channels::{Channel, ChannelError, ChannelKinds, FromAgent};
pub(crate) use ending::{end_task, finish_task};
pub use jobctl::{ControlError, ControlRequest};
pub use link::serve_agent;
pub use pump::{Handout, HandoutWrite, Taken};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::sync::mpsc;

use crate::crypto::SecretBox;
use crate::protocol::{ServerMsg, TaskSpec};
use crate::store::invocations::{self, Invocation, Task};
use crate::store::status::TaskStatus;
use crate::store::{Store, StoreError};
use crate::timefmt::now_ms;

/// Timing policy of task delivery.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a task waits for an offline instance before DELIVER_FAILED.
    pub deliver_timeout_ms: i64,
    /// How long past its own timeout a running task may stay silent before
    /// it is declared TASK_TIMEOUT.
    pub result_grace_ms: i64,
    /// How often overdue tasks are looked for.
    pub sweep_interval_ms: u64,
    /// Seconds between agent heartbeats (told to agents in `Welcome`); an
    /// agent silent for `protocol::MISSED_HEARTBEATS` periods is dropped
    /// and shown Offline.
    pub heartbeat_secs: u64,
    /// Most tasks one agent is given at once (delivered and not yet final);
    /// an agent announcing a lower `max_tasks` gets that many. The rest
    /// wait in the database as PENDING, with the reason in ErrorInfo.
    pub agent_slots: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            deliver_timeout_ms: 600_000,
            result_grace_ms: 60_000,
            sweep_interval_ms: 1_000,
            heartbeat_secs: crate::protocol::HEARTBEAT_SECS,
            agent_slots: crate::protocol::DEFAULT_MAX_TASKS,
        }
    }
}

/// A connected agent.
struct Conn {
    /// Distinguishes a reconnect from the connection it replaced.
    serial: u64,
    tx: mpsc::Sender<ServerMsg>,
    connected_ms: i64,
    last_heartbeat_ms: i64,
    /// The agent announced `protocol::FEATURE_JOB_CONTROL`: it may be sent
    /// SuspendTask/ResumeTask (older agents drop the connection on them).
    job_control: bool,
    /// Tasks this agent may hold at once (see `Settings::agent_slots`).
    slots: u32,
    /// The session queue towards the agent, when it announced
    /// `protocol::FEATURE_SESSIONS` (`channels.rs`).
    sessions: Option<mpsc::Sender<tokio_tungstenite::tungstenite::Message>>,
    /// What its session channels may carry besides terminals.
    kinds: channels::ChannelKinds,
    /// The session channels open on this connection.
    channels: channels::Table,
}

pub struct Dispatcher {
    pub store: Store,
    secrets: Arc<SecretBox>,
    pub settings: Settings,
    agents: Mutex<HashMap<String, Conn>>,
    next_serial: std::sync::atomic::AtomicU64,
    /// Woken after tasks may have become final, so queued webhook
    /// notifications go out at once (`notify::spawn` waits on it).
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// When each task's RunTask was queued, for the stage metrics.
    pushed: timings::PushStamps,
    /// Bumped whenever a task may have changed (state, output, control), so
    /// the console's push channel re-reads what its viewer watches instead
    /// of the browser polling (api/console_push.rs subscribes).
    pub activity: tokio::sync::watch::Sender<u64>,
}

/// What the API shows about an agent's liveness.
#[derive(Debug, Clone)]
pub struct Presence {
    pub online: bool,
    pub last_heartbeat_ms: i64,
}

/// The plaintext of a sealed delivery that carries values to mask.
#[derive(serde::Serialize, serde::Deserialize)]
struct MaskedDelivery {
    /// Base64 script.
    content: String,
    mask: Vec<String>,
}

/// Queue depth per agent. Task deliveries are bounded by the agent's slots
/// (at most half of this), so the queue never fills with them; the rest is
/// room for cancels, acks and job control.
const AGENT_QUEUE: usize = 1024;

impl Dispatcher {
    pub fn new(store: Store, secrets: Arc<SecretBox>, settings: Settings) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            store,
            secrets,
            settings,
            agents: Mutex::new(HashMap::new()),
            next_serial: std::sync::atomic::AtomicU64::new(1),
            webhook_wake: Default::default(),
            pushed: Default::default(),
            activity: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Tells console watchers that tasks may have changed.
    pub fn touched(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn is_online(&self, instance_id: &str) -> bool {
        self.agents
            .lock()
            .map(|m| m.contains_key(instance_id))
            .unwrap_or(false)
    }

    /// Agents connected now.
    pub fn connected_count(&self) -> usize {
        self.agents.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn online_ids(&self) -> HashSet<String> {
        self.agents
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn presence(&self, instance_id: &str, last_seen_ms: i64) -> Presence {
        let m = self.agents.lock().ok();
        match m.as_ref().and_then(|m| m.get(instance_id)) {
            Some(c) => Presence {
                online: true,
                last_heartbeat_ms: c.last_heartbeat_ms.max(c.connected_ms),
            },
            None => Presence {
                online: false,
                last_heartbeat_ms: last_seen_ms,
            },
        }
    }

    fn sender(&self, instance_id: &str) -> Option<mpsc::Sender<ServerMsg>> {
        self.agents
            .lock()
            .ok()?
            .get(instance_id)
            .map(|c| c.tx.clone())
    }

    fn sender_and_slots(&self, instance_id: &str) -> Option<(mpsc::Sender<ServerMsg>, u32)> {
        self.agents
            .lock()
            .ok()?
            .get(instance_id)
            .map(|c| (c.tx.clone(), c.slots))
    }

    fn attach(
        &self,
        instance_id: &str,
        tx: mpsc::Sender<ServerMsg>,
        job_control: bool,
        max_tasks: Option<u32>,
        sessions: Option<mpsc::Sender<tokio_tungstenite::tungstenite::Message>>,
        kinds: channels::ChannelKinds,
    ) -> u64 {
        let slots = max_tasks
            .unwrap_or(u32::MAX)
            .min(self.settings.agent_slots)
            .clamp(1, AGENT_QUEUE as u32 / 2);
        let serial = self
            .next_serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = now_ms();
        if let Ok(mut m) = self.agents.lock() {
            // A newer connection from the same identity replaces the old
            // one; dropping its sender ends the old connection's writer.
            m.insert(
                instance_id.to_string(),
                Conn {
                    serial,
                    tx,
                    connected_ms: now,
                    last_heartbeat_ms: now,
                    job_control,
                    slots,
                    sessions,
                    kinds,
                    channels: Default::default(),
                },
            );
        }
        serial
    }

    fn detach(&self, instance_id: &str, serial: u64) {
        if let Ok(mut m) = self.agents.lock() {
            if m.get(instance_id).is_some_and(|c| c.serial == serial) {
                m.remove(instance_id);
            }
        }
    }

    fn heartbeat(&self, instance_id: &str) {
        if let Ok(mut m) = self.agents.lock() {
            if let Some(c) = m.get_mut(instance_id) {
                c.last_heartbeat_ms = now_ms();
            }
        }
    }

    /// Disconnects an agent (its instance was deleted).
    pub fn kick(&self, instance_id: &str) {
        if let Ok(mut m) = self.agents.lock() {
            m.remove(instance_id);
        }
    }

    fn spec(&self, inv: &Invocation, task_id: &str) -> Result<TaskSpec, StoreError> {
        let mut spec = self.spec_template(inv)?;
        spec.task_id = task_id.to_string();
        Ok(spec)
    }

    /// An invocation's TaskSpec without its task id: the delivery is opened
    /// and encoded once per fan-out, not once per task.
    fn spec_template(&self, inv: &Invocation) -> Result<TaskSpec, StoreError> {
        let (content, mask) = self.open_delivery(inv)?;
        Ok(TaskSpec {
            task_id: String::new(),
            invocation_id: inv.id.clone(),
            command_type: inv.command_type.clone(),
            content: base64::engine::general_purpose::STANDARD.encode(content),
            timeout: inv.timeout.max(1) as u64,
            working_directory: inv.working_directory.clone(),
            username: inv.username.clone(),
            mask,
        })
    }

    /// The script (and the values its output must be masked for) of an
    /// invocation. The AEAD context tells the two formats apart: a plain
    /// script under `delivery:ID`, or a [`MaskedDelivery`] under
    /// `delivery-masked:ID` when the script holds secrets.
    fn open_delivery(&self, inv: &Invocation) -> Result<(Vec<u8>, Vec<String>), StoreError> {
        if let Ok(plain) = self
            .secrets
            .open_sealed(&format!("delivery:{}", inv.id), &inv.delivery_enc)
        {
            return Ok((plain, Vec::new()));
        }
        let json = self
            .secrets
            .open_sealed(&format!("delivery-masked:{}", inv.id), &inv.delivery_enc)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let d: MaskedDelivery = serde_json::from_slice(&json)
            .map_err(|_| StoreError::Corrupt(format!("delivery of {}", inv.id)))?;
        let content = base64::engine::general_purpose::STANDARD
            .decode(d.content)
            .map_err(|_| StoreError::Corrupt(format!("delivery of {}", inv.id)))?;
        Ok((content, d.mask))
    }

    /// Seals a script that holds secret values together with the values the
    /// agent must mask in its output.
    pub fn seal_delivery_masked(
        &self,
        invocation_id: &str,
        content: &[u8],
        mask: &[String],
    ) -> Vec<u8> {
        let d = MaskedDelivery {
            content: base64::engine::general_purpose::STANDARD.encode(content),
            mask: mask.to_vec(),
        };
        let json = serde_json::to_vec(&d).unwrap_or_default();
        self.secrets
            .seal(&format!("delivery-masked:{invocation_id}"), &json)
    }

    /// Seals the script that agents will receive for an invocation.
    pub fn seal_delivery(&self, invocation_id: &str, content: &[u8]) -> Vec<u8> {
        self.secrets
            .seal(&format!("delivery:{invocation_id}"), content)
    }

    /// Called whenever tasks of these invocations became final (agent
    /// report, sweep, cancel, lost journal): the one place that reacts to
    /// it. The roll-out goes first, since it may end more tasks (a stopped
    /// wave's held tasks) before anything looks at the invocation's outcome.
    pub async fn tasks_ended(&self, invocation_ids: Vec<String>) {
        let advanced = rollout::advance(self, sorted_unique(invocation_ids)).await;
        self.after_tasks_ended(advanced);
    }

    /// `tasks_ended` for tasks whose invocations were already sorted: only
    /// `rate_controlled` ones (of those that ended) need the roll-out.
    pub(crate) async fn tasks_ended_sorted(&self, rate_controlled: Vec<String>) {
        let advanced = rollout::advance_rated(self, sorted_unique(rate_controlled)).await;
        self.after_tasks_ended(advanced);
    }

    fn after_tasks_ended(&self, advanced: Result<(), StoreError>) {
        if let Err(e) = advanced {
            tracing::warn!("rate control could not advance: {e}");
        }
        // Notifications were queued in the same transactions that ended
        // the tasks; wake the sender now rather than at its next poll.
        self.webhook_wake.notify_one();
        self.touched();
    }

    /// Cancels tasks: those not yet started end as CANCELLED, running ones
    /// become CANCELLING and their agents are told to kill them.
    pub async fn cancel(&self, tasks: Vec<Task>) -> Result<(), StoreError> {
        let now = now_ms();
        let list = tasks.clone();
        let (to_kill, ended) = self
            .store
            .write(move |c| {
                let mut kill = Vec::new();
                let mut ended = Vec::new();
                for t in &list {
                    let pre = [TaskStatus::Pending, TaskStatus::DeliverDelayed];
                    if end_task(
                        c,
                        &t.id,
                        &pre,
                        TaskStatus::Cancelled,
                        "cancelled before delivery",
                        now,
                    )? {
                        ended.push(t.invocation_id.clone());
                        continue;
                    }
                    if invocations::mark_cancelling(c, &t.id, now)? {
                        kill.push((t.id.clone(), t.instance_id.clone()));
                    }
                }
                Ok((kill, ended))
            })
            .await?;
        self.tasks_ended(ended).await;
        for (task_id, instance_id) in to_kill {
            if let Some(tx) = self.sender(&instance_id) {
                let _ = tx.try_send(ServerMsg::CancelTask { task_id });
            }
        }
        Ok(())
    }

    /// Starts the background sweep for overdue tasks.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move { sweep::run(me, shutdown).await });
    }
}

fn sorted_unique(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}
