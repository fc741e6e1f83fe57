//! Saved commands (and the unsaved ones RunCommand creates to record what ran).

use rusqlite::{params, Connection, Row};

use super::query::{Page, TagFilter, Where};
use super::{not_found, Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Base64, as given.
    pub content: String,
    pub command_type: String,
    pub working_directory: String,
    pub timeout: i64,
    pub enable_parameter: bool,
    /// JSON object text (`{}` when none).
    pub default_parameters: String,
    /// JSON array text of DefaultParameterConf.
    pub default_parameter_confs: String,
    pub username: String,
    pub cos_bucket_url: String,
    pub cos_key_prefix: String,
    /// JSON array text of {"Key","Value"}.
    pub tags: String,
    /// "USER" or "TAT".
    pub created_by: String,
    /// False for RunCommand's record of an unsaved command: never listed.
    pub saved: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const COLUMNS: &str = "id, name, description, content, command_type, working_directory, timeout,
    enable_parameter, default_parameters, default_parameter_confs, username, cos_bucket_url,
    cos_key_prefix, tags, created_by, saved, created_ms, updated_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Command> {
    Ok(Command {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        content: r.get(3)?,
        command_type: r.get(4)?,
        working_directory: r.get(5)?,
        timeout: r.get(6)?,
        enable_parameter: r.get(7)?,
        default_parameters: r.get(8)?,
        default_parameter_confs: r.get(9)?,
        username: r.get(10)?,
        cos_bucket_url: r.get(11)?,
        cos_key_prefix: r.get(12)?,
        tags: r.get(13)?,
        created_by: r.get(14)?,
        saved: r.get(15)?,
        created_ms: r.get(16)?,
        updated_ms: r.get(17)?,
    })
}

fn name_taken(conn: &Connection, name: &str, except_id: &str) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM commands WHERE saved = 1 AND name = ?1 AND id != ?2",
        params![name, except_id],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Inserts; a saved command's name must be unique (`Conflict`).
pub fn insert(conn: &Connection, c: &Command) -> Result<()> {
    if c.saved && name_taken(conn, &c.name, &c.id)? {
        return Err(StoreError::Conflict(format!(
            "command name {:?} exists",
            c.name
        )));
    }
    conn.execute(
        &format!("INSERT INTO commands({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)"),
        params![
            c.id, c.name, c.description, c.content, c.command_type, c.working_directory,
            c.timeout, c.enable_parameter, c.default_parameters, c.default_parameter_confs,
            c.username, c.cos_bucket_url, c.cos_key_prefix, c.tags, c.created_by, c.saved,
            c.created_ms, c.updated_ms
        ],
    )?;
    Ok(())
}

/// A saved command by id.
pub fn get(conn: &Connection, id: &str) -> Result<Command> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM commands WHERE id = ?1 AND saved = 1"),
        params![id],
        from_row,
    )
    .map_err(not_found(id))
}

/// Replaces every mutable field of an existing saved command.
pub fn update(conn: &Connection, c: &Command) -> Result<()> {
    if name_taken(conn, &c.name, &c.id)? {
        return Err(StoreError::Conflict(format!(
            "command name {:?} exists",
            c.name
        )));
    }
    let n = conn.execute(
        "UPDATE commands SET name=?2, description=?3, content=?4, command_type=?5,
            working_directory=?6, timeout=?7, default_parameters=?8, default_parameter_confs=?9,
            username=?10, cos_bucket_url=?11, cos_key_prefix=?12, updated_ms=?13
         WHERE id=?1 AND saved = 1",
        params![
            c.id,
            c.name,
            c.description,
            c.content,
            c.command_type,
            c.working_directory,
            c.timeout,
            c.default_parameters,
            c.default_parameter_confs,
            c.username,
            c.cos_bucket_url,
            c.cos_key_prefix,
            c.updated_ms
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(c.id.clone()));
    }
    Ok(())
}

/// Deletes all of `ids` or, if any is missing, none (`NotFound(first missing)`).
/// Past invocations keep their own copy of what ran.
pub fn delete_all(conn: &Connection, ids: &[String]) -> Result<()> {
    for id in ids {
        get(conn, id)?;
    }
    for id in ids {
        conn.execute("DELETE FROM commands WHERE id = ?1", params![id])?;
    }
    Ok(())
}

#[derive(Default, Debug, Clone)]
pub struct CommandQuery {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub types: Vec<String>,
    pub created_by: Vec<String>,
    pub tags: TagFilter,
    /// A scene filter was given: no user command belongs to a scene.
    pub scene_filter: bool,
}

pub fn list(conn: &Connection, q: &CommandQuery, page: Page) -> Result<(i64, Vec<Command>)> {
    let mut w = Where::default();
    w.clause("saved = 1".into(), vec![]);
    if q.scene_filter {
        w.clause("0".into(), vec![]);
    }
    w.any_of("id", &q.ids)
        .any_of("name", &q.names)
        .any_of("command_type", &q.types)
        .any_of("created_by", &q.created_by)
        .tags("commands.tags", &q.tags);
    super::query::page_of(
        conn,
        "commands",
        COLUMNS,
        &w,
        "created_ms DESC, id",
        page,
        from_row,
    )
}

pub fn count_saved(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT COUNT(*) FROM commands WHERE saved = 1", [], |r| {
            r.get(0)
        })?,
    )
}

#[cfg(test)]
pub(crate) fn sample(id: &str, name: &str) -> Command {
    Command {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        content: "ZWNobyBoaQ==".into(),
        command_type: "SHELL".into(),
        working_directory: String::new(),
        timeout: 60,
        enable_parameter: false,
        default_parameters: "{}".into(),
        default_parameter_confs: "[]".into(),
        username: String::new(),
        cos_bucket_url: String::new(),
        cos_key_prefix: String::new(),
        tags: r#"[{"Key":"env","Value":"prod"}]"#.into(),
        created_by: "USER".into(),
        saved: true,
        created_ms: 1,
        updated_ms: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_filters_and_all_or_nothing_delete() {
        let c = crate::store::test_conn();
        insert(&c, &sample("cmd-1", "a")).unwrap();
        insert(&c, &sample("cmd-2", "b")).unwrap();
        assert!(matches!(
            insert(&c, &sample("cmd-3", "a")),
            Err(StoreError::Conflict(_))
        ));
        let mut unsaved = sample("cmd-4", "a");
        unsaved.saved = false;
        insert(&c, &unsaved).unwrap();
        let page = Page {
            offset: 0,
            limit: 20,
        };
        let (n, _) = list(&c, &CommandQuery::default(), page).unwrap();
        assert_eq!(n, 2);
        let q = CommandQuery {
            names: vec!["b".into()],
            ..Default::default()
        };
        let (n, rows) = list(&c, &q, page).unwrap();
        assert_eq!((n, rows[0].id.as_str()), (1, "cmd-2"));
        let mut q = CommandQuery::default();
        q.tags.pairs.push(("env".into(), vec!["prod".into()]));
        assert_eq!(list(&c, &q, page).unwrap().0, 2);
        q.tags.pairs[0].1 = vec!["dev".into()];
        assert_eq!(list(&c, &q, page).unwrap().0, 0);
        let r = delete_all(&c, &["cmd-1".into(), "cmd-9".into()]);
        assert!(matches!(r, Err(StoreError::NotFound(id)) if id == "cmd-9"));
        assert_eq!(count_saved(&c).unwrap(), 2);
    }
}
