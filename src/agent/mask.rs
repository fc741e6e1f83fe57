//! Masks secret values in a task's output before it is journaled or sent,
//! so neither the agent's disk nor the server ever holds them as output.
//!
//! Guarantees: every exact occurrence of a mask value in the stream becomes
//! `******`, also when it arrives split across reads: bytes at the end of a
//! read that could still begin a value are held back until more data or the
//! end of the stream decides them. At most (longest value - 1) bytes are
//! held. Where values overlap, the longest value matching at the earliest
//! position wins. Values shorter than [`MIN_MASK_LEN`] are ignored (masking
//! every "a" would wreck the output and hide nothing). Offsets stay
//! consistent because the agent numbers the masked stream it sends.

use crate::protocol::MIN_MASK_LEN;

pub const MASK: &[u8] = b"******";

#[derive(Debug, Default)]
pub struct Masker {
    /// Longest first, so the longest match at a position is found first.
    values: Vec<Vec<u8>>,
    held: Vec<u8>,
}

impl Masker {
    pub fn new(values: &[String]) -> Masker {
        let mut values: Vec<Vec<u8>> = values
            .iter()
            .filter(|v| v.len() >= MIN_MASK_LEN)
            .map(|v| v.as_bytes().to_vec())
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Masker {
            values,
            held: Vec::new(),
        }
    }

    /// True when there is nothing to mask (the stream passes unchanged).
    pub fn is_noop(&self) -> bool {
        self.values.is_empty()
    }

    /// Feeds `data`; returns what can be released now.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.is_noop() {
            return data.to_vec();
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(data);
        let (out, held) = self.scan(&buf, false);
        self.held = held;
        out
    }

    /// End of stream: releases everything, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.held);
        self.scan(&buf, true).0
    }

    /// Masks `buf`; unless at end of stream, stops at the first position
    /// where a value may begin but `buf` ends first, and returns that tail.
    fn scan(&self, buf: &[u8], eof: bool) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        'outer: while i < buf.len() {
            let rest = &buf[i..];
            if !eof
                && self
                    .values
                    .iter()
                    .any(|v| rest.len() < v.len() && v.starts_with(rest))
            {
                return (out, rest.to_vec());
            }
            for v in &self.values {
                if rest.starts_with(v) {
                    out.extend_from_slice(MASK);
                    i += v.len();
                    continue 'outer;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        (out, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: &[&str], input: &[u8], piece: usize) -> Vec<u8> {
        let vals: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        let mut m = Masker::new(&vals);
        let mut out = Vec::new();
        for part in input.chunks(piece.max(1)) {
            out.extend(m.push(part));
        }
        out.extend(m.finish());
        out
    }

    #[test]
    fn masks_values_split_across_any_read_boundary() {
        let input = b"pw=hunter2!\nagain:hunter2\nhunter\nend hunt";
        let want = b"pw=******!\nagain:******\nhunter\nend hunt".to_vec();
        for piece in 1..=input.len() {
            assert_eq!(run(&["hunter2"], input, piece), want, "piece {piece}");
        }
    }

    #[test]
    fn holds_back_only_a_possible_beginning() {
        let mut m = Masker::new(&["secret-value".to_string()]);
        assert_eq!(m.push(b"abc secr"), b"abc ");
        assert_eq!(m.push(b"et-val"), b"");
        assert_eq!(m.push(b"ue and secrets "), b"****** and secrets ");
        assert_eq!(m.push(b"secret"), b"");
        assert_eq!(m.finish(), b"secret");
        let mut m = Masker::new(&["secret-value".to_string()]);
        assert_eq!(m.push(b"tail: secret-va"), b"tail: ");
        assert_eq!(m.finish(), b"secret-va");
    }

    #[test]
    fn overlapping_values_and_short_ones() {
        // The longest value at a position wins; short values are ignored.
        let out = run(&["abcd", "abcdef", "x"], b"abcdefg abcdx abcde", 3);
        assert_eq!(out, b"******g ******x ******e".to_vec());
        assert!(Masker::new(&["abc".into(), String::new()]).is_noop());
        assert_eq!(run(&["abc"], b"abc", 1), b"abc");
        // A value repeated back to back, and multi-byte text around it.
        let out = run(&["пароль"], "€пароль€парольпароль".as_bytes(), 5);
        assert_eq!(out, "€******€************".as_bytes());
    }
}
