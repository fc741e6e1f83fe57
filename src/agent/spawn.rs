//! Starts a task's first process directly inside its cgroup, with
//! `clone3(CLONE_INTO_CGROUP | CLONE_PIDFD)` (Linux 5.7+).
//!
//! Why: the portable way into a cgroup is for the child to write to the
//! cgroup's `cgroup.procs` between fork and exec. That migration takes the
//! kernel's cgroup thread-group lock for writing, which waits for an RCU
//! grace period: measured on the benchmark machine (kernel 6.18, 2 busy
//! cores) fork + join took a median of 0.1-16 ms and a p90 of 20-56 ms,
//! against 0.1 ms (p90 0.2-8.5 ms) for a clone straight into the cgroup.
//! With a hundred tasks starting at once the migrations also queue behind
//! each other. Created in place, the process never migrates.
//!
//! What the child does between clone and exec is what `sys::prepare_child`
//! does on the std path, in the same order and with the same guarantees
//! (own process group, /dev/null as stdin, the output pipe as stdout and
//! stderr, the target user's groups/gid/uid, the working directory entered
//! with the user's own permissions, a death signal tied to the agent, the
//! default signal mask and SIGPIPE action, nothing else inherited: every
//! other descriptor is close-on-exec). Any failure is reported to the parent
//! through a close-on-exec pipe, so `spawn` fails with the child's errno and
//! nothing runs.
//!
//! On x86_64 the clone shares the agent's memory and the agent waits until
//! the child has exec'd (`CLONE_VM | CLONE_VFORK`, as posix_spawn does), on a
//! stack of its own: copying the agent's page tables for a child that execs
//! at once, tearing the copy down again at its exec, and the copy-on-write
//! faults the agent then takes were a fifth of the agent's CPU per task on
//! the benchmark machine. Signals are blocked in the agent around the clone
//! and the child resets every handler to the default before it unblocks
//! them, so no handler of the agent ever runs in the child. Elsewhere the
//! clone copies the address space like fork.
//!
//! When `clone3` is refused (an older kernel, seccomp, a cgroup that cannot
//! take processes) `spawn` says `Unsupported` and the caller uses the std
//! path. The child is waited for through its pidfd, so no SIGCHLD handler
//! or reaper thread is involved; it is reaped by pid, which cannot be
//! reused before that.
//!
//! This is one of the two places with unsafe code in the agent (with
//! `sys.rs`); every block says why it is sound.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tokio::io::unix::AsyncFd;

use super::sys::SwitchUser;

// The kernel's clone3 ABI (include/uapi/linux/sched.h), the same on every
// architecture: all fields are 64-bit.
const CLONE_PIDFD: u64 = 0x1000;
#[cfg(target_arch = "x86_64")]
const CLONE_VM: u64 = 0x100;
#[cfg(target_arch = "x86_64")]
const CLONE_VFORK: u64 = 0x4000;
/// The child's stack while it shares the agent's memory (it only makes
/// system calls; posix_spawn uses about as much).
#[cfg(target_arch = "x86_64")]
const CHILD_STACK: usize = 64 * 1024;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Everything the child needs, prepared before the clone so the child only
/// makes system calls.
pub struct Plan<'a> {
    pub program: &'a CStr,
    /// argv, argv[0] included.
    pub args: &'a [CString],
    /// "KEY=value" entries: the whole environment.
    pub env: &'a [CString],
    /// The write end of the output pipe (stdout and stderr).
    pub output: BorrowedFd<'a>,
    /// The task's cgroup directory, opened O_DIRECTORY.
    pub cgroup: BorrowedFd<'a>,
    pub cwd: &'a CStr,
    pub switch: Option<&'a SwitchUser>,
    /// The agent's pid, for the death-signal check.
    pub parent_pid: libc::pid_t,
}

/// The outcome of `spawn`.
pub enum Spawn {
    Started(Child),
    /// clone3 into a cgroup is not available here; use the std path.
    Unsupported(io::Error),
}

