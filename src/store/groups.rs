//! CAM user groups and their members. Deleting a group or a user drops the
//! memberships (foreign keys cascade); a group's role assignments go with it.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::query::Page;
use super::users::User;
use super::{Result, StoreError};

/// Groups one user may join, as CAM allows.
pub const MAX_GROUPS_PER_USER: i64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub group_id: i64,
    pub name: String,
    pub remark: String,
    pub created_ms: i64,
}

fn row(r: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        group_id: r.get(0)?,
        name: r.get(1)?,
        remark: r.get(2)?,
        created_ms: r.get(3)?,
    })
}

/// Creates a group; `Refused(crate::store::Rule::GroupNameTaken)` if the name is in use.
pub fn insert(conn: &Connection, name: &str, remark: &str, now_ms: i64) -> Result<i64> {
    let taken: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM groups WHERE name = ?1)",
        params![name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Refused(
            crate::store::Rule::GroupNameTaken,
            format!("a group named {name:?} already exists"),
        ));
    }
    conn.execute(
        "INSERT INTO groups(name, remark, created_ms) VALUES (?1, ?2, ?3)",
        params![name, remark, now_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn get(conn: &Connection, group_id: i64) -> Result<Option<Group>> {
    Ok(conn
        .query_row(
            "SELECT group_id, name, remark, created_ms FROM groups WHERE group_id = ?1",
            params![group_id],
            row,
        )
        .optional()?)
}

/// The group, or `NotFound { Group, id }`.
pub fn require(conn: &Connection, group_id: i64) -> Result<Group> {
    get(conn, group_id)?
        .ok_or_else(|| StoreError::missing(super::Entity::Group, group_id.to_string()))
}

/// Groups whose name contains `keyword` (all when empty), oldest first;
/// returns (total, page).
pub fn list(conn: &Connection, keyword: &str, page: Page) -> Result<(i64, Vec<Group>)> {
    let pattern = format!("%{}%", like_escape(keyword));
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM groups WHERE name LIKE ?1 ESCAPE '\\'",
        params![pattern],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(
        "SELECT group_id, name, remark, created_ms FROM groups WHERE name LIKE ?1 ESCAPE '\\'
         ORDER BY group_id LIMIT ?2 OFFSET ?3",
    )?;
    let rows = st.query_map(params![pattern, page.limit, page.offset], row)?;
    Ok((total, rows.collect::<rusqlite::Result<_>>()?))
}

/// Escapes LIKE's wildcards so a keyword matches literally.
pub(crate) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub fn delete(conn: &Connection, group_id: i64) -> Result<()> {
    require(conn, group_id)?;
    conn.execute(
        "DELETE FROM role_assignments WHERE principal_type = 'group' AND principal_id = ?1",
        params![group_id.to_string()],
    )?;
    conn.execute("DELETE FROM groups WHERE group_id = ?1", params![group_id])?;
    Ok(())
}

/// Adds a member; adding an existing member changes nothing. A user in
/// `MAX_GROUPS_PER_USER` groups is refused (`Refused(crate::store::Rule::UserGroupFull)`).
pub fn add_member(conn: &Connection, group_id: i64, uin: &str, now_ms: i64) -> Result<()> {
    require(conn, group_id)?;
    super::users::require_uin(conn, uin)?;
    let (member, count): (bool, i64) = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM group_members WHERE group_id = ?1 AND uin = ?2),
                (SELECT COUNT(*) FROM group_members WHERE uin = ?2)",
        params![group_id, uin],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if member {
        return Ok(());
    }
    if count >= MAX_GROUPS_PER_USER {
        return Err(StoreError::Refused(
            crate::store::Rule::UserGroupFull,
            format!("a user may join at most {MAX_GROUPS_PER_USER} groups"),
        ));
    }
    conn.execute(
        "INSERT INTO group_members(group_id, uin, created_ms) VALUES (?1, ?2, ?3)",
        params![group_id, uin, now_ms],
    )?;
    Ok(())
}

/// Removes a member; removing a non-member changes nothing.
pub fn remove_member(conn: &Connection, group_id: i64, uin: &str) -> Result<()> {
    require(conn, group_id)?;
    super::users::require_uin(conn, uin)?;
    conn.execute(
        "DELETE FROM group_members WHERE group_id = ?1 AND uin = ?2",
        params![group_id, uin],
    )?;
    Ok(())
}

/// Members of a group in joining order; returns (total, page).
pub fn members(conn: &Connection, group_id: i64, page: Page) -> Result<(i64, Vec<User>)> {
    require(conn, group_id)?;
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM group_members WHERE group_id = ?1",
        params![group_id],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(
        "SELECT m.uin FROM group_members m JOIN users u ON u.uin = m.uin
         WHERE m.group_id = ?1 ORDER BY m.created_ms, u.uid LIMIT ?2 OFFSET ?3",
    )?;
    let uins = st
        .query_map(params![group_id, page.limit, page.offset], |r| {
            r.get::<_, String>(0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let users = uins
        .iter()
        .map(|u| super::users::require_uin(conn, u))
        .collect::<Result<Vec<_>>>()?;
    Ok((total, users))
}

/// Groups a user belongs to, oldest group first; returns (total, page).
pub fn groups_for_user(conn: &Connection, uin: &str, page: Page) -> Result<(i64, Vec<Group>)> {
    super::users::require_uin(conn, uin)?;
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM group_members WHERE uin = ?1",
        params![uin],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(
        "SELECT g.group_id, g.name, g.remark, g.created_ms
         FROM group_members m JOIN groups g ON g.group_id = m.group_id
         WHERE m.uin = ?1 ORDER BY g.group_id LIMIT ?2 OFFSET ?3",
    )?;
    let rows = st.query_map(params![uin, page.limit, page.offset], row)?;
    Ok((total, rows.collect::<rusqlite::Result<_>>()?))
}

/// Ids of every group a user belongs to (for the principal).
pub fn group_ids_for_user(conn: &Connection, uin: &str) -> Result<Vec<i64>> {
    let mut st =
        conn.prepare("SELECT group_id FROM group_members WHERE uin = ?1 ORDER BY group_id")?;
    let rows = st.query_map(params![uin], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, NewUser};

    fn page() -> Page {
        Page {
            offset: 0,
            limit: 20,
        }
    }

    #[test]
    fn membership_is_listed_both_ways_and_cascades() {
        let c = crate::store::test_conn();
        let ann = users::insert(
            &c,
            &NewUser {
                name: "ann".into(),
                ..Default::default()
            },
            1,
        )
        .unwrap();
        let ops = insert(&c, "ops", "operators", 2).unwrap();
        let dev = insert(&c, "dev_1", "", 3).unwrap();
        assert!(matches!(
            insert(&c, "ops", "", 4),
            Err(StoreError::Refused(crate::store::Rule::GroupNameTaken, _))
        ));
        add_member(&c, ops, &ann.uin, 5).unwrap();
        add_member(&c, ops, &ann.uin, 6).unwrap();
        add_member(&c, dev, &ann.uin, 7).unwrap();
        assert!(matches!(
            add_member(&c, 999, &ann.uin, 8),
            Err(StoreError::NotFound { .. })
        ));
        let (n, m) = members(&c, ops, page()).unwrap();
        assert_eq!((n, m[0].name.as_str()), (1, "ann"));
        let (n, g) = groups_for_user(&c, &ann.uin, page()).unwrap();
        assert_eq!(n, 2);
        assert_eq!(g[0].name, "ops");
        assert_eq!(group_ids_for_user(&c, &ann.uin).unwrap(), vec![ops, dev]);
        // `_` in a keyword is literal, not LIKE's any-character.
        assert_eq!(list(&c, "_", page()).unwrap().0, 1);
        assert_eq!(list(&c, "", page()).unwrap().0, 2);
        remove_member(&c, ops, &ann.uin).unwrap();
        assert_eq!(members(&c, ops, page()).unwrap().0, 0);
        delete(&c, dev).unwrap();
        assert!(group_ids_for_user(&c, &ann.uin).unwrap().is_empty());
        assert!(get(&c, dev).unwrap().is_none());
    }
}
