//! Server-side recording of interactive sessions (issue 11 item 5).
//!
//! The hub calls a session's [`Recorder`] with every piece of output it
//! relays to the client, every piece of input when input recording is on,
//! and every resize; then `finish`. Recording happens on the server, so
//! nothing the person on the instance does can delete or stop it, and no
//! field of the client's request decides whether input is recorded: the
//! server setting (`--record-input`) or a policy does ([`input_required`]).
//!
//! The hub's calls never block and never await. Each call timestamps its
//! bytes and hands them to one task per session through a queue bounded in
//! bytes ([`QUEUE_BYTES`]). The task coalesces what arrives close together
//! into chunks and writes them through the store's single writer in one
//! job per flush (every [`FLUSH_EVERY`] or [`FLUSH_BYTES`], whichever comes
//! first). If the client outpaces the disk and the queue is full, the hub
//! is not stalled: the bytes are counted as dropped, the session is marked
//! truncated and a marker event in the recording says how many bytes are
//! missing there. The same happens past the per-session size cap
//! (`--session-record-max-bytes`, output and input counted separately) and
//! when a write fails. Nothing is ever left out silently.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::gate::Grants;
use crate::policy::Resource;
use crate::store::recordings::{self, Chunk, Counters, Kind, SessionRecord};
use crate::store::Store;

/// Default per-session cap of stored bytes, per stream.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Bytes (plus a per-call overhead) queued towards the recorder task at
/// most; past it, output is dropped and counted.
pub const QUEUE_BYTES: usize = 8 << 20;
/// Extra room for input and resizes, so an output flood does not cost the
/// record of what was typed.
const INPUT_HEADROOM: usize = 1 << 20;
/// Accounted per queued call on top of its bytes (the message itself).
const CALL_COST: usize = 64;
/// How often pending chunks are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Pending bytes that trigger a write before the timer.
pub const FLUSH_BYTES: usize = 64 << 10;
/// Most bytes one write takes: when the disk is slower than the client,
/// what queued up meanwhile goes in one larger write (fewer commits).
const MAX_FLUSH: usize = 4 << 20;
/// Pieces of one stream this close in time share a chunk (one event).
const COALESCE_MS: i64 = 5;
/// Largest chunk.
const MAX_CHUNK: usize = 32 << 10;

/// The policy pseudo-action that turns input recording on: a policy that
/// allows it to a user on an instance makes that user's sessions there
/// record their input.
pub use crate::policy::RECORD_SESSION_INPUT;

/// Server settings of recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes stored per session and stream (output, input); 0: no cap.
    pub max_bytes: u64,
    /// Record every session's input (`--record-input`).
    pub record_input: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_bytes: DEFAULT_MAX_BYTES,
            record_input: false,
        }
    }
}

/// Whether a session of `grants`' user on `instance` records its input:
/// when the server says so, or a policy allows tat:RecordSessionInput
/// there. The account (root) is not governed by policies; the server
/// setting covers it.
pub fn input_required(settings: &Settings, grants: &Grants, instance: &Resource) -> bool {
    settings.record_input
        || (!grants.is_root()
            && grants.allows(RECORD_SESSION_INPUT, std::slice::from_ref(instance)))
}

/// A new session id (`ses-` and 8 characters, like TAT's ids).
pub fn new_session_id() -> String {
    crate::ids::new_id(SESSION_ID_PREFIX)
}

/// The prefix of session ids.
pub const SESSION_ID_PREFIX: &str = "ses";

/// What a recording is about, known when the session opens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Meta {
    pub id: String,
    pub user_uin: String,
    pub user_name: String,
    /// `console` or `ssh`.
    pub via: String,
    /// The client's address.
    pub client: String,
    pub instance_id: String,
    pub login_user: String,
    /// An exec session's command; None: a shell.
    pub command: Option<String>,
    pub cols: u16,
    pub rows: u16,
    /// TERM and the login shell, for the asciicast header ("" if unknown).
    pub term: String,
    pub shell: String,
    /// Input recording decided for this session ([`input_required`]); the
    /// server setting turns it on regardless.
    pub record_input: bool,
}

enum Msg {
    Data {
        at_ms: i64,
        kind: Kind,
        bytes: Vec<u8>,
    },
    Finish {
        at_ms: i64,
        exit: Option<i32>,
        reason: String,
        done: oneshot::Sender<()>,
    },
}