/// A child started by `spawn`, waited for through its pidfd.
pub struct Child {
    pid: libc::pid_t,
    pidfd: AsyncFd<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Child {
    pub fn id(&self) -> libc::pid_t {
        self.pid
    }

    /// The exit status if the process has ended (reaping it), else None.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let mut raw: libc::c_int = 0;
        // SAFETY: waitpid writes only to `raw`, a live local; `pid` is our
        // own unreaped child, so it names no other process.
        let r = unsafe { libc::waitpid(self.pid, &mut raw, libc::WNOHANG) };
        match r {
            0 => Ok(None),
            r if r == self.pid => {
                let st = ExitStatus::from_raw(raw);
                self.status = Some(st);
                Ok(Some(st))
            }
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Waits for the process to end (its pidfd becomes readable then).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(st);
            }
            // Readiness is cleared before the next try_wait, so an exit
            // between the two is seen by the try_wait, and one after it
            // wakes the next readable().
            let mut guard = self.pidfd.readable().await?;
            guard.clear_ready();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Reap it if it has ended; one still running (only when the task's
        // supervisor was dropped mid-run) dies with the agent at the latest
        // (its death signal), and the kernel reaps it then.
        let _ = self.try_wait();
    }
}

/// Starts `plan.program` inside the cgroup. `Unsupported` when this kernel
/// or cgroup refuses clone3 into a cgroup; an error when the child could
/// not be set up or exec'd (nothing ran).
pub fn spawn(plan: &Plan<'_>) -> io::Result<Spawn> {
    // The pidfd is watched by the runtime's reactor: without one, the std
    // path (which has its own) is the safe choice.
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(Spawn::Unsupported(io::Error::other("no async runtime")));
    }
    // Null-terminated pointer arrays, built before the clone: the child
    // must not allocate.
    let argv: Vec<*const libc::c_char> = plan
        .args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .env
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let groups: &[libc::gid_t] = plan.switch.map_or(&[], |s| s.groups.as_slice());
    // Descriptors the child moves onto 0-2 must not be 0-2 already, or one
    // dup2 could overwrite another's source; try_clone returns one >= 3.
    let devnull = std::fs::File::open("/dev/null")?;
    let devnull = OwnedFd::from(devnull);
    let null_fd = above_stdio(devnull)?;
    let out_fd = above_stdio(plan.output.try_clone_to_owned()?)?;
    let (err_r, err_w) = cloexec_pipe()?;

    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: CLONE_PIDFD | CLONE_INTO_CGROUP,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: u64::try_from(plan.cgroup.as_raw_fd()).map_err(|_| ebadf())?,
        ..CloneArgs::default()
    };
    let child = ChildArgs {
        program: plan.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        null_fd: null_fd.as_raw_fd(),
        out_fd: out_fd.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        cwd: plan.cwd.as_ptr(),
        switch: plan.switch.map(|s| (s.uid, s.gid)),
        groups: groups.as_ptr(),
        ngroups: groups.len(),
        parent_pid: plan.parent_pid,
    };
    let pid = clone_child(args, &child);
    if pid < 0 {
        return Ok(Spawn::Unsupported(io::Error::last_os_error()));
    }
    // SAFETY: on success the kernel stored a new pidfd (close-on-exec) in
    // `pidfd`; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = libc::pid_t::try_from(pid).map_err(|_| ebadf())?;
    drop(err_w);
    drop(out_fd);
    drop(null_fd);
    // The pipe closes at exec (nothing read) or carries the errno of the
    // step that failed (the child then exits 127 at once).
    let mut errno = [0u8; 4];
    let read = read_full(&err_r, &mut errno);
    // SAFETY: an OwnedFd stays open and returns the same descriptor from
    // as_raw_fd until the AsyncFd owning it is dropped.
    let watched = unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from);
    match (read, watched) {
        (Ok(0), Ok(pidfd)) => Ok(Spawn::Started(Child {
            pid,
            pidfd,
            status: None,
        })),
        (read, watched) => {
            // Nothing of the task may run unwatched: make sure it is gone.
            let _ = signal_pid(pid, libc::SIGKILL);
            reap_blocking(pid);
            Err(match (read, watched) {
                (Ok(n), _) if n > 0 => io::Error::from_raw_os_error(i32::from_ne_bytes(errno)),
                (Err(e), _) | (_, Err(e)) => e,
                _ => io::Error::other("the task process could not be watched"),
            })
        }
    }
}

/// Clones the child into its cgroup, sharing the agent's memory until it
/// execs (the agent waits meanwhile); the child runs `child_exec`. Returns
/// the child's pid, or -1 with errno set.
#[cfg(target_arch = "x86_64")]
fn clone_child(mut args: CloneArgs, child: &ChildArgs) -> libc::c_long {
    extern "C" fn entry(a: *const ChildArgs) -> ! {
        // SAFETY: `a` points to the parent's `ChildArgs`, alive and
        // unchanged: the parent is suspended until this child execs or
        // exits (CLONE_VFORK) and the memory is shared (CLONE_VM).
        unsafe { child_exec(&*a) }
    }
    // Only the child uses it, as its stack: no need to zero it.
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK);
    args.flags |= CLONE_VM | CLONE_VFORK;
    args.stack = stack.as_mut_ptr() as u64;
    args.stack_size = CHILD_STACK as u64;
    // No handler of the agent may run in the child, on memory it shares:
    // everything is blocked until the child has reset the handlers.
    // SAFETY: sigfillset and pthread_sigmask write only to live locals.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let ret: libc::c_long;
    // SAFETY: clone3 with CLONE_VM | CLONE_VFORK and a stack of its own is
    // what posix_spawn does: the child starts on `stack` (16-byte aligned
    // here, as the ABI wants at a call) and calls `entry`, which never
    // returns (exec or _exit); the parent is suspended until then, so the
    // stack, `args` and `child` outlive the child's use of them. Only rcx
    // and r11 are clobbered by `syscall` in the parent; the child never
    // comes back to this code.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") std::ptr::addr_of!(args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") child as *const ChildArgs,
            in("r13") entry as *const (),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    let err = (ret < 0).then(|| -ret);
    // SAFETY: restores the mask saved above, from a live local.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    match err {
        Some(e) => {
            // The raw syscall returns -errno; callers read errno.
            // SAFETY: __errno_location returns this thread's errno slot.
            unsafe { *libc::__errno_location() = i32::try_from(e).unwrap_or(libc::EINVAL) };
            -1
        }
        None => ret,
    }
}

