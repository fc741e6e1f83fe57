//! Turns a `TaskSpec` into a running process: resolves the user, working
//! directory and interpreter, writes the script, and spawns it.
//!
//! Guarantees: every check that can fail (unknown user, missing directory,
//! missing interpreter, undecodable script) fails here with a reason fit for
//! `error_info`, before anything runs. The process gets its own process
//! group, its own cgroup where the machine allows (`cgroup.rs`), a death
//! signal tied to the agent, /dev/null as stdin, one pipe as both stdout and
//! stderr, a clean environment (HOME, USER, LOGNAME, SHELL, PATH, locale and
//! DROVER_TASK_ID only — the agent's own variables, such as its register
//! code, never leak), and no other descriptor: std opens everything
//! close-on-exec. Scripts are given
//! to their interpreter as an argument, so noexec mounts and shebangs do not
//! matter.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use tokio::net::unix::pipe;

use super::cgroup::{Cgroups, TaskCgroup};
use super::sys::{self, Account};
use crate::protocol::TaskSpec;

/// PATH for a user when the agent's own PATH does not apply.
pub(crate) const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub(crate) const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A started task process.
pub struct Launched {
    pub child: Proc,
    /// Read end of the stdout+stderr pipe.
    pub output: pipe::Receiver,
    pub pgid: i32,
    pub script: ScriptFile,
    /// The task's own cgroup, when it has one (see `cgroup.rs`).
    pub cgroup: Option<TaskCgroup>,
}

/// Environment variable naming the task in every process it starts.
pub const TASK_ENV: &str = "DROVER_TASK_ID";

/// The task's script file; removed when dropped.
#[derive(Debug)]
pub struct ScriptFile(PathBuf);

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether this agent can run a command type at all (for MachineInfo).
pub fn supported_command_types() -> Vec<String> {
    let mut types = vec!["SHELL".to_string(), "PYTHON".to_string()];
    let path = std::env::var("PATH").unwrap_or_else(|_| ROOT_PATH.into());
    if which("pwsh", &path).is_some() {
        types.push("POWERSHELL".into());
    }
    types
}

/// Finds an executable on a PATH string.
pub fn which(name: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path.split(':').filter(|d| !d.is_empty()).find_map(|d| {
        let p = Path::new(d).join(name);
        let meta = std::fs::metadata(&p).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(p)
    })
}

/// Who runs the task and whether the agent must switch to them.
pub(crate) struct RunAs {
    pub(crate) account: Account,
    pub(crate) switch: bool,
}

pub(crate) fn resolve_user(username: &str) -> Result<RunAs, String> {
    let euid = sys::euid();
    let me = sys::account_by_uid(euid)
        .map_err(|e| format!("looking up the agent's own user: {e}"))?
        .unwrap_or_else(|| Account {
            name: euid.to_string(),
            uid: euid,
            gid: euid,
            home: PathBuf::from("/"),
            shell: "/bin/sh".into(),
        });
    if username.is_empty() || username == me.name {
        return Ok(RunAs {
            account: me,
            switch: false,
        });
    }
    let target = sys::account_by_name(username)
        .map_err(|e| format!("looking up user {username}: {e}"))?
        .ok_or_else(|| format!("user {username} does not exist"))?;
    if target.uid == euid {
        return Ok(RunAs {
            account: target,
            switch: false,
        });
    }
    if euid != 0 {
        return Err(format!(
            "the agent runs as {} and cannot run tasks as user {username}; run the agent as root",
            me.name
        ));
    }
    Ok(RunAs {
        account: target,
        switch: true,
    })
}

pub(crate) fn home_of(account: &Account) -> PathBuf {
    if account.uid == 0 {
        PathBuf::from("/root")
    } else {
        account.home.clone()
    }
}

