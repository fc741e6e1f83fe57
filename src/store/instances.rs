//! Register codes and the managed instances registered through them.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::limits::{
    clip, MAX_AGENT_VERSION, MAX_COMMAND_TYPES, MAX_HOSTNAME, MAX_LOCAL_IP, MAX_MACHINE_ID,
    MAX_SYSTEM_NAME,
};
use super::query::{Page, TagFilter, Where};
use super::{not_found, Result, StoreError};

#[derive(Debug, Clone)]
pub struct RegisterCode {
    pub id: String,
    /// SHA-256 hex of the secret part of the code value; the value itself is
    /// shown once, at creation.
    pub secret_hash: String,
    pub description: String,
    pub instance_name_prefix: String,
    pub register_limit: i64,
    /// 0: never expires.
    pub expired_ms: i64,
    pub ip_range: String,
    pub enabled: bool,
    pub registered_count: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// JSON array text of {"Key","Value"}: given to every instance the code
    /// admits, over the agent's own tags of the same key.
    pub tags: String,
    /// JSON array of the tag keys an agent may propose itself (drover's
    /// `AllowedAgentTagKeys`); any other agent tag refuses the registration.
    pub allowed_agent_tag_keys: String,
}

const CODE_COLUMNS: &str = "id, secret_hash, description, instance_name_prefix, register_limit,
    expired_ms, ip_range, enabled, registered_count, created_ms, updated_ms, tags,
    allowed_agent_tag_keys";

fn code_from_row(r: &Row<'_>) -> rusqlite::Result<RegisterCode> {
    Ok(RegisterCode {
        id: r.get(0)?,
        secret_hash: r.get(1)?,
        description: r.get(2)?,
        instance_name_prefix: r.get(3)?,
        register_limit: r.get(4)?,
        expired_ms: r.get(5)?,
        ip_range: r.get(6)?,
        enabled: r.get(7)?,
        registered_count: r.get(8)?,
        created_ms: r.get(9)?,
        updated_ms: r.get(10)?,
        tags: r.get(11)?,
        allowed_agent_tag_keys: r.get(12)?,
    })
}

pub fn insert_code(conn: &Connection, c: &RegisterCode) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO register_codes({CODE_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"),
        params![
            c.id, c.secret_hash, c.description, c.instance_name_prefix, c.register_limit,
            c.expired_ms, c.ip_range, c.enabled, c.registered_count, c.created_ms, c.updated_ms,
            c.tags, c.allowed_agent_tag_keys
        ],
    )?;
    Ok(())
}

pub fn code_by_secret_hash(conn: &Connection, hash: &str) -> Result<Option<RegisterCode>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CODE_COLUMNS} FROM register_codes WHERE secret_hash = ?1"),
            params![hash],
            code_from_row,
        )
        .optional()?)
}

pub fn get_code(conn: &Connection, id: &str) -> Result<RegisterCode> {
    conn.query_row(
        &format!("SELECT {CODE_COLUMNS} FROM register_codes WHERE id = ?1"),
        params![id],
        code_from_row,
    )
    .map_err(not_found(super::Entity::RegisterCode, id))
}

pub fn list_codes(
    conn: &Connection,
    ids: &[String],
    page: Page,
) -> Result<(i64, Vec<RegisterCode>)> {
    let mut w = Where::default();
    w.any_of("id", ids);
    super::query::page_of(
        conn,
        "register_codes",
        CODE_COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        code_from_row,
    )
}

/// Checks every id exists first: all or nothing.
pub fn disable_codes(conn: &Connection, ids: &[String], now: i64) -> Result<()> {
    for id in ids {
        get_code(conn, id)?;
    }
    for id in ids {
        conn.execute(
            "UPDATE register_codes SET enabled = 0, updated_ms = ?2 WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(())
}

pub fn delete_codes(conn: &Connection, ids: &[String]) -> Result<()> {
    for id in ids {
        get_code(conn, id)?;
    }
    for id in ids {
        conn.execute("DELETE FROM register_codes WHERE id = ?1", params![id])?;
    }
    Ok(())
}

/// Register codes one account may keep.
pub const REGISTER_CODE_QUOTA: i64 = 1000;

pub fn count_codes(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM register_codes", [], |r| r.get(0))?)
}

#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub id: String,
    pub register_code_id: String,
    pub name: String,
    /// Raw Ed25519 public key, base64: the instance's identity.
    pub public_key: String,
    pub machine_id: String,
    pub system_name: String,
    pub hostname: String,
    pub local_ip: String,
    pub agent_version: String,
    /// JSON array text.
    pub command_types: String,
    /// JSON array text of {"Key","Value"}.
    pub tags: String,
    pub last_seen_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const INST_COLUMNS: &str = "id, register_code_id, name, public_key, machine_id, system_name,
    hostname, local_ip, agent_version, command_types, tags, last_seen_ms, created_ms, updated_ms";

fn inst_from_row(r: &Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: r.get(0)?,
        register_code_id: r.get(1)?,
        name: r.get(2)?,
        public_key: r.get(3)?,
        machine_id: r.get(4)?,
        system_name: r.get(5)?,
        hostname: r.get(6)?,
        local_ip: r.get(7)?,
        agent_version: r.get(8)?,
        command_types: r.get(9)?,
        tags: r.get(10)?,
        last_seen_ms: r.get(11)?,
        created_ms: r.get(12)?,
        updated_ms: r.get(13)?,
    })
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Disabled,
    Expired,
    UsedUp,
    OutsideIpRange,
    /// The agent proposed a tag whose key the code does not allow it to set
    /// (`store::tag_authority`).
    TagKeyNotAllowed(String),
}

