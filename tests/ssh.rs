//! The ssh gateway against Debian's OpenSSH client (`ssh`, `ssh-keygen`):
//! a real server with the gateway on 127.0.0.1:0, real sub-users whose
//! keys are imported through the API, real agents running real shells.
//! Every ssh call pins the gateway's host key in its own known_hosts file
//! (StrictHostKeyChecking=yes), so a test that gets in also proves the key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
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
    let h = Harness::start().await;
    let running = h.server.as_ref().unwrap();
    let gw = drover::ssh::start(
        running.api.clone(),
        &h.data_dir(),
        drover::ssh::Settings::new("127.0.0.1:0"),
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
        let mut c = tokio::process::Command::new("ssh");
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