/// Interpreter and script file name for a command type.
fn interpreter(
    command_type: &str,
    path: &str,
) -> Result<(PathBuf, Vec<String>, &'static str), String> {
    match command_type {
        "SHELL" => {
            let sh = which("bash", path)
                .or_else(|| which("sh", path))
                .ok_or("neither bash nor sh found on PATH")?;
            Ok((sh, Vec::new(), "script.sh"))
        }
        "PYTHON" => {
            let py =
                which("python3", path).ok_or("python3 is not installed (not found on PATH)")?;
            Ok((py, Vec::new(), "script.py"))
        }
        "POWERSHELL" => {
            let pwsh = which("pwsh", path).ok_or("PowerShell (pwsh) is not installed")?;
            let args = vec![
                "-NoProfile".into(),
                "-NonInteractive".into(),
                "-File".into(),
            ];
            Ok((pwsh, args, "script.ps1"))
        }
        "BAT" => Err("BAT scripts need a Windows agent".into()),
        other => Err(format!("unknown command type {other:?}")),
    }
}

/// Prepares and spawns the task. `work_root` must be traversable (0711)
/// by the target user; the script file inside it is theirs alone.
pub fn launch(
    spec: &TaskSpec,
    work_root: &Path,
    cgroups: Option<&Cgroups>,
) -> Result<Launched, String> {
    let script = base64::engine::general_purpose::STANDARD
        .decode(spec.content.trim())
        .map_err(|e| format!("command content is not valid base64: {e}"))?;
    let run_as = resolve_user(&spec.username)?;
    let account = &run_as.account;
    let cwd = if spec.working_directory.is_empty() {
        home_of(account)
    } else {
        PathBuf::from(&spec.working_directory)
    };
    if !cwd.is_dir() {
        return Err(format!(
            "working directory {} does not exist",
            cwd.display()
        ));
    }
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
    let (program, mut args, file_name) = interpreter(&spec.command_type, &path)?;

    let file = work_root.join(format!("{}-{file_name}", spec.task_id));
    let script_file = write_script(&file, &script, run_as.switch.then_some(account))?;
    args.push(file.to_string_lossy().into_owned());

    let (reader, writer) = std::io::pipe().map_err(|e| format!("creating the output pipe: {e}"))?;

    // The whole environment: nothing of the agent's own leaks.
    let shell = if account.shell.is_empty() {
        "/bin/sh"
    } else {
        &account.shell
    };
    let home = home_of(account);
    let mut env: Vec<(&str, std::ffi::OsString)> = vec![
        ("HOME", home.clone().into_os_string()),
        ("USER", account.name.clone().into()),
        ("LOGNAME", account.name.clone().into()),
        ("SHELL", shell.into()),
        ("PATH", path.clone().into()),
    ];
    for var in ["LANG", "LC_ALL", "TZ"] {
        if let Some(v) = std::env::var_os(var) {
            env.push((var, v));
        }
    }
    // Marks every process of the task, daemons included, for the fallback
    // that finds them without a cgroup (`exec::Tracker`).
    env.push((TASK_ENV, spec.task_id.clone().into()));
    let switch = if run_as.switch {
        let groups = sys::group_list(account)
            .map_err(|e| format!("listing the groups of user {}: {e}", account.name))?;
        Some(sys::SwitchUser {
            uid: account.uid,
            gid: account.gid,
            groups,
            cwd: c_string(cwd.as_os_str(), "working directory")?,
        })
    } else {
        None
    };
    let cgroup = cgroups.and_then(|cgs| match cgs.create(&spec.task_id) {
        Ok(cg) => Some(cg),
        Err(e) => {
            tracing::warn!("task {}: no cgroup ({e})", spec.task_id);
            None
        }
    });
    let fail = |e: std::io::Error| {
        if run_as.switch {
            format!(
                "starting {} as user {} in {}: {e}",
                program.display(),
                account.name,
                cwd.display()
            )
        } else {
            format!("starting {}: {e}", program.display())
        }
    };
    let start = Start {
        program: &program,
        args: &args,
        env: &env,
        cwd: &cwd,
        output: writer,
        switch,
    };
    // Straight into the cgroup where the kernel can (`spawn.rs`); else the
    // child joins it itself between fork and exec.
    // A start that fails leaves no empty cgroup behind.
    let failed = |e: std::io::Error| {
        if let Some(cg) = &cgroup {
            cg.remove();
        }
        fail(e)
    };
    let direct = match &cgroup {
        Some(cg) => start_in_cgroup(&start, cg).map_err(failed)?,
        None => None,
    };
    let (child, cgroup) = match direct {
        Some(child) => (Proc::Direct(child), cgroup),
        None => {
            let child = start_std(start, cgroup.as_ref()).map_err(failed)?;
            // Only a cgroup the child really joined tracks the task.
            let pid = child.id().and_then(|p| i32::try_from(p).ok());
            let cgroup = cgroup.filter(|cg| {
                let joined = pid.is_some_and(|p| cg.pids().contains(&p));
                if !joined {
                    cg.remove();
                }
                joined
            });
            (Proc::Std(child), cgroup)
        }
    };
    let pgid = child
        .id()
        .ok_or("the process exited before its id could be read")?;
    let output = pipe::Receiver::from_owned_fd(reader.into())
        .map_err(|e| format!("watching the output pipe: {e}"))?;
    Ok(Launched {
        child,
        output,
        pgid,
        script: script_file,
        cgroup,
    })
}