/// Registers `inst` under the code whose secret hashes to `secret_hash`,
/// atomically checking and counting the code's use. `ip_ok` decides the
/// code's IpAddressRange against the caller's address.
pub fn register(
    conn: &Connection,
    secret_hash: &str,
    ip_ok: impl Fn(&str) -> bool,
    inst: &mut Instance,
    now: i64,
) -> Result<std::result::Result<(), Refusal>> {
    let Some(code) = code_by_secret_hash(conn, secret_hash)? else {
        return Ok(Err(Refusal::Unknown));
    };
    let refusal = if !code.enabled {
        Some(Refusal::Disabled)
    } else if code.expired_ms > 0 && code.expired_ms <= now {
        Some(Refusal::Expired)
    } else if code.registered_count >= code.register_limit {
        Some(Refusal::UsedUp)
    } else if !ip_ok(&code.ip_range) {
        Some(Refusal::OutsideIpRange)
    } else {
        super::tag_authority::disallowed_key(&inst.tags, &code.allowed_agent_tag_keys)
            .map(Refusal::TagKeyNotAllowed)
    };
    if let Some(r) = refusal {
        return Ok(Err(r));
    }
    let n = conn.execute(
        "UPDATE register_codes SET registered_count = registered_count + 1, updated_ms = ?2
         WHERE id = ?1 AND registered_count < register_limit",
        params![code.id, now],
    )?;
    if n == 0 {
        return Ok(Err(Refusal::UsedUp));
    }
    inst.register_code_id = code.id.clone();
    inst.tags = merge_tags(&inst.tags, &code.tags);
    if inst.name.is_empty() {
        let prefix = if code.instance_name_prefix.is_empty() {
            "instance".to_string()
        } else {
            code.instance_name_prefix.clone()
        };
        inst.name = format!("{prefix}-{}", code.registered_count + 1);
    }
    conn.execute(
        &format!("INSERT INTO instances({INST_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"),
        params![
            inst.id, inst.register_code_id, inst.name, inst.public_key,
            clip(&inst.machine_id, MAX_MACHINE_ID), clip(&inst.system_name, MAX_SYSTEM_NAME),
            clip(&inst.hostname, MAX_HOSTNAME), clip(&inst.local_ip, MAX_LOCAL_IP),
            clip(&inst.agent_version, MAX_AGENT_VERSION), bounded_types(&inst.command_types),
            inst.tags, inst.last_seen_ms, inst.created_ms, inst.updated_ms
        ],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict("this key is already registered".into())
        }
        other => other.into(),
    })?;
    Ok(Ok(()))
}

/// The agent's tags with the register code's laid over them: on a key both
/// name, the code's value wins (the administrator who made the code is
/// trusted more than the machine that presents it).
pub fn merge_tags(agent: &str, code: &str) -> String {
    let parse = |t: &str| -> Vec<serde_json::Value> { serde_json::from_str(t).unwrap_or_default() };
    let code = parse(code);
    let key = |v: &serde_json::Value| v.get("Key").cloned();
    let mut out: Vec<serde_json::Value> = parse(agent)
        .into_iter()
        .filter(|a| !code.iter().any(|c| key(c) == key(a)))
        .collect();
    out.extend(code);
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
}

/// Replaces an instance's tags (JSON array text).
pub fn set_tags(conn: &Connection, id: &str, tags: &str, now: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE instances SET tags = ?2, updated_ms = ?3 WHERE id = ?1",
        params![id, tags, now],
    )?;
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Instance, id));
    }
    Ok(())
}

