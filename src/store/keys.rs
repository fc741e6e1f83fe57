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

pub struct AccessKey {
    pub secret_id: String,
    pub user_id: String,
    pub secret_enc: Vec<u8>,
    pub active: bool,
}

pub fn insert(conn: &Connection, key: &AccessKey, now_ms: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO access_keys(secret_id, user_id, secret_enc, status, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key.secret_id,
            key.user_id,
            key.secret_enc,
            if key.active { "Active" } else { "Inactive" },
            now_ms
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, secret_id: &str) -> Result<Option<AccessKey>> {
    Ok(conn
        .query_row(
            "SELECT secret_id, user_id, secret_enc, status FROM access_keys WHERE secret_id = ?1",
            params![secret_id],
            |r| {
                Ok(AccessKey {
                    secret_id: r.get(0)?,
                    user_id: r.get(1)?,
                    secret_enc: r.get(2)?,
                    active: r.get::<_, String>(3)? == "Active",
                })
            },
        )
        .optional()?)
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
            },
            1,
        )
        .unwrap();
        let k = get(&c, "AKID1").unwrap().unwrap();
        assert_eq!(k.secret_enc, vec![1, 2, 3]);
        assert!(k.active);
        assert!(get(&c, "AKID2").unwrap().is_none());
    }
}
