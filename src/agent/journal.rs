//! The agent's durable record of every task it accepted, so that output and
//! results survive disconnects and agent restarts.
//!
//! Layout: `DIR/journal/` holding
//! * `log`          an append-only file of records (`journal_log.rs`): a
//!   task's acceptance (its `TaskSpec`), its process mark
//!   ("pgid starttime started_at boot_id" while the process may run), its
//!   exit code (written the moment it is reaped, before the output is
//!   drained: if the agent dies before the result, the restarted agent
//!   still reports the task's real exit), its `TaskFinished` message, and
//!   the server's `Ack`;
//! * `<task_id>.out` every output byte, appended before it is sent; made
//!   with the first byte (most tasks of a fan-out print nothing).
//!
//! The log is read whole when the journal opens and rewritten with only the
//! tasks still held (compacted), and again whenever it has grown past
//! `COMPACT_AT`; in between, the live tasks are kept in memory.
//!
//! Guarantees: an entry exists from acceptance until the server's `Ack`, so
//! a `RunTask` for a journaled id is never run twice; bytes are in the
//! output file before the matching `Output` message leaves, so a resend from
//! offset 0 covers everything the server could have missed; a result, once
//! written, is what gets resent after any reconnect or restart. Task ids are
//! restricted to a safe character set: they become file names.
//!
//! Power loss (the machine, not only the agent, going down): two records are
//! synced (one write and one fdatasync each, no new directory entry), so
//! what the server may not yet hold survives it.
//! * The acceptance, before the task's process starts: a task that may have
//!   started is always known after a reboot, reported as interrupted, never
//!   run again. An acceptance that did not survive whole (a torn last
//!   record) is of a task that never started.
//! * The result (and the output file before it), before `TaskFinished`
//!   leaves: the server's `Ack` is the only thing that lets the agent forget
//!   it. A torn result record reads as no result (interrupted).
//!
//! The process mark and the exit record are not synced: they only matter
//! while this boot lasts (a reboot has killed the task anyway). An `Ack` is
//! not synced either: an entry that comes back after a power loss is resent,
//! and the server acknowledges a task it already holds. A compaction is
//! synced (file, rename, directory) before anything is appended after it.
//!
//! A journal written by an older agent (a directory per task) is read once,
//! at open, into the log and then removed.
//!
//! The journal uses blocking file I/O: the writes are small appends on local
//! disk and the agent runs on one thread, so a thread hop would cost more.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) use super::journal_entry::{output_path, parse_mark, Entries};
pub use super::journal_entry::{valid_task_id, Entry, ProcessMark};
use super::journal_legacy;
use super::journal_log::{self, Record};
use crate::fsutil;
use crate::protocol::{AgentMsg, TaskSpec};

/// The log is compacted when it grows past this (about 1,700 tasks' worth):
/// one rewrite of the live tasks, a rename and two fsyncs.
const COMPACT_AT: u64 = 1 << 20;
const LOG: &str = "log";
const LOG_NEW: &str = "log.new";

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
    #[error("task {0} is not in the journal")]
    Unknown(String),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// The log, opened for appending.
    file: File,
    /// Bytes of whole records in it: where the next one goes.
    len: u64,
    /// A failed append may have left bytes past `len`: cut them first.
    torn: bool,
    entries: Entries,
    /// Compact when the log grows past this (`COMPACT_AT`; tests lower it).
    compact_at: u64,
}

/// Applies one record to the live set. Records of a task that is not
/// there (acknowledged, or never accepted whole) change nothing.
fn apply(entries: &mut Entries, rec: Record) {
    match rec {
        Record::Accept { spec } => {
            let id = spec.task_id.clone();
            entries.entry(id).or_insert(Entry {
                spec,
                process: None,
                result: None,
                exit: None,
            });
        }
        Record::Process { id, mark } => {
            if let Some(e) = entries.get_mut(&id) {
                e.process = parse_mark(&mark);
            }
        }
        Record::Exit { id, code } => {
            if let Some(e) = entries.get_mut(&id) {
                e.exit = Some(code);
            }
        }
        Record::Result { id, msg } => {
            if let Some(e) = entries.get_mut(&id) {
                e.result = Some(msg);
                e.process = None;
            }
        }
        Record::Ack { id } => {
            entries.remove(&id);
        }
    }
}

