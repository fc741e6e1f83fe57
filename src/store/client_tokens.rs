//! Idempotent starts (drover extension, as EC2's and SSM's ClientToken):
//! the first result of a RunCommand, InvokeCommand or CreateInvoker made
//! with a client token, kept for 24 hours per principal and token. The row
//! is written in the same transaction as what the call created, so a token
//! is recorded exactly when its result exists.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;

/// How long a token's first result is returned again.
pub const TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

/// A token's first call: what was asked (a digest of the action and its
/// parameters) and what was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub fingerprint: String,
    pub result: String,
}

/// The unexpired record of `token` for `principal`, if any.
pub fn lookup(
    conn: &Connection,
    principal: &str,
    token: &str,
    now: i64,
) -> Result<Option<Recorded>> {
    Ok(conn
        .query_row(
            "SELECT fingerprint, result FROM client_tokens
             WHERE principal = ?1 AND token = ?2 AND created_ms > ?3",
            params![principal, token, now - TOKEN_TTL_MS],
            |r| {
                Ok(Recorded {
                    fingerprint: r.get(0)?,
                    result: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Records a token's first result. An expired record of the same token is
/// replaced; an unexpired one makes this fail (a concurrent call won the
/// race), which rolls back the caller's whole write.
pub fn record(
    conn: &Connection,
    principal: &str,
    token: &str,
    rec: &Recorded,
    now: i64,
) -> Result<()> {
    conn.execute(
        "DELETE FROM client_tokens WHERE principal = ?1 AND token = ?2 AND created_ms <= ?3",
        params![principal, token, now - TOKEN_TTL_MS],
    )?;
    conn.execute(
        "INSERT INTO client_tokens (principal, token, fingerprint, result, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![principal, token, rec.fingerprint, rec.result, now],
    )?;
    Ok(())
}

/// Deletes expired records; returns how many.
pub fn prune(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM client_tokens WHERE created_ms <= ?1",
        params![now - TOKEN_TTL_MS],
    )?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_result_is_kept_for_a_day_per_principal() {
        let c = crate::store::test_conn();
        let rec = Recorded {
            fingerprint: "f1".into(),
            result: "{\"InvocationId\":\"inv-1\"}".into(),
        };
        let t0 = 1_000_000_000_000;
        record(&c, "root", "tok", &rec, t0).unwrap();
        assert_eq!(
            lookup(&c, "root", "tok", t0 + 1).unwrap(),
            Some(rec.clone())
        );
        assert_eq!(lookup(&c, "100001", "tok", t0 + 1).unwrap(), None);
        // A second record within the day fails (the race's loser).
        assert!(record(&c, "root", "tok", &rec, t0 + 5).is_err());
        // After a day it is gone and may be used again.
        let later = t0 + TOKEN_TTL_MS + 1;
        assert_eq!(lookup(&c, "root", "tok", later).unwrap(), None);
        record(&c, "root", "tok", &rec, later).unwrap();
        assert_eq!(prune(&c, later + TOKEN_TTL_MS).unwrap(), 1);
    }
}
