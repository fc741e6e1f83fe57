//! CAM policies: the preset policies (a constant table, Type 2, never
//! stored), the account's custom policies (Type 1), their attachments to
//! users and groups, and `load_policy_inputs`, the one read an authorization
//! engine needs. Documents are stored as given; the API validates them.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::query::Page;
use super::{Result, StoreError};

/// Policies one user or group may have attached, as CAM allows.
pub const MAX_ATTACHMENTS: i64 = 200;
/// Type of a custom policy.
pub const TYPE_CUSTOM: i64 = 1;
/// Type of a preset policy.
pub const TYPE_PRESET: i64 = 2;
/// When the presets "were created" (TAT's API version date).
const PRESET_CREATED_MS: i64 = 1_603_843_200_000;

/// The preset policies: defined with the policy engine, listed here by id.
pub use crate::policy::{PresetPolicy as Preset, PRESETS};

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub policy_id: i64,
    pub name: String,
    pub description: String,
    pub document: String,
    /// `TYPE_CUSTOM` or `TYPE_PRESET`.
    pub policy_type: i64,
    /// JSON array of {"Key","Value"}.
    pub tags: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Policy {
    pub fn is_preset(&self) -> bool {
        self.policy_type == TYPE_PRESET
    }
}

fn from_preset(p: &Preset) -> Policy {
    Policy {
        policy_id: p.id,
        name: p.name.into(),
        description: p.description.into(),
        document: p.document.into(),
        policy_type: TYPE_PRESET,
        tags: "[]".into(),
        created_ms: PRESET_CREATED_MS,
        updated_ms: PRESET_CREATED_MS,
    }
}

const COLS: &str = "policy_id, name, description, document, type, tags, created_ms, updated_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<Policy> {
    Ok(Policy {
        policy_id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        document: r.get(3)?,
        policy_type: r.get(4)?,
        tags: r.get(5)?,
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

/// A preset or custom policy by id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Policy>> {
    if let Some(p) = PRESETS.iter().find(|p| p.id == id) {
        return Ok(Some(from_preset(p)));
    }
    let sql = format!("SELECT {COLS} FROM policies WHERE policy_id = ?1");
    Ok(conn.query_row(&sql, params![id], row).optional()?)
}

/// The policy, or `NotFound { Policy, id }`.
pub fn require(conn: &Connection, id: i64) -> Result<Policy> {
    get(conn, id)?.ok_or_else(|| StoreError::missing(super::Entity::Policy, id.to_string()))
}

/// A preset or custom policy by name.
pub fn get_by_name(conn: &Connection, name: &str) -> Result<Option<Policy>> {
    if let Some(p) = PRESETS.iter().find(|p| p.name == name) {
        return Ok(Some(from_preset(p)));
    }
    let sql = format!("SELECT {COLS} FROM policies WHERE name = ?1");
    Ok(conn.query_row(&sql, params![name], row).optional()?)
}

/// Creates a custom policy; `Refused(crate::store::Rule::PolicyNameTaken)` if any policy,
/// preset or custom, has the name.
pub fn insert(
    conn: &Connection,
    name: &str,
    description: &str,
    document: &str,
    tags: &str,
    now_ms: i64,
) -> Result<i64> {
    if get_by_name(conn, name)?.is_some() {
        return Err(StoreError::Refused(
            crate::store::Rule::PolicyNameTaken,
            format!("a policy named {name:?} already exists"),
        ));
    }
    conn.execute(
        "INSERT INTO policies(name, description, document, type, tags, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![name, description, document, TYPE_CUSTOM, tags, now_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

fn require_custom(conn: &Connection, id: i64) -> Result<Policy> {
    let p = require(conn, id)?;
    if p.is_preset() {
        return Err(StoreError::Refused(
            crate::store::Rule::PresetPolicy,
            format!(
                "policy {id} ({}) is a preset policy and cannot be changed",
                p.name
            ),
        ));
    }
    Ok(p)
}

/// Changes a custom policy's description and/or document.
pub fn update(
    conn: &Connection,
    id: i64,
    description: Option<&str>,
    document: Option<&str>,
    now_ms: i64,
) -> Result<()> {
    require_custom(conn, id)?;
    conn.execute(
        "UPDATE policies SET description = COALESCE(?2, description),
                             document = COALESCE(?3, document), updated_ms = ?4
         WHERE policy_id = ?1",
        params![id, description, document, now_ms],
    )?;
    Ok(())
}

/// Deletes custom policies and their attachments; all or nothing.
pub fn delete(conn: &Connection, ids: &[i64]) -> Result<()> {
    for id in ids {
        require_custom(conn, *id)?;
    }
    for id in ids {
        conn.execute(
            "DELETE FROM user_policy_attachments WHERE policy_id = ?1",
            params![id],
        )?;
        conn.execute(
            "DELETE FROM group_policy_attachments WHERE policy_id = ?1",
            params![id],
        )?;
        conn.execute("DELETE FROM policies WHERE policy_id = ?1", params![id])?;
    }
    Ok(())
}

/// Which policies ListPolicies shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    All,
    /// Presets only.
    Qcs,
    /// Custom only.
    Local,
}

/// A policy in a list, with how many users and groups it is attached to.
#[derive(Debug, Clone)]
pub struct Listed {
    pub policy: Policy,
    pub attachments: i64,
}

fn attachment_count(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT (SELECT COUNT(*) FROM user_policy_attachments WHERE policy_id = ?1)
              + (SELECT COUNT(*) FROM group_policy_attachments WHERE policy_id = ?1)",
        params![id],
        |r| r.get(0),
    )?)
}

