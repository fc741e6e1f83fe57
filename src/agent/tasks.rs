//! The agent's task registry: turns server commands into running tasks and
//! tasks' progress into outgoing messages, with the journal in between.
//!
//! Guarantees: a task id is run at most once per journal lifetime (dedup on
//! `RunTask`); each task's output reaches the journal before the matching
//! `Output` message is queued; the `TaskFinished` message is journaled
//! before it is queued, so a disconnect or restart can never lose a result;
//! tasks interrupted by an agent restart are finished on start-up with the
//! exit the journal recorded (see `journal.rs`), or else as Failed with no
//! exit code (the task died with the agent: its first process has a death
//! signal tied to the agent, and whatever is left of it is killed here).
//! At most `max_tasks` tasks run at once; further ones are journaled and
//! wait for a slot (the server normally sends no more than that anyway).
//! Tasks run as tokio tasks and report through one bounded channel, so a
//! slow link slows the tasks' output reading instead of growing memory.
//!
//! Job control: `SuspendTask`/`ResumeTask` go to the task's executor, which
//! signals the process group and answers; a task that is not running here
//! is answered at once with `TaskControlFailed` (see `jobctl.rs`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cgroup::Cgroups;
use super::exec::{self, ExecEvent, ExecResult, Host, Stops};
use super::jobctl::{self, Control};
use super::journal::{Journal, JournalError, ProcessMark};
use super::output::Utf8Chunker;
use super::{procinfo, sys};
use crate::protocol::{AgentMsg, Outcome, ServerMsg, TaskSpec, TaskTimings};
use crate::timefmt::now_us;

/// Messages queued by tasks before the link picks them up.
const OUTBOX: usize = 64;

pub struct Tasks {
    journal: Journal,
    work_root: PathBuf,
    running: HashMap<String, Control>,
    tx: mpsc::Sender<AgentMsg>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    cgroups: Option<Cgroups>,
    max_tasks: u32,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Tasks {
    /// The registry and the receiving end of its outbox.
    pub fn new(
        journal: Journal,
        work_root: PathBuf,
        shutdown: CancellationToken,
        cgroups: Option<Cgroups>,
        max_tasks: u32,
    ) -> (Tasks, mpsc::Receiver<AgentMsg>) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let max_tasks = max_tasks.max(1);
        let tasks = Tasks {
            journal,
            work_root,
            running: HashMap::new(),
            tx,
            shutdown,
            tracker: TaskTracker::new(),
            cgroups,
            max_tasks,
            slots: Arc::new(tokio::sync::Semaphore::new(max_tasks as usize)),
        };
        (tasks, rx)
    }

