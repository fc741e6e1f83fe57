//! The public command library: ready-made commands (CreatedBy "TAT") and the
//! scenes that group them, shipped inside the binary. Pure data, no I/O.
//!
//! Each command is a script body in `commands/<CommandName>.sh` plus a row in
//! `catalog.json`. The content a command runs is assembled here: the shared
//! `prelude.sh`, the body wrapped in `main`, then a parameter section after
//! `exit` holding one `name={{name}}` line per parameter. Bash never parses
//! that section; the prelude reads it back from the script file, so a value
//! is never spliced into code (a value with a newline is refused). Ids are
//! fixed forever: invocations and policies refer to them.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::json;

const CATALOG: &str = include_str!("catalog.json");
const PRELUDE: &str = include_str!("prelude.sh");

/// Where the parameter section starts; the only whole line of its kind.
pub const PARAMS_MARKER: &str = "__DROVER_PARAMETERS__";
const PARAMS_END: &str = "__DROVER_END__";

macro_rules! scripts {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("commands/", $name, ".sh")))),*]
    };
}

/// (CommandName, script body) of every command in the catalog.
static SCRIPTS: &[(&str, &str)] = scripts![
    "system-overview",
    "disk-usage",
    "memory-usage",
    "top-processes",
    "listening-ports",
    "failed-units",
    "service-journal",
    "restart-service",
    "install-packages",
    "remove-packages",
    "upgrade-packages",
    "security-updates",
    "set-hostname",
    "create-user",
    "delete-user",
    "reset-password",
    "add-ssh-key",
    "ntp-status",
    "cert-expiry",
    "diagnostics-bundle",
    "os-version",
    "uptime-load",
    "dns-lookup",
    "ping-host",
    "tcp-port-check",
    "open-files",
    "check-url",
    "last-logins",
    "cron-jobs",
    "firewall-status",
];

/// The owner of every library command and scene, as TAT names public ones.
pub const CREATED_BY: &str = "TAT";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Scene {
    pub scene_id: String,
    pub scene_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Param {
    pub parameter_name: String,
    /// The default; safe (often empty, which the script refuses).
    pub parameter_value: String,
    pub parameter_description: String,
    /// Substituted as `{{tat-hidden:name}}`: masked in every record.
    #[serde(default)]
    pub hidden: bool,
}

fn shell() -> String {
    "SHELL".into()
}

fn root_dir() -> String {
    "/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Entry {
    command_id: String,
    command_name: String,
    description: String,
    scenes: Vec<String>,
    timeout: i64,
    #[serde(default = "shell")]
    command_type: String,
    #[serde(default = "root_dir")]
    working_directory: String,
    /// False for read-only commands; true when the name says it changes the
    /// machine (restart, install, create ...).
    changes_system: bool,
    output: String,
    parameters: Vec<Param>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Catalog {
    created_time: String,
    scenes: Vec<Scene>,
    commands: Vec<Entry>,
}

/// One library command, ready to list and run.
#[derive(Debug, Clone)]
pub struct LibraryCommand {
    pub id: String,
    pub name: String,
    pub description: String,
    pub command_type: String,
    pub working_directory: String,
    pub timeout: i64,
    pub scenes: Vec<String>,
    pub parameters: Vec<Param>,
    /// TAT's structured description: JSON text.
    pub formatted_description: String,
    /// The assembled script (plain text, not Base64).
    pub content: String,
}

impl LibraryCommand {
    pub fn enable_parameter(&self) -> bool {
        !self.parameters.is_empty()
    }

    /// DefaultParameters: JSON object text of name → default.
    pub fn default_parameters(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .parameters
            .iter()
            .map(|p| (p.parameter_name.clone(), json!(p.parameter_value)))
            .collect();
        serde_json::Value::Object(m).to_string()
    }

    /// DefaultParameterConfs: JSON array text in the SDK's shape.
    pub fn default_parameter_confs(&self) -> String {
        let v: Vec<_> = self
            .parameters
            .iter()
            .map(|p| {
                json!({
                    "ParameterName": p.parameter_name,
                    "ParameterValue": p.parameter_value,
                    "ParameterDescription": p.parameter_description,
                })
            })
            .collect();
        serde_json::Value::Array(v).to_string()
    }
}

/// The whole library.
#[derive(Debug, Default)]
pub struct Library {
    pub created_ms: i64,
    pub scenes: Vec<Scene>,
    pub commands: Vec<LibraryCommand>,
}

impl Library {
    pub fn command(&self, id: &str) -> Option<&LibraryCommand> {
        self.commands.iter().find(|c| c.id == id)
    }
}

/// The library, built once. A catalog that does not load (a unit test
/// guarantees it does) leaves the library empty rather than stopping the server.
pub fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        build().unwrap_or_else(|e| {
            tracing::error!("the public command library did not load: {e}");
            Library::default()
        })
    })
}

/// Prelude, body in `main`, then the parameter section.
fn assemble(body: &str, params: &[Param]) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(PRELUDE);
    s.push_str("main() {\n");
    s.push_str(body);
    if !body.ends_with('\n') {
        s.push('\n');
    }
    s.push_str("}\n_drover_load_params");
    for p in params {
        s.push(' ');
        s.push_str(&p.parameter_name);
    }
    s.push_str("\nmain\nexit $?\n");
    s.push_str(PARAMS_MARKER);
    s.push('\n');
    for p in params {
        let name = &p.parameter_name;
        if p.hidden {
            s.push_str(&format!("{name}={{{{tat-hidden:{name}}}}}\n"));
        } else {
            s.push_str(&format!("{name}={{{{{name}}}}}\n"));
        }
    }
    s.push_str(PARAMS_END);
    s.push('\n');
    s
}

fn formatted_description(e: &Entry, scenes: &[Scene]) -> String {
    let scene_names: Vec<&str> = e
        .scenes
        .iter()
        .filter_map(|id| scenes.iter().find(|s| &s.scene_id == id))
        .map(|s| s.scene_name.as_str())
        .collect();
    json!({
        "Description": e.description,
        "Output": e.output,
        "ChangesSystem": e.changes_system,
        "Scenes": scene_names,
        "Parameters": e.parameters.iter().map(|p| json!({
            "Name": p.parameter_name,
            "Description": p.parameter_description,
            "Default": p.parameter_value,
            "Hidden": p.hidden,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

fn build() -> Result<Library, String> {
    let cat: Catalog = serde_json::from_str(CATALOG).map_err(|e| format!("catalog.json: {e}"))?;
    let created_ms = crate::timefmt::parse_iso(&cat.created_time)
        .ok_or_else(|| format!("CreatedTime {:?} is not RFC 3339", cat.created_time))?;
    let mut commands = Vec::new();
    for e in &cat.commands {
        let body = SCRIPTS
            .iter()
            .find(|(n, _)| *n == e.command_name)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("no script for {}", e.command_name))?;
        commands.push(LibraryCommand {
            id: e.command_id.clone(),
            name: e.command_name.clone(),
            description: e.description.clone(),
            command_type: e.command_type.clone(),
            working_directory: e.working_directory.clone(),
            timeout: e.timeout,
            scenes: e.scenes.clone(),
            parameters: e.parameters.clone(),
            formatted_description: formatted_description(e, &cat.scenes),
            content: assemble(body, &e.parameters),
        });
    }
    Ok(Library {
        created_ms,
        scenes: cat.scenes,
        commands,
    })
}

#[cfg(test)]
mod tests;
