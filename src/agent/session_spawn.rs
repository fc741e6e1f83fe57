//! Starting an interactive session's process: a login shell (or a command
//! through the user's shell) on the slave side of a fresh pseudo-terminal,
//! as the requested user.
//!
//! Everything that can fail or allocate happens here, in the parent,
//! before the fork: the user lookup, their groups, argv, the environment
//! (std builds envp before forking), the cgroup. The child then only runs
//! `ptysys::prepare_session_child`. The shell gets a clean environment
//! (HOME, USER, LOGNAME, SHELL, PATH, TERM, locale), its own session with
//! the terminal as controlling tty, the user's uid, gid and supplementary
//! groups, and no descriptor but 0, 1 and 2.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::unix::AsyncFd;

use super::auth_socket::AuthSocket;
use super::cgroup::{Cgroups, TaskCgroup};
use super::launch::{home_of, resolve_user, ROOT_PATH, USER_PATH};
use super::ptysys;
use super::session_marks::SESSION_ENV;
use super::sys;

/// What the server asked for.
pub struct OpenSpec<'a> {
    pub user: &'a str,
    pub command: Option<&'a str>,
    pub cols: u16,
    pub rows: u16,
    pub term: &'a str,
    /// A command with pipes instead of a terminal.
    pub pipes: bool,
    /// Give it a forwarded-agent socket (`SSH_AUTH_SOCK`).
    pub agent_forward: bool,
}

/// A started session process and its terminal's master (or its pipes).
pub struct Spawned {
    pub child: tokio::process::Child,
    /// Where its output is read: the master, or its stdout+stderr pipe.
    pub reader: AsyncFd<File>,
    /// Where its input goes: a second descriptor of the master, or its
    /// stdin pipe (None once closed for EOF).
    pub writer: Option<AsyncFd<File>>,
    /// It runs on a terminal (resize and VEOF apply).
    pub pty: bool,
    /// The shell's pid, which is also its session and process group id.
    pub pid: i32,
    /// The session's id on this agent: its environment mark and cgroup.
    pub id: String,
    pub cgroup: Option<TaskCgroup>,
    /// The terminal's EOF character, written when the client's input ends.
    pub veof: u8,
    /// Its forwarded-agent socket, when it has one.
    pub auth_socket: Option<AuthSocket>,
}

/// Shells that refuse logins: a session as such an account is refused
/// with a clear reason rather than opening and closing at once.
fn refuses_login(shell: &str) -> bool {
    shell.ends_with("/nologin") || shell.ends_with("/false")
}

/// A TERM value is passed to the shell's environment: keep it to the
/// characters terminal names use.
fn clean_term(term: &str) -> &str {
    let ok = !term.is_empty()
        && term.len() <= 64
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    if ok {
        term
    } else {
        "xterm-256color"
    }
}