/// The records that rebuild `entries`.
fn snapshot(entries: &Entries) -> Vec<Record> {
    let mut out = Vec::with_capacity(entries.len() * 2);
    for (id, e) in entries {
        out.push(Record::Accept {
            spec: e.spec.clone(),
        });
        if let Some(m) = &e.process {
            out.push(Record::Process {
                id: id.clone(),
                mark: m.to_text(),
            });
        }
        if let Some(code) = e.exit {
            out.push(Record::Exit {
                id: id.clone(),
                code,
            });
        }
        if let Some(msg) = &e.result {
            out.push(Record::Result {
                id: id.clone(),
                msg: msg.clone(),
            });
        }
    }
    out
}

fn encode_all(records: &[Record], path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut buf = Vec::new();
    for r in records {
        buf.extend(
            journal_log::encode(r).map_err(|source| JournalError::Corrupt {
                path: path.to_path_buf(),
                source,
            })?,
        );
    }
    Ok(buf)
}

/// Reads the log at `dir` (missing: empty): the live tasks and the length
/// of its whole records.
fn read_log(dir: &Path) -> Result<(Entries, u64), JournalError> {
    let path = dir.join(LOG);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let (records, len) = journal_log::decode(&bytes);
    let mut entries = Entries::new();
    for r in records {
        apply(&mut entries, r);
    }
    Ok((entries, len as u64))
}

