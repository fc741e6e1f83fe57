//! What the journal holds about one task, shared by the log
//! (`journal`) and the import of older agents' directories
//! (`journal_legacy`): the entry, its process mark, the task id rule and
//! where its output lives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::protocol::{AgentMsg, TaskSpec};

/// Where a running task's process lives, to find it again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMark {
    pub pgid: i32,
    /// Start time of the group leader (clock ticks since boot, /proc stat
    /// field 22): tells our process apart from a later one reusing the pid.
    pub start_ticks: u64,
    pub boot_id: String,
    /// When the task started, unix ms: needed to report it after a restart.
    pub started_at: i64,
}

impl ProcessMark {
    pub(super) fn to_text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.pgid, self.start_ticks, self.started_at, self.boot_id
        )
    }
}

/// One task as the journal holds it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub spec: TaskSpec,
    pub process: Option<ProcessMark>,
    /// The `TaskFinished` message once the task has ended.
    pub result: Option<AgentMsg>,
    /// The recorded exit: Some(None) for a signal.
    pub(crate) exit: Option<Option<i64>>,
}

/// The live tasks, by id (sorted: replay goes oldest id first).
pub(crate) type Entries = BTreeMap<String, Entry>;

/// True when `id` may be used as a file name.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where the output of `task_id` (a valid id) is kept.
pub(crate) fn output_path(dir: &Path, task_id: &str) -> PathBuf {
    dir.join(format!("{task_id}.out"))
}

pub(crate) fn parse_mark(s: &str) -> Option<ProcessMark> {
    let mut it = s.split_whitespace();
    Some(ProcessMark {
        pgid: it.next()?.parse().ok()?,
        start_ticks: it.next()?.parse().ok()?,
        started_at: it.next()?.parse().ok()?,
        boot_id: it.next().unwrap_or_default().to_string(),
    })
}
