//! The agent's only unsafe code: thin wrappers over the libc calls std does
//! not offer (user and group lookup, signalling a process group, dropping
//! privileges in a forked child).
//!
//! Every function here is small and documents why its `unsafe` block is
//! sound; callers see only safe signatures. Lookups use the re-entrant `_r`
//! variants with a growing buffer so they are safe on a multi-threaded
//! runtime, and they go through NSS so directory users (LDAP, sssd) work.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::path::PathBuf;

/// A local account, resolved in the parent before any fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
}

/// The effective uid of the agent.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Looks an account up by name; `Ok(None)` when it does not exist.
pub fn account_by_name(name: &str) -> io::Result<Option<Account>> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    lookup(|pwd, buf, result| {
        // SAFETY: every pointer is valid for the call: `cname` outlives it,
        // `pwd`/`result` point at live locals, `buf` at a live Vec of its length.
        unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

/// Looks an account up by uid; `Ok(None)` when the uid has no entry.
pub fn account_by_uid(uid: u32) -> io::Result<Option<Account>> {
    lookup(|pwd, buf, result| {
        // SAFETY: as in `account_by_name`.
        unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
    })
}

fn lookup(
    mut call: impl FnMut(
        *mut libc::passwd,
        &mut Vec<libc::c_char>,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
) -> io::Result<Option<Account>> {
    let mut size = 1024;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: passwd is plain old data; all-zero is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, &mut buf, &mut result);
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: on success the string fields point into `buf`, which is
        // still alive, and are NUL-terminated.
        let field = |p: *const libc::c_char| -> String {
            if p.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        return Ok(Some(Account {
            name: field(pwd.pw_name),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: PathBuf::from(field(pwd.pw_dir)),
            shell: field(pwd.pw_shell),
        }));
    }
}

/// The supplementary groups of `account` (its primary group included), as
/// `initgroups` would set them.
pub fn group_list(account: &Account) -> io::Result<Vec<u32>> {
    let cname = CString::new(account.name.as_str())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut n: libc::c_int = 32;
    loop {
        let mut groups: Vec<libc::gid_t> = vec![0; usize::try_from(n).unwrap_or(32)];
        let mut count = n;
        // SAFETY: `groups` has room for `count` entries and `cname` is a
        // valid C string; getgrouplist writes at most `count` entries.
        let rc = unsafe {
            libc::getgrouplist(cname.as_ptr(), account.gid, groups.as_mut_ptr(), &mut count)
        };
        if rc >= 0 {
            groups.truncate(usize::try_from(count).unwrap_or(0));
            return Ok(groups);
        }
        // -1 means the list was too small and `count` now holds the size needed.
        if count <= n || n > 65536 {
            return Err(io::Error::other("getgrouplist failed"));
        }
        n = count;
    }
}

/// Sends `sig` to every process in group `pgid`. `Ok(false)` when the group
/// no longer exists.
pub fn signal_group(pgid: i32, sig: libc::c_int) -> io::Result<bool> {
    if pgid <= 1 {
        // kill(0/-1, ..) would hit our own group or every process.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory-safety preconditions; pgid > 1 keeps the
    // target a single, specific process group.
    let rc = unsafe { libc::kill(-pgid, sig) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Marks every descriptor above stderr close-on-exec. Whatever started the
/// agent may have leaked descriptors into it (a shell's fd 10, a service
/// manager's pipe); they must not travel on into tasks. Descriptors the
/// agent opens itself are close-on-exec already (std and tokio do that).
pub fn cloexec_inherited_fds() {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<libc::c_int> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on an arbitrary descriptor number is memory-safe; a
        // number that is no longer open (e.g. the read_dir's own) just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// What a child must become before exec when the agent switches user.
/// Everything is computed before fork so the child only makes syscalls.
pub struct SwitchUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: CString,
}

impl SwitchUser {
    /// Between fork and exec: takes on the user's groups, gid and uid, then
    /// enters the working directory with the user's own permissions. Only
    /// async-signal-safe syscalls on memory owned by `self`; errors come
    /// from `last_os_error`, which does not allocate.
    pub fn become_in_child(&self) -> io::Result<()> {
        // SAFETY: plain syscalls on live, parent-prepared data (the group
        // slice with its own length, a NUL-terminated path).
        unsafe {
            if libc::setgroups(self.groups.len(), self.groups.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(self.gid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::setuid(self.uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::chdir(self.cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Between fork and exec: asks for SIGKILL when the agent (`parent_pid`)
/// dies, and refuses to go on if it already has. Set after any credential
/// change, which clears it.
pub fn die_with_parent_in_child(parent_pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid take no pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The agent died before the death signal was armed.
        if libc::getppid() != parent_pid {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// What a task's first process does between fork and exec.
pub struct ChildSetup {
    /// `cgroup.procs` of the task's cgroup, opened by the parent: the child
    /// writes "0" to it, which moves the child itself in. Done first, while
    /// still root, so nothing the task starts can escape the cgroup.
    pub cgroup_procs: Option<std::os::fd::OwnedFd>,
    /// The user to become, when the agent switches.
    pub switch: Option<SwitchUser>,
    /// The agent's pid: the child dies with the agent (PR_SET_PDEATHSIG),
    /// so a killed agent leaves no task running unwatched; if the agent is
    /// already gone by then, the child does not run at all.
    pub parent_pid: libc::pid_t,
}

/// Sends `sig` to one process. `Ok(false)` when it no longer exists.
pub fn signal_pid(pid: i32, sig: libc::c_int) -> io::Result<bool> {
    if pid <= 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory-safety preconditions; pid > 1 keeps the
    // target a single, specific process.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Prepares the child between fork and exec: joins the task's cgroup, drops
/// to the target user (setgroups, setgid, setuid, then chdir, so the
/// directory is entered with the user's own permissions), and asks for
/// SIGKILL when the agent dies. The death signal is set last because the
/// kernel clears it when credentials change.
///
/// Between fork and exec only async-signal-safe calls are allowed: the
/// closure makes plain syscalls on data prepared in the parent and builds
/// errors with `last_os_error`, which does not allocate. Any failure makes
/// std report the error to the parent, whose `spawn` then fails, and the
/// child exits without running the script. A failure to join the cgroup is
/// not fatal: the parent sees where the child ended up and falls back.
pub fn prepare_child(cmd: &mut tokio::process::Command, setup: ChildSetup) {
    let ChildSetup {
        cgroup_procs,
        switch,
        parent_pid,
    } = setup;
    // SAFETY: the closure only calls async-signal-safe functions (write,
    // setgroups, setgid, setuid, chdir, prctl, getppid, close_range, reading errno) on
    // memory owned by the closure; it neither allocates, locks nor logs.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = &cgroup_procs {
                use std::os::fd::AsRawFd;
                let _ = libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1);
            }
            if let Some(user) = &switch {
                user.become_in_child()?;
            }
            die_with_parent_in_child(parent_pid)?;
            cloexec_above_stdio();
            Ok(())
        });
    }
}

/// Marks every descriptor above 2 close-on-exec: what a child prepares
/// last before exec, so nothing of the agent's reaches what it runs, even a
/// descriptor the agent inherited without close-on-exec from whoever
/// started it. One system call, safe between fork and exec. Older kernels
/// lack close_range: everything of ours is close-on-exec anyway, so that
/// is no failure.
pub fn cloexec_above_stdio() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on this
    // process's descriptors; it touches no memory.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
}

/// This process's pid.
pub fn my_pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_misses_unknown_users() {
        let root = account_by_name("root").unwrap().unwrap();
        assert_eq!(root.uid, 0);
        assert_eq!(account_by_uid(0).unwrap().unwrap().name, "root");
        assert!(account_by_name("no-such-user-drover").unwrap().is_none());
        assert!(group_list(&root).unwrap().contains(&0));
    }

    #[test]
    fn refuses_dangerous_group_ids() {
        assert!(signal_group(0, 0).is_err());
        assert!(signal_group(1, 0).is_err());
    }
}
