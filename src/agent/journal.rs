//! The agent's durable record of every task it accepted, so that output and
//! results survive disconnects and agent restarts.
//!
//! Layout: `DIR/journal/<task_id>/` holding
//! * `spec.json`   the `TaskSpec`, written atomically when the task is accepted;
//! * `output`      every output byte, appended before it is sent;
//! * `process`     "pgid starttime started_at boot_id" while the process may be running;
//! * `exit`        the main process's exit code ("-" for a signal), written
//!   the moment it is reaped, before the output is drained: if the agent
//!   dies before `result.json`, the restarted agent still reports the
//!   task's real exit;
//! * `result.json` the final `TaskFinished` message, written atomically.
//!
//! Guarantees: an entry exists from acceptance until the server's `Ack`, so
//! a `RunTask` for a journaled id is never run twice; bytes are in `output`
//! before the matching `Output` message leaves, so a resend from offset 0
//! covers everything the server could have missed; a result, once written,
//! is what gets resent after any reconnect or restart. Task ids are
//! restricted to a safe character set: they become directory names.
//!
//! The journal uses blocking file I/O: the writes are small appends on local
//! disk and the agent runs on one thread, so a thread hop would cost more.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::protocol::{AgentMsg, TaskSpec};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal {path}: bad record: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("task id {0:?} is not acceptable (want 1-128 of [A-Za-z0-9_-])")]
    BadTaskId(String),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// One task as read back from disk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub spec: TaskSpec,
    pub process: Option<ProcessMark>,
    /// The `TaskFinished` message once the task has ended.
    pub result: Option<AgentMsg>,
}

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// True when `id` may be used as a directory name.
pub fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Journal {
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        fsutil::create_private_dir(dir).map_err(io_at(dir))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
        })
    }

    fn task_dir(&self, task_id: &str) -> Result<PathBuf, JournalError> {
        if !valid_task_id(task_id) {
            return Err(JournalError::BadTaskId(task_id.to_string()));
        }
        Ok(self.dir.join(task_id))
    }

    pub fn contains(&self, task_id: &str) -> bool {
        self.task_dir(task_id)
            .map(|d| d.join("spec.json").exists())
            .unwrap_or(false)
    }

    /// Records a newly accepted task. `Ok(false)` if it was already there:
    /// the caller must not run it again.
    pub fn accept(&self, spec: &TaskSpec) -> Result<bool, JournalError> {
        let dir = self.task_dir(&spec.task_id)?;
        let spec_path = dir.join("spec.json");
        if spec_path.exists() {
            return Ok(false);
        }
        fsutil::create_private_dir(&dir).map_err(io_at(&dir))?;
        let json = serde_json::to_vec(spec).map_err(|source| JournalError::Corrupt {
            path: spec_path.clone(),
            source,
        })?;
        fsutil::write_private(&spec_path, &json).map_err(io_at(&spec_path))?;
        Ok(true)
    }

    /// The task's output file, for appending. The file is created with the
    /// first byte: most tasks of a fan-out print nothing, and file creation
    /// is the agent's main cost per task.
    pub fn output_writer(&self, task_id: &str) -> Result<OutputWriter, JournalError> {
        let path = self.task_dir(task_id)?.join("output");
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_at(&path)(e)),
        };
        Ok(OutputWriter {
            file: None,
            path,
            len,
        })
    }

    /// Reads up to `buf.len()` output bytes starting at `offset`; 0 at the end.
    pub fn read_output(
        &self,
        task_id: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, JournalError> {
        let path = self.task_dir(task_id)?.join("output");
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_at(&path)(e)),
        };
        f.seek(SeekFrom::Start(offset)).map_err(io_at(&path))?;
        f.read(buf).map_err(io_at(&path))
    }

    pub fn set_process(&self, task_id: &str, mark: &ProcessMark) -> Result<(), JournalError> {
        let path = self.task_dir(task_id)?.join("process");
        let text = format!(
            "{} {} {} {}",
            mark.pgid, mark.start_ticks, mark.started_at, mark.boot_id
        );
        // No fsync or rename: the mark only matters while this boot lasts
        // (it carries the boot id), and the page cache outlives an agent
        // crash. A torn write parses as no mark, which is also safe.
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        f.write_all(text.as_bytes()).map_err(io_at(&path))
    }

    /// Records the main process's exit code (None: killed by a signal).
    /// Like the process mark it is not synced: it must survive the agent,
    /// not the machine (a reboot kills the task anyway).
    pub fn set_exit(&self, task_id: &str, code: Option<i64>) -> Result<(), JournalError> {
        let path = self.task_dir(task_id)?.join("exit");
        let text = code.map_or_else(|| "-".to_string(), |c| c.to_string());
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        f.write_all(text.as_bytes()).map_err(io_at(&path))
    }

    /// The recorded exit: None when none was recorded, Some(None) for a
    /// signal, Some(Some(code)) for an exit code.
    pub fn exit(&self, task_id: &str) -> Option<Option<i64>> {
        let text = std::fs::read_to_string(self.task_dir(task_id).ok()?.join("exit")).ok()?;
        match text.trim() {
            "-" => Some(None),
            t => t.parse().ok().map(Some),
        }
    }

    /// Stores the task's `TaskFinished` message; the process mark goes.
    pub fn finish(&self, task_id: &str, finished: &AgentMsg) -> Result<(), JournalError> {
        let dir = self.task_dir(task_id)?;
        let path = dir.join("result.json");
        let json = serde_json::to_vec(finished).map_err(|source| JournalError::Corrupt {
            path: path.clone(),
            source,
        })?;
        fsutil::write_private(&path, &json).map_err(io_at(&path))?;
        let _ = std::fs::remove_file(dir.join("process"));
        Ok(())
    }

    /// The server holds the result durably: forget the task.
    pub fn ack(&self, task_id: &str) -> Result<(), JournalError> {
        let dir = self.task_dir(task_id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&dir)(e)),
        }
    }

    /// Ids of every journaled task, sorted.
    pub fn task_ids(&self) -> Result<Vec<String>, JournalError> {
        let mut ids = Vec::new();
        for ent in std::fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let ent = ent.map_err(io_at(&self.dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if valid_task_id(&name) && ent.path().join("spec.json").exists() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn load(&self, task_id: &str) -> Result<Entry, JournalError> {
        let dir = self.task_dir(task_id)?;
        let spec: TaskSpec = read_json(&dir.join("spec.json"))?;
        let result_path = dir.join("result.json");
        let result = if result_path.exists() {
            Some(read_json(&result_path)?)
        } else {
            None
        };
        let process = std::fs::read_to_string(dir.join("process"))
            .ok()
            .and_then(|s| parse_mark(&s));
        Ok(Entry {
            spec,
            process,
            result,
        })
    }

    /// Length of the output recorded so far.
    pub fn output_len(&self, task_id: &str) -> u64 {
        self.task_dir(task_id)
            .ok()
            .and_then(|d| std::fs::metadata(d.join("output")).ok())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Removes directories left half-created by a crash during `accept`.
    pub fn sweep_incomplete(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for ent in rd.flatten() {
            let path = ent.path();
            if path.is_dir() && !path.join("spec.json").exists() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, JournalError> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    serde_json::from_slice(&bytes).map_err(|source| JournalError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_mark(s: &str) -> Option<ProcessMark> {
    let mut it = s.split_whitespace();
    Some(ProcessMark {
        pgid: it.next()?.parse().ok()?,
        start_ticks: it.next()?.parse().ok()?,
        started_at: it.next()?.parse().ok()?,
        boot_id: it.next().unwrap_or_default().to_string(),
    })
}

/// Appends a task's output; tracks the length, which is the next offset.
#[derive(Debug)]
pub struct OutputWriter {
    file: Option<File>,
    path: PathBuf,
    len: u64,
}

impl OutputWriter {
    /// Appends `data` and returns the offset it starts at.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, JournalError> {
        let offset = self.len;
        if data.is_empty() {
            return Ok(offset);
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)
                    .map_err(io_at(&self.path))?,
            ),
        };
        file.write_all(data).map_err(io_at(&self.path))?;
        self.len += data.len() as u64;
        Ok(offset)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::Outcome;

    fn spec(id: &str) -> TaskSpec {
        TaskSpec {
            task_id: id.into(),
            invocation_id: "inv-1".into(),
            command_type: "SHELL".into(),
            content: "ZWNobyBoaQ==".into(),
            timeout: 60,
            working_directory: String::new(),
            username: String::new(),
            mask: Vec::new(),
        }
    }

    fn finished(id: &str) -> AgentMsg {
        AgentMsg::TaskFinished {
            task_id: id.into(),
            outcome: Outcome::Success,
            exit_code: Some(0),
            started_at: 1,
            ended_at: 2,
            output_len: 3,
            error_info: String::new(),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_dedup_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let j = Journal::open(&dir).unwrap();
        assert!(j.accept(&spec("invt-a")).unwrap());
        assert!(
            !j.accept(&spec("invt-a")).unwrap(),
            "second accept must dedup"
        );
        let mut w = j.output_writer("invt-a").unwrap();
        assert_eq!(w.append(b"hel").unwrap(), 0);
        assert_eq!(w.append(b"lo").unwrap(), 3);
        let mark = ProcessMark {
            pgid: 4242,
            start_ticks: 99,
            boot_id: "b".into(),
            started_at: 1234,
        };
        j.set_process("invt-a", &mark).unwrap();
        drop(j);

        // "restart": a fresh handle sees the same state
        let j = Journal::open(&dir).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["invt-a".to_string()]);
        assert!(j.contains("invt-a"));
        assert!(!j.accept(&spec("invt-a")).unwrap());
        let e = j.load("invt-a").unwrap();
        assert_eq!(e.spec, spec("invt-a"));
        assert_eq!(e.process, Some(mark));
        assert!(e.result.is_none());
        let mut buf = [0u8; 16];
        let n = j.read_output("invt-a", 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(j.read_output("invt-a", 3, &mut buf).unwrap(), 2);
        let mut w = j.output_writer("invt-a").unwrap();
        assert_eq!(w.append(b"!").unwrap(), 5, "appending continues at the end");

        j.finish("invt-a", &finished("invt-a")).unwrap();
        let e = Journal::open(&dir).unwrap().load("invt-a").unwrap();
        assert_eq!(e.result, Some(finished("invt-a")));
        assert!(e.process.is_none());
    }

    #[test]
    fn ack_removes_the_entry_and_allows_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        j.accept(&spec("t1")).unwrap();
        j.accept(&spec("t2")).unwrap();
        j.ack("t1").unwrap();
        j.ack("t1").unwrap(); // idempotent
        assert_eq!(j.task_ids().unwrap(), vec!["t2".to_string()]);
        assert!(!j.contains("t1"));
    }

    #[test]
    fn rejects_unsafe_task_ids_and_sweeps_half_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        for bad in ["../x", "", "a/b", ".", "a b"] {
            assert!(
                matches!(j.accept(&spec(bad)), Err(JournalError::BadTaskId(_))),
                "{bad}"
            );
        }
        std::fs::create_dir(tmp.path().join("half")).unwrap();
        j.sweep_incomplete();
        assert!(!tmp.path().join("half").exists());
    }
}