/// What both ways of starting the process need.
struct Start<'a> {
    program: &'a Path,
    args: &'a [String],
    env: &'a [(&'a str, std::ffi::OsString)],
    cwd: &'a Path,
    /// Write end of the output pipe; dropped once the child has it, or the
    /// reader would never see end-of-file.
    output: std::io::PipeWriter,
    switch: Option<sys::SwitchUser>,
}

fn c_string(s: &std::ffi::OsStr, what: &str) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("the {what} contains NUL"))
}

/// clone3 into the cgroup; Ok(None) when this kernel cannot (the caller
/// then takes the std path).
fn start_in_cgroup(s: &Start<'_>, cg: &TaskCgroup) -> std::io::Result<Option<super::spawn::Child>> {
    use super::spawn::{self, Spawn};
    use std::os::fd::AsFd;
    let bad = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let program = CString::new(s.program.as_os_str().as_bytes()).map_err(bad)?;
    let mut args = vec![program.clone()];
    for a in s.args {
        args.push(CString::new(a.as_bytes()).map_err(bad)?);
    }
    let mut env = Vec::with_capacity(s.env.len());
    for (k, v) in s.env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        env.push(CString::new(kv).map_err(bad)?);
    }
    let cwd = match &s.switch {
        Some(sw) => sw.cwd.clone(),
        None => CString::new(s.cwd.as_os_str().as_bytes()).map_err(bad)?,
    };
    let dir = cg.open_dir()?;
    let plan = spawn::Plan {
        program: &program,
        args: &args,
        env: &env,
        output: s.output.as_fd(),
        cgroup: dir.as_fd(),
        cwd: &cwd,
        switch: s.switch.as_ref(),
        parent_pid: sys::my_pid(),
    };
    match spawn::spawn(&plan)? {
        Spawn::Started(child) => Ok(Some(child)),
        Spawn::Unsupported(e) => {
            tracing::debug!("clone3 into a cgroup is not available ({e}); forking instead");
            Ok(None)
        }
    }
}

/// fork and exec through std; the child joins the cgroup (if any) itself.
fn start_std(s: Start<'_>, cgroup: Option<&TaskCgroup>) -> std::io::Result<tokio::process::Child> {
    let writer2 = s.output.try_clone()?;
    let mut cmd = tokio::process::Command::new(s.program);
    cmd.args(s.args)
        .env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(s.output))
        .stderr(Stdio::from(writer2))
        .process_group(0)
        .kill_on_drop(false);
    if s.switch.is_none() {
        cmd.current_dir(s.cwd);
    }
    let cgroup_procs = cgroup
        .and_then(|cg| cg.procs_file().ok())
        .map(std::os::fd::OwnedFd::from);
    sys::prepare_child(
        &mut cmd,
        sys::ChildSetup {
            cgroup_procs,
            switch: s.switch,
            parent_pid: sys::my_pid(),
        },
    );
    cmd.spawn()
    // `cmd` (dropped here) held our copies of the pipe's write end.
}