/// Counts shared by the hub's side and the task.
#[derive(Default)]
struct Shared {
    queued: AtomicUsize,
    seen_out: AtomicU64,
    seen_in: AtomicU64,
    lost_out: AtomicU64,
    lost_in: AtomicU64,
    /// Writes of this recording that failed (for tests and diagnosis).
    failed_writes: AtomicU64,
    /// Set by the task once a stream reached the size cap: from then on
    /// the hub's calls only count the bytes, without copying them.
    full_out: AtomicBool,
    full_in: AtomicBool,
    /// Bytes counted that way (dropped, past the cap).
    skipped_out: AtomicU64,
    skipped_in: AtomicU64,
}

/// One session's recorder. Cheap, synchronous calls; see the module doc.
pub struct Recorder {
    id: String,
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    started: Instant,
    record_input: bool,
}

/// Resolves once a finished recording is on disk (or failed to be).
pub struct Finished(oneshot::Receiver<()>);

impl Finished {
    pub async fn wait(self) {
        let _ = self.0.await;
    }
}

impl Recorder {
    /// Records the session's row (live) and starts its recording task.
    /// Must be called inside a tokio runtime.
    pub fn start(store: Store, meta: Meta, settings: &Settings) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let record_input = meta.record_input || settings.record_input;
        let started = Instant::now();
        let row = SessionRecord {
            id: meta.id.clone(),
            user_uin: meta.user_uin,
            user_name: meta.user_name,
            via: meta.via,
            client: meta.client,
            instance_id: meta.instance_id,
            login_user: meta.login_user,
            command: meta.command,
            term: meta.term,
            shell: meta.shell,
            cols: meta.cols,
            rows: meta.rows,
            record_input,
            started_ms: crate::timefmt::now_ms(),
            ..Default::default()
        };
        let task = Task {
            store,
            id: meta.id.clone(),
            started_ms: row.started_ms,
            max_bytes: settings.max_bytes,
            shared: shared.clone(),
            pending: Vec::new(),
            pending_bytes: 0,
            next_seq: 0,
            counters: Counters::default(),
            stored_out: 0,
            stored_in: 0,
            lost_seen_out: 0,
            lost_seen_in: 0,
            skipped_seen: 0,
            capped_out: false,
            capped_in: false,
            dirty: false,
            unwritten: 0,
        };
        tokio::spawn(task.run(row, rx));
        Recorder {
            id: meta.id,
            tx,
            shared,
            started,
            record_input,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this session's input is recorded.
    pub fn records_input(&self) -> bool {
        self.record_input
    }

    fn at_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Terminal output relayed to the client.
    /// Counts bytes a port forward carried, without keeping them: a
    /// forward's record is who, where, to what and how much.
    pub fn count(&self, out: usize, inp: usize) {
        self.shared
            .seen_out
            .fetch_add(out as u64, Ordering::Relaxed);
        self.shared.seen_in.fetch_add(inp as u64, Ordering::Relaxed);
    }

    pub fn output(&self, data: &[u8]) {
        self.shared
            .seen_out
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.shared.full_out.load(Ordering::Relaxed) {
            self.shared
                .skipped_out
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return;
        }
        self.send(Kind::Output, data, QUEUE_BYTES, &self.shared.lost_out);
    }

    /// Input from the client: counted always, recorded only when input
    /// recording is on for this session.
    pub fn input(&self, data: &[u8]) {
        self.shared
            .seen_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.record_input && self.shared.full_in.load(Ordering::Relaxed) {
            self.shared
                .skipped_in
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        } else if self.record_input {
            self.send(
                Kind::Input,
                data,
                QUEUE_BYTES + INPUT_HEADROOM,
                &self.shared.lost_in,
            );
        }
    }

    /// The terminal's new size.
    pub fn resize(&self, cols: u16, rows: u16) {
        let text = format!("{cols}x{rows}");
        // A lost resize is not counted as lost bytes: the marker for the
        // output lost with it tells the viewer the record has a gap.
        let ignored = AtomicU64::new(0);
        self.send(
            Kind::Resize,
            text.as_bytes(),
            QUEUE_BYTES + INPUT_HEADROOM,
            &ignored,
        );
    }

    fn send(&self, kind: Kind, data: &[u8], limit: usize, lost: &AtomicU64) {
        if data.is_empty() {
            return;
        }
        let cost = data.len() + CALL_COST;
        let before = self.shared.queued.fetch_add(cost, Ordering::AcqRel);
        let refused = before + cost > limit
            || self
                .tx
                .send(Msg::Data {
                    at_ms: self.at_ms(),
                    kind,
                    bytes: data.to_vec(),
                })
                .is_err();
        if refused {
            self.shared.queued.fetch_sub(cost, Ordering::AcqRel);
            lost.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }

    /// Ends the recording: the session's exit code (None: no exit status,
    /// e.g. killed or disconnected) and why it ended. The returned handle
    /// resolves once everything is written; it need not be awaited.
    pub fn finish(self, exit: Option<i32>, reason: &str) -> Finished {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Finish {
            at_ms: self.at_ms(),
            exit,
            reason: reason.to_string(),
            done,
        });
        Finished(rx)
    }
}

/// The per-session task that owns what is pending and the counters.
struct Task {
    store: Store,
    id: String,
    started_ms: i64,
    max_bytes: u64,
    shared: Arc<Shared>,
    pending: Vec<Chunk>,
    pending_bytes: usize,
    next_seq: i64,
    counters: Counters,
    stored_out: u64,
    stored_in: u64,
    lost_seen_out: u64,
    lost_seen_in: u64,
    skipped_seen: u64,
    capped_out: bool,
    capped_in: bool,
    /// Counters changed since the last write.
    dirty: bool,
    /// Terminal bytes lost to failed writes since the last good one (a
    /// marker says so in the next write).
    unwritten: u64,
}

impl Task {
    async fn run(mut self, row: SessionRecord, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let id = self.id.clone();
        if let Err(e) = self.store.write(move |c| recordings::insert(c, &row)).await {
            tracing::warn!(session = %id, "cannot record the session: {e}");
        }
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ms = 0;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Data { at_ms, kind, bytes }) => {
                        last_ms = at_ms;
                        self.take(at_ms, kind, bytes);
                        if self.pending_bytes >= FLUSH_BYTES {
                            // Take what queued up meanwhile into this write.
                            let mut held = None;
                            while self.pending_bytes < MAX_FLUSH {
                                match rx.try_recv() {
                                    Ok(Msg::Data { at_ms, kind, bytes }) => {
                                        last_ms = at_ms;
                                        self.take(at_ms, kind, bytes);
                                    }
                                    Ok(other) => {
                                        held = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            self.flush(last_ms).await;
                            if let Some(Msg::Finish { at_ms, exit, reason, done }) = held {
                                self.end(at_ms, exit, reason).await;
                                let _ = done.send(());
                                return;
                            }
                        }
                    }
                    Some(Msg::Finish { at_ms, exit, reason, done }) => {
                        self.end(at_ms, exit, reason).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        // The hub dropped the recorder without finishing.
                        self.end(last_ms, None, "recorder dropped".into()).await;
                        return;
                    }
                },
                _ = tick.tick() => {
                    self.note_lost(last_ms);
                    if !self.pending.is_empty() || self.dirty || self.unwritten > 0 {
                        self.flush(last_ms).await;
                    }
                }
            }
        }
    }

