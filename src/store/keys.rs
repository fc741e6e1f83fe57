//! Account metadata and access keys. Secret keys arrive here already sealed
//! by `crypto::SecretBox`; this module never sees a plaintext secret.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;

/// The account's identity: created once, stable for the life of the data dir.
pub fn account_uin(conn: &Connection) -> Result<String> {
    if let Some(v) = meta_get(conn, "owner_uin")? {
        return Ok(v);
    }
    let raw = crate::ids::random_bytes::<8>();
    let n = 100_000_000_000u64 + (u64::from_le_bytes(raw) % 899_999_999_999);
    let uin = n.to_string();
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) VALUES ('owner_uin', ?1)",
        params![uin],
    )?;
    meta_get(conn, "owner_uin").map(|v| v.unwrap_or(uin))
}

pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

#[derive(Clone)]
pub struct AccessKey {
    pub secret_id: String,
    pub user_id: String,
    pub secret_enc: Vec<u8>,
    pub active: bool,
    pub description: String,
}

pub fn insert(conn: &Connection, key: &AccessKey, now_ms: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO access_keys(secret_id, user_id, secret_enc, status, created_ms, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.secret_id,
            key.user_id,
            key.secret_enc,
            if key.active { "Active" } else { "Inactive" },
            now_ms,
            key.description
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, secret_id: &str) -> Result<Option<AccessKey>> {
    Ok(conn
        .query_row(
            "SELECT secret_id, user_id, secret_enc, status, description
             FROM access_keys WHERE secret_id = ?1",
            params![secret_id],
            |r| {
                Ok(AccessKey {
                    secret_id: r.get(0)?,
                    user_id: r.get(1)?,
                    secret_enc: r.get(2)?,
                    active: r.get::<_, String>(3)? == "Active",
                    description: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// What ListAccessKeys shows of a key: never the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub secret_id: String,
    pub status: String,
    pub created_ms: i64,
    pub description: String,
}

/// The keys a user owns, oldest first.
pub fn list_for_user(conn: &Connection, user_id: &str) -> Result<Vec<KeyInfo>> {
    let mut st = conn.prepare(
        "SELECT secret_id, status, created_ms, description FROM access_keys
         WHERE user_id = ?1 ORDER BY created_ms, secret_id",
    )?;
    let rows = st.query_map(params![user_id], |r| {
        Ok(KeyInfo {
            secret_id: r.get(0)?,
            status: r.get(1)?,
            created_ms: r.get(2)?,
            description: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count_for_user(conn: &Connection, user_id: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM access_keys WHERE user_id = ?1",
        params![user_id],
        |r| r.get(0),
    )?)
}

/// Inserts a key unless its owner already holds `max` keys
/// (`Refused(crate::store::Rule::KeyLimit)`).
pub fn insert_limited(conn: &Connection, key: &AccessKey, max: i64, now_ms: i64) -> Result<()> {
    if count_for_user(conn, &key.user_id)? >= max {
        return Err(super::StoreError::Refused(
            crate::store::Rule::KeyLimit,
            format!("a user may hold at most {max} access keys"),
        ));
    }
    insert(conn, key, now_ms)
}

/// Sets a key of `user_id` Active or Inactive; `NotFound { AccessKey, id }` if that
/// user has no such key.
pub fn set_status(conn: &Connection, user_id: &str, secret_id: &str, active: bool) -> Result<()> {
    let n = conn.execute(
        "UPDATE access_keys SET status = ?3 WHERE user_id = ?1 AND secret_id = ?2",
        params![
            user_id,
            secret_id,
            if active { "Active" } else { "Inactive" }
        ],
    )?;
    if n == 0 {
        return Err(super::StoreError::missing(
            super::Entity::AccessKey,
            secret_id,
        ));
    }
    Ok(())
}

/// Deletes a key of `user_id`; `NotFound { AccessKey, id }` if that user has no such key.
pub fn delete(conn: &Connection, user_id: &str, secret_id: &str) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM access_keys WHERE user_id = ?1 AND secret_id = ?2",
        params![user_id, secret_id],
    )?;
    if n == 0 {
        return Err(super::StoreError::missing(
            super::Entity::AccessKey,
            secret_id,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_is_stable_and_keys_round_trip() {
        let c = crate::store::test_conn();
        let a = account_uin(&c).unwrap();
        assert_eq!(account_uin(&c).unwrap(), a);
        assert_eq!(a.len(), 12);
        insert(
            &c,
            &AccessKey {
                secret_id: "AKID1".into(),
                user_id: "root".into(),
                secret_enc: vec![1, 2, 3],
                active: true,
                description: String::new(),
            },
            1,
        )
        .unwrap();
        let k = get(&c, "AKID1").unwrap().unwrap();
        assert_eq!(k.secret_enc, vec![1, 2, 3]);
        assert!(k.active);
        assert!(get(&c, "AKID2").unwrap().is_none());
    }

    #[test]
    fn keys_are_limited_per_user_and_scoped_to_their_owner() {
        let c = crate::store::test_conn();
        let key = |id: &str| AccessKey {
            secret_id: id.into(),
            user_id: "100".into(),
            secret_enc: vec![0],
            active: true,
            description: "d".into(),
        };
        insert_limited(&c, &key("A1"), 2, 1).unwrap();
        insert_limited(&c, &key("A2"), 2, 2).unwrap();
        let err = insert_limited(&c, &key("A3"), 2, 3).unwrap_err();
        assert!(matches!(
            err,
            crate::store::StoreError::Refused(crate::store::Rule::KeyLimit, _)
        ));
        assert_eq!(count_for_user(&c, "100").unwrap(), 2);
        // Another user's id does not reach this user's keys.
        assert!(set_status(&c, "200", "A1", false).is_err());
        set_status(&c, "100", "A1", false).unwrap();
        assert!(!get(&c, "A1").unwrap().unwrap().active);
        let list = list_for_user(&c, "100").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].status, "Inactive");
        assert!(delete(&c, "200", "A2").is_err());
        delete(&c, "100", "A2").unwrap();
        assert_eq!(count_for_user(&c, "100").unwrap(), 1);
    }
}
