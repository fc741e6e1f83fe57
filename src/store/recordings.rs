//! Interactive sessions and their recordings (issue 11): one `sessions` row
//! per terminal session (who, where, as whom, when, how it ended, bytes)
//! and its recording as numbered, timed chunks in `session_chunks`, each one
//! asciicast v2 event (output, input, resize, or a marker such as "bytes
//! were dropped here").
//!
//! The recorder (`session::record`) appends many chunks and the session's
//! counters in one write job per flush, never one transaction per
//! keystroke. Counters are written as absolute values, so a flush that is
//! retried or reordered never double-counts.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::query::{page_of, Page, Where};
use super::Result;

/// What a chunk holds, as asciicast v2 names its event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Terminal output (what the person saw).
    Output,
    /// Keyboard input (only when input recording is on).
    Input,
    /// A resize: the data is `COLSxROWS`.
    Resize,
    /// A marker: the data is a label (e.g. where bytes were dropped).
    Marker,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Output => "o",
            Kind::Input => "i",
            Kind::Resize => "r",
            Kind::Marker => "m",
        }
    }

    pub fn from_code(s: &str) -> Option<Kind> {
        Some(match s {
            "o" => Kind::Output,
            "i" => Kind::Input,
            "r" => Kind::Resize,
            "m" => Kind::Marker,
            _ => return None,
        })
    }
}

/// One stored event of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the recording, from 0, without gaps.
    pub seq: i64,
    /// Milliseconds since the session started.
    pub at_ms: i64,
    pub kind: Kind,
    pub data: Vec<u8>,
}

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionRecord {
    pub id: String,
    /// Who opened it: the user's uin (root: the account) and name.
    pub user_uin: String,
    pub user_name: String,
    /// `console` or `ssh`.
    pub via: String,
    /// The client's address as the server saw it.
    pub client: String,
    pub instance_id: String,
    pub login_user: String,
    /// The command of an exec session (`ssh host -- uptime`); None: a shell.
    pub command: Option<String>,
    pub term: String,
    pub shell: String,
    pub cols: u16,
    pub rows: u16,
    pub record_input: bool,
    pub started_ms: i64,
    /// None while the session is live.
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub end_reason: String,
    pub counters: Counters,
}

/// A session's byte counts and whether its recording is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Terminal bytes the session sent to its client.
    pub bytes_out: i64,
    /// Bytes the client typed (counted whether or not input is recorded).
    pub bytes_in: i64,
    /// Bytes stored in the recording.
    pub recorded_bytes: i64,
    /// Bytes not stored: past the size cap, or lost to a full recorder
    /// queue, or to a failed write.
    pub dropped_bytes: i64,
    /// Whether anything was dropped (the recording says where, by markers).
    pub truncated: bool,
}

const COLUMNS: &str = "id, user_uin, user_name, via, client, instance_id, login_user, command,
    term, shell, cols, rows, record_input, started_ms, ended_ms, exit_code, end_reason,
    bytes_out, bytes_in, recorded_bytes, dropped_bytes, truncated";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        user_uin: r.get(1)?,
        user_name: r.get(2)?,
        via: r.get(3)?,
        client: r.get(4)?,
        instance_id: r.get(5)?,
        login_user: r.get(6)?,
        command: r.get(7)?,
        term: r.get(8)?,
        shell: r.get(9)?,
        cols: r.get(10)?,
        rows: r.get(11)?,
        record_input: r.get(12)?,
        started_ms: r.get(13)?,
        ended_ms: r.get(14)?,
        exit_code: r.get(15)?,
        end_reason: r.get(16)?,
        counters: Counters {
            bytes_out: r.get(17)?,
            bytes_in: r.get(18)?,
            recorded_bytes: r.get(19)?,
            dropped_bytes: r.get(20)?,
            truncated: r.get(21)?,
        },
    })
}

