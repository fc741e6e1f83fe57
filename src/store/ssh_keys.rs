//! Ssh public keys people sign in to the ssh gateway with (`src/ssh/`).
//! A key belongs to one user (`"root"` or a sub-user's uin); the gateway
//! finds it by (user, SHA256 fingerprint), so a key says nothing on its own
//! about whom it lets in. Keys are parsed and checked by the API before
//! they arrive here; this module only keeps them.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Entity, Result, StoreError};

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub key_id: String,
    pub user_id: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` ...
    pub algorithm: String,
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key in OpenSSH's one-line form, without comment.
    pub public_key: String,
    pub description: String,
    pub created_ms: i64,
    /// When the key last opened an ssh sign-in (0: never).
    pub last_used_ms: i64,
}

const COLUMNS: &str = "key_id, user_id, algorithm, fingerprint, public_key, description, \
                       created_ms, last_used_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SshKey> {
    Ok(SshKey {
        key_id: r.get(0)?,
        user_id: r.get(1)?,
        algorithm: r.get(2)?,
        fingerprint: r.get(3)?,
        public_key: r.get(4)?,
        description: r.get(5)?,
        created_ms: r.get(6)?,
        last_used_ms: r.get(7)?,
    })
}

/// Stores `key` unless its user already holds `max` keys
/// (`Refused(SshKeyLimit)`) or this very key (`Refused(SshKeyTaken)`).
pub fn insert_limited(conn: &Connection, key: &SshKey, max: i64) -> Result<()> {
    let (count, same): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(fingerprint = ?2), 0) FROM ssh_public_keys
         WHERE user_id = ?1",
        params![key.user_id, key.fingerprint],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if same > 0 {
        return Err(StoreError::Refused(
            super::Rule::SshKeyTaken,
            format!("this user already holds the key {}", key.fingerprint),
        ));
    }
    if count >= max {
        return Err(StoreError::Refused(
            super::Rule::SshKeyLimit,
            format!("a user may hold at most {max} ssh public keys"),
        ));
    }
    conn.execute(
        &format!("INSERT INTO ssh_public_keys({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            key.key_id,
            key.user_id,
            key.algorithm,
            key.fingerprint,
            key.public_key,
            key.description,
            key.created_ms,
            key.last_used_ms
        ],
    )?;
    Ok(())
}

/// The keys of one user, oldest first.
pub fn list_for_user(conn: &Connection, user_id: &str) -> Result<Vec<SshKey>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM ssh_public_keys WHERE user_id = ?1 ORDER BY created_ms, key_id"
    ))?;
    let rows = st.query_map(params![user_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The key of `user_id` with this fingerprint, if the user holds it.
pub fn find(conn: &Connection, user_id: &str, fingerprint: &str) -> Result<Option<SshKey>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM ssh_public_keys WHERE user_id = ?1 AND fingerprint = ?2"
            ),
            params![user_id, fingerprint],
            row,
        )
        .optional()?)
}

/// Deletes one key of `user_id`; a key of anyone else is "not found".
pub fn delete(conn: &Connection, user_id: &str, key_id: &str) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM ssh_public_keys WHERE user_id = ?1 AND key_id = ?2",
        params![user_id, key_id],
    )?;
    if n == 0 {
        return Err(StoreError::missing(Entity::SshPublicKey, key_id));
    }
    Ok(())
}

/// Deletes every key of a user (the user is being deleted).
pub fn delete_for_user(conn: &Connection, user_id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM ssh_public_keys WHERE user_id = ?1",
        params![user_id],
    )?;
    Ok(())
}

/// Notes that a key opened a sign-in.
pub fn touch(conn: &Connection, key_id: &str, now_ms: i64) -> Result<()> {
    conn.execute(
        "UPDATE ssh_public_keys SET last_used_ms = ?2 WHERE key_id = ?1",
        params![key_id, now_ms],
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(id: &str, user: &str, fp: &str) -> SshKey {
        SshKey {
            key_id: id.into(),
            user_id: user.into(),
            algorithm: "ssh-ed25519".into(),
            fingerprint: fp.into(),
            public_key: format!("ssh-ed25519 AAAA{fp}"),
            description: String::new(),
            created_ms: 1,
            last_used_ms: 0,
        }
    }

    #[test]
    fn keys_belong_to_their_user_and_are_bounded() {
        let c = super::super::test_conn();
        insert_limited(&c, &key("k1", "100", "SHA256:a"), 2).unwrap();
        // The same key for someone else is their own key.
        insert_limited(&c, &key("k2", "200", "SHA256:a"), 2).unwrap();
        let twice = insert_limited(&c, &key("k3", "100", "SHA256:a"), 2).unwrap_err();
        assert!(matches!(
            twice,
            StoreError::Refused(super::super::Rule::SshKeyTaken, _)
        ));
        insert_limited(&c, &key("k4", "100", "SHA256:b"), 2).unwrap();
        let over = insert_limited(&c, &key("k5", "100", "SHA256:c"), 2).unwrap_err();
        assert!(matches!(
            over,
            StoreError::Refused(super::super::Rule::SshKeyLimit, _)
        ));
        assert_eq!(find(&c, "100", "SHA256:b").unwrap().unwrap().key_id, "k4");
        assert!(find(&c, "200", "SHA256:b").unwrap().is_none());
        // Nobody deletes another user's key by naming it.
        assert!(matches!(
            delete(&c, "200", "k1"),
            Err(StoreError::NotFound { .. })
        ));
        delete(&c, "100", "k1").unwrap();
        let left: Vec<String> = list_for_user(&c, "100")
            .unwrap()
            .into_iter()
            .map(|k| k.key_id)
            .collect();
        assert_eq!(left, ["k4"]);
        delete_for_user(&c, "100").unwrap();
        assert!(list_for_user(&c, "100").unwrap().is_empty());
        assert_eq!(list_for_user(&c, "200").unwrap().len(), 1);
    }
}
