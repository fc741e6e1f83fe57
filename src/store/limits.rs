//! Bounds on what agents store: the per-task output cap and the longest
//! value kept of every agent-supplied text field. An agent is a machine the
//! server does not control (a compromised one may say anything), so
//! nothing it reports may grow the database without limit.
//!
//! The output cap is a server setting (`drover server --max-output-bytes`)
//! kept in `meta`, so `invocations::append_output` applies it wherever
//! output is appended without every caller having to pass it along.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;

/// Default per-task output kept: 16 MiB (TAT keeps 24 KB inline; the rest
/// is read with DescribeInvocationTaskOutput).
pub const DEFAULT_MAX_OUTPUT: i64 = 16 << 20;

/// Longest values kept of the machine facts an agent reports.
pub const MAX_HOSTNAME: usize = 255;
pub const MAX_MACHINE_ID: usize = 128;
pub const MAX_SYSTEM_NAME: usize = 64;
pub const MAX_LOCAL_IP: usize = 256;
pub const MAX_AGENT_VERSION: usize = 64;
/// The JSON list of command types an agent can run.
pub const MAX_COMMAND_TYPES: usize = 256;
/// A task's ErrorInfo as the agent reports it.
pub const MAX_ERROR_INFO: usize = 2048;

const META_MAX_OUTPUT: &str = "max_output_bytes";

/// Sets the per-task output cap (bytes; 0 keeps everything).
pub fn set_max_output(conn: &Connection, bytes: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![META_MAX_OUTPUT, bytes.max(0).to_string()],
    )?;
    Ok(())
}

/// The per-task output cap in bytes; `None` when there is none.
pub fn max_output(conn: &Connection) -> Result<Option<i64>> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![META_MAX_OUTPUT],
            |r| r.get(0),
        )
        .optional()?;
    let cap = match v {
        None => DEFAULT_MAX_OUTPUT,
        Some(s) => s.parse::<i64>().unwrap_or(DEFAULT_MAX_OUTPUT),
    };
    Ok((cap > 0).then_some(cap))
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_whole_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn output_cap_defaults_and_can_be_lifted() {
        let c = crate::store::test_conn();
        assert_eq!(max_output(&c).unwrap(), Some(DEFAULT_MAX_OUTPUT));
        set_max_output(&c, 10).unwrap();
        assert_eq!(max_output(&c).unwrap(), Some(10));
        set_max_output(&c, 0).unwrap();
        assert_eq!(max_output(&c).unwrap(), None);
    }
}
