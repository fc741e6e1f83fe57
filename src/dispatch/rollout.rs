//! Rate control, as AWS Systems Manager has it: an invocation's
//! `MaxConcurrency` bounds how many of its tasks are out at once, and
//! `MaxErrors` stops the roll-out once more tasks than that have failed.
//!
//! The state lives in SQLite only: a task beyond the concurrency limit is
//! created PENDING with `held` set (no deadline, unseen by the sweep and by
//! reconnecting agents). Whenever tasks of an invocation become final,
//! dispatch calls [`advance`], which in one write transaction either
//! releases as many held tasks as there are free slots (their delivery
//! deadline starts then) or, once the failures exceed MaxErrors, ends every
//! held task CANCELLED with the reason. Tasks already out always finish.
//! Waves advance on those events, never by polling; [`resume`] runs the
//! same step once at start-up for whatever a restart interrupted.
//!
//! What counts as a failure: every final status but SUCCESS and CANCELLED.
//! A CANCELLED task never ran (a user cancelled it before delivery, or the
//! roll-out itself stopped), so it says nothing about the command; a user
//! cancel of a running task (TERMINATED) does count, as SSM counts it.

use super::Dispatcher;
use crate::store::invocations::{self, Invocation, Task};
use crate::store::status::TaskStatus;
use crate::store::StoreError;
use crate::timefmt::now_ms;

/// A limit as SSM writes it: an absolute count or a percentage of the
/// invocation's target count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Count(u64),
    Percent(u64),
}

impl Rate {
    /// Reads "10" or "10%". `min` is the smallest count or percentage
    /// allowed (1 for MaxConcurrency, 0 for MaxErrors), as SSM's patterns.
    pub fn parse(s: &str, min: u64) -> Option<Rate> {
        let digits_ok =
            |d: &str| !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit());
        let r = match s.strip_suffix('%') {
            Some(p) if digits_ok(p) => Rate::Percent(p.parse().ok()?),
            Some(_) => return None,
            None if digits_ok(s) => Rate::Count(s.parse().ok()?),
            None => return None,
        };
        match r {
            Rate::Count(n) | Rate::Percent(n) if n < min => None,
            Rate::Percent(n) if n > 100 => None,
            r => Some(r),
        }
    }

    /// The canonical text stored and shown ("10" or "10%").
    pub fn text(self) -> String {
        match self {
            Rate::Count(n) => n.to_string(),
            Rate::Percent(n) => format!("{n}%"),
        }
    }
}

/// How many tasks may be out at once: a percentage of `targets` rounded
/// up, never below 1. No MaxConcurrency: all of them.
pub fn concurrency(spec: Option<&str>, targets: usize) -> usize {
    match spec.and_then(|s| Rate::parse(s, 1)) {
        None => targets.max(1),
        Some(Rate::Count(n)) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
        Some(Rate::Percent(p)) => (targets * p as usize).div_ceil(100).max(1),
    }
}

/// How many failures are tolerated: a percentage of `targets` rounded
/// down (so "10%" of five targets stops at the first failure). None: the
/// roll-out never stops by itself.
pub fn error_limit(spec: Option<&str>, targets: usize) -> Option<usize> {
    match spec.and_then(|s| Rate::parse(s, 0))? {
        Rate::Count(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        Rate::Percent(p) => Some(targets * p as usize / 100),
    }
}

pub fn is_failure(s: TaskStatus) -> bool {
    s.is_final() && !matches!(s, TaskStatus::Success | TaskStatus::Cancelled)
}

/// What an invocation's roll-out should do now.
#[derive(Debug, PartialEq)]
pub enum Step {
    Nothing,
    /// Hand these held tasks to dispatch.
    Release(Vec<String>),
    /// End these held tasks CANCELLED, with this reason.
    Stop(Vec<String>, String),
}

/// Decides the next step of `inv` from its tasks (pure).
pub fn plan(inv: &Invocation, tasks: &[Task]) -> Step {
    let held: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.held && t.status == TaskStatus::Pending)
        .collect();
    if held.is_empty() {
        return Step::Nothing;
    }
    let failed = tasks.iter().filter(|t| is_failure(t.status)).count();
    let spec_errors = inv.max_errors.as_deref();
    if let Some(limit) = error_limit(spec_errors, tasks.len()) {
        if failed > limit {
            let reason = format!(
                "not started: {failed} tasks failed, more than MaxErrors {}",
                spec_errors.unwrap_or_default()
            );
            return Step::Stop(held.iter().map(|t| t.id.clone()).collect(), reason);
        }
    }
    let out = tasks
        .iter()
        .filter(|t| !t.held && !t.status.is_final())
        .count();
    let free = concurrency(inv.max_concurrency.as_deref(), tasks.len()).saturating_sub(out);
    if free == 0 {
        return Step::Nothing;
    }
    Step::Release(held.iter().take(free).map(|t| t.id.clone()).collect())
}

