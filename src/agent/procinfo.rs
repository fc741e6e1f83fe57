//! Read-only facts from /proc about processes and process groups: enough to
//! tell whether a task's group still has live members and whether a
//! recorded process group is really ours after an agent restart.

use std::path::Path;

/// Fields of /proc/<pid>/stat that the agent needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub pgrp: i32,
    /// Session id (the pid of the session's leader).
    pub session: i32,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
}

pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(s: &str) -> Option<ProcStat> {
    // The command name (field 2) may contain spaces and parentheses; the
    // fixed fields start after its last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Pids in process group `pgid` that are not zombies. Zombies are dead and
/// merely wait for a parent (perhaps a container init that never reaps), so
/// they do not count as survivors.
pub fn live_group_members(pgid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat(pid), Some(st) if st.pgrp == pgid && st.state != 'Z' && st.state != 'X'))
        .collect();
    pids.sort_unstable();
    pids
}

/// Live pids in session `sid` (an interactive session's shell and every
/// job it started, whatever their process group), one /proc scan.
pub fn live_session_members(sid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat(pid), Some(st) if st.session == sid && st.state != 'Z' && st.state != 'X'))
        .collect()
}

/// Live pids whose environment holds `var=value` (one /proc scan; used
/// only when a task has no cgroup, at the moments it is being stopped).
pub fn marked(var: &str, value: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = format!("{var}={value}");
    let mut pids: Vec<i32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .filter(|&pid| matches!(stat(pid), Some(st) if st.state != 'Z' && st.state != 'X'))
        .collect();
    pids.sort_unstable();
    pids
}

/// This boot's random id: a process mark from another boot is stale.
/// Read once (it cannot change while the agent runs); an unreadable one
/// (no /proc) is empty and read again next time.
pub fn boot_id() -> String {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(id) = BOOT_ID.get() {
        return id.clone();
    }
    let id = std::fs::read_to_string(Path::new("/proc/sys/kernel/random/boot_id"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if id.is_empty() {
        return id;
    }
    BOOT_ID.get_or_init(|| id).clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "123 (a b) c) S 1 77 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5555 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.pgrp, 77);
        assert_eq!(st.start_ticks, 5555);
    }

    #[test]
    fn reads_our_own_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        let st = stat(me).unwrap();
        assert_ne!(st.state, 'Z');
        assert!(st.pgrp > 0 && st.start_ticks > 0);
        assert!(!boot_id().is_empty());
    }
}
