//! Secrets: named values that commands use as `{{secret:NAME}}`. Rows hold
//! only ciphertext (`value_enc`, sealed by the API with the secret's name as
//! associated data); nothing here sees a plaintext value.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::query::{page_of, Page, Where};
use super::{not_found, Result, StoreError};

/// Most secrets one account may hold.
pub const MAX_SECRETS: i64 = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub name: String,
    pub value_enc: Vec<u8>,
    pub description: String,
    /// The user id of the caller that created it.
    pub created_by: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const COLUMNS: &str = "name, value_enc, description, created_by, created_ms, updated_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Secret> {
    Ok(Secret {
        name: r.get(0)?,
        value_enc: r.get(1)?,
        description: r.get(2)?,
        created_by: r.get(3)?,
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
    })
}

fn missing(name: &str) -> StoreError {
    StoreError::missing(super::Entity::Secret, name)
}

/// Adds a secret; refuses a taken name and a full account.
pub fn insert(conn: &Connection, s: &Secret) -> Result<()> {
    let taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM secrets WHERE name = ?1)",
        params![s.name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Refused(
            crate::store::Rule::SecretNameTaken,
            format!("a secret named `{}` already exists", s.name),
        ));
    }
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?;
    if count >= MAX_SECRETS {
        return Err(StoreError::Refused(
            crate::store::Rule::SecretLimit,
            format!("the account already holds {MAX_SECRETS} secrets"),
        ));
    }
    conn.execute(
        &format!("INSERT INTO secrets({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6)"),
        params![
            s.name,
            s.value_enc,
            s.description,
            s.created_by,
            s.created_ms,
            s.updated_ms
        ],
    )?;
    Ok(())
}

/// Changes a secret's value and/or description (None keeps it).
pub fn update(
    conn: &Connection,
    name: &str,
    value_enc: Option<&[u8]>,
    description: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE secrets SET value_enc = COALESCE(?2, value_enc),
            description = COALESCE(?3, description), updated_ms = ?4
         WHERE name = ?1",
        params![name, value_enc, description, now_ms],
    )?;
    if n == 0 {
        return Err(missing(name));
    }
    Ok(())
}

pub fn delete(conn: &Connection, name: &str) -> Result<()> {
    let n = conn.execute("DELETE FROM secrets WHERE name = ?1", params![name])?;
    if n == 0 {
        return Err(missing(name));
    }
    Ok(())
}

pub fn get(conn: &Connection, name: &str) -> Result<Secret> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM secrets WHERE name = ?1"),
        params![name],
        from_row,
    )
    .map_err(not_found(super::Entity::Secret, name))
}

/// The secret if it exists (for lookups that must tell "absent" apart).
pub fn find(conn: &Connection, name: &str) -> Result<Option<Secret>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM secrets WHERE name = ?1"),
            params![name],
            from_row,
        )
        .optional()?)
}

/// A page of secrets, restricted to `names` when it is not empty.
pub fn list(conn: &Connection, names: &[String], page: Page) -> Result<(i64, Vec<Secret>)> {
    let mut w = Where::default();
    w.any_of("name", names);
    page_of(
        conn,
        "secrets",
        COLUMNS,
        &w,
        "created_ms DESC, name",
        page,
        from_row,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(name: &str) -> Secret {
        Secret {
            name: name.into(),
            value_enc: vec![1, 2, 3],
            description: "d".into(),
            created_by: "root".into(),
            created_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn insert_update_delete_and_refusals() {
        let c = crate::store::test_conn();
        insert(&c, &secret("db.pw")).unwrap();
        assert!(matches!(
            insert(&c, &secret("db.pw")),
            Err(StoreError::Refused(crate::store::Rule::SecretNameTaken, _))
        ));
        update(&c, "db.pw", Some(&[9]), None, 5).unwrap();
        let s = get(&c, "db.pw").unwrap();
        assert_eq!(
            (s.value_enc, s.description, s.updated_ms),
            (vec![9], "d".into(), 5)
        );
        assert!(matches!(
            update(&c, "nope", None, Some("x"), 5),
            Err(StoreError::NotFound { id, .. }) if id == "nope"
        ));
        let page = Page {
            offset: 0,
            limit: 10,
        };
        assert_eq!(list(&c, &[], page).unwrap().0, 1);
        assert_eq!(list(&c, &["other".into()], page).unwrap().0, 0);
        for i in 1..MAX_SECRETS {
            insert(&c, &secret(&format!("s{i}"))).unwrap();
        }
        assert!(matches!(
            insert(&c, &secret("one-too-many")),
            Err(StoreError::Refused(crate::store::Rule::SecretLimit, _))
        ));
        delete(&c, "db.pw").unwrap();
        assert!(find(&c, "db.pw").unwrap().is_none());
        assert!(matches!(get(&c, "db.pw"), Err(StoreError::NotFound { .. })));
    }
}