/// Moves the roll-out of each of `invocation_ids` on after some of their
/// tasks became final: releases the next tasks or stops.
pub async fn advance(d: &Dispatcher, invocation_ids: Vec<String>) -> Result<(), StoreError> {
    if invocation_ids.is_empty() {
        return Ok(());
    }
    // Every task end passes here; only rate-controlled invocations need
    // the writer, so the rest are sorted out on the read pool.
    let invocation_ids = d
        .store
        .read(move |c| invocations::rate_controlled(c, &invocation_ids))
        .await?;
    advance_rated(d, invocation_ids).await
}

/// `advance` for invocations already known to be rate-controlled (an
/// agent's results sort them out in their own write job, so a fan-out's
/// thousands of results do not each take a read-pool connection).
pub async fn advance_rated(d: &Dispatcher, invocation_ids: Vec<String>) -> Result<(), StoreError> {
    if invocation_ids.is_empty() {
        return Ok(());
    }
    let deliver = d.settings.deliver_timeout_ms;
    let released = d
        .store
        .write(move |c| {
            let now = now_ms();
            let mut out: Vec<(Invocation, Vec<Task>)> = Vec::new();
            for id in &invocation_ids {
                let inv = invocations::get(c, id)?;
                if inv.max_concurrency.is_none() && inv.max_errors.is_none() {
                    continue;
                }
                let tasks = invocations::tasks_of(c, std::slice::from_ref(id))?;
                match plan(&inv, &tasks) {
                    Step::Nothing => {}
                    Step::Release(ids) => {
                        let mut go = Vec::new();
                        for mut t in tasks.into_iter().filter(|t| ids.contains(&t.id)) {
                            if invocations::release(c, &t.id, now + deliver, now)? {
                                t.held = false;
                                go.push(t);
                            }
                        }
                        out.push((inv, go));
                    }
                    Step::Stop(ids, reason) => {
                        for t in &ids {
                            super::end_task(
                                c,
                                t,
                                &[TaskStatus::Pending],
                                TaskStatus::Cancelled,
                                &reason,
                                now,
                            )?;
                        }
                    }
                }
            }
            Ok(out)
        })
        .await?;
    for (_, tasks) in released {
        d.submit(&tasks).await?;
    }
    Ok(())
}