    async fn end(&mut self, at_ms: i64, exit: Option<i32>, reason: String) {
        self.note_lost(at_ms);
        self.flush(at_ms).await;
        let id = self.id.clone();
        let ended = self.started_ms + at_ms;
        if let Err(e) = self
            .store
            .write(move |c| recordings::finish(c, &id, ended, exit, &reason))
            .await
        {
            tracing::warn!(session = %self.id, "cannot record the end of the session: {e}");
        }
    }

    /// One piece from the hub's queue.
    fn take(&mut self, at_ms: i64, kind: Kind, bytes: Vec<u8>) {
        self.shared
            .queued
            .fetch_sub(bytes.len() + CALL_COST, Ordering::AcqRel);
        self.note_lost(at_ms);
        self.absorb(at_ms, kind, bytes);
    }

    /// Turns bytes the hub could not queue into dropped bytes and a marker.
    fn note_lost(&mut self, at_ms: i64) {
        // Past the cap: already marked where the cap was reached.
        let skipped = self.shared.skipped_out.load(Ordering::Relaxed)
            + self.shared.skipped_in.load(Ordering::Relaxed);
        if skipped > self.skipped_seen {
            self.counters.dropped_bytes += (skipped - self.skipped_seen) as i64;
            self.counters.truncated = true;
            self.skipped_seen = skipped;
            self.dirty = true;
        }
        let out = self.shared.lost_out.load(Ordering::Relaxed);
        let inp = self.shared.lost_in.load(Ordering::Relaxed);
        let fresh_out = out.saturating_sub(self.lost_seen_out);
        let fresh_in = inp.saturating_sub(self.lost_seen_in);
        self.lost_seen_out = out;
        self.lost_seen_in = inp;
        for (kind, n) in [("output", fresh_out), ("input", fresh_in)] {
            if n > 0 {
                self.counters.dropped_bytes += n as i64;
                self.counters.truncated = true;
                let label = format!("{n} bytes of {kind} not recorded (recorder queue full)");
                self.push(at_ms, Kind::Marker, label.into_bytes(), false);
            }
        }
        self.refresh_seen();
    }