/// Clones the child into its cgroup with a copy of the agent's memory, like
/// fork; the child runs `child_exec`. Returns the child's pid, or -1 with
/// errno set.
#[cfg(not(target_arch = "x86_64"))]
fn clone_child(args: CloneArgs, child: &ChildArgs) -> libc::c_long {
    // SAFETY: clone3 with neither CLONE_VM nor a new stack is a fork: the
    // child gets a copy of this address space and returns here on a copy of
    // this stack. `args` is a live local of the right layout and size. In
    // the child, `child_exec` only makes raw system calls on memory
    // prepared before the clone and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: we are the freshly cloned child (see above); every pointer
        // refers to data that was valid in the parent at the clone and was
        // copied with the address space.
        unsafe { child_exec(child) }
    }
    pid
}

fn ebadf() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        fd.try_clone()
    }
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, a live local array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`, which is live.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        match n {
            0 => break,
            n if n > 0 => got += n.unsigned_abs(),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(got)
}

/// Reaps a child that failed before exec or was just killed.
fn reap_blocking(pid: libc::pid_t) {
    let mut raw: libc::c_int = 0;
    // SAFETY: `pid` is our own unreaped child; the wait is brief, the child
    // is already on its way out.
    unsafe { libc::waitpid(pid, &mut raw, 0) };
}

fn signal_pid(pid: libc::pid_t, sig: libc::c_int) -> bool {
    // SAFETY: kill has no memory-safety preconditions; `pid` > 1 is our
    // own unreaped child.
    pid > 1 && unsafe { libc::kill(pid, sig) } == 0
}

struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    null_fd: RawFd,
    out_fd: RawFd,
    err_w: RawFd,
    cwd: *const libc::c_char,
    switch: Option<(u32, u32)>,
    groups: *const libc::gid_t,
    ngroups: usize,
    parent_pid: libc::pid_t,
}

/// The child between clone and exec. Only raw system calls: the clone did
/// not go through libc's fork, so libc still believes the agent's other
/// threads exist here, and its set*id wrappers would try to signal them.
/// Hence setgroups/setgid/setuid by `syscall`, which changes this (only)
/// thread.
///
/// # Safety
/// Must only be called in a child fresh from clone3, with pointers valid
/// in the parent at the time of the clone.
unsafe fn child_exec(a: &ChildArgs) -> ! {
    unsafe fn fail(err_w: RawFd) -> ! {
        let e = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        let bytes = e.to_ne_bytes();
        libc::write(err_w, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
    // Handlers the agent installed go back to the default before any signal
    // is unblocked: the child may share the agent's memory, where they would
    // run. (exec resets them too, but only at exec.) Ignored ones stay
    // ignored, as on the std path; signals libc keeps for itself refuse.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut act) == 0
            && act.sa_sigaction != libc::SIG_DFL
            && act.sa_sigaction != libc::SIG_IGN
        {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            if libc::sigaction(sig, &dfl, std::ptr::null_mut()) != 0 {
                fail(a.err_w);
            }
        }
    }
    // A signal mask and ignored signals survive exec: start the task with
    // the defaults (Rust ignores SIGPIPE in the agent).
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    if libc::syscall(
        libc::SYS_rt_sigprocmask,
        libc::SIG_SETMASK,
        std::ptr::addr_of!(set),
        std::ptr::null_mut::<libc::sigset_t>(),
        std::mem::size_of::<libc::c_ulong>(),
    ) != 0
    {
        fail(a.err_w);
    }
    if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
        fail(a.err_w);
    }
    if libc::dup2(a.null_fd, 0) < 0 || libc::dup2(a.out_fd, 1) < 0 || libc::dup2(a.out_fd, 2) < 0 {
        fail(a.err_w);
    }
    if libc::setpgid(0, 0) != 0 {
        fail(a.err_w);
    }
    if let Some((uid, gid)) = a.switch {
        if libc::syscall(libc::SYS_setgroups, a.ngroups, a.groups) != 0
            || libc::syscall(libc::SYS_setgid, gid) != 0
            || libc::syscall(libc::SYS_setuid, uid) != 0
        {
            fail(a.err_w);
        }
    }
    // After the switch, so the directory is entered with the user's own
    // permissions.
    if libc::chdir(a.cwd) != 0 {
        fail(a.err_w);
    }
    // Last: the kernel clears the death signal when credentials change.
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
        fail(a.err_w);
    }
    if libc::getppid() != a.parent_pid {
        // The agent died before the death signal was armed.
        libc::write(
            a.err_w,
            libc::ESRCH.to_ne_bytes().as_ptr().cast(),
            std::mem::size_of::<libc::c_int>(),
        );
        libc::_exit(127);
    }
    // The error pipe is close-on-exec already.
    super::sys::cloexec_above_stdio();
    libc::execve(a.program, a.argv, a.envp);
    fail(a.err_w)
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
