//! Cuts a task's byte stream into `Output` chunks that never split a UTF-8
//! sequence, so every chunk can be decoded and shown on its own.
//!
//! Guarantees: concatenating the chunks (plus whatever `finish` returns)
//! reproduces the input byte for byte; a chunk ends inside a multi-byte
//! sequence only at end of stream; invalid bytes pass through unchanged
//! (they are not "held back" beyond the 3 bytes a sequence can still need).

/// Largest chunk handed out at once; also what one `Output` message carries.
pub const MAX_CHUNK: usize = 32 * 1024;

/// Accumulates bytes and releases them at UTF-8-safe boundaries.
#[derive(Debug, Default)]
pub struct Utf8Chunker {
    pending: Vec<u8>,
}

impl Utf8Chunker {
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Bytes waiting, including an incomplete trailing sequence.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the next chunk of at most [`MAX_CHUNK`] bytes that ends on a
    /// character boundary; `None` when nothing can be released yet.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        let window = self.pending.len().min(MAX_CHUNK);
        let n = safe_len(&self.pending[..window]);
        if n == 0 {
            return None;
        }
        let rest = self.pending.split_off(n);
        Some(std::mem::replace(&mut self.pending, rest))
    }

    /// End of stream: everything left, even a truncated sequence.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest prefix of `buf` that does not end inside a
/// multi-byte sequence which later bytes could still complete.
pub fn safe_len(buf: &[u8]) -> usize {
    // A sequence is at most 4 bytes, so its lead byte is within the last 4.
    let start = buf.len().saturating_sub(4);
    for i in (start..buf.len()).rev() {
        let b = buf[i];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // continuation byte: keep looking for the lead
        }
        let want = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1, // invalid lead: passes through as a single byte
        };
        return if i + want > buf.len() { i } else { buf.len() };
    }
    // Only continuation bytes at the end (invalid or a lead beyond the
    // window): nothing to wait for.
    buf.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn feed_in_pieces(input: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut c = Utf8Chunker::default();
        let mut out = Vec::new();
        for part in input.chunks(piece) {
            c.push(part);
            while let Some(chunk) = c.take() {
                out.push(chunk);
            }
        }
        let tail = c.finish();
        if !tail.is_empty() {
            out.push(tail);
        }
        out
    }

    #[test]
    fn never_splits_multibyte_characters_at_any_read_boundary() {
        let text = "a€b😀c日本語\u{7ff}z".repeat(50);
        for piece in 1..=9 {
            let chunks = feed_in_pieces(text.as_bytes(), piece);
            for ch in &chunks {
                assert!(std::str::from_utf8(ch).is_ok(), "piece {piece}: {ch:?}");
            }
            assert_eq!(chunks.concat(), text.as_bytes());
        }
    }

    #[test]
    fn holds_back_only_an_incomplete_tail() {
        let mut c = Utf8Chunker::default();
        c.push(&[b'x', 0xe2, 0x82]); // "x" + first two bytes of "€"
        assert_eq!(c.take(), Some(b"x".to_vec()));
        assert_eq!(c.take(), None);
        c.push(&[0xac]);
        assert_eq!(c.take(), Some("€".as_bytes().to_vec()));
        c.push(&[0xf0, 0x9f]);
        assert_eq!(c.finish(), vec![0xf0, 0x9f]);
    }

    #[test]
    fn invalid_bytes_pass_through() {
        let input = [b'a', 0xff, 0x80, 0x80, b'b', 0xfe];
        let chunks = feed_in_pieces(&input, 1);
        assert_eq!(chunks.concat(), input);
        let mut c = Utf8Chunker::default();
        c.push(&[0x80, 0x80, 0x80, 0x80, 0x80]);
        assert_eq!(c.take().map(|v| v.len()), Some(5));
    }

    #[test]
    fn large_input_is_cut_at_max_chunk_on_boundaries() {
        let text = "€".repeat(40_000); // 120 000 bytes
        let chunks = feed_in_pieces(text.as_bytes(), 7000);
        assert!(chunks.iter().all(|c| c.len() <= MAX_CHUNK));
        assert!(chunks.iter().all(|c| std::str::from_utf8(c).is_ok()));
        assert_eq!(chunks.concat(), text.as_bytes());
    }
}
