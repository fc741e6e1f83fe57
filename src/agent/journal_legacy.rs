//! Reads a journal written by an agent from before the log
//! (`journal_log.rs`): a directory per task holding `spec.json`, `process`,
//! `exit`, `result.json` and `output`. An agent upgraded while it held
//! tasks must still report them and never run them again.
//!
//! `import` adds each whole entry to the live set and moves its output to
//! where the log layout keeps it; the caller writes the log, and only then
//! `Imported::remove` deletes the old directories. A crash in between
//! repeats the import at the next start, which is harmless: an id already
//! known is not imported twice, and a moved output file stays where it was
//! moved. A directory whose `spec.json` is missing or torn is of a task that
//! never started (the old agent synced `spec.json` before it ran anything):
//! it is removed.

use std::path::{Path, PathBuf};

use super::journal_entry::{output_path, parse_mark, valid_task_id, Entries, Entry};
use crate::protocol::TaskSpec;

/// What `import` found.
#[derive(Debug, Default)]
pub struct Imported {
    /// Ids added to the live set.
    pub ids: Vec<String>,
    /// Old directories to remove once the log holds their entries.
    dirs: Vec<PathBuf>,
}

impl Imported {
    pub fn remove(&self) {
        for d in &self.dirs {
            if let Err(e) = std::fs::remove_dir_all(d) {
                tracing::warn!("removing the old journal entry {}: {e}", d.display());
            }
        }
    }
}

/// Adds the old-layout entries found in `dir` to `entries`.
pub fn import(dir: &Path, entries: &mut Entries) -> Imported {
    let mut found = Imported::default();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for ent in rd.flatten() {
        let path = ent.path();
        let Some(id) = ent.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !valid_task_id(&id) || !ent.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // Its output goes where the log layout keeps it; a directory whose
        // output could not be moved is kept.
        let old_output = path.join("output");
        let target = output_path(dir, &id);
        let moved = !old_output.exists()
            || target.exists()
            || std::fs::rename(&old_output, &target)
                .map_err(|e| tracing::warn!("moving the output of old journal entry {id}: {e}"))
                .is_ok();
        if moved {
            found.dirs.push(path.clone());
        }
        if entries.contains_key(&id) {
            continue;
        }
        let spec: Option<TaskSpec> = std::fs::read(path.join("spec.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(spec) = spec else {
            continue;
        };
        // Empty (the slot the old agent made at acceptance) or torn: none.
        let result = std::fs::read(path.join("result.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let process = std::fs::read_to_string(path.join("process"))
            .ok()
            .and_then(|s| parse_mark(&s));
        let exit = std::fs::read_to_string(path.join("exit"))
            .ok()
            .and_then(|t| match t.trim() {
                "-" => Some(None),
                t => t.parse().ok().map(Some),
            });
        entries.insert(
            id.clone(),
            Entry {
                spec,
                process: if result.is_some() { None } else { process },
                result,
                exit,
            },
        );
        found.ids.push(id);
    }
    found
}
