//! Saved commands (and the unsaved ones RunCommand creates to record what ran),
//! and the public command library merged in: the one place that puts
//! [`crate::library`] among the commands. Library commands are read-only;
//! they list after the user's own commands.

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
    /// Scene ids (library commands only).
    pub scenes: Vec<String>,
    /// TAT's structured description, JSON text (library commands only).
    pub formatted_description: String,
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
        scenes: Vec::new(),
        formatted_description: String::new(),
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

/// A library command as a `Command`.
fn builtin(c: &crate::library::LibraryCommand) -> Command {
    use base64::Engine;
    let created_ms = crate::library::library().created_ms;
    Command {
        id: c.id.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        content: base64::engine::general_purpose::STANDARD.encode(&c.content),
        command_type: c.command_type.clone(),
        working_directory: c.working_directory.clone(),
        timeout: c.timeout,
        enable_parameter: c.enable_parameter(),
        default_parameters: c.default_parameters(),
        default_parameter_confs: c.default_parameter_confs(),
        username: String::new(),
        cos_bucket_url: String::new(),
        cos_key_prefix: String::new(),
        tags: "[]".into(),
        created_by: crate::library::CREATED_BY.into(),
        scenes: c.scenes.clone(),
        formatted_description: c.formatted_description.clone(),
        saved: true,
        created_ms,
        updated_ms: created_ms,
    }
}

fn refuse_builtin(id: &str) -> Result<()> {
    if crate::library::library().command(id).is_some() {
        return Err(StoreError::Refused(
            crate::store::Rule::LibraryCommand,
            format!("{id} is a public library command and cannot be changed or deleted"),
        ));
    }
    Ok(())
}

/// A saved or library command by id.
pub fn get(conn: &Connection, id: &str) -> Result<Command> {
    if let Some(c) = crate::library::library().command(id) {
        return Ok(builtin(c));
    }
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM commands WHERE id = ?1 AND saved = 1"),
        params![id],
        from_row,
    )
    .map_err(not_found(super::Entity::Command, id))
}

/// Replaces every mutable field of an existing saved command.
pub fn update(conn: &Connection, c: &Command) -> Result<()> {
    refuse_builtin(&c.id)?;
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
        return Err(StoreError::missing(super::Entity::Command, c.id.clone()));
    }
    Ok(())
}

/// Deletes all of `ids` or, if any is missing, none (`NotFound` of the first missing).
/// Past invocations keep their own copy of what ran.
pub fn delete_all(conn: &Connection, ids: &[String]) -> Result<()> {
    for id in ids {
        refuse_builtin(id)?;
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
    /// Scene ids: no user command belongs to a scene.
    pub scenes: Vec<String>,
}

impl CommandQuery {
    /// Whether a library command matches (it has no tags).
    fn matches_builtin(&self, c: &Command) -> bool {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        any(&self.ids, &c.id)
            && any(&self.names, &c.name)
            && any(&self.types, &c.command_type)
            && any(&self.created_by, &c.created_by)
            && (self.scenes.is_empty() || c.scenes.iter().any(|s| self.scenes.contains(s)))
            && self.tags.keys.is_empty()
            && self.tags.values.is_empty()
            && self.tags.pairs.is_empty()
    }
}

/// Saved commands (newest first), then library commands (catalog order):
/// one page of the two lists joined, and the total of both.
pub fn list(conn: &Connection, q: &CommandQuery, page: Page) -> Result<(i64, Vec<Command>)> {
    let (user_total, mut rows) = list_saved(conn, q, page)?;
    let lib: Vec<Command> = crate::library::library()
        .commands
        .iter()
        .map(builtin)
        .filter(|c| q.matches_builtin(c))
        .collect();
    let room = (page.limit - rows.len() as i64).max(0) as usize;
    let skip = (page.offset - user_total).max(0) as usize;
    let total = user_total + lib.len() as i64;
    rows.extend(lib.into_iter().skip(skip).take(room));
    Ok((total, rows))
}

fn list_saved(conn: &Connection, q: &CommandQuery, page: Page) -> Result<(i64, Vec<Command>)> {
    let mut w = Where::default();
    w.clause("saved = 1".into(), vec![]);
    if !q.scenes.is_empty() {
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
        scenes: Vec::new(),
        formatted_description: String::new(),
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
        let mine = CommandQuery {
            created_by: vec!["USER".into()],
            ..Default::default()
        };
        let (n, _) = list(&c, &mine, page).unwrap();
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
        assert!(matches!(r, Err(StoreError::NotFound { id, .. }) if id == "cmd-9"));
        assert_eq!(count_saved(&c).unwrap(), 2);
    }

    #[test]
    fn library_commands_follow_saved_ones_and_are_read_only() {
        let c = crate::store::test_conn();
        insert(&c, &sample("cmd-1", "a")).unwrap();
        insert(&c, &sample("cmd-2", "b")).unwrap();
        let lib = &crate::library::library().commands;
        let n = lib.len() as i64;
        let page = |offset, limit| Page { offset, limit };
        let (total, rows) = list(&c, &CommandQuery::default(), page(0, 3)).unwrap();
        assert_eq!(total, 2 + n);
        let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["cmd-1", "cmd-2", lib[0].id.as_str()]);
        let (_, rows) = list(&c, &CommandQuery::default(), page(3, 2)).unwrap();
        let ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [lib[1].id.clone(), lib[2].id.clone()]);
        let (_, rows) = list(&c, &CommandQuery::default(), page(n + 1, 10)).unwrap();
        assert_eq!(rows.len(), 1);
        let tat = CommandQuery {
            created_by: vec!["TAT".into()],
            scenes: vec![lib[0].scenes[0].clone()],
            ..Default::default()
        };
        let (total, rows) = list(&c, &tat, page(0, 100)).unwrap();
        assert!(total >= 1 && total < n && rows.iter().all(|r| r.created_by == "TAT"));
        let id = lib[0].id.clone();
        let got = get(&c, &id).unwrap();
        assert!(got.formatted_description.starts_with('{'));
        assert!(matches!(
            update(&c, &got),
            Err(StoreError::Refused(crate::store::Rule::LibraryCommand, _))
        ));
        assert!(matches!(
            delete_all(&c, &["cmd-1".into(), id]),
            Err(StoreError::Refused(crate::store::Rule::LibraryCommand, _))
        ));
        assert_eq!(count_saved(&c).unwrap(), 2);
    }
}
