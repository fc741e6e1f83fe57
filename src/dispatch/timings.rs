//! Where a task's time goes: turns the stamps of one task's trip into the
//! `drover_task_stage_seconds` histograms (see `metrics`).
//!
//! The server stamps when it queued each `RunTask` (kept here, in memory,
//! until the agent's `TaskTimings` for the task arrives); the agent stamps
//! its own stages and sends them in `TaskTimings` just before the task's
//! `TaskFinished`. Spans inside one process use one clock; the two spans
//! that cross the connection (`deliver`, `report`) compare the server's
//! clock with the agent's, which is exact on one machine (the benchmarks)
//! and off by the clocks' skew elsewhere (negative spans count as zero).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::metrics::METRICS;
use crate::protocol::TaskTimings;
use crate::timefmt::now_us;

/// Most push stamps kept: a task whose agent never reports timings (an
/// older agent, a lost connection) must not grow the map forever.
const MAX_STAMPS: usize = 200_000;

/// When each undelivered-or-running task's `RunTask` was queued.
#[derive(Default)]
pub struct PushStamps(Mutex<HashMap<String, i64>>);

impl PushStamps {
    /// Notes that these tasks' `RunTask` messages are queued now.
    pub fn pushed<'a>(&self, task_ids: impl Iterator<Item = &'a str>) {
        let now = now_us();
        let Ok(mut m) = self.0.lock() else { return };
        for id in task_ids {
            if m.len() >= MAX_STAMPS {
                // Rare, and only costs some `deliver` samples.
                m.clear();
            }
            m.insert(id.to_string(), now);
        }
    }

    fn take(&self, task_id: &str) -> Option<i64> {
        self.0.lock().ok()?.remove(task_id)
    }

    /// Records the stages of a task an agent reported on; `received_us`
    /// is when the server read the report.
    pub fn record(&self, task_id: &str, t: &TaskTimings, received_us: i64) {
        let s = &METRICS.stages;
        if let Some(pushed) = self.take(task_id) {
            if t.received > 0 {
                s.deliver.observe_micros(t.received - pushed);
            }
        }
        let span = |from: i64, to: i64| (from > 0 && to > 0).then(|| to - from);
        let observe = |h: &crate::metrics::Histogram, v: Option<i64>| {
            if let Some(us) = v {
                h.observe_micros(us);
            }
        };
        observe(&s.journal, span(t.received, t.journaled));
        observe(&s.spawn, span(t.journaled, t.spawned));
        observe(&s.first_output, span(t.spawned, t.first_output));
        observe(&s.run, span(t.spawned, t.exited));
        observe(&s.finish, span(t.exited, t.finished));
        observe(&s.report, span(t.finished, received_us));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_taken_once_and_bounded() {
        let p = PushStamps::default();
        p.pushed(["a", "b"].into_iter());
        assert!(p.take("a").is_some());
        assert!(p.take("a").is_none(), "a stamp is used once");
        let many: Vec<String> = (0..MAX_STAMPS + 5).map(|i| format!("t{i}")).collect();
        p.pushed(many.iter().map(String::as_str));
        let n = p.0.lock().unwrap().len();
        assert!((1..=MAX_STAMPS).contains(&n), "{n} stamps kept");
    }

    #[test]
    fn a_report_feeds_every_stage_it_has() {
        let p = PushStamps::default();
        p.pushed(["task-x"].into_iter());
        let base = now_us();
        let before = METRICS.stages.spawn.count();
        let t = TaskTimings {
            received: base + 100,
            journaled: base + 200,
            spawned: base + 900,
            first_output: 0,
            exited: base + 2_000,
            finished: base + 2_100,
        };
        p.record("task-x", &t, base + 2_300);
        // Other tests may record too: counts only grow.
        assert!(METRICS.stages.spawn.count() > before);
        assert!(METRICS.stages.deliver.count() >= 1);
        assert!(p.take("task-x").is_none());
    }
}