    /// Most tasks run at once.
    pub fn max_tasks(&self) -> u32 {
        self.max_tasks
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Task ids for `Hello.known_tasks`.
    pub fn known_tasks(&self) -> Vec<String> {
        self.journal.task_ids().unwrap_or_default()
    }

    /// Applies one server message; returns replies to send right away.
    pub fn handle(&mut self, msg: ServerMsg) -> Vec<AgentMsg> {
        match msg {
            ServerMsg::RunTask(spec) => self.start(spec).into_iter().collect(),
            ServerMsg::CancelTask { task_id } => {
                if let Some(t) = self.running.get(&task_id) {
                    t.cancel.cancel();
                }
                Vec::new()
            }
            ServerMsg::SuspendTask { task_id } => jobctl::request(&self.running, task_id, true),
            ServerMsg::ResumeTask { task_id } => jobctl::request(&self.running, task_id, false),
            // Sessions are taken by `session::Sessions` before this.
            ServerMsg::Unknown
            | ServerMsg::SessionOpen { .. }
            | ServerMsg::ForwardOpen { .. }
            | ServerMsg::AuthAgentChannel { .. }
            | ServerMsg::SessionResize { .. }
            | ServerMsg::SessionCredit { .. }
            | ServerMsg::SessionEof { .. }
            | ServerMsg::SessionClose { .. } => {
                tracing::debug!("ignoring a server message of a type this agent does not know");
                Vec::new()
            }
            ServerMsg::Ack { task_id } => {
                // A running task has no result to acknowledge yet.
                if !self.running.contains_key(&task_id) {
                    if let Err(e) = self.journal.ack(&task_id) {
                        tracing::warn!("dropping acknowledged task {task_id}: {e}");
                    }
                }
                Vec::new()
            }
            ServerMsg::Challenge { .. }
            | ServerMsg::Welcome { .. }
            | ServerMsg::Rejected { .. } => {
                tracing::debug!("ignoring a handshake message after the handshake");
                Vec::new()
            }
        }
    }

    /// Each running task's job-control state, for after a reconnect.
    pub fn control_reports(&self) -> Vec<AgentMsg> {
        jobctl::reports(&self.running)
    }

    /// Bookkeeping for a message leaving the outbox.
    pub fn note_sent(&mut self, msg: &AgentMsg) {
        if let AgentMsg::TaskFinished { task_id, .. } = msg {
            self.running.remove(task_id);
        }
    }

    fn start(&mut self, spec: TaskSpec) -> Option<AgentMsg> {
        let received = now_us();
        let task_id = spec.task_id.clone();
        // The script is kept only in its 0600 script file for the run: the
        // journal (kept until the server's Ack) never needs it again, since
        // an interrupted task is ended, not re-run. So neither a secret nor
        // a hidden parameter's value is left on disk after the run.
        let journaled = TaskSpec {
            content: String::new(),
            mask: Vec::new(),
            ..spec.clone()
        };
        match self.journal.accept(&journaled) {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("task {task_id} is already journaled; not running it again");
                return None;
            }
            Err(e @ JournalError::BadTaskId(_)) => {
                // Nothing can be journaled under this id; answer at once.
                let now = exec::now_ms();
                return Some(finished(
                    &task_id,
                    &failed(Outcome::StartFailed, now, 0, e.to_string()),
                ));
            }
            Err(e) => {
                tracing::error!("journaling task {task_id}: {e}");
                let now = exec::now_ms();
                return Some(finished(
                    &task_id,
                    &failed(Outcome::StartFailed, now, 0, e.to_string()),
                ));
            }
        }
        let timings = TaskTimings {
            received,
            journaled: now_us(),
            ..TaskTimings::default()
        };
        let cancel = CancellationToken::new();
        let (suspend, suspend_rx) = watch::channel(false);
        let suspended_at = Arc::new(AtomicI64::new(0));
        self.running.insert(
            task_id,
            Control {
                cancel: cancel.clone(),
                suspend,
                suspended_at: suspended_at.clone(),
            },
        );
        let stops = Stops {
            cancel,
            shutdown: self.shutdown.clone(),
            suspend: suspend_rx,
        };
        let ctx = TaskCtx {
            journal: self.journal.clone(),
            work_root: self.work_root.clone(),
            tx: self.tx.clone(),
            cgroups: self.cgroups.clone(),
            slots: self.slots.clone(),
            timings,
        };
        self.tracker.spawn(run_task(spec, ctx, stops, suspended_at));
        None
    }

    /// Waits for every task to finish (they stop themselves on shutdown).
    pub async fn wait_all(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Finishes journal entries whose process died with a previous agent:
    /// their output pipe is gone, so they cannot be followed any more.
    /// What is left of them is killed; the result is the exit the journal
    /// recorded, or Failed with no exit code when none was.
    pub fn recover(&self) {
        let boot = procinfo::boot_id();
        for id in self.known_tasks() {
            let entry = match self.journal.load(&id) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!("journal entry {id} is unreadable ({e}); dropping it");
                    let _ = self.journal.ack(&id);
                    continue;
                }
            };
            if entry.result.is_some() {
                continue;
            }
            let started_at = entry
                .process
                .as_ref()
                .map_or_else(exec::now_ms, |m| m.started_at);
            if let Some(cg) = self.cgroups.as_ref().map(|c| c.task(&id)) {
                if cg.exists() {
                    cg.kill();
                    cg.remove();
                }
            }
            if let Some(mark) = &entry.process {
                kill_if_ours(mark, &boot);
            }
            let output_len = self.journal.output_len(&id);
            let result = match self.journal.exit(&id) {
                Some(code) => ExecResult {
                    outcome: if code == Some(0) {
                        Outcome::Success
                    } else {
                        Outcome::Failed
                    },
                    exit_code: code,
                    started_at,
                    ended_at: exec::now_ms(),
                    output_len,
                    error_info: "the agent restarted after the task ended, before it had \
                        read all of its output: the output may be incomplete"
                        .into(),
                },
                None => failed(
                    Outcome::Failed,
                    started_at,
                    output_len,
                    "the agent restarted while the task was running; the task was stopped \
                     with it (exit status unknown)"
                        .into(),
                ),
            };
            let msg = finished(&id, &result);
            if let Err(e) = self.journal.finish(&id, &msg) {
                tracing::warn!("recording the end of task {id}: {e}");
            }
        }
        // Cgroups of tasks that are no longer journaled belong to finished
        // tasks that left a daemon behind: left alone, removed once empty.
        if let Some(cgs) = &self.cgroups {
            for name in cgs.present() {
                cgs.task(&name).remove();
            }
        }
    }

    /// Everything the journal holds, for resending after a (re)connect.
    pub fn replay(&self) -> Replay {
        let mut ids = self.known_tasks();
        ids.reverse(); // popped from the back: oldest first
        Replay {
            journal: self.journal.clone(),
            ids,
            current: None,
        }
    }
}