/// The task's first process, however it was started.
pub enum Proc {
    Std(tokio::process::Child),
    Direct(super::spawn::Child),
}

impl Proc {
    fn id(&self) -> Option<i32> {
        match self {
            Proc::Std(c) => c.id().and_then(|p| i32::try_from(p).ok()),
            Proc::Direct(c) => Some(c.id()),
        }
    }

    /// Waits for the process to end; cancel-safe.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Proc::Std(c) => c.wait().await,
            Proc::Direct(c) => c.wait().await,
        }
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        match self {
            Proc::Std(c) => c.try_wait(),
            Proc::Direct(c) => c.try_wait(),
        }
    }
}

/// Writes the script to `file`, a new file in the work root (0711: nobody
/// else can list it), readable by the task's user only. No directory of its
/// own: on the benchmark machine creating a directory per task cost as much
/// CPU as the file itself.
fn write_script(file: &Path, script: &[u8], owner: Option<&Account>) -> Result<ScriptFile, String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("writing the script {}: {e}", file.display());
    // O_EXCL | O_NOFOLLOW: an existing name (left over from a crash, or a
    // planted symlink) is refused, never followed; it is removed (a symlink
    // itself, not its target) and the file made anew.
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(file)
    };
    let mut f = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(file).map_err(fail)?;
            create()
        }
        r => r,
    }
    .map_err(fail)?;
    let guard = ScriptFile(file.to_path_buf());
    f.write_all(script).map_err(fail)?;
    // Through the open descriptor: no path lookup to race with.
    if let Some(acc) = owner {
        std::os::unix::fs::fchown(&f, Some(acc.uid), Some(acc.gid)).map_err(fail)?;
    }
    Ok(guard)
}

/// Creates the directory holding the tasks' script files: 0711 so a task
/// running as another user can reach its own (0600) script without
/// being able to list anyone else's.
pub fn prepare_work_root(work_root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(work_root)?;
    std::fs::set_permissions(work_root, std::fs::Permissions::from_mode(0o711))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_script_goes_to_the_task_user_without_following_links() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        // root hands the file to nobody; anyone else to itself (still the
        // fchown path).
        let acc = if sys::euid() == 0 {
            sys::account_by_name("nobody").unwrap().unwrap()
        } else {
            sys::account_by_uid(sys::euid()).unwrap().unwrap()
        };
        let file = t.path().join("task-1-script.sh");
        let guard = write_script(&file, b"echo hi\n", Some(&acc)).unwrap();
        let m = std::fs::symlink_metadata(&file).unwrap();
        assert_eq!((m.uid(), m.gid()), (acc.uid, acc.gid));
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"echo hi\n");
        drop(guard);
        assert!(!file.exists());

        // A symlink planted where the script goes is removed, not
        // followed: its target keeps its owner and contents.
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let before = std::fs::metadata(&victim).unwrap().uid();
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        let _g = write_script(&file, b"true\n", Some(&acc)).unwrap();
        assert!(!std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"true\n");
        assert_eq!(std::fs::metadata(&victim).unwrap().uid(), before);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn which_finds_sh_and_misses_nonsense() {
        assert!(which("sh", ROOT_PATH).is_some());
        assert!(which("no-such-binary-drover", ROOT_PATH).is_none());
    }

    #[test]
    fn command_types_map_to_interpreters() {
        assert!(interpreter("SHELL", ROOT_PATH).is_ok());
        assert!(interpreter("BAT", ROOT_PATH)
            .unwrap_err()
            .contains("Windows"));
        assert!(interpreter("COBOL", ROOT_PATH).is_err());
        assert!(supported_command_types().contains(&"PYTHON".to_string()));
    }
}
