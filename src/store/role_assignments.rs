//! Role assignments: a user or group bound to a built-in role at the
//! account's scope or at one command's. (Read for authorization by
//! `policies::load_policy_inputs`.)

use rusqlite::{params, Connection};

use super::query::{Page, Where};
use super::{Result, StoreError};

/// A role assignment row (an Azure-style built-in role bound to a user or
/// group).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignment {
    pub id: String,
    /// "user" or "group".
    pub principal_type: String,
    /// A user's uin or a group's id.
    pub principal_id: String,
    pub role_name: String,
    /// "account" or a command id.
    pub scope: String,
    pub created_ms: i64,
}

const COLUMNS: &str = "id, principal_type, principal_id, role_name, scope, created_ms";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoleAssignment> {
    Ok(RoleAssignment {
        id: r.get(0)?,
        principal_type: r.get(1)?,
        principal_id: r.get(2)?,
        role_name: r.get(3)?,
        scope: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

/// Inserts `a`, or returns the id of an identical assignment already there.
pub fn insert(conn: &Connection, a: &RoleAssignment) -> Result<String> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT id FROM role_assignments WHERE principal_type = ?1 AND principal_id = ?2
               AND role_name = ?3 AND scope = ?4",
            params![a.principal_type, a.principal_id, a.role_name, a.scope],
            |r| r.get(0),
        )
        .ok();
    if let Some(id) = existing {
        return Ok(id);
    }
    conn.execute(
        &format!("INSERT INTO role_assignments({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            a.id,
            a.principal_type,
            a.principal_id,
            a.role_name,
            a.scope,
            a.created_ms
        ],
    )?;
    Ok(a.id.clone())
}

/// The assignments of one user ("user", uin) or group ("group", id).
pub fn for_principal(conn: &Connection, kind: &str, id: &str) -> Result<Vec<RoleAssignment>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM role_assignments WHERE principal_type = ?1 AND principal_id = ?2
         ORDER BY created_ms, id"
    ))?;
    let rows = st
        .query_map(params![kind, id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One assignment by id (authorization names the principal it binds).
pub fn get(conn: &Connection, id: &str) -> Result<Option<RoleAssignment>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM role_assignments WHERE id = ?1"),
            params![id],
            from_row,
        )
        .optional()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    if conn.execute("DELETE FROM role_assignments WHERE id = ?1", params![id])? == 0 {
        return Err(StoreError::missing(super::Entity::RoleAssignment, id));
    }
    Ok(())
}

pub fn list(
    conn: &Connection,
    principal_type: Option<&str>,
    principal_id: Option<&str>,
    page: Page,
) -> Result<(i64, Vec<RoleAssignment>)> {
    let mut w = Where::default();
    let one = |v: Option<&str>| v.map(|s| vec![s.to_string()]).unwrap_or_default();
    w.any_of("principal_type", &one(principal_type))
        .any_of("principal_id", &one(principal_id));
    super::query::page_of(
        conn,
        "role_assignments",
        COLUMNS,
        &w,
        "created_ms, id",
        page,
        from_row,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_is_idempotent_and_delete_reports_unknown() {
        let c = crate::store::test_conn();
        let a = RoleAssignment {
            id: "ra-1".into(),
            principal_type: "user".into(),
            principal_id: "100000000001".into(),
            role_name: "Reader".into(),
            scope: "account".into(),
            created_ms: 1,
        };
        assert_eq!(insert(&c, &a).unwrap(), "ra-1");
        let again = RoleAssignment {
            id: "ra-2".into(),
            ..a.clone()
        };
        assert_eq!(insert(&c, &again).unwrap(), "ra-1");
        let page = Page {
            offset: 0,
            limit: 10,
        };
        assert_eq!(list(&c, Some("user"), None, page).unwrap().0, 1);
        assert_eq!(list(&c, Some("group"), None, page).unwrap().0, 0);
        delete(&c, "ra-1").unwrap();
        assert!(matches!(
            delete(&c, "ra-1"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
