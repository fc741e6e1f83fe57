//! How the ssh gateway (`src/ssh/`) learns who is signing in, with the
//! same identities and the same rules as the API and the console:
//!
//! * a public key counts only if its person registered it
//!   (ImportSshPublicKey); the stored key line is compared in constant
//!   time, and an unknown person answers exactly like a wrong key;
//! * a password is a console password: the same per-source sign-in
//!   throttle and bounded PBKDF2 (`abuse::LoginGuard`), the same lockout
//!   after failures, refused without console login or while a reset is
//!   due (ssh cannot ask for a new password);
//! * every sign-in, and every failed one, leaves an audit row (failures
//!   without a principal through the per-source summary of `audit::record`).

use std::net::SocketAddr;

use russh::keys::PublicKey;

use super::audit::{self, Trail};
use super::console_root;
use super::error::{ApiError, Code};
use super::{Api, Principal};
use crate::store::root_login::ROOT;
use crate::store::users::LoginError;
use crate::timefmt::now_ms;

/// What the console shows about the ssh gateway (`/console/ssh-info`),
/// set when the gateway starts.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SshInfo {
    /// The address the gateway listens on.
    pub address: String,
    pub port: u16,
    /// `SHA256:<base64>` of the host key, as ssh prints it.
    pub fingerprint: String,
    /// The host key line, for a known_hosts file.
    pub host_key: String,
}

/// How a person proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PublicKey,
    Password,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::PublicKey => "publickey",
            Method::Password => "password",
        }
    }
}

/// The user id keys are stored under for a sign-in name.
fn user_id_of(c: &rusqlite::Connection, person: &str) -> crate::store::Result<Option<String>> {
    if person == ROOT {
        return Ok(Some(ROOT.to_string()));
    }
    Ok(crate::store::users::get_by_name(c, person)?.map(|u| u.uin))
}

/// The stored key of `person` that is this very key, compared in full.
fn matching_key(
    c: &rusqlite::Connection,
    person: &str,
    key: &PublicKey,
) -> crate::store::Result<Option<(String, String)>> {
    let Some(user_id) = user_id_of(c, person)? else {
        return Ok(None);
    };
    let fp = crate::sshkey::fingerprint(key);
    let Some(stored) = crate::store::ssh_keys::find(c, &user_id, &fp)? else {
        return Ok(None);
    };
    let mut bare = key.clone();
    bare.set_comment("");
    let offered = bare.to_openssh().unwrap_or_default();
    let same = crate::crypto::ct_eq(offered.trim().as_bytes(), stored.public_key.as_bytes());
    Ok(same.then_some((user_id, stored.key_id)))
}

impl Api {
    /// Whether `person` registered this key. Answers the client's "would
    /// you take this key?" probe; changes nothing.
    pub async fn ssh_key_offered(&self, person: &str, key: &PublicKey) -> bool {
        let (person, key) = (person.to_string(), key.clone());
        self.store
            .read(move |c| matching_key(c, &person, &key))
            .await
            .ok()
            .flatten()
            .is_some()
    }

    /// Signs `person` in with a key whose signature russh has verified:
    /// the principal, if the key is (still) theirs.
    pub async fn ssh_sign_in_key(
        &self,
        person: &str,
        key: &PublicKey,
        peer: SocketAddr,
    ) -> Option<Principal> {
        let (who, k) = (person.to_string(), key.clone());
        let now = now_ms();
        let found = self
            .store
            .write(move |c| {
                let Some((user_id, key_id)) = matching_key(c, &who, &k)? else {
                    return Ok(None);
                };
                crate::store::ssh_keys::touch(c, &key_id, now)?;
                console_root::principal(c, &user_id)
            })
            .await;
        let principal = match found {
            Ok(Some(mut p)) => {
                console_root::fill_account(self, &mut p);
                Some(p)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("ssh sign-in lookup failed: {e}");
                None
            }
        };
        let fp = crate::sshkey::fingerprint(key);
        self.ssh_audit_sign_in(peer, principal.as_ref(), Method::PublicKey, &fp)
            .await;
        principal
    }

    /// Signs `person` in with their console password, exactly as
    /// `/console/login` checks it.
    pub async fn ssh_sign_in_password(
        &self,
        person: &str,
        password: &str,
        peer: SocketAddr,
    ) -> Result<Principal, ApiError> {
        let result = self.check_password(person, password, peer).await;
        self.ssh_audit_sign_in(peer, result.as_ref().ok(), Method::Password, "")
            .await;
        result
    }

