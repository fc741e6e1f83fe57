//! The one periodic job of dispatch: end tasks whose deadline passed. It
//! reads a deadline index, so its cost does not grow with finished history.
//!
//! A task waiting in an online agent's queue (PENDING behind its busy
//! slots, see `pump.rs`) is not "undeliverable": its deadline moves on. A
//! running task past its deadline becomes TASK_TIMEOUT, which a later
//! report from its agent may still correct (`store::invocations::finish`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Dispatcher;
use crate::store::invocations;
use crate::store::status::TaskStatus::*;
use crate::timefmt::now_ms;

pub async fn run(d: Arc<Dispatcher>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(
        d.settings.sweep_interval_ms.max(50),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Roll-outs a restart interrupted go on before anything else is swept.
    if let Err(e) = super::rollout::resume(&d).await {
        tracing::warn!("resuming rate-controlled invocations failed: {e}");
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sweep_once(&d).await {
            tracing::warn!("sweep failed: {e}");
        }
    }
}

pub async fn sweep_once(d: &Dispatcher) -> crate::store::Result<()> {
    let now = now_ms();
    let overdue = d.store.read(move |c| invocations::overdue(c, now)).await?;
    if overdue.is_empty() {
        return Ok(());
    }
    let wait_s = d.settings.deliver_timeout_ms / 1000;
    // Tasks queued behind an online agent's busy slots wait for the agent,
    // which is here: they get a new deadline rather than DELIVER_FAILED.
    let (queued, overdue): (Vec<_>, Vec<_>) = overdue.into_iter().partition(|t| {
        t.status != Delivering && t.status.is_undelivered() && d.is_online(&t.instance_id)
    });
    let queued: Vec<String> = queued.into_iter().map(|t| t.id).collect();
    let requeue_deadline = now.saturating_add(d.settings.deliver_timeout_ms);
    let freed: Vec<String> = overdue
        .iter()
        .filter(|t| !t.status.is_undelivered() || t.status == Delivering)
        .map(|t| t.instance_id.clone())
        .collect();
    let ended = d
        .store
        .write(move |c| {
            invocations::extend_queued(c, &queued, requeue_deadline)?;
            let mut ended = Vec::new();
            for t in &overdue {
                if t.status.is_undelivered() {
                    let why = format!(
                        "instance {} did not take the task within {wait_s} s (agent offline)",
                        t.instance_id
                    );
                    if super::end_task(
                        c,
                        &t.id,
                        &[Pending, DeliverDelayed, Delivering],
                        DeliverFailed,
                        &why,
                        now,
                    )? {
                        ended.push(t.invocation_id.clone());
                    }
                } else {
                    let why = format!(
                        "no result from the agent of instance {} past the task's timeout",
                        t.instance_id
                    );
                    if super::end_task(c, &t.id, &[Running, Cancelling], TaskTimeout, &why, now)? {
                        ended.push(t.invocation_id.clone());
                    }
                }
            }
            Ok(ended)
        })
        .await?;
    d.tasks_ended(ended).await;
    // Slots freed on agents that are still connected go to queued tasks.
    d.pump_all(freed).await;
    Ok(())
}
