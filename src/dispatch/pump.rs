//! Flow control of task delivery, one agent at a time.
//!
//! An agent holds at most `slots` tasks at once (delivered and not yet
//! final: DELIVERING, RUNNING, CANCELLING, SUSPENDED). Tasks beyond that stay
//! in the database as PENDING (or DELIVER_DELAYED while the agent was away),
//! with the reason in ErrorInfo, and go out oldest first as the agent
//! finishes others. Nothing is held only in memory, so a burst of thousands
//! of RunCommand calls to one agent is neither dropped nor turned into
//! thousands of processes, and a server restart loses no queued task.
//!
//! `pump` is called when tasks are submitted, when an agent (re)connects,
//! and whenever a task of an online agent becomes final. Counting the busy
//! slots and marking the next tasks DELIVERING happen in one write job, and
//! write jobs run one at a time, so two pumps of one agent never hand out
//! the same slot twice.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::mpsc;

use super::Dispatcher;
use crate::protocol::{ServerMsg, TaskSpec};
use crate::store::invocations::{self, Invocation, Task};
use crate::store::StoreError;
use crate::timefmt::now_ms;

/// What a pump or a fan-out will write: the online agents' slots to fill
/// and the tasks of offline instances to mark DELIVER_DELAYED. Built from
/// the in-memory connection table before the write job; `write` runs
/// inside it (so a fan-out marks its tasks in the transaction that creates
/// them), and `Dispatcher::deliver` sends what it took after the commit.
pub struct Handout {
    senders: Vec<mpsc::Sender<ServerMsg>>,
    plan: HandoutWrite,
}

/// The part of a [`Handout`] that goes into the write job.
#[derive(Debug, Clone)]
pub struct HandoutWrite {
    /// Online agents and their slots, in the order of `Handout::senders`.
    agents: Vec<(String, u32)>,
    /// Tasks of instances that were offline.
    delayed: Vec<String>,
    deadline: i64,
    now: i64,
}

/// What a [`HandoutWrite`] took: per agent the (task, invocation) pairs
/// now DELIVERING, and those invocations' rows.
#[derive(Debug, Default)]
pub struct Taken {
    per_agent: Vec<Vec<(String, String)>>,
    invs: HashMap<String, Invocation>,
}

impl HandoutWrite {
    /// Counts each agent's busy slots and marks its next tasks DELIVERING;
    /// marks the offline instances' tasks DELIVER_DELAYED. Runs inside one
    /// write job, and write jobs run one at a time, so two handouts never
    /// give out the same slot.
    pub fn write(&self, c: &rusqlite::Connection) -> Result<Taken, StoreError> {
        for id in &self.delayed {
            invocations::mark_delayed(c, id, self.now)?;
        }
        let mut t = Taken {
            per_agent: Vec::with_capacity(self.agents.len()),
            invs: HashMap::new(),
        };
        for (id, slots) in &self.agents {
            let reason =
                format!("queued: instance {id} already runs its maximum of {slots} tasks at once");
            let ids =
                invocations::take_for_delivery(c, id, *slots, self.deadline, self.now, &reason)?;
            for (_, inv_id) in &ids {
                if !t.invs.contains_key(inv_id) {
                    t.invs.insert(inv_id.clone(), invocations::get(c, inv_id)?);
                }
            }
            t.per_agent.push(ids);
        }
        Ok(t)
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty() && self.delayed.is_empty()
    }
}

impl Handout {
    pub fn write_part(&self) -> HandoutWrite {
        self.plan.clone()
    }
}

