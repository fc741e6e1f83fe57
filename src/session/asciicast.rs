//! asciicast v2 (the asciinema file format) from a stored recording: a
//! header line `{"version":2,"width","height","timestamp","env","title"}`,
//! then one JSON array per event, `[seconds, "o"|"i"|"r"|"m", "data"]`.
//!
//! Event data must be a JSON *string*, so terminal bytes are decoded as
//! UTF-8. A multi-byte character split across two reads (or two stored
//! chunks) is carried over to the next event of the same kind instead of
//! being mangled into replacement characters; only bytes that are not
//! UTF-8 at all become U+FFFD. The encoder can resume mid-recording
//! (`prime`), which is how the API pages a long recording.

use serde_json::json;

use crate::store::recordings::{self, Chunk, Kind, SessionRecord};

/// Longest incomplete UTF-8 sequence (a 4-byte character's first three).
pub const MAX_CARRY: usize = 3;

/// What the header says about a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub width: u16,
    pub height: u16,
    /// Unix seconds of the session's start.
    pub timestamp: i64,
    pub term: String,
    pub shell: String,
    pub title: String,
}

impl Header {
    /// The header line, newline included.
    pub fn line(&self) -> String {
        let h = json!({
            "version": 2,
            "width": self.width,
            "height": self.height,
            "timestamp": self.timestamp,
            "env": { "TERM": self.term, "SHELL": self.shell },
            "title": self.title,
        });
        format!("{h}\n")
    }
}

