//! One cgroup v2 per task, where the machine lets the agent make them.
//!
//! A process group misses what leaves it (`setsid`, daemons that double
//! fork), and finding a group's members means scanning all of /proc. A
//! cgroup holds every descendant whatever it does, tells whether anything
//! is left in one small file (`cgroup.events`), and kills everything at once
//! (`cgroup.kill`, Linux 5.14+; older kernels: SIGKILL to each listed pid).
//!
//! Layout: `<agent's own cgroup>/drover-agent/<tag>/<task id>/`, where the
//! tag is derived from the agent's data dir, so two agents on one machine
//! (tests do that) never touch each other's tasks. An agent removes its
//! (empty) directory when it shuts down. The task's first process is
//! created inside it where the kernel allows (`spawn.rs`, Linux 5.7+);
//! elsewhere it moves itself in between fork and exec
//! (`sys::prepare_child`), before it can start anything, and the agent
//! checks afterwards that it got there; if not, that task falls back to
//! process-group tracking.
//!
//! Detection needs a writable cgroup2 mount (root, or a delegated
//! subtree); anything else means `None` and the fallback for every task.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory under which this agent makes its tasks' cgroups.
#[derive(Debug, Clone)]
pub struct Cgroups {
    dir: PathBuf,
}

/// One task's cgroup.
#[derive(Debug, Clone)]
pub struct TaskCgroup {
    path: PathBuf,
}

/// The cgroup2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        // "... mountpoint opts ... - fstype source superopts"
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// Our own cgroup2 path ("0::/path" in /proc/self/cgroup).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
}

impl Cgroups {
    /// Finds (and creates) this agent's directory of task cgroups; None
    /// when the machine has no writable cgroup2 hierarchy for us.
    pub fn detect(tag: &str) -> Option<Cgroups> {
        let mount = cgroup2_mount()?;
        let own = own_cgroup()?;
        let base = mount.join(own.trim_start_matches('/'));
        let parent = base.join("drover-agent");
        // Empty directories of agents that were killed (they cannot clean
        // up) are pruned; a busy one is not empty and stays.
        if let Ok(rd) = std::fs::read_dir(&parent) {
            for e in rd.flatten().filter(|e| e.path().is_dir()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let dir = parent.join(tag);
        match std::fs::create_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::info!(
                    "no per-task cgroups ({}: {e}); tracking tasks by process group",
                    dir.display()
                );
                return None;
            }
        }
        dir.join("cgroup.procs").exists().then_some(Cgroups { dir })
    }

    /// Makes the cgroup of a task (an existing one is reused: it is only
    /// there if a previous agent crashed, and is killed first).
    pub fn create(&self, task_id: &str) -> std::io::Result<TaskCgroup> {
        let cg = self.task(task_id);
        // create_dir_all: another agent's pruning may have taken our
        // (then empty) directory away.
        if cg.exists() {
            cg.kill();
        }
        std::fs::create_dir_all(&cg.path).map(|()| cg)
    }

    /// The cgroup a task has or would have.
    pub fn task(&self, task_id: &str) -> TaskCgroup {
        TaskCgroup {
            path: self.dir.join(task_id),
        }
    }

    /// Removes this agent's (empty) directory of task cgroups, and the
    /// shared parent when no other agent uses it.
    pub fn remove(&self) -> bool {
        let gone = std::fs::remove_dir(&self.dir).is_ok();
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        gone
    }

    /// Names of the task cgroups present.
    pub fn present(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect()
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl TaskCgroup {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// The cgroup's directory, opened for `clone3(CLONE_INTO_CGROUP)`.
    pub fn open_dir(&self) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.path)
    }

    /// `cgroup.procs`, opened for the child to write "0" to (which moves
    /// the writing process in).
    pub fn procs_file(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.procs"))
    }

    /// Pids in the cgroup (not its descendants: tasks make none).
    pub fn pids(&self) -> Vec<i32> {
        read(&self.path.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Whether any process is left (zombies are not: they are gone from
    /// cgroup.procs once dead).
    pub fn populated(&self) -> bool {
        match read(&self.path.join("cgroup.events")) {
            Some(ev) => ev.lines().any(|l| l.trim() == "populated 1"),
            None => !self.pids().is_empty(),
        }
    }

    /// Sends `sig` to every process in the cgroup.
    pub fn signal(&self, sig: libc::c_int) {
        for pid in self.pids() {
            let _ = super::sys::signal_pid(pid, sig);
        }
    }

    /// Kills everything in the cgroup at once; falls back to SIGKILL per
    /// pid where `cgroup.kill` does not exist (kernels before 5.14).
    pub fn kill(&self) {
        let by_file = OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"));
        if by_file.is_err() {
            self.signal(libc::SIGKILL);
        }
    }

    /// CPU time used by the task's processes, in microseconds.
    pub fn cpu_usec(&self) -> Option<u64> {
        read(&self.path.join("cpu.stat"))?
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
    }

    /// Removes the (empty) cgroup; a cgroup that still holds processes
    /// (a daemon a finished task left running) stays.
    pub fn remove(&self) -> bool {
        std::fs::remove_dir(&self.path).is_ok()
    }
}