impl Dispatcher {
    /// The handout of newly created tasks: an online agent gets as many as
    /// it has free slots, the rest stay PENDING until it finishes others;
    /// tasks of offline instances wait as DELIVER_DELAYED until their
    /// deadline. Held tasks wait for the roll-out to release them.
    pub fn handout_for(&self, tasks: &[Task]) -> Handout {
        let mut online: BTreeSet<&str> = BTreeSet::new();
        let mut delayed = Vec::new();
        for t in tasks.iter().filter(|t| !t.held) {
            if self.is_online(&t.instance_id) {
                online.insert(&t.instance_id);
            } else {
                delayed.push(t.id.clone());
            }
        }
        let ids: Vec<String> = online.into_iter().map(str::to_string).collect();
        let mut h = self.handout_to(&ids);
        h.plan.delayed = delayed;
        h
    }

    /// The handout that fills these agents' free slots (those online).
    pub(super) fn handout_to(&self, instance_ids: &[String]) -> Handout {
        let now = now_ms();
        let mut senders = Vec::new();
        let mut agents = Vec::new();
        for id in instance_ids {
            if let Some((tx, slots)) = self.sender_and_slots(id) {
                senders.push(tx);
                agents.push((id.clone(), slots));
            }
        }
        Handout {
            senders,
            plan: HandoutWrite {
                agents,
                delayed: Vec::new(),
                deadline: now.saturating_add(self.settings.deliver_timeout_ms),
                now,
            },
        }
    }

    /// Sends what a committed handout took. Tasks of an instance that came
    /// online between the handout and its commit were marked
    /// DELIVER_DELAYED after that agent's own pump: it is pumped again here.
    pub async fn deliver(&self, h: Handout, taken: Taken) {
        self.send_taken(&h.senders, taken).await;
        if !h.plan.delayed.is_empty() {
            self.pump_arrived(&h.plan.delayed).await;
        }
        self.touched();
    }

    /// Sends what a committed handout of online agents took (a handout
    /// written in an agent's result job).
    pub(super) async fn send_handout(&self, h: Handout, taken: Taken) {
        self.send_taken(&h.senders, taken).await;
    }