/// At start-up: one step for every invocation that still holds tasks, so
/// a roll-out interrupted by a restart goes on (tasks that finished while
/// the server was down are counted; nothing is released twice).
pub async fn resume(d: &Dispatcher) -> Result<(), StoreError> {
    let ids = d.store.read(invocations::with_held_tasks).await?;
    advance(d, ids).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::invocations::fixtures;
    use TaskStatus::*;

    fn inv(mc: Option<&str>, me: Option<&str>) -> Invocation {
        Invocation {
            max_concurrency: mc.map(Into::into),
            max_errors: me.map(Into::into),
            ..fixtures::invocation("inv-1")
        }
    }

    fn task(n: usize, status: TaskStatus, held: bool) -> Task {
        Task {
            deadline_ms: 0,
            held,
            ..fixtures::task(&format!("invt-{n}"), "inv-1", &format!("mi-{n}"), status)
        }
    }

    /// What a crash between a task's end and the next release leaves
    /// behind is picked up by `resume` at start-up.
    #[tokio::test]
    async fn resume_releases_or_stops_what_a_restart_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let secrets = std::sync::Arc::new(crate::crypto::SecretBox::from_key(&[7u8; 32]).unwrap());
        let d = Dispatcher::new(store.clone(), secrets, super::super::Settings::default());
        let mut waves = inv(Some("1"), None);
        waves.id = "inv-1".into();
        let mut stop = inv(None, Some("0"));
        stop.id = "inv-2".into();
        let mut tasks = vec![
            task(1, Success, false),
            task(2, Pending, true),
            task(3, Pending, true),
        ];
        let mut failing = vec![task(4, Failed, false), task(5, Pending, true)];
        for t in failing.iter_mut() {
            t.invocation_id = "inv-2".into();
        }
        for t in tasks.iter_mut().chain(failing.iter_mut()) {
            if t.held {
                t.deadline_ms = i64::MAX;
            }
        }
        store
            .write(move |c| {
                invocations::insert(c, &waves, &tasks)?;
                invocations::insert(c, &stop, &failing)
            })
            .await
            .unwrap();
        resume(&d).await.unwrap();
        let get = |id: &'static str| {
            let s = store.clone();
            async move { s.read(move |c| invocations::get_task(c, id)).await.unwrap() }
        };
        // One slot was free: the next task is out (no agent: delayed).
        let t2 = get("invt-2").await;
        assert!(!t2.held && t2.status == DeliverDelayed, "{t2:?}");
        assert!(t2.deadline_ms < i64::MAX);
        let t3 = get("invt-3").await;
        assert!(t3.held && t3.status == Pending);
        let t5 = get("invt-5").await;
        assert_eq!(t5.status, Cancelled);
        assert_eq!(
            t5.error_info,
            "not started: 1 tasks failed, more than MaxErrors 0"
        );
        // Nothing more to do: a second resume changes nothing.
        resume(&d).await.unwrap();
        assert!(get("invt-3").await.held);
    }

    #[test]
    fn rates_parse_as_ssm_writes_them() {
        assert_eq!(Rate::parse("10", 1), Some(Rate::Count(10)));
        assert_eq!(Rate::parse("25%", 1), Some(Rate::Percent(25)));
        assert_eq!(Rate::parse("0", 0), Some(Rate::Count(0)));
        for bad in ["0", "0%", "101%", "", "%", "-1", "1.5", " 1", "ten", "1%%"] {
            assert_eq!(Rate::parse(bad, 1), None, "{bad:?}");
        }
        assert_eq!(Rate::Percent(7).text(), "7%");
    }

    #[test]
    fn limits_round_as_documented() {
        assert_eq!(concurrency(None, 7), 7);
        assert_eq!(concurrency(Some("2"), 7), 2);
        assert_eq!(concurrency(Some("10%"), 7), 1);
        assert_eq!(concurrency(Some("50%"), 3), 2);
        assert_eq!(error_limit(None, 7), None);
        assert_eq!(error_limit(Some("0"), 7), Some(0));
        assert_eq!(error_limit(Some("10%"), 5), Some(0));
        assert_eq!(error_limit(Some("50%"), 5), Some(2));
    }

    #[test]
    fn plan_releases_free_slots_then_stops_past_max_errors() {
        let i = inv(Some("2"), Some("1"));
        let mut ts = vec![
            task(1, Running, false),
            task(2, Success, false),
            task(3, Pending, true),
            task(4, Pending, true),
            task(5, Pending, true),
        ];
        assert_eq!(plan(&i, &ts), Step::Release(vec!["invt-3".into()]));
        ts[0].status = Failed;
        ts[2] = task(3, Failed, false);
        match plan(&i, &ts) {
            Step::Stop(ids, why) => {
                assert_eq!(ids, vec!["invt-4".to_string(), "invt-5".to_string()]);
                assert_eq!(why, "not started: 2 tasks failed, more than MaxErrors 1");
            }
            other => panic!("{other:?}"),
        }
        // Exactly at the limit the roll-out goes on.
        ts[0].status = Cancelled;
        assert_eq!(
            plan(&i, &ts),
            Step::Release(vec!["invt-4".into(), "invt-5".into()])
        );
        // Nothing held: nothing to do, whatever failed.
        assert_eq!(
            plan(&inv(None, Some("0")), &[task(1, Failed, false)]),
            Step::Nothing
        );
    }
}