fn custom_all(conn: &Connection) -> Result<Vec<Policy>> {
    let sql = format!("SELECT {COLS} FROM policies ORDER BY policy_id");
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Presets then custom policies (oldest first) whose name contains
/// `keyword` (case-insensitively); returns (total, page).
pub fn list(
    conn: &Connection,
    scope: Scope,
    keyword: &str,
    page: Page,
) -> Result<(i64, Vec<Listed>)> {
    let mut all: Vec<Policy> = Vec::new();
    if scope != Scope::Local {
        all.extend(PRESETS.iter().map(from_preset));
    }
    if scope != Scope::Qcs {
        all.extend(custom_all(conn)?);
    }
    let kw = keyword.to_lowercase();
    all.retain(|p| p.name.to_lowercase().contains(&kw));
    let total = all.len() as i64;
    let out = paged(all, page)
        .into_iter()
        .map(|policy| {
            let attachments = attachment_count(conn, policy.policy_id)?;
            Ok(Listed {
                policy,
                attachments,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((total, out))
}

fn paged<T>(items: Vec<T>, page: Page) -> Vec<T> {
    items
        .into_iter()
        .skip(page.offset.max(0) as usize)
        .take(page.limit.max(0) as usize)
        .collect()
}

/// Which attachment table an operation works on.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    User(&'a str),
    Group(i64),
}

impl Target<'_> {
    fn check(&self, conn: &Connection) -> Result<()> {
        match self {
            Target::User(uin) => super::users::require_uin(conn, uin).map(|_| ()),
            Target::Group(id) => super::groups::require(conn, *id).map(|_| ()),
        }
    }

    fn table_and_key(&self) -> (&'static str, &'static str, rusqlite::types::Value) {
        use rusqlite::types::Value;
        match self {
            Target::User(uin) => (
                "user_policy_attachments",
                "uin",
                Value::Text(uin.to_string()),
            ),
            Target::Group(id) => ("group_policy_attachments", "group_id", Value::Integer(*id)),
        }
    }
}

/// Attaches a policy to a user or group; attaching twice changes nothing.
pub fn attach(conn: &Connection, target: Target<'_>, policy_id: i64, now_ms: i64) -> Result<()> {
    target.check(conn)?;
    require(conn, policy_id)?;
    let (table, key, value) = target.table_and_key();
    let (attached, count): (bool, i64) = conn.query_row(
        &format!(
            "SELECT EXISTS(SELECT 1 FROM {table} WHERE {key} = ?1 AND policy_id = ?2),
                    (SELECT COUNT(*) FROM {table} WHERE {key} = ?1)"
        ),
        params![value, policy_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if attached {
        return Ok(());
    }
    if count >= MAX_ATTACHMENTS {
        return Err(StoreError::Refused(
            crate::store::Rule::AttachmentFull,
            format!("at most {MAX_ATTACHMENTS} policies may be attached to one user or group"),
        ));
    }
    conn.execute(
        &format!("INSERT INTO {table}({key}, policy_id, created_ms) VALUES (?1, ?2, ?3)"),
        params![value, policy_id, now_ms],
    )?;
    Ok(())
}

/// Detaches a policy; detaching one that is not attached changes nothing.
pub fn detach(conn: &Connection, target: Target<'_>, policy_id: i64) -> Result<()> {
    target.check(conn)?;
    require(conn, policy_id)?;
    let (table, key, value) = target.table_and_key();
    conn.execute(
        &format!("DELETE FROM {table} WHERE {key} = ?1 AND policy_id = ?2"),
        params![value, policy_id],
    )?;
    Ok(())
}

/// A policy attached to a user or group, with when it was attached.
#[derive(Debug, Clone)]
pub struct Attached {
    pub policy: Policy,
    pub attached_ms: i64,
}

fn attached_ids(conn: &Connection, target: Target<'_>) -> Result<Vec<(i64, i64)>> {
    let (table, key, value) = target.table_and_key();
    let mut st = conn.prepare(&format!(
        "SELECT policy_id, created_ms FROM {table} WHERE {key} = ?1 ORDER BY created_ms, policy_id"
    ))?;
    let rows = st.query_map(params![value], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn resolve(conn: &Connection, ids: Vec<(i64, i64)>) -> Result<Vec<Attached>> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, attached_ms) in ids {
        // A dangling id (a preset since removed from the table) is skipped.
        if let Some(policy) = get(conn, id)? {
            out.push(Attached {
                policy,
                attached_ms,
            });
        }
    }
    Ok(out)
}

/// Policies attached directly to a user or group whose name contains
/// `keyword`; returns (total, page).
pub fn attached(
    conn: &Connection,
    target: Target<'_>,
    keyword: &str,
    page: Page,
) -> Result<(i64, Vec<Attached>)> {
    target.check(conn)?;
    let kw = keyword.to_lowercase();
    let mut all = resolve(conn, attached_ids(conn, target)?)?;
    all.retain(|a| a.policy.name.to_lowercase().contains(&kw));
    Ok((all.len() as i64, paged(all, page)))
}

/// A policy that applies to a user: directly, through groups, or both.
#[derive(Debug, Clone)]
pub struct Effective {
    pub policy: Policy,
    pub attached_ms: i64,
    pub direct: bool,
    /// (group id, group name) of each group that brings the policy.
    pub groups: Vec<(i64, String)>,
}

/// Every policy that applies to a user (ListAttachedUserAllPolicies).
/// `attach_type`: 0 both, 1 direct only, 2 through groups only;
/// `policy_type`: keep only this Type when given.
pub fn effective_for_user(
    conn: &Connection,
    uin: &str,
    attach_type: i64,
    policy_type: Option<i64>,
    keyword: &str,
    page: Page,
) -> Result<(i64, Vec<Effective>)> {
    super::users::require_uin(conn, uin)?;
    let mut by_id: BTreeMap<i64, Effective> = BTreeMap::new();
    if attach_type != 2 {
        for a in resolve(conn, attached_ids(conn, Target::User(uin))?)? {
            by_id.insert(
                a.policy.policy_id,
                Effective {
                    policy: a.policy,
                    attached_ms: a.attached_ms,
                    direct: true,
                    groups: Vec::new(),
                },
            );
        }
    }
    if attach_type != 1 {
        let mut st = conn.prepare(
            "SELECT g.group_id, g.name, a.policy_id, a.created_ms
             FROM group_members m
             JOIN groups g ON g.group_id = m.group_id
             JOIN group_policy_attachments a ON a.group_id = m.group_id
             WHERE m.uin = ?1 ORDER BY g.group_id",
        )?;
        let rows = st
            .query_map(params![uin], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (gid, gname, pid, at) in rows {
            if let Some(e) = by_id.get_mut(&pid) {
                e.groups.push((gid, gname));
                e.attached_ms = e.attached_ms.min(at);
                continue;
            }
            if let Some(policy) = get(conn, pid)? {
                by_id.insert(
                    pid,
                    Effective {
                        policy,
                        attached_ms: at,
                        direct: false,
                        groups: vec![(gid, gname)],
                    },
                );
            }
        }
    }
    let kw = keyword.to_lowercase();
    let all: Vec<Effective> = by_id
        .into_values()
        .filter(|e| policy_type.is_none_or(|t| e.policy.policy_type == t))
        .filter(|e| e.policy.name.to_lowercase().contains(&kw))
        .collect();
    Ok((all.len() as i64, paged(all, page)))
}

/// Role assignments are read with the policies that apply (the row type
/// lives with its table).
pub use super::role_assignments::RoleAssignment;

/// (policy id, policy name, document) of every policy that applies.
pub type PolicyInput = (i64, String, String);

/// Everything authorization needs about a sub-user: the policies attached
/// to it directly or through its groups (each once), and its role
/// assignments plus those of its groups. Unknown uins (the root account)
/// have none; the caller decides what root may do.
pub fn load_policy_inputs(
    conn: &Connection,
    uin: &str,
    group_ids: &[i64],
) -> Result<(Vec<PolicyInput>, Vec<RoleAssignment>)> {
    let mut ids: Vec<i64> = attached_ids(conn, Target::User(uin))?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for g in group_ids {
        ids.extend(
            attached_ids(conn, Target::Group(*g))?
                .into_iter()
                .map(|(id, _)| id),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    let mut policies = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = get(conn, id)? {
            policies.push((p.policy_id, p.name, p.document));
        }
    }
    let mut roles = super::role_assignments::for_principal(conn, "user", uin)?;
    for g in group_ids {
        roles.extend(super::role_assignments::for_principal(
            conn,
            "group",
            &g.to_string(),
        )?);
    }
    Ok((policies, roles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{groups, users};

    const DOC: &str = r#"{"version":"2.0","statement":[]}"#;

    fn page() -> Page {
        Page {
            offset: 0,
            limit: 20,
        }
    }

    fn user(c: &Connection, name: &str) -> String {
        users::insert(
            c,
            &users::NewUser {
                name: name.into(),
                ..Default::default()
            },
            1,
        )
        .unwrap()
        .uin
    }

    #[test]
    fn custom_policies_crud_beside_presets() {
        let c = crate::store::test_conn();
        let id = insert(&c, "p1", "d", DOC, "[]", 5).unwrap();
        assert!(id > 100_000_000);
        assert!(matches!(
            insert(&c, "p1", "", DOC, "[]", 6),
            Err(StoreError::Refused(crate::store::Rule::PolicyNameTaken, _))
        ));
        assert!(matches!(
            insert(&c, "QcloudTATFullAccess", "", DOC, "[]", 6),
            Err(StoreError::Refused(crate::store::Rule::PolicyNameTaken, _))
        ));
        update(&c, id, Some("d2"), None, 7).unwrap();
        let p = require(&c, id).unwrap();
        assert_eq!((p.description.as_str(), p.updated_ms), ("d2", 7));
        assert!(matches!(
            update(&c, 1, Some("x"), None, 8),
            Err(StoreError::Refused(crate::store::Rule::PresetPolicy, _))
        ));
        let (n, all) = list(&c, Scope::All, "", page()).unwrap();
        assert_eq!(n as usize, PRESETS.len() + 1);
        assert_eq!(all[0].policy.policy_type, TYPE_PRESET);
        assert_eq!(all[PRESETS.len()].policy.policy_type, TYPE_CUSTOM);
        assert_eq!(list(&c, Scope::Local, "", page()).unwrap().0, 1);
        assert_eq!(list(&c, Scope::Qcs, "tatreadonly", page()).unwrap().0, 1);
        // All or nothing: one unknown id keeps the others.
        assert!(delete(&c, &[id, 999]).is_err());
        assert!(get(&c, id).unwrap().is_some());
        delete(&c, &[id]).unwrap();
        assert!(get(&c, id).unwrap().is_none());
    }

    #[test]
    fn effective_policies_merge_direct_and_group_attachments() {
        let c = crate::store::test_conn();
        let ann = user(&c, "ann");
        let ops = groups::insert(&c, "ops", "", 1).unwrap();
        groups::add_member(&c, ops, &ann, 2).unwrap();
        let mine = insert(&c, "mine", "", DOC, "[]", 3).unwrap();
        attach(&c, Target::User(&ann), mine, 4).unwrap();
        attach(&c, Target::User(&ann), mine, 4).unwrap();
        attach(&c, Target::User(&ann), 2, 5).unwrap();
        attach(&c, Target::Group(ops), 2, 6).unwrap();
        attach(&c, Target::Group(ops), 1, 6).unwrap();
        assert!(matches!(
            attach(&c, Target::User(&ann), 424242, 7),
            Err(StoreError::NotFound { .. })
        ));
        let (n, direct) = attached(&c, Target::User(&ann), "", page()).unwrap();
        assert_eq!(n, 2);
        assert_eq!(direct[0].policy.name, "mine");
        let (n, all) = effective_for_user(&c, &ann, 0, None, "", page()).unwrap();
        assert_eq!(n, 3);
        let ro = all.iter().find(|e| e.policy.policy_id == 2).unwrap();
        assert!(ro.direct);
        assert_eq!(ro.groups, vec![(ops, "ops".to_string())]);
        assert_eq!(
            effective_for_user(&c, &ann, 1, None, "", page()).unwrap().0,
            2
        );
        assert_eq!(
            effective_for_user(&c, &ann, 2, None, "", page()).unwrap().0,
            2
        );
        assert_eq!(
            effective_for_user(&c, &ann, 0, Some(TYPE_CUSTOM), "", page())
                .unwrap()
                .0,
            1
        );
        c.execute(
            "INSERT INTO role_assignments VALUES ('ra-1', 'group', ?1, 'Reader', 'account', 1)",
            params![ops.to_string()],
        )
        .unwrap();
        let (ps, roles) = load_policy_inputs(&c, &ann, &[ops]).unwrap();
        let ids: Vec<i64> = ps.iter().map(|p| p.0).collect();
        assert_eq!(ids, vec![1, 2, mine]);
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].role_name, "Reader");
        detach(&c, Target::Group(ops), 1).unwrap();
        delete(&c, &[mine]).unwrap();
        let (ps, _) = load_policy_inputs(&c, &ann, &[ops]).unwrap();
        assert_eq!(ps.len(), 1);
    }
}
