//! The journal's on-disk format: one append-only file of records, one per
//! line, each `<16 hex digits of FNV-1a 64 of the JSON> <JSON>\n`.
//!
//! Why a log: a task used to be a directory of four or five small files,
//! each a new inode, created and deleted within a second. On the benchmark
//! machine (ext4) inode allocation was the agent's largest CPU cost per
//! task, and every entry needed a file fsync plus two directory fsyncs.
//! Appending a line costs one write, and one fdatasync where it must be
//! durable, with no new directory entry.
//!
//! Guarantees: a record is whole or ignored. Reading stops at the first line
//! that is not a whole, checksummed record (a write torn by a crash or a
//! power loss, or a full disk): nothing after it counts, and the writer
//! continues at that point. Only the tail can be torn: a record is synced
//! with everything written before it, so a durable record never follows
//! a torn one.

use serde::{Deserialize, Serialize};

use crate::protocol::{AgentMsg, TaskSpec};

/// One change to the journal. `Accept` and `Result` are synced before the
/// step they guard; the others are not (see `journal.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Record {
    /// A task was accepted (its script and mask already stripped).
    Accept { spec: TaskSpec },
    /// Where its process runs: "pgid start_ticks started_at boot_id".
    Process { id: String, mark: String },
    /// Its main process's exit code (None: a signal).
    Exit { id: String, code: Option<i64> },
    /// Its `TaskFinished` message.
    Result { id: String, msg: AgentMsg },
    /// The server holds the result: the task is forgotten.
    Ack { id: String },
}

/// 64-bit FNV-1a: enough to tell a whole line from a torn or stale one
/// (not a defence against tampering: the journal is the agent's own 0700
/// directory).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The line for `rec`, newline included.
pub fn encode(rec: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(rec)?;
    let mut line = Vec::with_capacity(json.len() + 18);
    line.extend_from_slice(format!("{:016x} ", fnv1a(&json)).as_bytes());
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

/// The whole records at the start of `bytes`, and how many bytes they take
/// (where the next record goes).
pub fn decode(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') {
        match decode_line(&bytes[at..at + nl]) {
            Some(rec) => records.push(rec),
            None => break,
        }
        at += nl + 1;
    }
    (records, at)
}

fn decode_line(line: &[u8]) -> Option<Record> {
    let (sum, json) = (line.get(..16)?, line.get(17..)?);
    if line.get(16) != Some(&b' ') {
        return None;
    }
    let sum = u64::from_str_radix(std::str::from_utf8(sum).ok()?, 16).ok()?;
    if sum != fnv1a(json) {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn recs() -> Vec<Record> {
        vec![
            Record::Exit {
                id: "t1".into(),
                code: Some(3),
            },
            Record::Process {
                id: "t1".into(),
                mark: "1 2 3 b".into(),
            },
            Record::Ack { id: "t1".into() },
        ]
    }

    #[test]
    fn records_round_trip_and_a_torn_or_altered_tail_is_not_read() {
        let mut bytes = Vec::new();
        for r in recs() {
            bytes.extend(encode(&r).unwrap());
        }
        let (got, len) = decode(&bytes);
        assert_eq!(got, recs());
        assert_eq!(len, bytes.len());

        // Torn anywhere inside the last line: the first two count.
        let second_end = bytes.len() - encode(&recs()[2]).unwrap().len();
        for cut in second_end..bytes.len() {
            let (got, len) = decode(&bytes[..cut]);
            assert_eq!(got, recs()[..2].to_vec(), "cut at {cut}");
            assert_eq!(len, second_end, "cut at {cut}");
        }
        // A flipped byte in the middle record: reading stops before it,
        // even though a whole record follows.
        let mut bad = bytes.clone();
        let first_end = encode(&recs()[0]).unwrap().len();
        bad[first_end + 30] ^= 0x01;
        let (got, len) = decode(&bad);
        assert_eq!(got, recs()[..1].to_vec());
        assert_eq!(len, first_end);
        // Zeros (a block the file system never wrote) read as the end.
        let mut zeros = bytes[..first_end].to_vec();
        zeros.extend([0u8; 64]);
        zeros.push(b'\n');
        assert_eq!(decode(&zeros).1, first_end);
    }
}