/// Every registered instance, oldest first (what a target selector is
/// resolved over).
pub fn all_instances(conn: &Connection) -> Result<Vec<Instance>> {
    let mut st = conn.prepare(&format!(
        "SELECT {INST_COLUMNS} FROM instances ORDER BY created_ms, id"
    ))?;
    let rows = st
        .query_map([], inst_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn get_instance(conn: &Connection, id: &str) -> Result<Instance> {
    conn.query_row(
        &format!("SELECT {INST_COLUMNS} FROM instances WHERE id = ?1"),
        params![id],
        inst_from_row,
    )
    .map_err(not_found(super::Entity::Instance, id))
}

/// Which of `ids` exist.
pub fn existing_ids(conn: &Connection, ids: &[String]) -> Result<Vec<String>> {
    let mut w = Where::default();
    w.any_of("id", ids);
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare(&format!("SELECT id FROM instances{}", w.sql()))?;
    let rows = st
        .query_map(params_from_iter(w.params.iter()), |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// The agent's command-type list, or an empty list when it is longer than
/// any real one (cutting JSON text would leave it unreadable).
fn bounded_types(types: &str) -> &str {
    if types.len() <= MAX_COMMAND_TYPES {
        types
    } else {
        "[]"
    }
}

/// Refreshes what the agent reports about its machine on each hello.
pub fn update_seen(conn: &Connection, inst: &Instance, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE instances SET machine_id=?2, system_name=?3, hostname=?4, local_ip=?5,
            agent_version=?6, command_types=?7, last_seen_ms=?8 WHERE id=?1",
        params![
            inst.id,
            clip(&inst.machine_id, MAX_MACHINE_ID),
            clip(&inst.system_name, MAX_SYSTEM_NAME),
            clip(&inst.hostname, MAX_HOSTNAME),
            clip(&inst.local_ip, MAX_LOCAL_IP),
            clip(&inst.agent_version, MAX_AGENT_VERSION),
            bounded_types(&inst.command_types),
            now
        ],
    )?;
    Ok(())
}

pub fn touch(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE instances SET last_seen_ms = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn rename(conn: &Connection, id: &str, name: &str, now: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE instances SET name = ?2, updated_ms = ?3 WHERE id = ?1",
        params![id, name, now],
    )?;
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Instance, id));
    }
    Ok(())
}

pub fn delete_instance(conn: &Connection, id: &str) -> Result<()> {
    let n = conn.execute("DELETE FROM instances WHERE id = ?1", params![id])?;
    if n == 0 {
        return Err(StoreError::missing(super::Entity::Instance, id));
    }
    Ok(())
}

#[derive(Default, Debug, Clone)]
pub struct InstanceQuery {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub local_ips: Vec<String>,
    pub register_code_ids: Vec<String>,
    pub system_names: Vec<String>,
    pub tags: TagFilter,
    /// Restrict to these ids (online/offline filters are resolved by the
    /// caller, which knows who is connected). None: no restriction.
    pub only: Option<Vec<String>>,
    pub exclude: Vec<String>,
}