    async fn check_password(
        &self,
        person: &str,
        password: &str,
        peer: SocketAddr,
    ) -> Result<Principal, ApiError> {
        let now = now_ms();
        let lookup = person.to_string();
        let facts = self
            .store
            .read(move |c| console_root::login_facts(c, &lookup))
            .await?;
        let stored = facts
            .as_ref()
            .and_then(|f| f.password_hash.clone())
            .unwrap_or_default();
        // Hashing is bounded per source and in total, as for the console.
        let ticket = self.abuse.login.enter(peer.ip(), now).await?;
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            crate::crypto::verify_password_hash(&stored, &password)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        if ok {
            ticket.succeeded();
        }
        drop(ticket);
        let failed = || {
            ApiError::new(
                Code::AuthFailureLoginFailed,
                "the user name or password is wrong",
            )
        };
        let Some(f) = facts else {
            return Err(failed());
        };
        if f.locked_until_ms > now {
            return Err(failed());
        }
        let uin = f.uin.clone();
        let outcome = self
            .store
            .write(move |c| {
                match console_root::record_login(c, &uin, ok, now) {
                    Ok(()) => {}
                    Err(LoginError::Store(e)) => return Err(e),
                    Err(_) => return Ok(None),
                }
                // A password that must be changed first opens nothing:
                // ssh has no way to set the new one.
                if f.need_reset_password {
                    return Ok(None);
                }
                console_root::principal(c, &uin)
            })
            .await?;
        let mut p = outcome.ok_or_else(failed)?;
        console_root::fill_account(self, &mut p);
        Ok(p)
    }

    async fn ssh_audit_sign_in(
        &self,
        peer: SocketAddr,
        who: Option<&Principal>,
        method: Method,
        detail: &str,
    ) {
        let trail = Trail {
            principal: who.map(|p| p.user_id.clone()).unwrap_or_default(),
            service: "ssh".into(),
            resources: [method.name(), detail]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
                .collect(),
            decision: if who.is_some() { "allow" } else { "" }.into(),
            ..Default::default()
        };
        let outcome = if who.is_some() {
            "Success".to_string()
        } else {
            Code::AuthFailureLoginFailed.to_string()
        };
        let event = trail.into_event(&crate::ids::request_id(), peer, "SshLogin", outcome);
        audit::record(self, event).await;
    }

    /// Decides `tat:StartSession` for a signed-in person (the same decision
    /// as the console's terminal, with the policies of this moment) and
    /// opens the session; the attempt is audited as `StartSession` either
    /// way. The error's message is fit to show the person.
    pub async fn ssh_open_session(
        &self,
        p: &Principal,
        plan: SshPlan,
        peer: SocketAddr,
    ) -> Result<crate::session::SessionIo, ApiError> {
        use crate::session::{SessionPlan, Via, Who};
        let session_plan = SessionPlan {
            instance_id: plan.instance_id,
            login_user: plan.login_user,
            command: plan.command,
            cols: plan.cols,
            rows: plan.rows,
            via: Via::Ssh,
            client: peer.to_string(),
            who: Who {
                user_id: p.user_id.clone(),
                name: p.name.clone(),
                uin: p.uin.clone(),
            },
            // As OpenSSH's own server: an exec without a pty request gets
            // pipes (byte-exact output, stdin until EOF).
            exec_without_pty: !plan.pty,
            // `decide` sets it from the server's settings and the policy.
            record_input: false,
            forward: plan.forward,
            agent_forward: plan.agent_forward,
        };
        self.open_session(p, session_plan, "ssh", peer).await
    }
}

/// What an ssh channel asks to run, before it is decided.
#[derive(Debug, Clone)]
pub struct SshPlan {
    pub instance_id: String,
    pub login_user: String,
    /// The exec request's command; `None` for a login shell.
    pub command: Option<String>,
    pub cols: u16,
    pub rows: u16,
    /// Whether the client asked for a pty.
    pub pty: bool,
    /// A port forward (ssh -L / -W) instead of a shell or command.
    pub forward: Option<crate::session::Forward>,
    /// The client asked for agent forwarding (ssh -A); decided as
    /// `tat:ForwardAgent`.
    pub agent_forward: bool,
}
