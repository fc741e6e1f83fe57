use std::collections::HashSet;
use std::io::Write;
use std::process::Command;

use super::*;

fn lib() -> Library {
    build().unwrap()
}

fn id_ok(id: &str, prefix: &str) -> bool {
    crate::ids::is_valid(id, prefix)
}

/// The `PARAM[name]` references of a script body.
fn referenced(body: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut rest = body;
    while let Some(i) = rest.find("PARAM[") {
        rest = &rest[i + 6..];
        if let Some(end) = rest.find(']') {
            out.insert(rest[..end].to_string());
        }
    }
    // Helpers that take a parameter name as their first argument.
    for line in body.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            if ["require", "check", "words"].contains(&w[0]) {
                out.insert(w[1].to_string());
            }
        }
    }
    out
}

fn substitute(content: &str, values: &[(&str, &str)]) -> String {
    let mut s = content.to_string();
    for (k, v) in values {
        s = s.replace(&format!("{{{{{k}}}}}"), v);
        s = s.replace(&format!("{{{{tat-hidden:{k}}}}}"), v);
    }
    s
}

/// Runs `content` as the agent does (a script file given to bash).
fn run(content: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
    let out = Command::new("bash").arg(&path).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn with_defaults(c: &LibraryCommand, over: &[(&str, &str)]) -> String {
    let mut vals: Vec<(&str, &str)> = over.to_vec();
    for p in &c.parameters {
        if !over.iter().any(|(k, _)| *k == p.parameter_name) {
            vals.push((&p.parameter_name, &p.parameter_value));
        }
    }
    substitute(&c.content, &vals)
}

fn by_name<'a>(l: &'a Library, name: &str) -> &'a LibraryCommand {
    l.commands.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn the_catalog_loads_and_every_script_is_used_once() {
    let l = lib();
    assert!(l.commands.len() >= 25, "only {} commands", l.commands.len());
    let names: HashSet<&str> = l.commands.iter().map(|c| c.name.as_str()).collect();
    let scripts: HashSet<&str> = SCRIPTS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, scripts);
    assert_eq!(names.len(), l.commands.len(), "command names repeat");
    assert_eq!(scripts.len(), SCRIPTS.len(), "a script is listed twice");
    assert_eq!(library().commands.len(), l.commands.len());
}

#[test]
fn ids_scenes_and_fields_are_well_formed() {
    let l = lib();
    let mut ids = HashSet::new();
    for c in &l.commands {
        assert!(id_ok(&c.id, "cmd"), "bad id {}", c.id);
        assert!(ids.insert(c.id.clone()), "{} repeats", c.id);
        let name_ok = |ch: char| ch.is_ascii_alphanumeric() || "-_.".contains(ch);
        assert!(
            c.name.len() <= 60 && c.name.chars().all(name_ok),
            "{}",
            c.name
        );
        assert!(
            !c.description.is_empty() && c.description.chars().count() <= 120,
            "{}: description length",
            c.name
        );
        assert!((1..=86400).contains(&c.timeout), "{}", c.name);
        assert_eq!(c.command_type, "SHELL");
        assert!(c.working_directory.starts_with('/'));
        assert!(!c.scenes.is_empty(), "{} has no scene", c.name);
        for s in &c.scenes {
            assert!(l.scenes.iter().any(|x| &x.scene_id == s), "{}: {s}", c.name);
        }
        let fd: serde_json::Value = serde_json::from_str(&c.formatted_description).unwrap();
        assert_eq!(
            fd["Parameters"].as_array().unwrap().len(),
            c.parameters.len()
        );
        assert!(c.parameters.len() <= 20);
    }
    let mut scene_ids = HashSet::new();
    for s in &l.scenes {
        assert!(id_ok(&s.scene_id, "scene"), "bad scene id {}", s.scene_id);
        assert!(scene_ids.insert(s.scene_id.clone()));
        assert!(l.commands.iter().any(|c| c.scenes.contains(&s.scene_id)));
    }
}

#[test]
fn parameters_are_declared_exactly_when_used() {
    for c in &lib().commands {
        let (_, body) = SCRIPTS.iter().find(|(n, _)| *n == c.name).unwrap();
        let declared: HashSet<String> = c
            .parameters
            .iter()
            .map(|p| p.parameter_name.clone())
            .collect();
        assert_eq!(declared.len(), c.parameters.len(), "{}: repeated", c.name);
        assert_eq!(referenced(body), declared, "{}", c.name);
        for p in &c.parameters {
            let n = &p.parameter_name;
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            assert!(!p.parameter_description.is_empty(), "{}: {n}", c.name);
            let placeholder = if p.hidden {
                format!("\n{n}={{{{tat-hidden:{n}}}}}\n")
            } else {
                format!("\n{n}={{{{{n}}}}}\n")
            };
            assert!(c.content.contains(&placeholder), "{}: {n}", c.name);
        }
        assert_eq!(
            c.content.lines().filter(|l| *l == PARAMS_MARKER).count(),
            1,
            "{}",
            c.name
        );
        assert_eq!(c.enable_parameter(), !c.parameters.is_empty());
    }
    let l = lib();
    let pw = by_name(&l, "reset-password");
    assert!(pw.parameters.iter().any(|p| p.hidden));
}

#[test]
fn every_script_passes_bash_n() {
    for c in &lib().commands {
        for content in [c.content.clone(), with_defaults(c, &[])] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.sh");
            std::fs::write(&path, content).unwrap();
            let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                c.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn values_are_data_never_code() {
    let l = lib();
    let disk = by_name(&l, "disk-usage");
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let c = canary.display();
    for evil in [
        format!("/tmp/$(touch {c})"),
        format!("/tmp'; touch {c}; '"),
        format!("/tmp\n__DROVER_END__\ntouch {c}"),
        format!("/tmp`touch {c}`"),
    ] {
        let (code, out) = run(&with_defaults(disk, &[("path", &evil)]));
        assert_ne!(code, 0, "{evil:?} was accepted: {out}");
        assert!(!canary.exists(), "{evil:?} ran code");
    }
    let (code, out) = run(&with_defaults(disk, &[("path", "/tmp"), ("top", "3")]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Largest 3 directories under /tmp"), "{out}");
}

#[test]
fn required_parameters_default_to_a_refusal() {
    let l = lib();
    for name in [
        "restart-service",
        "install-packages",
        "set-hostname",
        "create-user",
    ] {
        let (code, out) = run(&with_defaults(by_name(&l, name), &[]));
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains("is required"), "{name}: {out}");
    }
    let (code, out) = run(&with_defaults(by_name(&l, "uptime-load"), &[]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("load averages:"), "{out}");
}