/// Turns chunks into event lines, carrying split characters per stream.
#[derive(Debug, Default)]
pub struct Encoder {
    /// Incomplete trailing bytes of the output and the input streams.
    carry_out: Vec<u8>,
    carry_in: Vec<u8>,
    /// Time of the last event written (for the final flush).
    last_ms: i64,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Sets the carry as if `tail` (the last bytes of `kind` before the
    /// point of resumption) had been encoded already; what it printed is
    /// discarded. UTF-8 resynchronises within a character, so the last
    /// `MAX_CARRY` bytes are enough.
    pub fn prime(&mut self, kind: Kind, tail: &[u8]) {
        let cut = tail.len().saturating_sub(MAX_CARRY);
        let mut sink = String::new();
        self.event(0, kind, &tail[cut..], &mut sink);
    }

    /// The time of the last event before the point of resumption, so what
    /// `finish` flushes is stamped no earlier.
    pub fn resume_at(&mut self, at_ms: i64) {
        self.last_ms = at_ms;
    }

    /// Appends the event line(s) for one chunk to `out`. A chunk whose
    /// bytes are all carried to the next one writes nothing.
    pub fn event(&mut self, at_ms: i64, kind: Kind, data: &[u8], out: &mut String) {
        self.last_ms = self.last_ms.max(at_ms);
        let text = match kind {
            Kind::Output => decode(&mut self.carry_out, data),
            Kind::Input => decode(&mut self.carry_in, data),
            Kind::Resize | Kind::Marker => String::from_utf8_lossy(data).into_owned(),
        };
        if text.is_empty() && matches!(kind, Kind::Output | Kind::Input) {
            return;
        }
        push_line(out, at_ms, kind, &text);
    }

    pub fn chunk(&mut self, c: &Chunk, out: &mut String) {
        self.event(c.at_ms, c.kind, &c.data, out);
    }

    /// Writes what is still carried at the end of the recording (bytes
    /// that never became a character) as replacement characters.
    pub fn finish(&mut self, out: &mut String) {
        let at = self.last_ms;
        for (kind, carry) in [
            (Kind::Output, std::mem::take(&mut self.carry_out)),
            (Kind::Input, std::mem::take(&mut self.carry_in)),
        ] {
            if !carry.is_empty() {
                push_line(out, at, kind, &String::from_utf8_lossy(&carry));
            }
        }
    }
}

/// The header of a stored session's recording.
pub fn header_of(s: &SessionRecord) -> Header {
    let mut title = format!(
        "{}@{} by {} via {}",
        s.login_user, s.instance_id, s.user_name, s.via
    );
    if let Some(cmd) = &s.command {
        title.push_str(": ");
        title.push_str(cmd);
    }
    Header {
        width: s.cols,
        height: s.rows,
        timestamp: s.started_ms.div_euclid(1000),
        term: s.term.clone(),
        shell: s.shell.clone(),
        title,
    }
}

/// One page of a recording as asciicast text.
#[derive(Debug, Clone, PartialEq)]
pub struct CastPage {
    /// The header line (on the first page only) and event lines.
    pub text: String,
    /// Where the next page starts (a chunk number).
    pub next: i64,
    /// True when the session has ended and this page reached its end.
    pub complete: bool,
}

/// The recording of `s` from chunk `from_seq` on, about `max_bytes` of
/// recorded data at most (at least one chunk when any is left). Pages
/// joined in order are exactly the whole file.
pub fn page(
    conn: &rusqlite::Connection,
    s: &SessionRecord,
    from_seq: i64,
    max_bytes: usize,
) -> crate::store::Result<CastPage> {
    let mut enc = Encoder::new();
    let mut text = String::new();
    if from_seq == 0 {
        text.push_str(&header_of(s).line());
    } else {
        for kind in [Kind::Output, Kind::Input] {
            let tail = recordings::tail_before(conn, &s.id, from_seq, kind, MAX_CARRY)?;
            enc.prime(kind, &tail);
        }
        enc.resume_at(recordings::time_before(conn, &s.id, from_seq)?);
    }
    let chunks = recordings::chunks(conn, &s.id, from_seq, max_bytes)?;
    let next = chunks.last().map_or(from_seq, |c| c.seq + 1);
    for c in &chunks {
        enc.chunk(c, &mut text);
    }
    // Ended, and nothing after this page: what is still carried is final.
    let complete = s.ended_ms.is_some() && recordings::chunks(conn, &s.id, next, 1)?.is_empty();
    if complete {
        enc.finish(&mut text);
    }
    Ok(CastPage {
        text,
        next,
        complete,
    })
}

fn push_line(out: &mut String, at_ms: i64, kind: Kind, text: &str) {
    let at_ms = at_ms.max(0);
    // Fixed millisecond precision: exact, and no float formatting quirks.
    let data = serde_json::Value::String(text.to_string());
    out.push_str(&format!(
        "[{}.{:03}, \"{}\", {data}]\n",
        at_ms / 1000,
        at_ms % 1000,
        kind.code()
    ));
}

/// Decodes `carry + data`, leaving an incomplete final sequence in `carry`.
fn decode(carry: &mut Vec<u8>, data: &[u8]) -> String {
    let mut buf = std::mem::take(carry);
    buf.extend_from_slice(data);
    let mut out = String::with_capacity(buf.len());
    let mut rest: &[u8] = &buf;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // from_utf8 vouched for `good`.
                out.push_str(&String::from_utf8_lossy(good));
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &bad[n..];
                    }
                    None => {
                        // An incomplete character at the very end.
                        *carry = bad.to_vec();
                        break;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(out: &str) -> Vec<serde_json::Value> {
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn header_has_the_v2_fields() {
        let h = Header {
            width: 120,
            height: 40,
            timestamp: 1_700_000_000,
            term: "xterm-256color".into(),
            shell: "/bin/bash".into(),
            title: "root@mi-1".into(),
        };
        let line = h.line();
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["width"], 120);
        assert_eq!(v["height"], 40);
        assert_eq!(v["timestamp"], 1_700_000_000);
        assert_eq!(v["env"]["TERM"], "xterm-256color");
        assert_eq!(v["env"]["SHELL"], "/bin/bash");
        assert_eq!(v["title"], "root@mi-1");
    }

    #[test]
    fn a_character_split_across_chunks_is_carried_not_mangled() {
        let snow = "é☃😀".as_bytes(); // 2 + 3 + 4 bytes
        let mut enc = Encoder::new();
        let mut out = String::new();
        // Cut at every byte: each cut but the last ends mid-character.
        for (i, b) in snow.iter().enumerate() {
            enc.event(i as i64, Kind::Output, std::slice::from_ref(b), &mut out);
        }
        enc.finish(&mut out);
        let ev = lines(&out);
        let text: String = ev.iter().map(|e| e[2].as_str().unwrap()).collect();
        assert_eq!(text, "é☃😀");
        assert_eq!(ev.len(), 3, "one event per completed character");
        // The event comes when the character completes.
        assert_eq!(ev[0][0].as_f64().unwrap(), 0.001);
        assert_eq!(ev[2][0].as_f64().unwrap(), 0.008);
    }

    #[test]
    fn output_and_input_carry_separately_and_junk_becomes_replacement() {
        let mut enc = Encoder::new();
        let mut out = String::new();
        let euro = "€".as_bytes();
        enc.event(10, Kind::Output, &euro[..1], &mut out);
        enc.event(11, Kind::Input, b"a", &mut out);
        enc.event(12, Kind::Output, &euro[1..], &mut out);
        enc.event(13, Kind::Output, b"\xff\x1b[0m", &mut out);
        // Left incomplete at the end: flushed as a replacement character.
        enc.event(14, Kind::Output, &euro[..2], &mut out);
        enc.finish(&mut out);
        let ev = lines(&out);
        let got: Vec<(String, String)> = ev
            .iter()
            .map(|e| {
                (
                    e[1].as_str().unwrap().to_string(),
                    e[2].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("i".into(), "a".into()),
                ("o".into(), "€".into()),
                ("o".into(), "\u{fffd}\u{1b}[0m".into()),
                ("o".into(), "\u{fffd}".into()),
            ]
        );
    }

    #[test]
    fn resize_markers_and_timing_are_exact() {
        let mut enc = Encoder::new();
        let mut out = String::new();
        enc.event(0, Kind::Output, b"$ ", &mut out);
        enc.event(1_500, Kind::Resize, b"100x30", &mut out);
        enc.event(61_007, Kind::Marker, b"42 bytes not recorded", &mut out);
        let ev = lines(&out);
        assert_eq!(out.lines().nth(1).unwrap(), r#"[1.500, "r", "100x30"]"#);
        assert_eq!(ev[0][0].as_f64().unwrap(), 0.0);
        assert_eq!(ev[2][0].as_f64().unwrap(), 61.007);
        assert_eq!(ev[2][1], "m");
        assert_eq!(ev[2][2], "42 bytes not recorded");
    }

    #[test]
    fn pages_joined_are_the_whole_file_whatever_the_page_size() {
        use crate::store::recordings::{append, finish, insert, tests::session, Counters};
        let c = crate::store::test_conn();
        insert(&c, &session("ses-pg", "mi-1", "ann", 1_700_000_000_123)).unwrap();
        let mut bytes = "a€b😀".as_bytes().to_vec();
        bytes.push(0xff);
        let mut chunks: Vec<Chunk> = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| Chunk {
                seq: i as i64,
                at_ms: 100 * i as i64,
                kind: if i == 3 { Kind::Input } else { Kind::Output },
                data: vec![*b],
            })
            .collect();
        // The stream ends inside a character: flushed at the end, at the
        // last event's time.
        chunks.push(Chunk {
            seq: chunks.len() as i64,
            at_ms: 5_000,
            kind: Kind::Output,
            data: vec![0xe2, 0x82],
        });
        append(&c, "ses-pg", &chunks, &Counters::default()).unwrap();
        let live = crate::store::recordings::get(&c, "ses-pg")
            .unwrap()
            .unwrap();
        let open = page(&c, &live, 0, usize::MAX).unwrap();
        assert!(!open.complete, "a live session's recording is not complete");
        finish(&c, "ses-pg", 9_000, Some(0), "exit").unwrap();
        let s = crate::store::recordings::get(&c, "ses-pg")
            .unwrap()
            .unwrap();
        let whole = page(&c, &s, 0, usize::MAX).unwrap();
        assert!(whole.complete);
        assert_eq!(whole.next, chunks.len() as i64);
        let v: Vec<serde_json::Value> = whole
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["timestamp"], 1_700_000_000);
        assert_eq!(v.last().unwrap()[0].as_f64().unwrap(), 5.0);
        assert_eq!(v.last().unwrap()[2], "\u{fffd}");
        for size in [1, 2, 3] {
            let mut joined = String::new();
            let mut from = 0;
            loop {
                let p = page(&c, &s, from, size).unwrap();
                joined.push_str(&p.text);
                if p.complete {
                    break;
                }
                assert!(p.next > from, "a page makes progress");
                from = p.next;
            }
            assert_eq!(joined, whole.text, "pages of {size}");
        }
    }

    #[test]
    fn priming_resumes_as_if_the_whole_stream_was_encoded() {
        let stream = "ab😀cd€".as_bytes();
        for cut in 0..=stream.len() {
            let (head, rest) = stream.split_at(cut);
            let mut whole = Encoder::new();
            let mut sink = String::new();
            whole.event(0, Kind::Output, head, &mut sink);
            let mut a = String::new();
            whole.event(1, Kind::Output, rest, &mut a);
            whole.finish(&mut a);
            let mut resumed = Encoder::new();
            resumed.prime(Kind::Output, head);
            let mut b = String::new();
            resumed.event(1, Kind::Output, rest, &mut b);
            resumed.finish(&mut b);
            assert_eq!(a, b, "cut at {cut}");
        }
    }
}
