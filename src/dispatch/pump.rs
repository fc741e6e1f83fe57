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

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::Dispatcher;
use crate::protocol::ServerMsg;
use crate::store::invocations::{self, Invocation};
use crate::store::StoreError;
use crate::timefmt::now_ms;

impl Dispatcher {
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
        let online: Vec<(String, mpsc::Sender<ServerMsg>, u32)> = instance_ids
            .iter()
            .filter_map(|id| {
                self.sender_and_slots(id)
                    .map(|(tx, slots)| (id.clone(), tx, slots))
            })
            .collect();
        if online.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let deadline = now.saturating_add(self.settings.deliver_timeout_ms);
        let wanted: Vec<(String, u32)> = online.iter().map(|(id, _, s)| (id.clone(), *s)).collect();
        let (taken, invs) = self
            .store
            .write(move |c| {
                let mut invs: HashMap<String, Invocation> = HashMap::new();
                let mut taken = Vec::with_capacity(wanted.len());
                for (id, slots) in &wanted {
                    let reason = format!(
                        "queued: instance {id} already runs its maximum of {slots} tasks at once"
                    );
                    let ids =
                        invocations::take_for_delivery(c, id, *slots, deadline, now, &reason)?;
                    for (_, inv_id) in &ids {
                        if !invs.contains_key(inv_id) {
                            invs.insert(inv_id.clone(), invocations::get(c, inv_id)?);
                        }
                    }
                    taken.push(ids);
                }
                Ok((taken, invs))
            })
            .await?;
        for ((_, tx, _), tasks) in online.iter().zip(taken) {
            for (task_id, inv_id) in tasks {
                let Some(inv) = invs.get(&inv_id) else {
                    continue;
                };
                let spec = self.spec(inv, &task_id)?;
                self.pushed.pushed(std::iter::once(task_id.as_str()));
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