pub fn list_instances(
    conn: &Connection,
    q: &InstanceQuery,
    page: Page,
) -> Result<(i64, Vec<Instance>)> {
    let mut w = Where::default();
    w.any_of("id", &q.ids)
        .any_of("name", &q.names)
        .any_of("local_ip", &q.local_ips)
        .any_of("register_code_id", &q.register_code_ids)
        .any_of("system_name", &q.system_names)
        .tags("instances.tags", &q.tags);
    if let Some(only) = &q.only {
        if only.is_empty() {
            w.clause("0".into(), vec![]);
        } else {
            w.any_of("id", only);
        }
    }
    if !q.exclude.is_empty() {
        w.clause(
            format!("id NOT IN ({})", super::placeholders(q.exclude.len())),
            q.exclude.iter().map(|s| s.clone().into()).collect(),
        );
    }
    super::query::page_of(
        conn,
        "instances",
        INST_COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        inst_from_row,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(limit: i64) -> RegisterCode {
        RegisterCode {
            id: "rgstr-1".into(),
            secret_hash: "h".into(),
            description: String::new(),
            instance_name_prefix: "lab".into(),
            register_limit: limit,
            expired_ms: 0,
            ip_range: String::new(),
            enabled: true,
            registered_count: 0,
            created_ms: 1,
            updated_ms: 1,
            tags: "[]".into(),
            allowed_agent_tag_keys: "[]".into(),
        }
    }

    fn inst(id: &str, key: &str) -> Instance {
        Instance {
            id: id.into(),
            public_key: key.into(),
            command_types: "[]".into(),
            tags: "[]".into(),
            ..Default::default()
        }
    }

    #[test]
    fn register_counts_and_refuses() {
        let c = crate::store::test_conn();
        insert_code(&c, &code(1)).unwrap();
        let mut a = inst("mi-1", "k1");
        assert_eq!(register(&c, "h", |_| true, &mut a, 5).unwrap(), Ok(()));
        assert_eq!(a.name, "lab-1");
        let mut b = inst("mi-2", "k2");
        assert_eq!(
            register(&c, "h", |_| true, &mut b, 5).unwrap(),
            Err(Refusal::UsedUp)
        );
        assert_eq!(
            register(&c, "x", |_| true, &mut b, 5).unwrap(),
            Err(Refusal::Unknown)
        );
        disable_codes(&c, &["rgstr-1".into()], 6).unwrap();
        assert_eq!(
            register(&c, "h", |_| true, &mut b, 5).unwrap(),
            Err(Refusal::Disabled)
        );
        assert_eq!(get_code(&c, "rgstr-1").unwrap().registered_count, 1);
        assert!(
            existing_ids(&c, &["mi-1".into(), "mi-9".into()]).unwrap() == vec!["mi-1".to_string()]
        );
    }

    #[test]
    fn agent_tags_need_a_key_the_code_allows() {
        let c = crate::store::test_conn();
        let mut rc = code(5);
        rc.allowed_agent_tag_keys = r#"["role"]"#.into();
        insert_code(&c, &rc).unwrap();
        let mut a = inst("mi-1", "k1");
        a.tags = r#"[{"Key":"role","Value":"web"},{"Key":"env","Value":"prod"}]"#.into();
        assert_eq!(
            register(&c, "h", |_| true, &mut a, 5).unwrap(),
            Err(Refusal::TagKeyNotAllowed("env".into()))
        );
        assert!(all_instances(&c).unwrap().is_empty(), "nothing registered");
        assert_eq!(get_code(&c, "rgstr-1").unwrap().registered_count, 0);
        let mut b = inst("mi-2", "k2");
        b.tags = r#"[{"Key":"role","Value":"web"}]"#.into();
        assert_eq!(register(&c, "h", |_| true, &mut b, 5).unwrap(), Ok(()));
        assert_eq!(
            get_instance(&c, "mi-2").unwrap().tags,
            r#"[{"Key":"role","Value":"web"}]"#
        );
    }

    #[test]
    fn register_code_tags_win_over_the_agents() {
        let c = crate::store::test_conn();
        let mut rc = code(5);
        rc.tags = r#"[{"Key":"env","Value":"prod"},{"Key":"team","Value":"ops"}]"#.into();
        rc.allowed_agent_tag_keys = r#"["env","rack"]"#.into();
        insert_code(&c, &rc).unwrap();
        let mut a = inst("mi-1", "k1");
        a.tags = r#"[{"Key":"env","Value":"dev"},{"Key":"rack","Value":"r1"}]"#.into();
        assert_eq!(register(&c, "h", |_| true, &mut a, 5).unwrap(), Ok(()));
        let got: Vec<serde_json::Value> =
            serde_json::from_str(&get_instance(&c, "mi-1").unwrap().tags).unwrap();
        assert_eq!(
            got,
            serde_json::json!([
                {"Key":"rack","Value":"r1"},
                {"Key":"env","Value":"prod"},
                {"Key":"team","Value":"ops"}
            ])
            .as_array()
            .unwrap()
            .clone()
        );
        set_tags(&c, "mi-1", "[]", 6).unwrap();
        assert_eq!(get_instance(&c, "mi-1").unwrap().tags, "[]");
        assert!(set_tags(&c, "mi-9", "[]", 6).is_err());
        assert_eq!(all_instances(&c).unwrap().len(), 1);
    }

    #[test]
    fn expired_and_out_of_range_codes_admit_no_one() {
        let c = crate::store::test_conn();
        let mut expired = code(5);
        expired.expired_ms = 100;
        insert_code(&c, &expired).unwrap();
        let mut a = inst("mi-1", "k1");
        assert_eq!(
            register(&c, "h", |_| true, &mut a, 100).unwrap(),
            Err(Refusal::Expired)
        );
        assert_eq!(register(&c, "h", |_| true, &mut a, 99).unwrap(), Ok(()));
        let mut b = inst("mi-2", "k2");
        assert_eq!(
            register(&c, "h", |_| false, &mut b, 50).unwrap(),
            Err(Refusal::OutsideIpRange)
        );
        assert_eq!(get_code(&c, "rgstr-1").unwrap().registered_count, 1);
        assert!(get_instance(&c, "mi-2").is_err());
    }
}