/// Kills a recorded process group if it is provably the one we started: same
/// boot, and either its leader has the recorded start time or the leader is
/// gone (a pid is not reused while its process group still has members).
fn kill_if_ours(mark: &ProcessMark, boot: &str) {
    if mark.boot_id != boot || mark.pgid <= 1 {
        return;
    }
    let ours = match procinfo::stat(mark.pgid) {
        Some(st) => st.start_ticks == mark.start_ticks,
        None => true,
    };
    if ours && !procinfo::live_group_members(mark.pgid).is_empty() {
        tracing::info!(
            "killing process group {} left by a previous agent",
            mark.pgid
        );
        let _ = sys::signal_group(mark.pgid, libc::SIGKILL);
    }
}

fn failed(outcome: Outcome, started_at: i64, output_len: u64, error_info: String) -> ExecResult {
    ExecResult {
        outcome,
        exit_code: None,
        started_at,
        ended_at: exec::now_ms(),
        output_len,
        error_info,
    }
}

fn finished(task_id: &str, r: &ExecResult) -> AgentMsg {
    AgentMsg::TaskFinished {
        task_id: task_id.to_string(),
        outcome: r.outcome,
        exit_code: r.exit_code,
        started_at: r.started_at,
        ended_at: r.ended_at,
        output_len: r.output_len,
        error_info: r.error_info.clone(),
    }
}

/// What a task needs from the registry.
struct TaskCtx {
    journal: Journal,
    work_root: PathBuf,
    tx: mpsc::Sender<AgentMsg>,
    cgroups: Option<Cgroups>,
    slots: Arc<tokio::sync::Semaphore>,
    /// Stage stamps so far (received, journaled), sent as `TaskTimings`.
    timings: TaskTimings,
}

