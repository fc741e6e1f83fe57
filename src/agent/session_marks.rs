//! What an agent crash must not leave behind: one small file per live
//! interactive session, so the restarted agent can kill what the session
//! left running.
//!
//! A session's shell dies with the agent (its death signal), but a job it
//! put in the background, or a `setsid` daemon, does not; with no cgroup
//! to kill (cgroup v1 hosts, `--no-task-cgroups`) nothing else would ever
//! stop it. Every process of a session carries `DROVER_SESSION_ID` in its
//! environment (set on the shell, inherited), like a task's
//! `DROVER_TASK_ID`, and the mark file names that id, the shell's pid
//! (its session id) with its start time, the boot, and the cgroup. On
//! start-up the agent kills, for each mark left over: the session's
//! cgroup if it has one, the processes carrying the mark, and the members
//! of the shell's session if the shell is still the same process; then it
//! deletes the mark. A session that ends normally removes its own mark.
//!
//! The marks live in the agent's data dir (0700). A mark from another boot
//! is stale (everything it named died with the machine) and only deleted.

use std::path::{Path, PathBuf};

use super::cgroup::Cgroups;
use super::{procinfo, sys};

/// The environment variable that marks a session's processes.
pub const SESSION_ENV: &str = "DROVER_SESSION_ID";

/// The directory of session marks; cheap to clone.
#[derive(Debug, Clone)]
pub struct Marks {
    dir: PathBuf,
}

/// What one mark file records.
#[derive(Debug, PartialEq, Eq)]
struct Mark {
    pid: i32,
    start_ticks: u64,
    boot_id: String,
}

impl Marks {
    pub fn new(data_dir: &Path) -> Marks {
        Marks {
            dir: data_dir.join("sessions"),
        }
    }

    /// Records a started session (`id` also names its cgroup, if any).
    /// A mark that cannot be written is logged: the session still runs,
    /// and a crash would leave its background jobs as it did before.
    pub fn record(&self, id: &str, pid: i32) {
        let start_ticks = procinfo::stat(pid).map_or(0, |st| st.start_ticks);
        let line = format!("{pid} {start_ticks} {}\n", procinfo::boot_id());
        let written = crate::fsutil::create_private_dir(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join(id), line));
        if let Err(e) = written {
            tracing::warn!("recording session {id} for crash clean-up: {e}");
        }
    }

    /// Forgets a session whose processes were killed.
    pub fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.dir.join(id));
    }

    /// Kills what sessions of a previous agent process left running and
    /// deletes their marks. Returns how many processes were signalled.
    pub fn sweep(&self, cgroups: Option<&Cgroups>) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let boot = procinfo::boot_id();
        let mut killed = 0;
        for entry in rd.flatten() {
            let path = entry.path();
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let mark = std::fs::read_to_string(&path).ok().and_then(|s| parse(&s));
            if let Some(mark) = mark.filter(|m| m.boot_id == boot) {
                killed += kill_left_over(&id, &mark, cgroups);
            }
            // Its forwarded-agent socket, if it had one (no listener now).
            super::auth_socket::remove_left_over(&id);
            let _ = std::fs::remove_file(&path);
        }
        killed
    }
}

fn parse(s: &str) -> Option<Mark> {
    let mut f = s.split_whitespace();
    Some(Mark {
        pid: f.next()?.parse().ok()?,
        start_ticks: f.next()?.parse().ok()?,
        boot_id: f.next()?.to_string(),
    })
}

fn kill_left_over(id: &str, mark: &Mark, cgroups: Option<&Cgroups>) -> usize {
    if let Some(cg) = cgroups.map(|c| c.task(id)) {
        if cg.exists() {
            cg.kill();
            cg.remove();
        }
    }
    let mut pids = procinfo::marked(SESSION_ENV, id);
    // The shell's session, only while the shell is the process we started:
    // once it is gone its pid (and so a session id) may be someone else's.
    let same_shell = mark.pid > 1
        && procinfo::stat(mark.pid).is_some_and(|st| st.start_ticks == mark.start_ticks);
    if same_shell {
        pids.extend(procinfo::live_session_members(mark.pid));
    }
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        let _ = sys::signal_pid(pid, libc::SIGKILL);
    }
    if !pids.is_empty() {
        tracing::info!(
            "killed {} process(es) left by session {id} of a previous agent",
            pids.len()
        );
    }
    pids.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_round_trips_and_garbage_is_refused() {
        let m = parse("4242 991 0b2f-boot\n").unwrap();
        assert_eq!(
            m,
            Mark {
                pid: 4242,
                start_ticks: 991,
                boot_id: "0b2f-boot".into()
            }
        );
        assert!(parse("").is_none());
        assert!(parse("x 1 b").is_none());
        assert!(parse("1 2").is_none());
    }

    #[test]
    fn sweep_kills_marked_processes_and_deletes_marks() {
        let tmp = tempfile::tempdir().unwrap();
        let marks = Marks::new(tmp.path());
        let id = crate::ids::new_id("session");
        // A process carrying the session's mark, in its own session (as a
        // `setsid` daemon would be), and one without the mark.
        let spawn = |mark: bool| {
            let mut c = std::process::Command::new("setsid");
            c.args(["sleep", "300"]);
            if mark {
                c.env(SESSION_ENV, &id);
            }
            c.spawn().unwrap()
        };
        let mut marked = spawn(true);
        let mut other = spawn(false);
        // The shell itself is long gone: its pid is this short-lived one.
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id() as i32;
        gone.wait().unwrap();
        marks.record(&id, gone_pid);
        // `setsid` execs sleep; wait until the mark is visible in /proc.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while procinfo::marked(SESSION_ENV, &id).is_empty() {
            assert!(std::time::Instant::now() < deadline, "mark never seen");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }

        assert_eq!(marks.sweep(None), 1);
        let st = marked.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL)
        );
        assert!(
            other.try_wait().unwrap().is_none(),
            "an unmarked process lives"
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("sessions"))
                .unwrap()
                .count(),
            0
        );
        // A second sweep finds nothing to do.
        assert_eq!(marks.sweep(None), 0);
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[test]
    fn a_mark_of_another_boot_is_only_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let marks = Marks::new(tmp.path());
        let mut child = std::process::Command::new("sleep")
            .arg("300")
            .env(SESSION_ENV, "session-oldboot")
            .spawn()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("sessions")).unwrap();
        std::fs::write(
            tmp.path().join("sessions/session-oldboot"),
            format!("{} 1 another-boot\n", child.id()),
        )
        .unwrap();
        assert_eq!(marks.sweep(None), 0);
        assert!(child.try_wait().unwrap().is_none());
        assert!(!tmp.path().join("sessions/session-oldboot").exists());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
