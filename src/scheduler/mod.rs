//! Scheduled execution: fires TAT invokers when they are due.
//!
//! One task plans from the stored invokers, fires whatever is due, then
//! sleeps until the earliest next trigger or until the API says an invoker
//! changed (no per-invoker polling). A trigger is decided again against its
//! creator's current policy and started through `run` like InvokeCommand
//! (InvocationSource "INVOKER"); the scheduler knows nothing of the API. The
//! invoker's last handled trigger is advanced in the same transaction, so a
//! trigger runs at most once, across restarts too. Triggers missed while
//! the server was down run once on start-up if they fell within the grace
//! window, and are recorded as missed otherwise.

pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::run::{self, RunError, Runner};
use crate::store::invokers::{self, Invoker, Record};
use crate::timefmt::now_ms;
pub use plan::{parse_cron, Due, Schedule, Zone};

/// Longest sleep between plans: bounds the effect of a wall-clock jump.
const MAX_SLEEP_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The zone crontab expressions are read in.
    pub zone: Zone,
    /// How late a missed trigger may still run on start-up.
    pub grace_ms: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            zone: Zone::Local,
            grace_ms: 300_000,
        }
    }
}

/// The schedule an invoker's stored fields describe; None when they are
/// unusable (which the API never stores).
pub fn schedule_of(i: &Invoker) -> Option<Schedule> {
    match i.policy.as_str() {
        "ONCE" => Some(Schedule::Once(i.invoke_time_ms)),
        "RECURRENCE" => parse_cron(&i.recurrence)
            .ok()
            .map(|c| Schedule::Recurrence(Box::new(c))),
        _ => None,
    }
}

/// Starts the scheduler loop; it ends when `shutdown` is cancelled.
pub fn spawn(
    api: Arc<Runner>,
    changed: Arc<Notify>,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let started_ms = now_ms();
    tracing::info!(zone = %settings.zone, grace_ms = settings.grace_ms, "scheduler started");
    tokio::spawn(async move {
        loop {
            let wake = match plan_and_fire(&api, settings, started_ms).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!("scheduler: {e}");
                    Some(now_ms() + 1_000)
                }
            };
            let ms = wake
                .map(|w| w - now_ms())
                .unwrap_or(MAX_SLEEP_MS)
                .clamp(0, MAX_SLEEP_MS);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(ms as u64)) => {}
            }
        }
    });
}

/// Handles every due trigger; returns when the next one falls.
async fn plan_and_fire(
    api: &Runner,
    s: Settings,
    started_ms: i64,
) -> Result<Option<i64>, crate::store::StoreError> {
    // Firing takes time: plan again until nothing is due (a bounded number
    // of times, so a store that refuses every write cannot spin this task).
    for _ in 0..16 {
        let all = api.store.read(invokers::enabled).await?;
        let now = now_ms();
        let mut wake: Option<i64> = None;
        let mut handled = false;
        for inv in all {
            let Some(sched) = schedule_of(&inv) else {
                continue;
            };
            match plan::decide(
                &sched,
                s.zone,
                inv.last_fired_ms,
                now,
                s.grace_ms,
                started_ms,
            ) {
                Due::Fire { at, late } => {
                    fire(api, &inv, at, late).await;
                    handled = true;
                }
                Due::Missed { at } => {
                    let reason = format!(
                        "missed: the server was not running at {} and started more than {} s later; not run",
                        crate::timefmt::iso(at),
                        s.grace_ms / 1000
                    );
                    record_only(api, &inv.id, at, reason, "MISSED").await;
                    handled = true;
                }
                Due::Wait { at } => wake = Some(wake.map_or(at, |w| w.min(at))),
                Due::Never => {}
            }
        }
        if !handled {
            return Ok(wake);
        }
    }
    Ok(Some(now_ms() + 1_000))
}

/// Records a trigger that started no invocation.
async fn record_only(api: &Runner, id: &str, at: i64, reason: String, result: &'static str) {
    let rec = Record {
        invoker_id: id.to_string(),
        invoke_ms: at,
        reason,
        invocation_id: String::new(),
        result: result.into(),
    };
    let id = id.to_string();
    if let Err(e) = api
        .store
        .write(move |c| invokers::claim(c, &id, at, &rec))
        .await
    {
        tracing::debug!("scheduler: trigger not recorded: {e}");
    }
}

async fn fire(api: &Runner, inv: &Invoker, at: i64, late: bool) {
    let reason = if late {
        format!(
            "scheduled at {}, missed while the server was down; run within the grace window",
            crate::timefmt::iso(at)
        )
    } else {
        format!("scheduled at {}", crate::timefmt::iso(at))
    };
    match run::fire(api, inv, at, reason).await {
        Ok(inv_id) => tracing::info!(invoker = %inv.id, invocation = %inv_id, "invoker fired"),
        Err(RunError::TriggerHandled) => {}
        Err(e) => {
            tracing::warn!(invoker = %inv.id, "invoker failed to start: {e}");
            let reason = match &e {
                RunError::Denied(_) | RunError::Orphaned(_) => {
                    format!("not run: its creator's authority does not cover it: {e}")
                }
                _ => format!("failed to start: {e}"),
            };
            record_only(api, &inv.id, at, reason, "FAILED").await;
        }
    }
}