/// Records a new, live session.
pub fn insert(conn: &Connection, s: &SessionRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions(id, user_uin, user_name, via, client, instance_id, login_user,
            command, term, shell, cols, rows, record_input, started_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            s.id,
            s.user_uin,
            s.user_name,
            s.via,
            s.client,
            s.instance_id,
            s.login_user,
            s.command,
            s.term,
            s.shell,
            s.cols,
            s.rows,
            s.record_input,
            s.started_ms
        ],
    )?;
    Ok(())
}

/// Appends chunks to a session's recording and sets its counters, in the
/// caller's transaction (one write job per recorder flush).
pub fn append(conn: &Connection, id: &str, chunks: &[Chunk], c: &Counters) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO session_chunks(session_id, seq, at_ms, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ch in chunks {
        st.execute(params![id, ch.seq, ch.at_ms, ch.kind.code(), ch.data])?;
    }
    set_counters(conn, id, c)
}

fn set_counters(conn: &Connection, id: &str, c: &Counters) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET bytes_out = ?2, bytes_in = ?3, recorded_bytes = ?4,
            dropped_bytes = ?5, truncated = ?6 WHERE id = ?1",
        params![
            id,
            c.bytes_out,
            c.bytes_in,
            c.recorded_bytes,
            c.dropped_bytes,
            c.truncated
        ],
    )?;
    Ok(())
}

/// Ends a live session (a session already ended keeps its first ending).
pub fn finish(
    conn: &Connection,
    id: &str,
    ended_ms: i64,
    exit_code: Option<i32>,
    reason: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET ended_ms = ?2, exit_code = ?3, end_reason = ?4
         WHERE id = ?1 AND ended_ms IS NULL",
        params![id, ended_ms, exit_code, reason],
    )?;
    Ok(())
}

/// Ends every session still marked live: called once when the server
/// starts, since no session survives the process that relayed it.
pub fn close_orphans(conn: &Connection, now_ms: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE sessions SET ended_ms = max(started_ms, ?1), end_reason = 'server stopped'
         WHERE ended_ms IS NULL",
        params![now_ms],
    )?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<SessionRecord>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"),
            params![id],
            from_row,
        )
        .optional()?)
}

/// Live or ended, for the `state` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Live,
    Ended,
}

/// What DescribeSessions filters on: values within a field are OR'ed,
/// fields are AND'ed.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub ids: Vec<String>,
    pub instance_ids: Vec<String>,
    /// A user's uin or name.
    pub users: Vec<String>,
    pub states: Vec<State>,
}

/// Sessions matching `q`, newest first, with the total count of matches.
pub fn list(conn: &Connection, q: &SessionQuery, page: Page) -> Result<(i64, Vec<SessionRecord>)> {
    let mut w = Where::default();
    w.any_of("id", &q.ids);
    w.any_of("instance_id", &q.instance_ids);
    if !q.users.is_empty() {
        let ph = super::placeholders(q.users.len());
        let mut p: Vec<Value> = q.users.iter().map(|u| Value::Text(u.clone())).collect();
        p.extend(q.users.iter().map(|u| Value::Text(u.clone())));
        w.clause(format!("(user_uin IN ({ph}) OR user_name IN ({ph}))"), p);
    }
    let live = q.states.contains(&State::Live);
    let ended = q.states.contains(&State::Ended);
    if live != ended {
        w.clause(
            if live {
                "ended_ms IS NULL".into()
            } else {
                "ended_ms IS NOT NULL".into()
            },
            Vec::new(),
        );
    }
    page_of(
        conn,
        "sessions",
        COLUMNS,
        &w,
        "started_ms DESC, id",
        page,
        from_row,
    )
}