/// Writes the live tasks to a new log and puts it in place: synced, renamed
/// over the old one, directory synced. Returns the new log, open for
/// appending, and its length.
fn rewrite(dir: &Path, entries: &Entries) -> Result<(File, u64), JournalError> {
    let tmp = dir.join(LOG_NEW);
    let buf = encode_all(&snapshot(entries), &tmp)?;
    let written = (|| {
        let mut f = open_append(&tmp)?;
        f.set_len(0)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        Ok(f)
    })();
    let f = match written {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_at(&tmp)(e));
        }
    };
    let log = dir.join(LOG);
    if let Err(e) = std::fs::rename(&tmp, &log) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_at(&log)(e));
    }
    // The new file is the log now, whatever happens next.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!("the compacted journal may not survive a power loss: {e}");
    }
    Ok((f, buf.len() as u64))
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl Inner {
    /// Appends one record; with `sync`, it is on disk when this returns.
    /// On failure nothing of it remains (it is cut off again), so the log
    /// never holds a torn record before a whole one.
    fn append(&mut self, rec: Record, sync: bool, path: &Path) -> Result<(), JournalError> {
        let line = journal_log::encode(&rec).map_err(|source| JournalError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
        if self.torn {
            self.file.set_len(self.len).map_err(io_at(path))?;
            self.torn = false;
        }
        let mut done = self.file.write_all(&line);
        if done.is_ok() && sync {
            done = self.file.sync_data();
        }
        if let Err(e) = done {
            self.torn = self.file.set_len(self.len).is_err();
            return Err(io_at(path)(e));
        }
        self.len += line.len() as u64;
        apply(&mut self.entries, rec);
        Ok(())
    }
}

/// Task ids the journal in `dir` holds, each with whether its result is
/// recorded. Reads without changing anything (for tests and diagnostics;
/// the agent may be running).
pub fn held(dir: &Path) -> Result<Vec<(String, bool)>, JournalError> {
    let (entries, _) = read_log(dir)?;
    Ok(entries
        .into_iter()
        .map(|(id, e)| (id, e.result.is_some()))
        .collect())
}

impl Journal {
    /// Opens (or creates) the journal in `dir`: reads the log, takes in an
    /// older agent's entries, and compacts.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        fsutil::create_private_dir(dir).map_err(io_at(dir))?;
        let (mut entries, len) = read_log(dir)?;
        let legacy = journal_legacy::import(dir, &mut entries);
        let log = dir.join(LOG);
        let (file, len) = match rewrite(dir, &entries) {
            Ok(x) => x,
            Err(e) => {
                // E.g. a full disk: keep the old log, without its torn
                // tail, and add the old layout's entries to it.
                tracing::warn!("journal not compacted: {e}");
                let mut inner = Inner {
                    file: open_append(&log).map_err(io_at(&log))?,
                    len,
                    torn: true,
                    entries: Entries::new(),
                    compact_at: COMPACT_AT,
                };
                let imported: Entries = entries
                    .iter()
                    .filter(|(id, _)| legacy.ids.contains(id))
                    .map(|(id, e)| (id.clone(), e.clone()))
                    .collect();
                for rec in snapshot(&imported) {
                    inner.append(rec, false, &log)?;
                }
                inner.file.sync_data().map_err(io_at(&log))?;
                (inner.file, inner.len)
            }
        };
        legacy.remove();
        remove_stray_output(dir, &entries);
        Ok(Journal {
            dir: dir.to_path_buf(),
            inner: Arc::new(Mutex::new(Inner {
                file,
                len,
                torn: false,
                entries,
                compact_at: COMPACT_AT,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // One thread uses it; a poisoned lock only follows a panic, and the
        // state it guards is updated after each write succeeds.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    fn checked(&self, task_id: &str) -> Result<(), JournalError> {
        if valid_task_id(task_id) {
            Ok(())
        } else {
            Err(JournalError::BadTaskId(task_id.to_string()))
        }
    }

    fn output_path(&self, task_id: &str) -> Result<PathBuf, JournalError> {
        self.checked(task_id)?;
        Ok(output_path(&self.dir, task_id))
    }

    pub fn contains(&self, task_id: &str) -> bool {
        self.lock().entries.contains_key(task_id)
    }

    /// Records a newly accepted task. `Ok(false)` if it was already there:
    /// the caller must not run it again. On `Ok(true)` the entry is on disk
    /// for good (one write and one fdatasync), so the task may run.
    pub fn accept(&self, spec: &TaskSpec) -> Result<bool, JournalError> {
        self.checked(&spec.task_id)?;
        let mut inner = self.lock();
        if inner.entries.contains_key(&spec.task_id) {
            return Ok(false);
        }
        let rec = Record::Accept { spec: spec.clone() };
        inner.append(rec, true, &self.log_path())?;
        Ok(true)
    }

    /// The task's output file, for appending. The file is created with the
    /// first byte: most tasks of a fan-out print nothing, and file creation
    /// is the agent's main cost per task.
    pub fn output_writer(&self, task_id: &str) -> Result<OutputWriter, JournalError> {
        let path = self.output_path(task_id)?;
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
        let path = self.output_path(task_id)?;
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_at(&path)(e)),
        };
        f.seek(SeekFrom::Start(offset)).map_err(io_at(&path))?;
        f.read(buf).map_err(io_at(&path))
    }

    /// Not synced: the mark only matters while this boot lasts (it carries
    /// the boot id), and the page cache outlives an agent crash.
    pub fn set_process(&self, task_id: &str, mark: &ProcessMark) -> Result<(), JournalError> {
        self.checked(task_id)?;
        let rec = Record::Process {
            id: task_id.to_string(),
            mark: mark.to_text(),
        };
        self.lock().append(rec, false, &self.log_path())
    }

    /// Records the main process's exit code (None: killed by a signal).
    /// Like the process mark it is not synced: it must survive the agent,
    /// not the machine (a reboot kills the task anyway).
    pub fn set_exit(&self, task_id: &str, code: Option<i64>) -> Result<(), JournalError> {
        self.checked(task_id)?;
        let rec = Record::Exit {
            id: task_id.to_string(),
            code,
        };
        self.lock().append(rec, false, &self.log_path())
    }

    /// The recorded exit: None when none was recorded, Some(None) for a
    /// signal, Some(Some(code)) for an exit code.
    pub fn exit(&self, task_id: &str) -> Option<Option<i64>> {
        self.lock().entries.get(task_id)?.exit
    }

    /// Stores the task's `TaskFinished` message durably (its output first);
    /// the process mark goes. Call before the message is sent: after a power
    /// loss the agent must still hold what the server may not have stored.
    pub fn finish(&self, task_id: &str, finished: &AgentMsg) -> Result<(), JournalError> {
        let output = self.output_path(task_id)?;
        // The output the result counts is on disk before the result is:
        // a resend then has every byte, or (disk trouble) the server shows
        // the output incomplete.
        match File::open(&output) {
            Ok(f) => f.sync_data().map_err(io_at(&output))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&output)(e)),
        }
        let rec = Record::Result {
            id: task_id.to_string(),
            msg: finished.clone(),
        };
        self.lock().append(rec, true, &self.log_path())
    }

    /// The server holds the result durably: forget the task.
    pub fn ack(&self, task_id: &str) -> Result<(), JournalError> {
        let output = self.output_path(task_id)?;
        let mut inner = self.lock();
        if !inner.entries.contains_key(task_id) {
            return Ok(());
        }
        let rec = Record::Ack {
            id: task_id.to_string(),
        };
        inner.append(rec, false, &self.log_path())?;
        match std::fs::remove_file(&output) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&output)(e)),
        }
        if inner.len > inner.compact_at {
            match rewrite(&self.dir, &inner.entries) {
                Ok((file, len)) => {
                    inner.file = file;
                    inner.len = len;
                    inner.torn = false;
                }
                Err(e) => tracing::warn!("journal not compacted: {e}"),
            }
        }
        Ok(())
    }

    /// Ids of every journaled task, sorted.
    pub fn task_ids(&self) -> Result<Vec<String>, JournalError> {
        Ok(self.lock().entries.keys().cloned().collect())
    }

    pub fn load(&self, task_id: &str) -> Result<Entry, JournalError> {
        self.lock()
            .entries
            .get(task_id)
            .cloned()
            .ok_or_else(|| JournalError::Unknown(task_id.to_string()))
    }

    /// Length of the output recorded so far.
    pub fn output_len(&self, task_id: &str) -> u64 {
        self.output_path(task_id)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

/// Removes output files of tasks no longer held (the agent stopped between
/// an `Ack` and the removal of its output).
fn remove_stray_output(dir: &Path, entries: &Entries) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".out")) else {
            continue;
        };
        if valid_task_id(id) && !entries.contains_key(id) {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// Makes the entries of directory `dir` (files created, renamed, removed in
/// it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
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
            None => self
                .file
                .insert(open_append(&self.path).map_err(io_at(&self.path))?),
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
            content: String::new(),
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

    fn log_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join(LOG)).unwrap().len()
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
        j.set_exit("invt-a", None).unwrap();
        drop(j);

        // "restart": a fresh handle sees the same state
        let j = Journal::open(&dir).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["invt-a".to_string()]);
        assert!(j.contains("invt-a"));
        assert!(!j.accept(&spec("invt-a")).unwrap());
        let e = j.load("invt-a").unwrap();
        assert_eq!(e.spec, spec("invt-a"));
        assert_eq!(e.process, Some(mark));
        assert_eq!(j.exit("invt-a"), Some(None));
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
        assert_eq!(held(&dir).unwrap(), vec![("invt-a".to_string(), true)]);
    }

    #[test]
    fn a_task_adds_no_file_unless_it_prints_and_ack_removes_its_output() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        let names = || {
            let mut n: Vec<String> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            n.sort();
            n
        };
        j.accept(&spec("t1")).unwrap();
        j.set_exit("t1", Some(0)).unwrap();
        j.finish("t1", &finished("t1")).unwrap();
        assert_eq!(names(), vec![LOG.to_string()]);
        j.accept(&spec("t2")).unwrap();
        j.output_writer("t2").unwrap().append(b"x").unwrap();
        assert_eq!(names(), vec![LOG.to_string(), "t2.out".to_string()]);
        j.ack("t2").unwrap();
        j.ack("t2").unwrap(); // idempotent
        j.ack("t1").unwrap();
        assert_eq!(names(), vec![LOG.to_string()]);
        assert!(j.task_ids().unwrap().is_empty());
        assert!(!j.contains("t1"));
        // A reopen compacts: acknowledged tasks leave nothing behind.
        drop(j);
        Journal::open(tmp.path()).unwrap();
        assert_eq!(log_len(tmp.path()), 0);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_log_continues_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        j.accept(&spec("t1")).unwrap();
        j.accept(&spec("t2")).unwrap();
        let before_result = log_len(tmp.path());
        j.finish("t1", &finished("t1")).unwrap();
        let whole = std::fs::read(tmp.path().join(LOG)).unwrap();
        drop(j);
        // A crash in the middle of the result's write: t1 reads as
        // unfinished (interrupted), both entries stay.
        let torn = &whole[..(before_result as usize + whole.len()) / 2];
        std::fs::write(tmp.path().join(LOG), torn).unwrap();
        assert_eq!(
            held(tmp.path()).unwrap(),
            vec![("t1".to_string(), false), ("t2".to_string(), false)]
        );
        let j = Journal::open(tmp.path()).unwrap();
        assert!(j.load("t1").unwrap().result.is_none());
        // What is written next is read back: the torn bytes are gone.
        j.finish("t2", &finished("t2")).unwrap();
        drop(j);
        let j = Journal::open(tmp.path()).unwrap();
        assert_eq!(j.load("t2").unwrap().result, Some(finished("t2")));
        assert!(j.load("t1").unwrap().result.is_none());

        // A torn acceptance is of a task that never started: not held.
        j.accept(&spec("t3")).unwrap();
        drop(j);
        let full = std::fs::read(tmp.path().join(LOG)).unwrap();
        std::fs::write(tmp.path().join(LOG), &full[..full.len() - 5]).unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["t1", "t2"]);
        assert!(j.accept(&spec("t3")).unwrap(), "t3 may be run (once)");
    }

    #[test]
    fn the_log_is_compacted_once_it_grows_and_keeps_what_is_held() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        j.lock().compact_at = 4096;
        j.accept(&spec("keep")).unwrap();
        j.set_exit("keep", Some(7)).unwrap();
        let mut grew = 0;
        for n in 0..20 {
            let id = format!("t{n}");
            j.accept(&spec(&id)).unwrap();
            j.finish(&id, &finished(&id)).unwrap();
            grew = grew.max(log_len(tmp.path()));
            j.ack(&id).unwrap();
        }
        assert!(grew > 4096, "{grew}");
        // Each ack that crossed the bound compacted: only `keep` is left
        // (its two records, and what the last tasks added since).
        assert!(log_len(tmp.path()) < 4096, "{}", log_len(tmp.path()));
        j.accept(&spec("after")).unwrap();
        drop(j);
        let j = Journal::open(tmp.path()).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["after", "keep"]);
        assert_eq!(j.exit("keep"), Some(Some(7)));
        assert!(!tmp.path().join(LOG_NEW).exists());
    }

    #[test]
    fn an_older_agents_directories_are_taken_in_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let old = |id: &str, files: &[(&str, &[u8])]| {
            let d = tmp.path().join(id);
            std::fs::create_dir_all(&d).unwrap();
            for (name, bytes) in files {
                std::fs::write(d.join(name), bytes).unwrap();
            }
        };
        let spec_json = |id: &str| serde_json::to_vec(&spec(id)).unwrap();
        let result_json = serde_json::to_vec(&finished("o1")).unwrap();
        old(
            "o1",
            &[
                ("spec.json", &spec_json("o1")),
                ("output", b"out1"),
                ("result.json", &result_json),
            ],
        );
        old(
            "o2",
            &[
                ("spec.json", &spec_json("o2")),
                ("process", b"12 34 56 boot"),
                ("exit", b"-"),
                ("result.json", b""),
            ],
        );
        // Never started: its spec is torn.
        old("o3", &[("spec.json", b"{\"task_")]);
        let j = Journal::open(tmp.path()).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["o1", "o2"]);
        assert_eq!(j.load("o1").unwrap().result, Some(finished("o1")));
        let mut buf = [0u8; 8];
        let n = j.read_output("o1", 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"out1");
        let o2 = j.load("o2").unwrap();
        assert!(o2.result.is_none());
        assert_eq!(o2.process.unwrap().pgid, 12);
        assert_eq!(j.exit("o2"), Some(None));
        assert!(!j.accept(&spec("o2")).unwrap(), "never run twice");
        for id in ["o1", "o2", "o3"] {
            assert!(!tmp.path().join(id).exists(), "{id}");
        }
        drop(j);
        // ...and they are in the log now.
        let j = Journal::open(tmp.path()).unwrap();
        assert_eq!(j.task_ids().unwrap(), vec!["o1", "o2"]);
    }

    #[test]
    fn rejects_unsafe_task_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(tmp.path()).unwrap();
        for bad in ["../x", "", "a/b", ".", "a b", "log.new"] {
            assert!(
                matches!(j.accept(&spec(bad)), Err(JournalError::BadTaskId(_))),
                "{bad}"
            );
        }
    }
}
