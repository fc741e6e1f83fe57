//! The ssh gateway against Debian's OpenSSH client (`ssh`, `ssh-keygen`):
//! a real server with the gateway on 127.0.0.1:0, real sub-users whose
//! keys are imported through the API, real agents running real shells.
//! Every ssh call pins the gateway's host key in its own known_hosts file
//! (StrictHostKeyChecking=yes), so a test that gets in also proves the key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod sessionkit;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

async fn cam(h: &Harness, action: &str, p: Value) -> Value {
    h.client
        .call_as("cam", "2019-01-16", action, &p)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// A server with the ssh gateway, and a scratch directory for keys.
struct Gw {
    h: Harness,
    gw: drover::ssh::Gateway,
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
}

async fn start() -> Gw {
    start_with(drover::ssh::Settings::new("127.0.0.1:0")).await
}

async fn start_with(settings: drover::ssh::Settings) -> Gw {
    let h = Harness::start().await;
    let running = h.server.as_ref().unwrap();
    let gw = drover::ssh::start(
        running.api.clone(),
        &h.data_dir(),
        settings,
        running.shutdown.clone(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", gw.addr.port(), gw.info.host_key),
    )
    .unwrap();
    Gw {
        h,
        gw,
        dir,
        known_hosts,
    }
}

impl Gw {
    /// A new key pair made by ssh-keygen; returns the private key's path.
    async fn keygen(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let out = tokio::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        path
    }

    /// `ssh` with this gateway's port and host key, no agent, no config
    /// file, no prompts; `auth` is "publickey" or "password".
    fn ssh(&self, user: &str, key: Option<&Path>, auth: &str) -> tokio::process::Command {
        self.ssh_with_agent(user, key, auth, None)
    }

    /// `ssh`, as above; with `agent` (an ssh-agent's socket) it is the
    /// client's agent and forwarded (ssh -A).
    fn ssh_with_agent(
        &self,
        user: &str,
        key: Option<&Path>,
        auth: &str,
        agent: Option<&Path>,
    ) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ssh");
        // OpenSSH takes the first value it is given for an option.
        if let Some(agent) = agent {
            c.arg("-A")
                .arg("-o")
                .arg(format!("IdentityAgent={}", agent.display()));
        }
        c.args(["-F", "/dev/null", "-p"])
            .arg(self.gw.addr.port().to_string())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "ConnectTimeout=30",
                "-o",
            ])
            .arg(format!("PreferredAuthentications={auth}"))
            .arg("-l")
            .arg(user)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        match key {
            Some(k) => {
                c.arg("-i").arg(k);
            }
            None => {
                // Nothing but the password may be offered.
                c.args(["-o", "PubkeyAuthentication=no"]);
            }
        }
        if auth == "publickey" {
            c.args(["-o", "BatchMode=yes"]);
        }
        c
    }

    /// Imports `key`'s public half for the user `uin` as root.
    async fn import(&self, uin: &str, key: &Path) -> Value {
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        cam(
            &self.h,
            "ImportSshPublicKey",
            json!({"PublicKey": public, "TargetUin": uin.parse::<u64>().unwrap()}),
        )
        .await
    }
}

