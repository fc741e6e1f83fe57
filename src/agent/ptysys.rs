//! The unsafe part of interactive sessions: opening a pseudo-terminal pair,
//! setting its window size and non-blocking mode, reading its EOF
//! character, and what a session's shell does between fork and exec.
//!
//! Like `sys.rs`, each block is small and says why it is sound; callers see
//! safe signatures. Every descriptor is opened close-on-exec, so neither a
//! master nor a slave can reach another session's shell or a task.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::sys::SwitchUser;

/// A pseudo-terminal pair, both ends close-on-exec.
pub struct PtyPair {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a new pseudo-terminal: `posix_openpt`, `grantpt`, `unlockpt`, then
/// the slave by name, none of them becoming our controlling terminal.
pub fn open_pty() -> io::Result<PtyPair> {
    // SAFETY: posix_openpt takes flags only; a negative result is an error.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `m` is a fresh descriptor that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt/unlockpt act on a valid master descriptor we own.
    if unsafe { libc::grantpt(master.as_raw_fd()) } != 0
        || unsafe { libc::unlockpt(master.as_raw_fd()) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is a live buffer of the length given; ptsname_r writes
    // a NUL-terminated name into it or fails.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: `path` is a valid C string; open returns a new descriptor or -1.
    let s = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `s` is a fresh descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok(PtyPair { master, slave })
}

/// Sets the terminal's size (TIOCSWINSZ); the foreground job gets SIGWINCH.
pub fn set_winsize(fd: BorrowedFd<'_>, cols: u16, rows: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points at
    // a live local.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts a descriptor into non-blocking mode (for tokio's AsyncFd).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The terminal's EOF character (VEOF, normally ^D), sent when the client's
/// input ends.
pub fn eof_char(fd: BorrowedFd<'_>) -> u8 {
    // SAFETY: termios is plain old data; all-zero is a valid value, and
    // tcgetattr fills it from a descriptor we own or fails.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) } != 0 {
        return 4;
    }
    match t.c_cc[libc::VEOF] {
        0 => 4,
        c => c,
    }
}

/// What a session's first process does between fork and exec.
pub struct SessionChild {
    /// `cgroup.procs` of the session's cgroup (see `sys::ChildSetup`).
    pub cgroup_procs: Option<OwnedFd>,
    pub switch: Option<SwitchUser>,
    pub parent_pid: libc::pid_t,
    /// Make fd 0 (the slave) the controlling terminal; false for pipes.
    pub controlling_tty: bool,
}

/// Prepares the shell between fork and exec. std has already put the
/// slave on 0, 1 and 2 (and prepared argv and envp before forking); here the
/// child joins its cgroup, becomes a session leader with the slave as its
/// controlling terminal (setsid + TIOCSCTTY), drops to the user, enters
/// its directory, arms its death signal, and marks every descriptor above
/// 2 close-on-exec (`close_range(CLOSE_RANGE_CLOEXEC)`): belt and braces,
/// since all of ours are CLOEXEC already. Marking rather than closing keeps
/// std's own exec-error pipe working.
///
/// Only async-signal-safe syscalls on memory prepared by the parent: no
/// allocation, no lock, no logging.
pub fn prepare_session_child(cmd: &mut tokio::process::Command, setup: SessionChild) {
    let SessionChild {
        cgroup_procs,
        switch,
        parent_pid,
        controlling_tty,
    } = setup;
    // SAFETY: the closure only makes async-signal-safe system calls (write,
    // setsid, ioctl, setgroups, setgid, setuid, chdir, prctl, getppid,
    // syscall(close_range)) on data owned by the closure; it neither
    // allocates, locks nor logs, and errors are built from errno alone.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = &cgroup_procs {
                let _ = libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1);
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if controlling_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(user) = &switch {
                user.become_in_child()?;
            }
            super::sys::die_with_parent_in_child(parent_pid)?;
            super::sys::cloexec_above_stdio();
            Ok(())
        });
    }
}

/// Registers the terminal's master with tokio's reactor.
pub fn watch(master: std::fs::File) -> io::Result<tokio::io::unix::AsyncFd<std::fs::File>> {
    // SAFETY: `register` needs the descriptor to stay open and owned by the
    // value for as long as it is registered: the File owns it outright (it
    // came from an OwnedFd nothing else holds), and AsyncFd keeps the File
    // until it deregisters on drop.
    unsafe { tokio::io::unix::AsyncFd::register(master) }.map_err(|e| e.into_parts().1)
}