/// Chunks of a recording from `from_seq` on, in order, until about
/// `max_bytes` of data (at least one chunk when any is left).
pub fn chunks(conn: &Connection, id: &str, from_seq: i64, max_bytes: usize) -> Result<Vec<Chunk>> {
    let mut st = conn.prepare_cached(
        "SELECT seq, at_ms, kind, data FROM session_chunks
         WHERE session_id = ?1 AND seq >= ?2 ORDER BY seq",
    )?;
    let mut rows = st.query(params![id, from_seq])?;
    let mut out = Vec::new();
    let mut size = 0usize;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(2)?;
        let Some(kind) = Kind::from_code(&kind) else {
            return Err(super::StoreError::Corrupt(format!(
                "session {id}: chunk kind {kind:?}"
            )));
        };
        let data: Vec<u8> = r.get(3)?;
        size += data.len();
        out.push(Chunk {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            kind,
            data,
        });
        if size >= max_bytes {
            break;
        }
    }
    Ok(out)
}

/// The last `n` bytes of `kind` recorded before chunk `seq` (for resuming
/// the asciicast encoder mid-recording: a character split across that
/// point is completed, not mangled).
pub fn tail_before(conn: &Connection, id: &str, seq: i64, kind: Kind, n: usize) -> Result<Vec<u8>> {
    let mut st = conn.prepare_cached(
        "SELECT data FROM session_chunks WHERE session_id = ?1 AND seq < ?2 AND kind = ?3
         ORDER BY seq DESC LIMIT ?4",
    )?;
    let parts = st
        .query_map(params![id, seq, kind.code(), n as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut tail: Vec<u8> = Vec::with_capacity(n);
    for p in parts {
        let mut joined = p;
        joined.extend_from_slice(&tail);
        tail = joined;
        if tail.len() >= n {
            break;
        }
    }
    let cut = tail.len().saturating_sub(n);
    Ok(tail.split_off(cut))
}

/// The time of the last chunk before `seq` (0 when there is none).
pub fn time_before(conn: &Connection, id: &str, seq: i64) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT at_ms FROM session_chunks WHERE session_id = ?1 AND seq < ?2
             ORDER BY seq DESC LIMIT 1",
            params![id, seq],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Removes up to `batch` ended sessions that ended before `before` (their
/// chunks follow by foreign key). Live sessions are never removed.
pub fn prune(conn: &Connection, before: i64, batch: i64) -> Result<usize> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM sessions WHERE ended_ms IS NOT NULL AND ended_ms < ?1
             ORDER BY ended_ms LIMIT ?2",
        )?
        .query_map(params![before, batch], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let n = conn.execute(
        &format!(
            "DELETE FROM sessions WHERE id IN ({})",
            super::placeholders(ids.len())
        ),
        params_from_iter(ids.iter()),
    )?;
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn session(id: &str, instance: &str, user: &str, started_ms: i64) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            user_uin: format!("uin-{user}"),
            user_name: user.into(),
            via: "console".into(),
            client: "127.0.0.1:5000".into(),
            instance_id: instance.into(),
            login_user: "root".into(),
            term: "xterm-256color".into(),
            shell: "/bin/bash".into(),
            cols: 80,
            rows: 24,
            started_ms,
            ..Default::default()
        }
    }

    fn chunk(seq: i64, kind: Kind, data: &[u8]) -> Chunk {
        Chunk {
            seq,
            at_ms: seq * 10,
            kind,
            data: data.to_vec(),
        }
    }

    #[test]
    fn a_session_is_recorded_listed_and_ended() {
        let c = crate::store::test_conn();
        insert(&c, &session("ses-a", "mi-1", "ann", 1_000)).unwrap();
        insert(&c, &session("ses-b", "mi-2", "bob", 2_000)).unwrap();
        let counters = Counters {
            bytes_out: 5,
            bytes_in: 2,
            recorded_bytes: 7,
            ..Default::default()
        };
        append(
            &c,
            "ses-a",
            &[
                chunk(0, Kind::Output, b"hello"),
                chunk(1, Kind::Input, b"ls"),
            ],
            &counters,
        )
        .unwrap();
        append(&c, "ses-a", &[chunk(2, Kind::Resize, b"100x30")], &counters).unwrap();
        finish(&c, "ses-a", 9_000, Some(3), "exit").unwrap();
        // The first ending stays.
        finish(&c, "ses-a", 9_999, None, "again").unwrap();
        let a = get(&c, "ses-a").unwrap().unwrap();
        assert_eq!(a.ended_ms, Some(9_000));
        assert_eq!(a.exit_code, Some(3));
        assert_eq!(a.end_reason, "exit");
        assert_eq!(a.counters, counters);
        assert!(get(&c, "ses-zzz").unwrap().is_none());

        let all = Page {
            offset: 0,
            limit: 10,
        };
        let (n, rows) = list(&c, &SessionQuery::default(), all).unwrap();
        assert_eq!(n, 2);
        assert_eq!(rows[0].id, "ses-b", "newest first");
        let by = |q: SessionQuery| {
            list(&c, &q, all)
                .unwrap()
                .1
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        };
        let live = SessionQuery {
            states: vec![State::Live],
            ..Default::default()
        };
        assert_eq!(by(live), ["ses-b"]);
        let ended_of_ann = SessionQuery {
            states: vec![State::Ended],
            users: vec!["ann".into()],
            ..Default::default()
        };
        assert_eq!(by(ended_of_ann), ["ses-a"]);
        let by_uin = SessionQuery {
            users: vec!["uin-bob".into()],
            instance_ids: vec!["mi-2".into(), "mi-9".into()],
            ..Default::default()
        };
        assert_eq!(by(by_uin), ["ses-b"]);

        let got = chunks(&c, "ses-a", 1, 1 << 20).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], chunk(1, Kind::Input, b"ls"));
        assert_eq!(got[1].kind, Kind::Resize);
        // A small page still makes progress.
        assert_eq!(chunks(&c, "ses-a", 0, 1).unwrap().len(), 1);

        assert_eq!(close_orphans(&c, 50_000).unwrap(), 1);
        let b = get(&c, "ses-b").unwrap().unwrap();
        assert_eq!(b.ended_ms, Some(50_000));
        assert_eq!(b.end_reason, "server stopped");
    }

    #[test]
    fn tail_before_joins_the_last_chunks_of_one_kind() {
        let c = crate::store::test_conn();
        insert(&c, &session("ses-t", "mi-1", "ann", 0)).unwrap();
        let chunks = [
            chunk(0, Kind::Output, b"abc"),
            chunk(1, Kind::Output, b"d"),
            chunk(2, Kind::Input, b"zz"),
            chunk(3, Kind::Output, b"e"),
            chunk(4, Kind::Output, b"f"),
        ];
        append(&c, "ses-t", &chunks, &Counters::default()).unwrap();
        assert_eq!(
            tail_before(&c, "ses-t", 4, Kind::Output, 3).unwrap(),
            b"cde"
        );
        assert_eq!(
            tail_before(&c, "ses-t", 1, Kind::Output, 8).unwrap(),
            b"abc"
        );
        assert_eq!(tail_before(&c, "ses-t", 0, Kind::Output, 3).unwrap(), b"");
        assert_eq!(tail_before(&c, "ses-t", 9, Kind::Input, 3).unwrap(), b"zz");
    }

    #[test]
    fn prune_removes_old_ended_sessions_with_their_chunks_only() {
        let c = crate::store::test_conn();
        for (id, start) in [("ses-old", 0), ("ses-live", 0), ("ses-new", 5_000)] {
            insert(&c, &session(id, "mi-1", "ann", start)).unwrap();
            append(
                &c,
                id,
                &[chunk(0, Kind::Output, b"x")],
                &Counters::default(),
            )
            .unwrap();
        }
        finish(&c, "ses-old", 100, Some(0), "exit").unwrap();
        finish(&c, "ses-new", 6_000, Some(0), "exit").unwrap();
        assert_eq!(prune(&c, 1_000, 10).unwrap(), 1);
        assert_eq!(prune(&c, 1_000, 10).unwrap(), 0);
        assert!(get(&c, "ses-old").unwrap().is_none());
        assert!(get(&c, "ses-live").unwrap().is_some());
        let left: i64 = c
            .query_row("SELECT count(*) FROM session_chunks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 2, "the pruned session's chunks went with it");
    }
}