    async fn send_taken(&self, senders: &[mpsc::Sender<ServerMsg>], taken: Taken) {
        let mut templates: HashMap<&str, TaskSpec> = HashMap::new();
        for (tx, tasks) in senders.iter().zip(taken.per_agent) {
            for (task_id, inv_id) in tasks {
                let spec = match templates.get(inv_id.as_str()) {
                    Some(t) => t.clone(),
                    None => {
                        let Some(inv) = taken.invs.get(&inv_id) else {
                            continue;
                        };
                        // A delivery that cannot be opened stays DELIVERING
                        // and ends at its deadline.
                        match self.spec_template(inv) {
                            Ok(t) => templates.entry(inv.id.as_str()).or_insert(t).clone(),
                            Err(e) => {
                                tracing::error!(task = %task_id, "cannot deliver: {e}");
                                continue;
                            }
                        }
                    }
                };
                let spec = TaskSpec { task_id, ..spec };
                self.pushed.pushed(std::iter::once(spec.task_id.as_str()));
                // At most `slots` deliveries are ever queued, below the
                // queue's depth, so this does not wait on a live agent. A
                // closed queue means the agent went away: the task stays
                // DELIVERING and is sent again when it reconnects
                // (`link::reconcile`).
                if tx.send(ServerMsg::RunTask(spec)).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Pumps the instances of these DELIVER_DELAYED tasks that are online
    /// now (rare: they connected during the handout's write).
    async fn pump_arrived(&self, task_ids: &[String]) {
        let ids = task_ids.to_vec();
        let Ok(instances) = self
            .store
            .read(move |c| {
                let mut out = Vec::new();
                for id in &ids {
                    let t = invocations::get_task(c, id)?;
                    out.push(t.instance_id);
                }
                Ok(out)
            })
            .await
        else {
            return;
        };
        let arrived: Vec<String> = instances
            .into_iter()
            .filter(|i| self.is_online(i))
            .collect();
        if !arrived.is_empty() {
            self.pump_all(arrived).await;
        }
    }

    /// Sends an online agent as many waiting tasks as it has free slots.
    /// Does nothing for an agent that is not connected.
    pub(crate) async fn pump(&self, instance_id: &str) -> Result<(), StoreError> {
        self.pump_many(&[instance_id.to_string()]).await
    }

    /// Pumps several agents in one write job: a fan-out to N agents costs
    /// one transaction, not N awaited one after another. Each agent's slots
    /// are still counted and taken inside that one job, so the guarantee
    /// above holds.
    pub(crate) async fn pump_many(&self, instance_ids: &[String]) -> Result<(), StoreError> {
        let h = self.handout_to(instance_ids);
        if h.plan.is_empty() {
            return Ok(());
        }
        let w = h.write_part();
        let taken = self.store.write(move |c| w.write(c)).await?;
        self.send_taken(&h.senders, taken).await;
        Ok(())
    }

    /// Hands newly created tasks to their agents in a write job of their
    /// own (`handout_for`); a fan-out's own start does it in its insert.
    pub async fn submit(&self, tasks: &[Task]) -> Result<(), StoreError> {
        let h = self.handout_for(tasks);
        if h.plan.is_empty() {
            return Ok(());
        }
        let w = h.write_part();
        let taken = self.store.write(move |c| w.write(c)).await?;
        self.deliver(h, taken).await;
        Ok(())
    }

    /// Pumps each of these instances (deduplicated); a failure is logged and
    /// the tasks stay queued for the next pump.
    pub(crate) async fn pump_all(&self, mut instance_ids: Vec<String>) {
        instance_ids.sort();
        instance_ids.dedup();
        if let Err(e) = self.pump_many(&instance_ids).await {
            tracing::warn!("delivering queued tasks failed: {e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::invocations::fixtures;
    use crate::store::status::TaskStatus::{self, *};

    /// A fan-out's handout written inside the job that inserts its tasks:
    /// an online agent gets its free slots' worth as DELIVERING and RunTask,
    /// the rest wait PENDING; an offline instance's tasks are delayed.
    #[tokio::test]
    async fn a_handout_written_with_the_insert_fills_slots_and_delays_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let secrets = std::sync::Arc::new(crate::crypto::SecretBox::from_key(&[7u8; 32]).unwrap());
        let settings = crate::dispatch::Settings {
            agent_slots: 2,
            ..Default::default()
        };
        let d = Dispatcher::new(store.clone(), secrets, settings);
        let (tx, mut rx) = mpsc::channel(16);
        d.attach("mi-on", tx, false, None, None, Default::default());
        let mut inv = fixtures::invocation("inv-1");
        inv.delivery_enc = d.seal_delivery("inv-1", b"echo hi");
        let task = |n: usize, instance: &str| {
            fixtures::task(&format!("invt-{n}"), "inv-1", instance, TaskStatus::Pending)
        };
        let tasks = vec![
            task(1, "mi-on"),
            task(2, "mi-on"),
            task(3, "mi-on"),
            task(4, "mi-off"),
        ];
        let h = d.handout_for(&tasks);
        let w = h.write_part();
        let taken = store
            .write(move |c| {
                invocations::insert(c, &inv, &tasks)?;
                w.write(c)
            })
            .await
            .unwrap();
        d.deliver(h, taken).await;
        let mut sent = Vec::new();
        while let Ok(ServerMsg::RunTask(spec)) = rx.try_recv() {
            assert_eq!(spec.invocation_id, "inv-1");
            sent.push(spec.task_id);
        }
        assert_eq!(sent, ["invt-1", "invt-2"]);
        let status = |id: &'static str| {
            let s = store.clone();
            async move {
                s.read(move |c| invocations::get_task(c, id))
                    .await
                    .unwrap()
                    .status
            }
        };
        assert_eq!(status("invt-1").await, Delivering);
        assert_eq!(status("invt-2").await, Delivering);
        assert_eq!(status("invt-3").await, Pending);
        assert_eq!(status("invt-4").await, DeliverDelayed);
    }
}