pub fn spawn(spec: &OpenSpec<'_>, cgroups: Option<&Cgroups>) -> Result<Spawned, String> {
    let run_as = resolve_user(spec.user)?;
    let account = &run_as.account;
    let shell = if account.shell.is_empty() {
        "/bin/sh".to_string()
    } else {
        account.shell.clone()
    };
    if refuses_login(&shell) {
        return Err(format!(
            "user {} has no login shell ({shell})",
            account.name
        ));
    }
    let home = home_of(account);
    let cwd = if home.is_dir() {
        home.clone()
    } else {
        PathBuf::from("/")
    };
    let path = if run_as.switch {
        if account.uid == 0 {
            ROOT_PATH
        } else {
            USER_PATH
        }
        .to_string()
    } else {
        std::env::var("PATH").unwrap_or_else(|_| ROOT_PATH.into())
    };
    let pipes = spec.pipes && spec.command.is_some();
    let io = if pipes {
        Io::pipes()?
    } else {
        Io::pty(spec, run_as.switch.then_some(account))?
    };
    let mut cmd = tokio::process::Command::new(&shell);
    match spec.command {
        Some(c) => {
            cmd.arg("-c").arg(c);
        }
        None => {
            // A leading dash makes it a login shell (profile files read).
            let base = shell.rsplit('/').next().unwrap_or("sh");
            cmd.arg0(format!("-{base}"));
        }
    }
    cmd.env_clear()
        .env("HOME", &home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .env("SHELL", &shell)
        .env("PATH", &path)
        .env("TERM", clean_term(spec.term))
        .stdin(io.stdin)
        .stdout(io.stdout)
        .stderr(io.stderr)
        .kill_on_drop(false);
    // Every process of the session inherits the mark, which is how the
    // agent finds what escaped the session (`session_marks`).
    let id = crate::ids::new_id("session");
    cmd.env(SESSION_ENV, &id);
    for var in ["LANG", "LC_ALL", "TZ"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    // Without the socket the session still opens, as OpenSSH's does.
    let auth_socket = if spec.agent_forward {
        let owner = run_as.switch.then_some((account.uid, account.gid));
        AuthSocket::create(&id, owner)
            .inspect_err(|e| tracing::warn!("session without agent forwarding: {e}"))
            .ok()
    } else {
        None
    };
    if let Some(s) = &auth_socket {
        cmd.env("SSH_AUTH_SOCK", s.path());
    }
    let switch = if run_as.switch {
        let groups = sys::group_list(account)
            .map_err(|e| format!("listing the groups of user {}: {e}", account.name))?;
        let cwd_c = CString::new(cwd.as_os_str().as_bytes())
            .map_err(|_| format!("home directory {} contains NUL", cwd.display()))?;
        Some(sys::SwitchUser {
            uid: account.uid,
            gid: account.gid,
            groups,
            cwd: cwd_c,
        })
    } else {
        cmd.current_dir(&cwd);
        None
    };
    let cgroup = cgroups.and_then(|cgs| cgs.create(&id).ok());
    let cgroup_procs = cgroup
        .as_ref()
        .and_then(|cg| cg.procs_file().ok())
        .map(std::os::fd::OwnedFd::from);
    ptysys::prepare_session_child(
        &mut cmd,
        ptysys::SessionChild {
            cgroup_procs,
            switch,
            parent_pid: sys::my_pid(),
            controlling_tty: !pipes,
        },
    );
    let child = cmd.spawn().map_err(|e| {
        format!(
            "starting {shell} as user {} in {}: {e}",
            account.name,
            cwd.display()
        )
    });
    // Our copies of the child's ends must go, or the reader never sees
    // the terminal hang up (or the pipe end).
    drop(cmd);
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = &cgroup {
                cg.remove();
            }
            return Err(e);
        }
    };
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or("the shell exited before its id could be read")?;
    let cgroup = cgroup.filter(|cg| {
        let joined = cg.pids().contains(&pid);
        if !joined {
            cg.remove();
        }
        joined
    });
    let watch = |fd: OwnedFd| -> Result<AsyncFd<File>, String> {
        ptysys::set_nonblocking(fd.as_fd())
            .map_err(|e| format!("preparing the session's I/O: {e}"))?;
        ptysys::watch(File::from(fd)).map_err(|e| format!("watching the session's I/O: {e}"))
    };
    Ok(Spawned {
        child,
        reader: watch(io.reader)?,
        writer: Some(watch(io.writer)?),
        pty: !pipes,
        pid,
        id,
        cgroup,
        veof: io.veof,
        auth_socket,
    })
}

/// The child's standard descriptors and our ends of them.
struct Io {
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    reader: OwnedFd,
    writer: OwnedFd,
    veof: u8,
}

impl Io {
    /// A pseudo-terminal: the slave on 0, 1, 2 (handed to `owner`), the
    /// master read and written through two descriptors.
    fn pty(spec: &OpenSpec<'_>, owner: Option<&super::sys::Account>) -> Result<Io, String> {
        let pair = ptysys::open_pty().map_err(|e| format!("opening a pseudo-terminal: {e}"))?;
        ptysys::set_winsize(pair.master.as_fd(), spec.cols.max(1), spec.rows.max(1))
            .map_err(|e| format!("sizing the terminal: {e}"))?;
        if let Some(acc) = owner {
            // The user owns their terminal, as login(1) would arrange.
            std::os::unix::fs::fchown(&pair.slave, Some(acc.uid), None)
                .map_err(|e| format!("handing the terminal to {}: {e}", acc.name))?;
        }
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| format!("duplicating the terminal: {e}"))
        };
        Ok(Io {
            stdin: Stdio::from(dup(&pair.slave)?),
            stdout: Stdio::from(dup(&pair.slave)?),
            veof: ptysys::eof_char(pair.slave.as_fd()),
            stderr: Stdio::from(pair.slave),
            writer: dup(&pair.master)?,
            reader: pair.master,
        })
    }

    /// Pipes: stdin, and one pipe for stdout and stderr together.
    fn pipes() -> Result<Io, String> {
        let fail = |e: std::io::Error| format!("creating the session's pipes: {e}");
        let (in_r, in_w) = std::io::pipe().map_err(fail)?;
        let (out_r, out_w) = std::io::pipe().map_err(fail)?;
        let err_w = out_w.try_clone().map_err(fail)?;
        Ok(Io {
            stdin: Stdio::from(in_r),
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
            reader: out_r.into(),
            writer: in_w.into(),
            veof: 4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_names_are_kept_to_terminal_characters() {
        assert_eq!(clean_term("xterm-256color"), "xterm-256color");
        assert_eq!(clean_term("screen.xterm+x"), "screen.xterm+x");
        assert_eq!(clean_term("x; rm -rf /"), "xterm-256color");
        assert_eq!(clean_term(""), "xterm-256color");
        assert!(refuses_login("/usr/sbin/nologin") && refuses_login("/bin/false"));
        assert!(!refuses_login("/bin/bash"));
    }
}