async fn output(mut c: tokio::process::Command) -> Output {
    tokio::time::timeout(T, c.output())
        .await
        .expect("ssh finished in time")
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ssh-keygen -lf FILE`'s fingerprint.
async fn keygen_fingerprint(file: &Path) -> String {
    let out = tokio::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(file)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// A sub-user with a console password and one policy of these statements;
/// returns its uin.
async fn sub_user(h: &Harness, name: &str, password: &str, statements: Value) -> String {
    let u = cam(
        h,
        "AddUser",
        json!({"Name": name, "UseApi": 1, "ConsoleLogin": 1, "Password": password}),
    )
    .await;
    let doc = json!({"version": "2.0", "statement": statements});
    let pid = cam(
        h,
        "CreatePolicy",
        json!({"PolicyName": format!("p_{name}"), "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    u["Uin"].to_string()
}

/// Sign-in: registered keys and console passwords get in; an unknown
/// person, someone else's key, an unregistered key and a wrong password
/// are refused alike; the host key ssh sees is the one the server reports;
/// port forwarding is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_refusals() {
    let g = start().await;
    let ins = "mi-00000000";
    // Reading regions only: signing in needs no permission at all.
    let read = json!([{"effect": "allow", "action": ["tat:DescribeRegions"], "resource": ["*"]}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", read.clone()).await;
    let _bob = sub_user(&g.h, "bob", "Bob-pass-123", read).await;
    let ann_key = g.keygen("ann_key").await;
    let stray_key = g.keygen("stray_key").await;
    let imported = g.import(&ann, &ann_key).await;
    let fp = keygen_fingerprint(&ann_key.with_extension("pub")).await;
    assert_eq!(imported["SshPublicKey"]["Fingerprint"], fp.as_str());
    assert_eq!(imported["SshPublicKey"]["Description"], "ann_key");
    let listed = cam(
        &g.h,
        "DescribeSshPublicKeys",
        json!({"TargetUin": ann.parse::<u64>().unwrap()}),
    )
    .await;
    assert_eq!(listed["TotalCount"], 1);
    assert_eq!(listed["SshPublicKeys"][0]["Fingerprint"], fp.as_str());

    // The host key: what the server prints, what its file says, what ssh
    // saw (-v) all agree.
    let pub_file = g.h.data_dir().join("ssh").join("ssh_host_ed25519_key.pub");
    assert_eq!(keygen_fingerprint(&pub_file).await, g.gw.info.fingerprint);
    let mut c = g.ssh(&format!("ann+{ins}"), Some(&ann_key), "publickey");
    c.arg("-v").arg("127.0.0.1").arg("--").arg("true");
    let out = output(c).await;
    let err = text(&out.stderr);
    let seen = format!("Server host key: ssh-ed25519 {}", g.gw.info.fingerprint);
    assert!(err.contains(&seen), "{err}");
    // Signed in: whatever the session then says, it is not an
    // authentication failure (ssh's own 255).
    assert!(err.contains("Authenticated to 127.0.0.1"), "{err}");

    // Refused alike: someone else's key, an unknown person, a stray key.
    for (user, key) in [
        (format!("bob+{ins}"), &ann_key),
        (format!("nobody+{ins}"), &ann_key),
        (format!("ann+{ins}"), &stray_key),
        // A name that asks for no instance.
        ("ann".to_string(), &ann_key),
    ] {
        let mut c = g.ssh(&user, Some(key), "publickey");
        c.arg("127.0.0.1").arg("--").arg("true");
        let out = output(c).await;
        assert_eq!(out.status.code(), Some(255), "{user}: {out:?}");
        assert!(
            text(&out.stderr).contains("Permission denied (publickey,password)"),
            "{user}: {out:?}"
        );
    }

    // Console passwords, asked for through SSH_ASKPASS.
    let askpass = |pw: &str| {
        let p = g.dir.path().join(format!("askpass-{}", pw.len()));
        std::fs::write(&p, format!("#!/bin/sh\necho '{pw}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    };
    let mut c = g.ssh(&format!("ann+{ins}"), None, "password");
    c.env("SSH_ASKPASS", askpass("Ann-pass-123"))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .args([
            "-o",
            "NumberOfPasswordPrompts=1",
            "-v",
            "127.0.0.1",
            "--",
            "true",
        ]);
    let out = output(c).await;
    assert!(
        text(&out.stderr).contains("Authenticated to 127.0.0.1"),
        "{out:?}"
    );
    let mut c = g.ssh(&format!("ann+{ins}"), None, "password");
    c.env("SSH_ASKPASS", askpass("wrong-password"))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .args(["-o", "NumberOfPasswordPrompts=1", "127.0.0.1", "--", "true"]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(text(&out.stderr).contains("Permission denied"), "{out:?}");

    // Port forwarding: ssh -L listens locally, and the gateway refuses the
    // channel when a connection comes through it.
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = local.local_addr().unwrap().port();
    drop(local);
    let mut c = g.ssh(&format!("ann+{ins}"), Some(&ann_key), "publickey");
    c.arg("-N")
        .arg("-L")
        .arg(format!("127.0.0.1:{lport}:{}", g.h.addr))
        .arg("127.0.0.1")
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut conn = wait_for("ssh -L to listen", T, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", lport))
            .await
            .ok()
    })
    .await;
    // Nothing comes through: the forwarded connection is closed at once.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(T, tokio::io::AsyncReadExt::read(&mut conn, &mut buf))
        .await
        .expect("the forwarded connection ends")
        .unwrap_or(0);
    assert_eq!(n, 0);
    child.start_kill().unwrap();
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        text(&out.stderr).contains("administratively prohibited"),
        "{out:?}"
    );

    // The sign-ins, good and bad, are in the audit trail.
    let events =
        g.h.call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["SshLogin"]}], "Limit": 100}),
        )
        .await;
    let logins: Vec<&Value> = events["AuditEventSet"].as_array().unwrap().iter().collect();
    assert!(
        logins
            .iter()
            .any(|e| e["Outcome"] == "Success" && e["Principal"] == ann.as_str()),
        "{events}"
    );
    assert!(logins.iter().any(|e| e["Outcome"] != "Success"), "{events}");
}

/// Keys are scoped like access keys: a self-service policy lets a user
/// manage their own keys and no one else's, and a deleted user's keys go
/// with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_self_service() {
    let g = start().await;
    let owner = cam(&g.h, "GetUserAppId", json!({})).await["OwnerUin"]
        .as_str()
        .unwrap()
        .to_string();
    let statements = json!([{
        "effect": "allow",
        "action": ["cam:ImportSshPublicKey", "cam:DescribeSshPublicKeys", "cam:DeleteSshPublicKey"],
        "resource": [format!("qcs::cam::uin/{owner}:uin/${{uin}}")],
    }]);
    let u = cam(&g.h, "AddUser", json!({"Name": "cat", "UseApi": 1})).await;
    let cat = u["Uin"].to_string();
    let doc = json!({"version": "2.0", "statement": statements});
    let pid = cam(
        &g.h,
        "CreatePolicy",
        json!({"PolicyName": "self_ssh", "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        &g.h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    let dan = cam(&g.h, "AddUser", json!({"Name": "dan"})).await["Uin"].to_string();
    let as_cat = g.h.client_as(
        u["SecretId"].as_str().unwrap(),
        u["SecretKey"].as_str().unwrap(),
    );
    let key = g.keygen("cat_key").await;
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mine = as_cat
        .call_as(
            "cam",
            "2019-01-16",
            "ImportSshPublicKey",
            &json!({"PublicKey": public}),
        )
        .await
        .unwrap();
    let key_id = mine["SshPublicKey"]["KeyId"].as_str().unwrap().to_string();
    // Not for someone else, and a bad key is refused with its reason.
    let other = as_cat
        .call_as(
            "cam",
            "2019-01-16",
            "ImportSshPublicKey",
            &json!({"PublicKey": public, "TargetUin": dan.parse::<u64>().unwrap()}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&other), "AuthFailure.UnauthorizedOperation");
    let bad = as_cat
        .call_as(
            "cam",
            "2019-01-16",
            "ImportSshPublicKey",
            &json!({"PublicKey": "ssh-rsa AAAA"}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidParameterValue.InvalidSshPublicKey");
    let dup = as_cat
        .call_as(
            "cam",
            "2019-01-16",
            "ImportSshPublicKey",
            &json!({"PublicKey": public}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&dup), "InvalidParameterValue.SshPublicKeyDuplicated");
    let dans = cam(
        &g.h,
        "DescribeSshPublicKeys",
        json!({"TargetUin": dan.parse::<u64>().unwrap()}),
    )
    .await;
    assert_eq!(dans["TotalCount"], 0);
    // Deleting the user deletes the key.
    cam(&g.h, "DeleteUser", json!({"Name": "cat", "Force": 1})).await;
    let db = rusqlite::Connection::open(g.h.data_dir().join("drover.db")).unwrap();
    let left: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM ssh_public_keys WHERE key_id = ?1 OR user_id = ?2",
            [&key_id, &cat],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

/// Processes below `root` (children, grandchildren ...) with their command
/// lines.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent: Vec<(u32, u32)> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid = rest.split_whitespace().nth(1)?.parse::<u32>().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found
        .into_iter()
        .skip(1)
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| text(&b).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmd)
        })
        .collect()
}

/// The first ended session on the instance that `pick` accepts, once the
/// server lists it.
async fn ended_session(h: &Harness, id: &str, pick: impl Fn(&Value) -> bool) -> Value {
    wait_for("the session's record", T, || {
        let pick = &pick;
        async move {
            let v = h
                .call(
                    "DescribeSessions",
                    json!({"Filters": [{"Name": "instance-id", "Values": [id]}]}),
                )
                .await;
            v["SessionSet"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["State"] == "ENDED" && pick(s))
                .cloned()
        }
    })
    .await
}

/// A gateway with one real agent, a person allowed sessions on it (ann)
/// and one who is not (eve), each with an imported key.
async fn with_agent() -> (Gw, String, PathBuf, PathBuf) {
    let mut g = start().await;
    let id = g.h.add_agent().await;
    let sessions = json!([{"effect": "allow", "action": ["tat:StartSession"], "resource": ["*"]}]);
    let other = json!([{"effect": "allow", "action": ["tat:RunCommand"], "resource": ["*"]}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", sessions).await;
    let eve = sub_user(&g.h, "eve", "Eve-pass-123", other).await;
    let ann_key = g.keygen("ann_key").await;
    let eve_key = g.keygen("eve_key").await;
    g.import(&ann, &ann_key).await;
    g.import(&eve, &eve_key).await;
    (g, id, ann_key, eve_key)
}

fn agent_pid(h: &Harness) -> u32 {
    h.agents[0].child.as_ref().unwrap().id()
}

/// Exec runs one command on the instance with its exit status passed back;
/// a shell (ssh -tt, driven by a script on stdin) runs in a pty of the
/// size asked for; a person without tat:StartSession gets the reason on
/// stderr and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_shell_and_denial_through_an_agent() {
    let (g, id, ann_key, eve_key) = with_agent().await;
    let ann = format!("ann+{id}");

    // Exec: output and exit status.
    let mut c = g.ssh(&ann, Some(&ann_key), "publickey");
    c.args(["127.0.0.1", "--", "sh", "-c", "'echo out-$((6*7)); exit 7'"]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(text(&out.stdout).contains("out-42"), "{out:?}");
    // The exec session is recorded by the server like any other: who, how,
    // what, how it ended, and its output.
    let rec = ended_session(&g.h, &id, |s| s["Via"] == "ssh").await;
    assert_eq!(rec["UserName"], "ann", "{rec}");
    assert_eq!(rec["LoginUser"], "root", "{rec}");
    assert_eq!(rec["ExitCode"], 7, "{rec}");
    assert!(rec["Command"].as_str().unwrap().contains("exit 7"), "{rec}");
    let cast =
        g.h.call(
            "DescribeSessionRecording",
            json!({"SessionId": rec["SessionId"]}),
        )
        .await;
    assert!(cast["Cast"].as_str().unwrap().contains("out-42"), "{cast}");

    // An exec without -t has no terminal, as with OpenSSH's own server: its
    // stdin is what ssh reads (to EOF) and its output arrives byte for byte,
    // binary and bare newlines included, with no echo.
    let mut c = g.ssh(&ann, Some(&ann_key), "publickey");
    c.args(["127.0.0.1", "--", "sh", "-c"])
        .arg("'test -t 0 || printf no-tty:; tr a-z A-Z; printf \\\\001\\\\377; exit 5'")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"one\ntwo\n")
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("ssh finished in time")
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(out.stdout, b"no-tty:ONE\nTWO\n\x01\xff", "{out:?}");

    // A shell in a pty: the script's lines run, `stty size` shows the
    // terminal ssh asked for (80x24 without a local terminal), and the
    // shell's exit status comes back.
    let mut c = g.ssh(&ann, Some(&ann_key), "publickey");
    c.args(["-tt", "127.0.0.1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"echo hi-$((1+1)); stty size; tty; exit 3\n")
            .await
            .unwrap();
        // stdin stays open until the shell has gone (ssh would send EOF).
        let out = tokio::time::timeout(T, child.wait_with_output())
            .await
            .expect("the shell ended")
            .unwrap();
        drop(stdin);
        let o = text(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(o.contains("hi-2"), "{o}");
        assert!(o.contains("24 80"), "{o}");
        assert!(o.contains("/dev/pts/"), "{o}");
    }

    // Denied: the reason on stderr, exit status 1, nothing ran.
    let marker = g.dir.path().join("eve-was-here");
    let before = descendants(agent_pid(&g.h));
    let mut c = g.ssh(&format!("eve+{id}"), Some(&eve_key), "publickey");
    c.arg("127.0.0.1")
        .arg("--")
        .arg(format!("touch {}", marker.display()));
    let out = output(c).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        err.contains("not authorized") && err.contains("tat:StartSession") && err.contains(&id),
        "{err}"
    );
    assert!(!marker.exists());
    assert_eq!(descendants(agent_pid(&g.h)), before, "nothing was started");
    // And the refusal is audited as the console's is.
    let events =
        g.h.call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["StartSession"]}], "Limit": 100}),
        )
        .await;
    let set = events["AuditEventSet"].as_array().unwrap();
    assert!(
        set.iter()
            .any(|e| e["Service"] == "ssh" && e["Decision"] == "deny"),
        "{events}"
    );
    assert!(
        set.iter()
            .any(|e| e["Service"] == "ssh" && e["Outcome"] == "Success"),
        "{events}"
    );
}

/// When the ssh client goes away, the session's processes on the instance
/// go too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_client_leaves_nothing_behind() {
    let (g, id, ann_key, _) = with_agent().await;
    let mut c = g.ssh(&format!("ann+{id}"), Some(&ann_key), "publickey");
    c.args([
        "-tt",
        "127.0.0.1",
        "--",
        "sh",
        "-c",
        "'echo ready; exec sleep 6017'",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(T, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        while !text(&seen).contains("ready") {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "ssh ended early: {}", text(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the command started");
    let agent = agent_pid(&g.h);
    let sleeping = || {
        descendants(agent)
            .into_iter()
            .any(|(_, cmd)| cmd.contains("sleep 6017"))
    };
    assert!(sleeping(), "{:?}", descendants(agent));
    child.start_kill().unwrap();
    let _ = child.wait().await;
    wait_for("the session's processes to end", T, || async move {
        (!sleeping()).then_some(())
    })
    .await;
}

/// A real terminal (tmux) running ssh: the pty has the terminal's size,
/// and resizing the terminal resizes the session's pty (window-change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pty_follows_the_terminal_size() {
    let (g, id, ann_key, _) = with_agent().await;
    let sock = g.dir.path().join("tmux.sock");
    let tmux = |args: &[&str]| {
        let mut c = tokio::process::Command::new("tmux");
        c.arg("-S").arg(&sock).args(args).env("TERM", "xterm");
        c
    };
    let ssh = g.ssh(&format!("ann+{id}"), Some(&ann_key), "publickey");
    let mut line: Vec<String> = vec![ssh.as_std().get_program().to_string_lossy().into()];
    line.extend(
        ssh.as_std()
            .get_args()
            .map(|a| format!("'{}'", a.to_string_lossy())),
    );
    line.extend(["-tt".into(), "127.0.0.1".into()]);
    let out = output(tmux(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        &line.join(" "),
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    let _ = output(tmux(&["set-option", "-g", "status", "off"])).await;
    let screen = || {
        let c = tmux(&["capture-pane", "-p", "-J"]);
        async move { text(&output(c).await.stdout) }
    };
    let size_is = |want: String| {
        let screen = &screen;
        let tmux = &tmux;
        async move {
            wait_for(&format!("the pty to be {want}"), T, || {
                let want = want.clone();
                async move {
                    let _ = output(tmux(&["send-keys", "echo S=$(stty size)=E", "Enter"])).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    screen()
                        .await
                        .contains(&format!("S={want}=E"))
                        .then_some(())
                }
            })
            .await
        }
    };
    let pane = |out: Output| {
        let t = text(&out.stdout);
        let mut it = t.split_whitespace();
        let (w, h) = (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        );
        format!("{h} {w}")
    };
    let first = pane(output(tmux(&["display", "-p", "#{pane_width} #{pane_height}"])).await);
    size_is(first.clone()).await;
    let _ = output(tmux(&["resize-window", "-x", "120", "-y", "40"])).await;
    let second = pane(output(tmux(&["display", "-p", "#{pane_width} #{pane_height}"])).await);
    assert_ne!(first, second);
    size_is(second).await;
    let _ = output(tmux(&["kill-server"])).await;
}

/// A connection that does not sign in is cut after the login grace time,
/// and one source cannot hold more unauthenticated connections than its
/// share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_excess_connections_are_cut() {
    use tokio::io::AsyncReadExt;
    let mut s = drover::ssh::Settings::new("127.0.0.1:0");
    s.login_grace = Duration::from_secs(1);
    s.limits.pending_per_source = 2;
    let g = start_with(s).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(g.gw.addr).await.unwrap();
        let mut banner = [0u8; 14];
        c.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-drover");
        held.push(c);
    }
    // A third is closed before any ssh work is spent on it.
    let mut third = tokio::net::TcpStream::connect(g.gw.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(T, third.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "{:?}", text(&buf[..n]));
    // The silent two are cut when their grace time is over.
    for mut c in held {
        let mut rest = Vec::new();
        tokio::time::timeout(T, c.read_to_end(&mut rest))
            .await
            .expect("the idle connection was cut")
            .ok();
    }
}

/// `GET /console/ssh-info` over HTTPS with a console session cookie.
async fn ssh_info(h: &Harness, cookie: Option<&str>) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fp = &h.server.as_ref().unwrap().fingerprint;
    let cfg = drover::tls::Trust::pinned_hex(fp)
        .unwrap()
        .client_config()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /console/ssh-info HTTP/1.1\r\nHost: {}\r\n{cookie}Connection: close\r\n\r\n",
        h.addr
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let t = text(&reply);
    let body = t.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{t}"));
    v["Response"].clone()
}

/// The console shows the gateway's host key to signed-in users only, and
/// the account itself (root) signs in with its console password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_host_key_and_root_signs_in() {
    let mut g = start().await;
    let id = g.h.add_agent().await;
    let cookie = sessionkit::root_cookie(&g.h).await;
    let info = ssh_info(&g.h, Some(&cookie)).await;
    assert_eq!(info["Enabled"], true, "{info}");
    assert_eq!(
        info["Fingerprint"],
        g.gw.info.fingerprint.as_str(),
        "{info}"
    );
    assert_eq!(info["Port"], g.gw.addr.port(), "{info}");
    assert_eq!(info["HostKey"], g.gw.info.host_key.as_str(), "{info}");
    let anonymous = ssh_info(&g.h, None).await;
    assert_eq!(
        anonymous["Error"]["Code"], "AuthFailure.SessionExpired",
        "{anonymous}"
    );
    assert!(anonymous.get("Fingerprint").is_none());

    let askpass = g.dir.path().join("askpass-root");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\necho '{}'\n", sessionkit::ROOT_PASSWORD),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut c = g.ssh(&format!("root+{id}"), None, "password");
    c.env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .args([
            "-o",
            "NumberOfPasswordPrompts=1",
            "127.0.0.1",
            "--",
            "echo",
            "root-$((2+3))",
        ]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).contains("root-5"), "{out:?}");
}

/// The login user in the ssh name is the one decided (`tat:login_user`)
/// and the one the shell runs as: a policy "never as root" lets Ann in as
/// a plain user and refuses the default, root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_user_is_decided_and_used() {
    sessionkit::ensure_test_user();
    let login = sessionkit::TEST_USER;
    let mut g = start().await;
    let id = g.h.add_agent().await;
    let policy = json!([{"effect": "allow", "action": ["tat:StartSession"], "resource": "*",
        "condition": {"string_not_equal": {"tat:login_user": ["root"]}}}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", policy).await;
    let key = g.keygen("ann_key").await;
    g.import(&ann, &key).await;

    let mut c = g.ssh(&format!("ann+{id}+{login}"), Some(&key), "publickey");
    c.args(["127.0.0.1", "--", "echo", "as-$(id -un)"]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("as-{login}")),
        "{out:?}"
    );

    let mut c = g.ssh(&format!("ann+{id}"), Some(&key), "publickey");
    c.args(["127.0.0.1", "--", "echo", "as-$(id -un)"]);
    let out = output(c).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        err.contains("tat:StartSession") && err.contains("as login user root"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("as-"), "{out:?}");
}

/// A TCP service on the test machine (the instance's agent runs here too):
/// echoes what it reads until EOF, and counts the connections it accepted.
async fn echo_service() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut rd, mut wr) = s.into_split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    (port, accepted)
}

/// `ssh -W HOST:PORT` through the gateway with `input` on its stdin.
async fn stdio_forward(g: &Gw, user: &str, key: &Path, to: &str, input: &[u8]) -> Output {
    let mut c = g.ssh(user, Some(key), "publickey");
    c.arg("-W")
        .arg(to)
        .arg("127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = tokio::io::AsyncWriteExt::write_all(&mut stdin, input).await;
    drop(stdin);
    tokio::time::timeout(T, child.wait_with_output())
        .await
        .expect("ssh -W finished in time")
        .unwrap()
}

/// Port forwards (ssh -W / -L) are their own permission, `tat:ForwardPort`,
/// decided on the instance for the host and port the client names
/// (`tat:forward_host`, `tat:forward_port`): an allowed forward carries
/// bytes both ways through the agent, which connects from the instance;
/// another port or host, a person with only `tat:StartSession`, and a
/// shell for a person with only `tat:ForwardPort` are refused, and nothing
/// is connected for them. The forward is recorded as who, where, to what
/// and how many bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forwards_are_decided_per_host_and_port() {
    let mut g = start().await;
    let id = g.h.add_agent().await;
    let (echo, echo_accepted) = echo_service().await;
    let (other, other_accepted) = echo_service().await;
    let forward = json!([{"effect": "allow", "action": ["tat:ForwardPort"], "resource": ["*"],
        "condition": {"string_equal": {"tat:forward_host": ["127.0.0.1"],
                                       "tat:forward_port": [echo.to_string()]}}}]);
    let sessions = json!([{"effect": "allow", "action": ["tat:StartSession"], "resource": ["*"]}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", forward).await;
    let eve = sub_user(&g.h, "eve", "Eve-pass-123", sessions).await;
    let ann_key = g.keygen("ann_key").await;
    let eve_key = g.keygen("eve_key").await;
    g.import(&ann, &ann_key).await;
    g.import(&eve, &eve_key).await;
    let ann_at = format!("ann+{id}");
    let eve_at = format!("eve+{id}");

    // Allowed: 200 KiB (several chunks, both ways) come back byte for byte.
    let payload: Vec<u8> = (0..200 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let out = stdio_forward(
        &g,
        &ann_at,
        &ann_key,
        &format!("127.0.0.1:{echo}"),
        &payload,
    )
    .await;
    assert!(
        out.stdout == payload,
        "{} bytes back; {:?}",
        out.stdout.len(),
        text(&out.stderr)
    );
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 1);

    // Refused, and nothing connected: another port, the same port by
    // another name, a person allowed shells but not forwards.
    for (who, key, to) in [
        (&ann_at, &ann_key, format!("127.0.0.1:{other}")),
        (&ann_at, &ann_key, format!("localhost:{echo}")),
        // Numeric spellings the resolver would take for 127.0.0.1.
        (&ann_at, &ann_key, format!("127.1:{echo}")),
        (&ann_at, &ann_key, format!("2130706433:{echo}")),
        (&eve_at, &eve_key, format!("127.0.0.1:{echo}")),
    ] {
        let out = stdio_forward(&g, who, key, &to, b"secret\n").await;
        assert!(out.stdout.is_empty(), "{who} -> {to}: {out:?}");
        assert_ne!(out.status.code(), Some(0), "{who} -> {to}: {out:?}");
        assert!(
            text(&out.stderr).contains("administratively prohibited"),
            "{who} -> {to}: {out:?}"
        );
    }
    // An address is decided in its one canonical form: the IPv4-mapped
    // spelling of 127.0.0.1 is 127.0.0.1, and allowed.
    let out = stdio_forward(
        &g,
        &ann_at,
        &ann_key,
        &format!("[::ffff:127.0.0.1]:{echo}"),
        b"v6\n",
    )
    .await;
    assert_eq!(out.stdout, b"v6\n", "{out:?}");
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);
    // A forward grants no shell.
    let mut c = g.ssh(&ann_at, Some(&ann_key), "publickey");
    c.args(["127.0.0.1", "--", "echo", "shell-$((6*7))"]);
    let out = output(c).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("tat:StartSession"), "{out:?}");
    assert!(!text(&out.stdout).contains("shell-42"), "{out:?}");
    assert_eq!(echo_accepted.load(Ordering::SeqCst), 2);
    assert_eq!(other_accepted.load(Ordering::SeqCst), 0);

    // The record: who, where, to what, how much — not the bytes.
    let rec = ended_session(&g.h, &id, |s| {
        s["Command"].as_str().is_some_and(|c| c.contains("forward")) && s["BytesIn"] != 3
    })
    .await;
    assert_eq!(rec["UserName"], "ann", "{rec}");
    assert_eq!(rec["Via"], "ssh", "{rec}");
    assert_eq!(
        rec["Command"],
        format!("port forward to 127.0.0.1:{echo}"),
        "{rec}"
    );
    assert_eq!(rec["BytesIn"], payload.len(), "{rec}");
    assert_eq!(rec["BytesOut"], payload.len(), "{rec}");
    assert_eq!(rec["RecordedBytes"], 0, "{rec}");

    // Every attempt is in the audit trail as ForwardPort, with its target.
    let events =
        g.h.call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["ForwardPort"]}], "Limit": 100}),
        )
        .await;
    let events = events["AuditEventSet"].as_array().unwrap().clone();
    let to_echo = format!("forward/127.0.0.1:{echo}");
    let with = |outcome_ok: bool, resource: &str| {
        events
            .iter()
            .any(|e| (e["Outcome"] == "Success") == outcome_ok && e.to_string().contains(resource))
    };
    assert!(with(true, &to_echo), "{events:?}");
    assert!(
        with(false, &format!("forward/127.0.0.1:{other}")),
        "{events:?}"
    );
    assert_eq!(events.len(), 7, "two allowed, five refused: {events:?}");
}

/// A real ssh-agent holding one key, on a socket of its own; killed when
/// dropped.
struct LocalAgent {
    socket: PathBuf,
    _child: tokio::process::Child,
}

async fn local_agent(g: &Gw, key: &Path) -> LocalAgent {
    let socket = g.dir.path().join("client-agent.sock");
    let child = tokio::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ssh-agent");
    let deadline = tokio::time::Instant::now() + T;
    while !socket.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ssh-agent never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = tokio::process::Command::new("ssh-add")
        .arg(key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "ssh-add: {out:?}");
    LocalAgent {
        socket,
        _child: child,
    }
}

/// Agent forwarding (ssh -A) is its own permission, `tat:ForwardAgent`,
/// decided with the login user: where it is allowed, the session's
/// processes find an agent socket in SSH_AUTH_SOCK (private to the login
/// user) that reaches the client's own ssh-agent, so `ssh-add -l` on the
/// instance lists the client's key; the socket goes with the session.
/// Where it is not (another login user, a person with sessions only) the
/// session still runs, without SSH_AUTH_SOCK, and says why on stderr.
/// Both decisions are in the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_forwarding_is_decided_by_policy() {
    sessionkit::ensure_test_user();
    let login = sessionkit::TEST_USER;
    let mut g = start().await;
    let id = g.h.add_agent().await;
    let policy = json!([
        {"effect": "allow", "action": ["tat:StartSession"], "resource": ["*"]},
        {"effect": "allow", "action": ["tat:ForwardAgent"], "resource": ["*"],
         "condition": {"string_equal": {"tat:login_user": [login]}}}]);
    let sessions = json!([{"effect": "allow", "action": ["tat:StartSession"], "resource": ["*"]}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", policy).await;
    let eve = sub_user(&g.h, "eve", "Eve-pass-123", sessions).await;
    let ann_key = g.keygen("ann_key").await;
    let eve_key = g.keygen("eve_key").await;
    g.import(&ann, &ann_key).await;
    g.import(&eve, &eve_key).await;
    // The key in the client's agent is not one drover knows.
    let held = g.keygen("held_key").await;
    let held_fp = keygen_fingerprint(&held.with_extension("pub")).await;
    let agent = local_agent(&g, &held).await;
    let probe = r#"echo "sock=[$SSH_AUTH_SOCK]"; [ -n "$SSH_AUTH_SOCK" ] && stat -c 'owner=%U mode=%a' "$SSH_AUTH_SOCK" "${SSH_AUTH_SOCK%/*}"; ssh-add -l; echo "ssh-add=$?""#;
    let forwarded = |who: &str, key: &Path, forward: bool| {
        let socket = forward.then_some(agent.socket.as_path());
        let mut c = g.ssh_with_agent(who, Some(key), "publickey", socket);
        c.args(["127.0.0.1", "--", probe]);
        c
    };

    // Allowed: the client's key is listed on the instance, through a
    // socket only the login user may use.
    let out = output(forwarded(&format!("ann+{id}+{login}"), &ann_key, true)).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains(&held_fp), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("ssh-add=0"), "{stdout}");
    assert!(
        stdout.contains(&format!("owner={login} mode=600")),
        "{stdout}"
    );
    // Its directory stays the agent's, so it cannot be swapped.
    assert!(stdout.contains("owner=root mode=711"), "{stdout}");
    assert!(!text(&out.stderr).contains("not granted"), "{out:?}");
    let sock = stdout
        .split("sock=[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .map(PathBuf::from)
        .expect("SSH_AUTH_SOCK was set");
    // It goes with the session.
    let deadline = tokio::time::Instant::now() + T;
    while sock.exists() || sock.parent().is_some_and(Path::exists) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sock:?} left behind"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Refused: as root (the policy's condition), and for a person with
    // sessions only. The session runs without the agent, and says why.
    for (who, key) in [
        (format!("ann+{id}"), &ann_key),
        (format!("eve+{id}+{login}"), &eve_key),
    ] {
        let out = output(forwarded(&who, key, true)).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{who}: {out:?}");
        assert!(stdout.contains("sock=[]"), "{who}: {stdout}");
        assert!(!stdout.contains(&held_fp), "{who}: {stdout}");
        assert!(!stdout.contains("ssh-add=0"), "{who}: {stdout}");
        assert!(
            text(&out.stderr).contains("agent forwarding was not granted"),
            "{who}: {out:?}"
        );
    }
    // Not asked for: no socket and nothing said about it.
    let out = output(forwarded(&format!("ann+{id}+{login}"), &ann_key, false)).await;
    assert!(text(&out.stdout).contains("sock=[]"), "{out:?}");
    assert!(!text(&out.stderr).contains("agent forwarding"), "{out:?}");

    let events =
        g.h.call(
            "DescribeAuditEvents",
            json!({"Filters": [{"Name": "action", "Values": ["StartSession"]}], "Limit": 100}),
        )
        .await;
    let events = events["AuditEventSet"].as_array().unwrap().clone();
    let count = |what: &str| {
        events
            .iter()
            .filter(|e| e.to_string().contains(what))
            .count()
    };
    assert_eq!(count("agent-forward/allow"), 1, "{events:?}");
    assert_eq!(count("agent-forward/deny"), 2, "{events:?}");
}

/// The next server message of `kind` the forged agent receives.
async fn next_of<T>(
    f: &mut common::forger::Forger,
    kind: &str,
    mut pick: impl FnMut(drover::protocol::ServerMsg) -> Option<T>,
) -> T {
    use futures_util::StreamExt;
    loop {
        let m = tokio::time::timeout(T, f.ws.next()).await;
        let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) = m else {
            assert!(m.is_ok(), "no {kind} within {T:?}");
            continue;
        };
        if let Some(v) = pick(serde_json::from_str(&t).unwrap()) {
            return v;
        }
    }
}

/// What an instance can do with a person's agent is what the policy gave,
/// whatever its agent sends. A compromised agent (this test, speaking the
/// real protocol) that asks for agent connections on a session without
/// agent forwarding is refused each time, and the ssh client is never
/// asked to open one; with it, at most 8 connections at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compromised_instance_reaches_no_agent_it_was_not_given() {
    use drover::protocol::{AgentMsg, ServerMsg, SESSION_WINDOW};
    let g = start().await;
    let mut f = common::forger::register(&g.h).await;
    let id = f.instance_id.clone();
    let sessions = json!([{"effect": "allow", "action": ["tat:StartSession"], "resource": ["*"]}]);
    let both = json!([{"effect": "allow", "action": ["tat:StartSession", "tat:ForwardAgent"], "resource": ["*"]}]);
    let ann = sub_user(&g.h, "ann", "Ann-pass-123", sessions).await;
    let bob = sub_user(&g.h, "bob", "Bob-pass-123", both).await;
    let ann_key = g.keygen("ann_key").await;
    let bob_key = g.keygen("bob_key").await;
    g.import(&ann, &ann_key).await;
    g.import(&bob, &bob_key).await;
    let held = g.keygen("held_key").await;
    let agent = local_agent(&g, &held).await;

    for (who, key, granted) in [("ann", &ann_key, false), ("bob", &bob_key, true)] {
        let mut c = g.ssh_with_agent(
            &format!("{who}+{id}"),
            Some(key),
            "publickey",
            Some(&agent.socket),
        );
        c.args(["-v", "127.0.0.1", "--", "true"]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let ssh = c.spawn().unwrap();
        let (channel, forward) = next_of(&mut f, "SessionOpen", |m| match m {
            ServerMsg::SessionOpen {
                channel,
                agent_forward,
                ..
            } => Some((channel, agent_forward)),
            _ => None,
        })
        .await;
        assert_eq!(forward, granted, "{who}");
        f.send(AgentMsg::SessionOpened {
            channel,
            pid: 4242,
            window: SESSION_WINDOW,
        })
        .await;
        for request in 0..9 {
            f.send(AgentMsg::AuthAgentConnect { channel, request })
                .await;
        }
        let mut carried = 0;
        for _ in 0..9 {
            let (session, data) = next_of(&mut f, "AuthAgentChannel", |m| match m {
                ServerMsg::AuthAgentChannel {
                    channel,
                    data_channel,
                    ..
                } => Some((channel, data_channel)),
                _ => None,
            })
            .await;
            assert_eq!(session, channel);
            carried += usize::from(data.is_some());
        }
        assert_eq!(carried, if granted { 8 } else { 0 }, "{who}");
        f.send(AgentMsg::SessionExit {
            channel,
            code: Some(0),
            signal: None,
            reason: String::new(),
        })
        .await;
        let out = tokio::time::timeout(T, ssh.wait_with_output())
            .await
            .expect("ssh ended")
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{who}: {out:?}");
        // No connection the agent asked for reached the client: none was
        // carried for ann, and bob's were never answered by the agent.
        assert!(
            !text(&out.stderr).contains("ctype auth-agent@openssh.com"),
            "{who}: {}",
            text(&out.stderr)
        );
    }
}
