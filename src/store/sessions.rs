//! Web-console sessions. Only SHA-256 hashes of the session and CSRF
//! tokens are stored, so a copy of the database opens no session.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The signed-in sub-user's uin.
    pub user_id: String,
    pub csrf_hash: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    /// Absolute end, whatever the activity.
    pub expires_ms: i64,
}

pub fn create(conn: &Connection, token_hash: &str, s: &Session) -> Result<()> {
    conn.execute(
        "INSERT INTO console_sessions(token_hash, user_id, csrf_hash, created_ms, last_seen_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![token_hash, s.user_id, s.csrf_hash, s.created_ms, s.last_seen_ms, s.expires_ms],
    )?;
    // Opportunistic clean-up keeps the table from growing without a timer.
    conn.execute(
        "DELETE FROM console_sessions WHERE expires_ms <= ?1",
        params![s.created_ms],
    )?;
    Ok(())
}

/// The live session for `token_hash`, its idle clock reset; None (and the
/// row gone) when it is unknown, idle longer than `idle_ms`, or past its end.
pub fn touch(
    conn: &Connection,
    token_hash: &str,
    now: i64,
    idle_ms: i64,
) -> Result<Option<Session>> {
    let found = conn
        .query_row(
            "SELECT user_id, csrf_hash, created_ms, last_seen_ms, expires_ms
             FROM console_sessions WHERE token_hash = ?1",
            params![token_hash],
            |r| {
                Ok(Session {
                    user_id: r.get(0)?,
                    csrf_hash: r.get(1)?,
                    created_ms: r.get(2)?,
                    last_seen_ms: r.get(3)?,
                    expires_ms: r.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(mut s) = found else { return Ok(None) };
    if s.expires_ms <= now || s.last_seen_ms + idle_ms <= now {
        delete(conn, token_hash)?;
        return Ok(None);
    }
    s.last_seen_ms = now;
    conn.execute(
        "UPDATE console_sessions SET last_seen_ms = ?2 WHERE token_hash = ?1",
        params![token_hash, now],
    )?;
    Ok(Some(s))
}

pub fn delete(conn: &Connection, token_hash: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM console_sessions WHERE token_hash = ?1",
        params![token_hash],
    )?;
    Ok(())
}

/// Ends every session of a user (password change, deletion).
pub fn delete_for_user(conn: &Connection, user_id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM console_sessions WHERE user_id = ?1",
        params![user_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_by_idleness_and_by_age() {
        let c = crate::store::test_conn();
        let s = Session {
            user_id: "100000000001".into(),
            csrf_hash: "c".into(),
            created_ms: 1000,
            last_seen_ms: 1000,
            expires_ms: 10_000,
        };
        create(&c, "t1", &s).unwrap();
        assert!(touch(&c, "t1", 1500, 1000).unwrap().is_some());
        assert!(
            touch(&c, "t1", 2400, 1000).unwrap().is_some(),
            "touch resets idleness"
        );
        assert!(
            touch(&c, "t1", 3500, 1000).unwrap().is_none(),
            "idle too long"
        );
        assert!(
            touch(&c, "t1", 3600, 100_000).unwrap().is_none(),
            "idle expiry deleted it"
        );
        create(&c, "t2", &s).unwrap();
        assert!(
            touch(&c, "t2", 10_000, 100_000).unwrap().is_none(),
            "past its absolute end"
        );
        create(&c, "t3", &s).unwrap();
        delete_for_user(&c, "100000000001").unwrap();
        assert!(touch(&c, "t3", 1100, 1000).unwrap().is_none());
    }
}
