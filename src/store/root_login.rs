//! The account owner's (root's) console password. Root is not a CAM
//! sub-user, so its password hash and lockout counters live in the `meta`
//! table under `root_*` keys; `drover admin set-password` is the only way
//! to set the password, and root signs in to the console as user `root`.

use rusqlite::{params, Connection};

use super::keys::meta_get;
use super::users::{LoginError, LoginFacts, LOCKOUT_MS, MAX_FAILED_LOGINS};
use super::Result;

/// The session and principal id root signs in under.
pub const ROOT: &str = "root";

fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn meta_i64(conn: &Connection, key: &str) -> Result<i64> {
    Ok(meta_get(conn, key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Stores root's new password hash (from `crypto::hash_password`) and
/// clears any lockout, so an operator can always get back in. Root's
/// console sessions end, as a sub-user's do when its password changes.
pub fn set_password(conn: &Connection, hash: &[u8]) -> Result<()> {
    super::sessions::delete_for_user(conn, ROOT)?;
    meta_set(conn, "root_password_hash", &hex::encode(hash))?;
    meta_set(conn, "root_failed_logins", "0")?;
    meta_set(conn, "root_locked_until_ms", "0")
}

/// Root's sign-in facts; `None` while no password has been set.
pub fn login_facts(conn: &Connection) -> Result<Option<LoginFacts>> {
    let Some(hash) = meta_get(conn, "root_password_hash")? else {
        return Ok(None);
    };
    Ok(Some(LoginFacts {
        uin: ROOT.to_string(),
        password_hash: hex::decode(hash).ok(),
        console_login: true,
        locked_until_ms: meta_i64(conn, "root_locked_until_ms")?,
        need_reset_password: false,
    }))
}

/// Same rules as a sub-user's sign-in: `MAX_FAILED_LOGINS` failures in a
/// row lock root out for `LOCKOUT_MS` (until `set-password` clears it).
pub fn record_login(
    conn: &Connection,
    password_ok: bool,
    now_ms: i64,
) -> std::result::Result<(), LoginError> {
    let locked_until = meta_i64(conn, "root_locked_until_ms")?;
    if locked_until > now_ms {
        return Err(LoginError::Locked {
            until_ms: locked_until,
        });
    }
    if password_ok {
        meta_set(conn, "root_failed_logins", "0")?;
        return Ok(());
    }
    let failed = meta_i64(conn, "root_failed_logins")? + 1;
    if failed >= MAX_FAILED_LOGINS {
        let until = now_ms + LOCKOUT_MS;
        meta_set(conn, "root_failed_logins", "0")?;
        meta_set(conn, "root_locked_until_ms", &until.to_string())?;
        return Err(LoginError::Locked { until_ms: until });
    }
    meta_set(conn, "root_failed_logins", &failed.to_string())?;
    Err(LoginError::BadPassword)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_password_set_checked_and_locked() {
        let conn = crate::store::test_conn();
        assert!(login_facts(&conn).unwrap().is_none());
        set_password(&conn, &crate::crypto::hash_password("s3cret-pass")).unwrap();
        let f = login_facts(&conn).unwrap().unwrap();
        assert!(crate::crypto::verify_password_hash(
            f.password_hash.as_deref().unwrap(),
            "s3cret-pass"
        ));
        assert!(!crate::crypto::verify_password_hash(
            f.password_hash.as_deref().unwrap(),
            "wrong"
        ));
        for _ in 1..MAX_FAILED_LOGINS {
            assert!(matches!(
                record_login(&conn, false, 1000),
                Err(LoginError::BadPassword)
            ));
        }
        assert!(matches!(
            record_login(&conn, false, 1000),
            Err(LoginError::Locked { .. })
        ));
        // Locked: even the right password is refused until set-password.
        assert!(record_login(&conn, true, 2000).is_err());
        set_password(&conn, &crate::crypto::hash_password("new-pass-1")).unwrap();
        assert!(record_login(&conn, true, 2000).is_ok());
    }
}