    fn refresh_seen(&mut self) {
        let out = self.shared.seen_out.load(Ordering::Relaxed) as i64;
        let inp = self.shared.seen_in.load(Ordering::Relaxed) as i64;
        if out != self.counters.bytes_out || inp != self.counters.bytes_in {
            self.counters.bytes_out = out;
            self.counters.bytes_in = inp;
            self.dirty = true;
        }
    }

    /// Takes one piece into the pending chunks, within the size cap.
    fn absorb(&mut self, at_ms: i64, kind: Kind, mut bytes: Vec<u8>) {
        let (stored, capped, full, name) = match kind {
            Kind::Output => (
                &mut self.stored_out,
                &mut self.capped_out,
                &self.shared.full_out,
                "output",
            ),
            Kind::Input => (
                &mut self.stored_in,
                &mut self.capped_in,
                &self.shared.full_in,
                "input",
            ),
            Kind::Resize | Kind::Marker => {
                self.push(at_ms, kind, bytes, false);
                return;
            }
        };
        let mut marker = None;
        if self.max_bytes > 0 {
            let room = self.max_bytes.saturating_sub(*stored);
            if bytes.len() as u64 > room {
                let over = bytes.len() as u64 - room;
                bytes.truncate(room as usize);
                self.counters.dropped_bytes += over as i64;
                self.counters.truncated = true;
                self.dirty = true;
            }
            *stored += bytes.len() as u64;
            if *stored >= self.max_bytes && !*capped {
                *capped = true;
                // The hub's calls stop copying this stream's bytes.
                full.store(true, Ordering::Relaxed);
                marker = Some(format!(
                    "recording size limit of {} bytes reached: further {name} not recorded",
                    self.max_bytes
                ));
            }
        }
        if !bytes.is_empty() {
            self.push(at_ms, kind, bytes, true);
        }
        if let Some(m) = marker {
            self.push(at_ms, Kind::Marker, m.into_bytes(), false);
        }
    }

    fn push(&mut self, at_ms: i64, kind: Kind, bytes: Vec<u8>, coalesce: bool) {
        self.pending_bytes += bytes.len();
        if matches!(kind, Kind::Output | Kind::Input) {
            self.counters.recorded_bytes += bytes.len() as i64;
        }
        self.dirty = true;
        if coalesce {
            if let Some(last) = self.pending.last_mut() {
                if last.kind == kind
                    && at_ms - last.at_ms <= COALESCE_MS
                    && last.data.len() + bytes.len() <= MAX_CHUNK
                {
                    last.data.extend_from_slice(&bytes);
                    return;
                }
            }
        }
        self.pending.push(Chunk {
            seq: self.next_seq,
            at_ms,
            kind,
            data: bytes,
        });
        self.next_seq += 1;
    }

    /// Writes what is pending and the counters in one store job.
    async fn flush(&mut self, at_ms: i64) {
        self.refresh_seen();
        if self.unwritten > 0 {
            let label = format!("{} bytes not recorded (write failed)", self.unwritten);
            self.push(at_ms, Kind::Marker, label.into_bytes(), false);
        }
        let chunks = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let data: u64 = chunks
            .iter()
            .filter(|c| matches!(c.kind, Kind::Output | Kind::Input))
            .map(|c| c.data.len() as u64)
            .sum();
        let counters = self.counters;
        let failed_before = self.unwritten > 0;
        self.dirty = false;
        let id = self.id.clone();
        let written = self
            .store
            .write(move |c| recordings::append(c, &id, &chunks, &counters))
            .await;
        match written {
            Ok(()) => self.unwritten = 0,
            Err(e) => {
                // Logged once per run of failures (a full disk fails every
                // flush until it recovers).
                self.shared.failed_writes.fetch_add(1, Ordering::Relaxed);
                if !failed_before {
                    tracing::warn!(session = %self.id, "recording write failed: {e}");
                }
                self.counters.recorded_bytes -= data as i64;
                self.counters.dropped_bytes += data as i64;
                self.counters.truncated = true;
                self.unwritten += data;
                self.dirty = true;
            }
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