/// One task from start to journaled result.
async fn run_task(spec: TaskSpec, ctx: TaskCtx, stops: Stops, suspended_at: Arc<AtomicI64>) {
    let TaskCtx {
        journal,
        work_root,
        tx,
        cgroups,
        slots,
        mut timings,
    } = ctx;
    // Waits for a free slot; a cancel or shutdown meanwhile ends the task
    // before it ever ran.
    let _permit = tokio::select! {
        p = slots.acquire_owned() => p.ok(),
        _ = stops.cancel.cancelled() => None,
        _ = stops.shutdown.cancelled() => None,
    };
    if _permit.is_none() {
        let now = exec::now_ms();
        let (outcome, why) = if stops.cancel.is_cancelled() {
            (Outcome::Terminated, "cancelled before it started")
        } else {
            (
                Outcome::StartFailed,
                "the agent stopped before the task could start",
            )
        };
        let msg = finished(&spec.task_id, &failed(outcome, now, 0, why.into()));
        if let Err(e) = journal.finish(&spec.task_id, &msg) {
            tracing::error!("task {}: result not journaled: {e}", spec.task_id);
        }
        let _ = tx.send(msg).await;
        return;
    }
    let task_id = spec.task_id.clone();
    let mut writer = match journal.output_writer(&task_id) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!("task {task_id}: output will not be journaled: {e}");
            None
        }
    };
    let (etx, mut erx) = mpsc::channel(4);
    let relay = async {
        while let Some(ev) = erx.recv().await {
            let msg = match ev {
                ExecEvent::Started { pgid, started_at } => {
                    timings.spawned = now_us();
                    let mark = ProcessMark {
                        pgid,
                        start_ticks: procinfo::stat(pgid).map(|s| s.start_ticks).unwrap_or(0),
                        boot_id: procinfo::boot_id(),
                        started_at,
                    };
                    if let Err(e) = journal.set_process(&task_id, &mark) {
                        tracing::warn!("task {task_id}: {e}");
                    }
                    AgentMsg::TaskStarted {
                        task_id: task_id.clone(),
                        started_at,
                    }
                }
                ExecEvent::Output { offset, data } => {
                    if timings.first_output == 0 {
                        timings.first_output = now_us();
                    }
                    if let Some(w) = writer.as_mut() {
                        if let Err(e) = w.append(&data) {
                            tracing::warn!("task {task_id}: {e}");
                        }
                    }
                    AgentMsg::Output {
                        task_id: task_id.clone(),
                        offset,
                        data: B64.encode(&data),
                    }
                }
                ExecEvent::Job(ev) => jobctl::relay(&task_id, ev, &suspended_at),
            };
            // The link may be down: the journal already has it for replay.
            let _ = tx.send(msg).await;
        }
    };
    let exit_journal = journal.clone();
    let exit_id = task_id.clone();
    let host = Host {
        cgroups,
        on_exit: Some(Box::new(move |code| {
            if let Err(e) = exit_journal.set_exit(&exit_id, code) {
                tracing::warn!("task {exit_id}: exit not journaled: {e}");
            }
        })),
    };
    let (result, ()) = tokio::join!(exec::run(&spec, &work_root, etx, stops, host), relay);
    timings.exited = now_us();
    let msg = finished(&task_id, &result);
    if let Err(e) = journal.finish(&task_id, &msg) {
        tracing::error!("task {task_id}: result not journaled: {e}");
    }
    tracing::info!("task {task_id} finished: {:?}", result.outcome);
    timings.finished = now_us();
    let _ = tx
        .send(AgentMsg::TaskTimings {
            task_id: task_id.clone(),
            timings,
        })
        .await;
    let _ = tx.send(msg).await;
}

/// Streams the journal back as messages, one bounded chunk at a time, so a
/// large output is never held in memory whole.
pub struct Replay {
    journal: Journal,
    ids: Vec<String>,
    current: Option<ReplayTask>,
}

struct ReplayTask {
    id: String,
    offset: u64,
    chunker: Utf8Chunker,
    result: Option<AgentMsg>,
    eof: bool,
}

impl Replay {
    /// The next message to resend, or None when done.
    pub fn next_msg(&mut self) -> Option<AgentMsg> {
        loop {
            if self.current.is_none() {
                let id = self.ids.pop()?;
                let entry = self.journal.load(&id).ok();
                let result = entry.as_ref().and_then(|e| e.result.clone());
                // A TaskStarted dropped while disconnected is resent for a
                // task still running; a finished one carries started_at.
                let started = match (&result, entry.and_then(|e| e.process)) {
                    (None, Some(mark)) => Some(AgentMsg::TaskStarted {
                        task_id: id.clone(),
                        started_at: mark.started_at,
                    }),
                    _ => None,
                };
                self.current = Some(ReplayTask {
                    id,
                    offset: 0,
                    chunker: Utf8Chunker::default(),
                    result,
                    eof: false,
                });
                if started.is_some() {
                    return started;
                }
            }
            let cur = self.current.as_mut()?;
            if let Some(msg) = cur.next_output(&self.journal) {
                return Some(msg);
            }
            let done = self.current.take()?;
            if let Some(r) = done.result {
                return Some(r);
            }
        }
    }
}

impl ReplayTask {
    fn next_output(&mut self, journal: &Journal) -> Option<AgentMsg> {
        let mut buf = vec![0u8; super::output::MAX_CHUNK];
        loop {
            if let Some(data) = self.chunker.take() {
                return Some(self.msg(data));
            }
            if self.eof {
                let tail = self.chunker.finish();
                return (!tail.is_empty()).then(|| self.msg(tail));
            }
            let read_at = self.offset + self.chunker.pending_len() as u64;
            match journal.read_output(&self.id, read_at, &mut buf) {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.chunker.push(&buf[..n]),
            }
        }
    }

    fn msg(&mut self, data: Vec<u8>) -> AgentMsg {
        let offset = self.offset;
        self.offset += data.len() as u64;
        AgentMsg::Output {
            task_id: self.id.clone(),
            offset,
            data: B64.encode(&data),
        }
    }
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;
