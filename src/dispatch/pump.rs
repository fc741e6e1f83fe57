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

use super::Dispatcher;
use crate::protocol::ServerMsg;
use crate::store::invocations::{self, Invocation};
use crate::store::StoreError;
use crate::timefmt::now_ms;

impl Dispatcher {
    /// Sends an online agent as many waiting tasks as it has free slots.
    /// Does nothing for an agent that is not connected.
    pub(crate) async fn pump(&self, instance_id: &str) -> Result<(), StoreError> {
        let Some((tx, slots)) = self.sender_and_slots(instance_id) else {
            return Ok(());
        };
        let now = now_ms();
        let deadline = now.saturating_add(self.settings.deliver_timeout_ms);
        let id = instance_id.to_string();
        let reason = format!(
            "queued: instance {instance_id} already runs its maximum of {slots} tasks at once"
        );
        let taken = self
            .store
            .write(move |c| {
                let ids = invocations::take_for_delivery(c, &id, slots, deadline, now, &reason)?;
                let mut invs: HashMap<String, Invocation> = HashMap::new();
                let mut out = Vec::with_capacity(ids.len());
                for (task_id, inv_id) in ids {
                    if !invs.contains_key(&inv_id) {
                        invs.insert(inv_id.clone(), invocations::get(c, &inv_id)?);
                    }
                    out.push((task_id, inv_id));
                }
                Ok((out, invs))
            })
            .await?;
        let (tasks, invs) = taken;
        for (task_id, inv_id) in tasks {
            let Some(inv) = invs.get(&inv_id) else {
                continue;
            };
            let spec = self.spec(inv, &task_id)?;
            // At most `slots` deliveries are ever queued, below the queue's
            // depth, so this does not wait on a live agent. A closed queue
            // means the agent went away: the task stays DELIVERING and is
            // sent again when it reconnects (`link::reconcile`).
            if tx.send(ServerMsg::RunTask(spec)).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Pumps each of these instances (deduplicated); failures are logged,
    /// the tasks stay queued for the next pump.
    pub(crate) async fn pump_all(&self, mut instance_ids: Vec<String>) {
        instance_ids.sort();
        instance_ids.dedup();
        for id in instance_ids {
            if let Err(e) = self.pump(&id).await {
                tracing::warn!(instance = %id, "delivering queued tasks failed: {e}");
            }
        }
    }
}
