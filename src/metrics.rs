//! Process-wide metrics in the Prometheus text format (version 0.0.4).
//!
//! A small registry of atomics rather than a crate: drover needs counters,
//! histograms with fixed buckets and a handful of fixed label values, and
//! recording must cost a few relaxed atomic adds on the hot paths (every
//! agent message, every store batch). Everything is a `static`, so any
//! module records without the registry being threaded through it; only
//! the server exposes it (`server::metrics`, on `--metrics-listen`), and
//! gauges that describe state (connected agents, tasks by status) are
//! computed when scraped, so they cannot drift from the truth.
//!
//! Every metric here is documented in README.md ("Metrics"); a test walks
//! the exposition to keep the two lists honest.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of latency histograms: 100 µs to 30 s.
const LATENCY_BOUNDS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Upper bounds of the store's batch-size histogram (jobs per transaction).
const BATCH_BOUNDS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A monotonically increasing count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A cumulative histogram over fixed bounds. The sum is kept in millionths
/// of the unit (microseconds for latencies) so it fits an atomic integer.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus +Inf last; not cumulative (summed on export).
    buckets: [AtomicU64; 18],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; 18],
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    const fn latency() -> Histogram {
        Histogram::new(&LATENCY_BOUNDS)
    }

    /// Records one value (seconds, or whatever unit the bounds are in).
    pub fn observe(&self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((v * 1e6).round() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Records a span given in microseconds; negative spans (clock skew
    /// between two machines) count as zero.
    pub fn observe_micros(&self, us: i64) {
        self.observe(us.max(0) as f64 / 1e6);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Stages of one task's trip, each a histogram (see README "Metrics").
pub struct Stages {
    /// API: RunCommand's store transaction (invocation and tasks).
    pub store: Histogram,
    /// API: marking tasks DELIVERING and queuing RunTask to the agents.
    pub push: Histogram,
    /// API: the audit record written after a call (RunCommand and
    /// InvokeCommand write theirs in their store transaction).
    pub audit: Histogram,
    /// Server queued RunTask → agent read it (two clocks: see README).
    pub deliver: Histogram,
    /// Agent: journaling the accepted task.
    pub journal: Histogram,
    /// Agent: journaled → process spawned.
    pub spawn: Histogram,
    /// Agent: spawned → first output byte read.
    pub first_output: Histogram,
    /// Agent: spawned → process exited.
    pub run: Histogram,
    /// Agent: exited → result journaled and queued for sending.
    pub finish: Histogram,
    /// Agent queued TaskFinished → server read it (two clocks).
    pub report: Histogram,
    /// Server: TaskFinished read → its transaction committed.
    pub commit: Histogram,
}

impl Stages {
    const fn new() -> Stages {
        Stages {
            store: Histogram::latency(),
            push: Histogram::latency(),
            audit: Histogram::latency(),
            deliver: Histogram::latency(),
            journal: Histogram::latency(),
            spawn: Histogram::latency(),
            first_output: Histogram::latency(),
            run: Histogram::latency(),
            finish: Histogram::latency(),
            report: Histogram::latency(),
            commit: Histogram::latency(),
        }
    }

    fn all(&self) -> [(&'static str, &Histogram); 11] {
        [
            ("store", &self.store),
            ("push", &self.push),
            ("audit", &self.audit),
            ("deliver", &self.deliver),
            ("journal", &self.journal),
            ("spawn", &self.spawn),
            ("first_output", &self.first_output),
            ("run", &self.run),
            ("finish", &self.finish),
            ("report", &self.report),
            ("commit", &self.commit),
        ]
    }
}

/// Most distinct API action labels kept; later ones count as "other", so a
/// client inventing action names cannot grow the registry.
const MAX_ACTIONS: usize = 256;

/// Everything drover counts. One instance: [`METRICS`].
pub struct Metrics {
    pub api: Mutex<BTreeMap<String, &'static Histogram>>,
    pub task_delivery: Histogram,
    pub task_completion: Histogram,
    pub stages: Stages,
    pub store_batch_jobs: Histogram,
    pub store_commit: Histogram,
    pub agent_messages: Counter,
    /// Task reports of one agent applied in one store job.
    pub agent_report_ops: Histogram,
    pub agent_connects: Counter,
    pub agent_rejects: Counter,
    /// HTTPS connections that waited for a pending slot of their source
    /// instead of being refused (see netguard).
    pub conn_queued: Counter,
    pub webhook_delivered: Counter,
    pub webhook_retried: Counter,
    pub webhook_failed: Counter,
    pub scheduler_fired: Counter,
    pub scheduler_missed: Counter,
    pub scheduler_failed: Counter,
    /// Unix ms when a task last became final (0: none yet).
    pub last_task_end_ms: AtomicI64,
}

pub static METRICS: Metrics = Metrics {
    api: Mutex::new(BTreeMap::new()),
    task_delivery: Histogram::latency(),
    task_completion: Histogram::latency(),
    stages: Stages::new(),
    store_batch_jobs: Histogram::new(&BATCH_BOUNDS),
    store_commit: Histogram::latency(),
    agent_messages: Counter::new(),
    agent_report_ops: Histogram::new(&BATCH_BOUNDS),
    agent_connects: Counter::new(),
    agent_rejects: Counter::new(),
    conn_queued: Counter::new(),
    webhook_delivered: Counter::new(),
    webhook_retried: Counter::new(),
    webhook_failed: Counter::new(),
    scheduler_fired: Counter::new(),
    scheduler_missed: Counter::new(),
    scheduler_failed: Counter::new(),
    last_task_end_ms: AtomicI64::new(0),
};

/// A label value safe to print: an action name is letters and digits.
fn action_label(action: &str) -> &str {
    let ok = !action.is_empty()
        && action.len() <= 64
        && action.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        action
    } else {
        "invalid"
    }
}

impl Metrics {
    /// Records one API call's latency under its action.
    pub fn api_call(&self, action: &str, d: Duration) {
        let label = action_label(action);
        let Ok(mut m) = self.api.lock() else { return };
        let h = match m.get(label) {
            Some(h) => *h,
            None => {
                let key = if m.len() >= MAX_ACTIONS {
                    "other"
                } else {
                    label
                };
                // Leaked once per distinct label (at most MAX_ACTIONS + 1):
                // the histograms live as long as the process anyway.
                *m.entry(key.to_string())
                    .or_insert_with(|| Box::leak(Box::new(Histogram::latency())))
            }
        };
        drop(m);
        h.observe_duration(d);
    }

    /// A task became final now.
    pub fn task_ended(&self, created_ms: i64, now_ms: i64) {
        self.task_completion
            .observe((now_ms - created_ms).max(0) as f64 / 1e3);
        self.last_task_end_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// The exposition text. `state` holds the gauges computed at scrape
    /// time by the server.
    pub fn render(&self, state: &Snapshot) -> String {
        let mut o = String::with_capacity(16 * 1024);
        gauge(
            &mut o,
            "drover_agents_connected",
            "Agents connected now.",
            state.agents_connected as f64,
        );
        let _ = writeln!(o, "# HELP drover_tasks Tasks in the store by status.");
        let _ = writeln!(o, "# TYPE drover_tasks gauge");
        for (status, n) in &state.tasks_by_status {
            let _ = writeln!(o, "drover_tasks{{status=\"{status}\"}} {n}");
        }
        head(
            &mut o,
            "drover_api_request_seconds",
            "API call latency by action, from request to reply.",
            "histogram",
        );
        if let Ok(m) = self.api.lock() {
            for (action, h) in m.iter() {
                h.write(
                    &mut o,
                    "drover_api_request_seconds",
                    &format!("action=\"{action}\""),
                );
            }
        }
        hist(
            &mut o,
            "drover_task_delivery_seconds",
            "Task created until its agent reported it started.",
            &self.task_delivery,
        );
        hist(
            &mut o,
            "drover_task_completion_seconds",
            "Task created until its final state was committed.",
            &self.task_completion,
        );
        head(
            &mut o,
            "drover_task_stage_seconds",
            "One task's trip, stage by stage.",
            "histogram",
        );
        for (stage, h) in self.stages.all() {
            h.write(
                &mut o,
                "drover_task_stage_seconds",
                &format!("stage=\"{stage}\""),
            );
        }
        hist(
            &mut o,
            "drover_store_batch_jobs",
            "Write jobs per store transaction.",
            &self.store_batch_jobs,
        );
        hist(
            &mut o,
            "drover_store_commit_seconds",
            "Time of one store write transaction, first job to commit.",
            &self.store_commit,
        );
        counter(
            &mut o,
            "drover_agent_messages_total",
            "Messages read from agents.",
            self.agent_messages.get(),
        );
        hist(
            &mut o,
            "drover_agent_report_ops",
            "Task reports (started, output, finished) of one agent written in one store job.",
            &self.agent_report_ops,
        );
        counter(
            &mut o,
            "drover_agent_connections_total",
            "Agent connections accepted (Welcome sent).",
            self.agent_connects.get(),
        );
        counter(
            &mut o,
            "drover_agent_rejections_total",
            "Agent connections refused in the handshake.",
            self.agent_rejects.get(),
        );
        counter(
            &mut o,
            "drover_connections_queued_total",
            "Connections that waited for a pending slot of their source instead of being refused.",
            self.conn_queued.get(),
        );
        head(
            &mut o,
            "drover_webhook_attempts_total",
            "Webhook delivery attempts by result.",
            "counter",
        );
        for (r, c) in [
            ("delivered", &self.webhook_delivered),
            ("retry", &self.webhook_retried),
            ("failed", &self.webhook_failed),
        ] {
            let _ = writeln!(
                o,
                "drover_webhook_attempts_total{{result=\"{r}\"}} {}",
                c.get()
            );
        }
        head(
            &mut o,
            "drover_scheduler_triggers_total",
            "Invoker triggers by outcome.",
            "counter",
        );
        for (r, c) in [
            ("fired", &self.scheduler_fired),
            ("missed", &self.scheduler_missed),
            ("failed", &self.scheduler_failed),
        ] {
            let _ = writeln!(
                o,
                "drover_scheduler_triggers_total{{outcome=\"{r}\"}} {}",
                c.get()
            );
        }
        let last = self.last_task_end_ms.load(Ordering::Relaxed) as f64 / 1e3;
        gauge(
            &mut o,
            "drover_last_task_end_timestamp_seconds",
            "Unix time a task last became final.",
            last,
        );
        o
    }
}

/// Gauges the server computes when scraped.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub agents_connected: usize,
    pub tasks_by_status: Vec<(String, i64)>,
}

fn head(o: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: f64) {
    head(o, name, help, "gauge");
    let _ = writeln!(o, "{name} {v}");
}

fn counter(o: &mut String, name: &str, help: &str, v: u64) {
    head(o, name, help, "counter");
    let _ = writeln!(o, "{name} {v}");
}

fn hist(o: &mut String, name: &str, help: &str, h: &Histogram) {
    head(o, name, help, "histogram");
    h.write(o, name, "");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn histograms_are_cumulative_and_sum_in_units() {
        static H: Histogram = Histogram::latency();
        H.observe(0.0002);
        H.observe(0.003);
        H.observe(100.0);
        H.observe(f64::NAN);
        let mut o = String::new();
        H.write(&mut o, "x", "");
        assert_eq!(value(&o, "x_bucket{le=\"0.0001\"}"), Some(1.0), "{o}");
        assert_eq!(value(&o, "x_bucket{le=\"0.00025\"}"), Some(2.0), "{o}");
        assert_eq!(value(&o, "x_bucket{le=\"0.005\"}"), Some(3.0), "{o}");
        assert_eq!(value(&o, "x_bucket{le=\"30\"}"), Some(3.0), "{o}");
        assert_eq!(value(&o, "x_bucket{le=\"+Inf\"}"), Some(4.0), "{o}");
        assert_eq!(value(&o, "x_count"), Some(4.0), "{o}");
        assert!((value(&o, "x_sum").unwrap() - 100.0032).abs() < 1e-9, "{o}");
    }

    #[test]
    fn action_labels_are_bounded_and_safe() {
        let m = clone_empty();
        m.api_call("RunCommand", Duration::from_millis(3));
        m.api_call("Run\"Command}", Duration::from_millis(3));
        for i in 0..(MAX_ACTIONS + 10) {
            m.api_call(&format!("Made{i}"), Duration::from_millis(1));
        }
        let text = m.render(&Snapshot::default());
        assert!(text.contains("action=\"RunCommand\""), "{text}");
        assert!(text.contains("action=\"invalid\""), "{text}");
        assert!(text.contains("action=\"other\""), "{text}");
        assert!(!text.contains("Run\\\"Command"), "{text}");
        assert!(m.api.lock().unwrap().len() <= MAX_ACTIONS + 1);
    }

    #[test]
    fn exposition_names_every_family_once_and_renders_state() {
        let m = clone_empty();
        m.task_ended(1_000, 1_250);
        let text = m.render(&Snapshot {
            agents_connected: 7,
            tasks_by_status: vec![("SUCCESS".into(), 3)],
        });
        assert_eq!(value(&text, "drover_agents_connected"), Some(7.0));
        assert_eq!(value(&text, "drover_tasks{status=\"SUCCESS\"}"), Some(3.0));
        assert_eq!(
            value(&text, "drover_task_completion_seconds_count"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "drover_last_task_end_timestamp_seconds"),
            Some(1.25)
        );
        let mut families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let n = families.len();
        families.dedup();
        assert_eq!(families.len(), n, "a family is declared twice");
        // Every family is documented in the README's Metrics section.
        let readme = include_str!("../README.md");
        for f in families {
            assert!(readme.contains(&format!("`{f}`")), "README lacks {f}");
        }
    }

    fn clone_empty() -> Metrics {
        Metrics {
            api: Mutex::new(BTreeMap::new()),
            task_delivery: Histogram::latency(),
            task_completion: Histogram::latency(),
            stages: Stages::new(),
            store_batch_jobs: Histogram::new(&BATCH_BOUNDS),
            store_commit: Histogram::latency(),
            agent_messages: Counter::new(),
            agent_report_ops: Histogram::new(&BATCH_BOUNDS),
            agent_connects: Counter::new(),
            agent_rejects: Counter::new(),
            conn_queued: Counter::new(),
            webhook_delivered: Counter::new(),
            webhook_retried: Counter::new(),
            webhook_failed: Counter::new(),
            scheduler_fired: Counter::new(),
            scheduler_missed: Counter::new(),
            scheduler_failed: Counter::new(),
            last_task_end_ms: AtomicI64::new(0),
        }
    }
}
