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
//! Power loss (the machine, not only the agent, going down): two things are
//! fsynced, so what the server may not yet hold survives it.
//! * The entry itself (`spec.json` and the directory entries leading to
//!   it) before the task's process starts: a task that may have started is
//!   always known after a reboot, reported as interrupted, never run again.
//!   An entry whose `spec.json` did not survive whole never started.
//! * The result (and the output before it) before `TaskFinished` leaves:
//!   the server's `Ack` is the only thing that lets the agent forget it.
//!   `result.json` is made empty at acceptance, so storing the result is
//!   one write and one fdatasync into a file whose name is already durable;
//!   an empty or torn `result.json` reads as no result (interrupted).
//!
//! The process mark and the exit record are not synced: they only matter
//! while this boot lasts (a reboot has killed the task anyway). An `Ack`'s
//! removal is not synced either: an entry that comes back after a power
//! loss is resent, and the server acknowledges a task it already holds.
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
    /// the caller must not run it again. On `Ok(true)` the entry is on disk
    /// for good (fsynced with its directory entries), so the task may run.
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
        // The empty result slot first: its name becomes durable with the
        // directory's fsync below, so `finish` needs no directory fsync.
        let result_path = dir.join("result.json");
        create_private(&result_path).map_err(io_at(&result_path))?;
        // spec.json is written in place, not renamed: until this returns
        // the task has not started, so a torn spec.json after a crash is an
        // entry of a task that never ran (`load` fails, `recover` drops it).
        let mut f = create_private(&spec_path).map_err(io_at(&spec_path))?;
        f.write_all(&json).map_err(io_at(&spec_path))?;
        f.sync_all().map_err(io_at(&spec_path))?;
        sync_dir(&dir)?;
        sync_dir(&self.dir)?;
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

    /// Stores the task's `TaskFinished` message durably (its output first);
    /// the process mark goes. Call before the message is sent: after a power
    /// loss the agent must still hold what the server may not have stored.
    pub fn finish(&self, task_id: &str, finished: &AgentMsg) -> Result<(), JournalError> {
        let dir = self.task_dir(task_id)?;
        let path = dir.join("result.json");
        let json = serde_json::to_vec(finished).map_err(|source| JournalError::Corrupt {
            path: path.clone(),
            source,
        })?;
        // The output the result counts is on disk before the result is:
        // a resend then has every byte, or (disk trouble) the server shows
        // the output incomplete.
        let output = dir.join("output");
        match File::open(&output) {
            Ok(f) => f.sync_data().map_err(io_at(&output))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&output)(e)),
        }
        // Written in place into the slot `accept` made durable: one
        // fdatasync, no rename and no directory fsync (the largest
        // agent-side costs of a short task). A torn write (crash mid-way)
        // reads as no result, i.e. an interrupted task, never as a wrong one.
        // An entry journaled by an older agent has no slot yet.
        let (mut f, created) = match OpenOptions::new().write(true).truncate(true).open(&path) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (create_private(&path).map_err(io_at(&path))?, true)
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        f.write_all(&json).map_err(io_at(&path))?;
        f.sync_data().map_err(io_at(&path))?;
        if created {
            sync_dir(&dir)?;
        }
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
        // Empty (the slot `accept` made) or torn by a crash while it was
        // written: no result, so the task reads as interrupted.
        let result = std::fs::read(dir.join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
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

/// Creates (or truncates) a file only the agent may read.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Makes the entries of directory `dir` (files created, renamed, removed in
/// it) durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
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
    fn a_result_lives_in_the_slot_made_at_acceptance_and_a_torn_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        j.accept(&spec("t1")).unwrap();
        let slot = tmp.path().join("t1").join("result.json");
        assert_eq!(
            std::fs::read(&slot).unwrap(),
            b"",
            "an empty slot after accept"
        );
        assert!(j.load("t1").unwrap().result.is_none());
        j.output_writer("t1").unwrap().append(b"abc").unwrap();
        j.finish("t1", &finished("t1")).unwrap();
        assert_eq!(j.load("t1").unwrap().result, Some(finished("t1")));
        // A crash in the middle of the write leaves part of the JSON: the
        // task reads as unfinished (interrupted), the entry stays.
        let whole = std::fs::read(&slot).unwrap();
        std::fs::write(&slot, &whole[..whole.len() / 2]).unwrap();
        let e = j.load("t1").unwrap();
        assert!(e.result.is_none());
        assert_eq!(j.task_ids().unwrap(), vec!["t1".to_string()]);
        // An entry an older agent journaled has no slot: finish makes one.
        j.accept(&spec("t2")).unwrap();
        std::fs::remove_file(tmp.path().join("t2").join("result.json")).unwrap();
        j.finish("t2", &finished("t2")).unwrap();
        assert_eq!(j.load("t2").unwrap().result, Some(finished("t2")));
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
