//! Who this agent is: its Ed25519 key, the instance id the server gave it,
//! how it trusts the server, and the machine facts it reports.
//!
//! Guarantees: the key and state live in 0600 files written atomically in a
//! directory only the agent's user can list; the identity is the key, never
//! the machine id (cloned images share machine ids); signatures always
//! cover the server's fresh nonce, so a captured handshake cannot be
//! replayed.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::protocol::{self, AgentMsg, MachineInfo, PROTOCOL_VERSION};
use crate::tls::Trust;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a valid Ed25519 PKCS#8 key")]
    BadKey(PathBuf),
    #[error("{path}: {source}")]
    BadState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("generating a key failed")]
    KeyGen,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// DIR/state.json: what a registered agent remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub instance_id: String,
    pub server: String,
    /// Server certificate SHA-256 (hex) when trust is by pinning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// CA bundle when trust is by CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> Result<Option<State>, IdentityError> {
        let path = State::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| IdentityError::BadState { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = State::path(dir);
        let json = serde_json::to_vec_pretty(self).map_err(|source| IdentityError::BadState {
            path: path.clone(),
            source,
        })?;
        fsutil::write_private(&path, &json).map_err(io_at(&path))
    }

    pub fn trust(&self) -> Option<Trust> {
        if let Some(ca) = &self.ca_file {
            return Some(Trust::CaFile(ca.clone()));
        }
        self.fingerprint
            .as_deref()
            .and_then(|fp| Trust::pinned_hex(fp).ok())
    }
}

/// The agent's signing key.
pub struct Key {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.public_b64())
    }
}

impl Key {
    /// Loads DIR/identity.pkcs8, generating it on first use. An existing key
    /// is reused even if registration never finished, so retries present
    /// the same identity.
    pub fn load_or_generate(dir: &Path) -> Result<Key, IdentityError> {
        let path = dir.join("identity.pkcs8");
        let pkcs8 = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| IdentityError::KeyGen)?;
                fsutil::write_private(&path, doc.as_ref()).map_err(io_at(&path))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        let pair =
            Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| IdentityError::BadKey(path.clone()))?;
        Ok(Key { pair })
    }

    /// Raw 32-byte public key, base64.
    pub fn public_b64(&self) -> String {
        B64.encode(self.pair.public_key().as_ref())
    }

    fn sign_b64(&self, msg: &[u8]) -> String {
        B64.encode(self.pair.sign(msg).as_ref())
    }

    /// The `Register` answer to `nonce`.
    pub fn register(
        &self,
        nonce: &str,
        secret: &str,
        machine: MachineInfo,
        tags: Vec<protocol::AgentTag>,
    ) -> AgentMsg {
        let public_key = self.public_b64();
        let signature = self.sign_b64(&protocol::auth_message(
            nonce,
            &protocol::register_claim(&public_key),
        ));
        AgentMsg::Register {
            protocol: PROTOCOL_VERSION,
            register_code: secret.to_string(),
            public_key,
            signature,
            machine,
            tags,
            features: protocol::agent_features(),
            max_tasks: None,
        }
    }

    /// The `Hello` answer to `nonce`.
    pub fn hello(
        &self,
        nonce: &str,
        instance_id: &str,
        machine: MachineInfo,
        known_tasks: Vec<String>,
    ) -> AgentMsg {
        let signature = self.sign_b64(&protocol::auth_message(
            nonce,
            &protocol::hello_claim(instance_id),
        ));
        AgentMsg::Hello {
            protocol: PROTOCOL_VERSION,
            instance_id: instance_id.to_string(),
            signature,
            machine,
            known_tasks,
            features: protocol::agent_features(),
            max_tasks: None,
        }
    }
}

/// Machine facts for Register/Hello; `local_ip` is the address of the
/// connected socket, i.e. the one the server actually sees us from.
pub fn machine_info(local_ip: std::net::IpAddr) -> MachineInfo {
    MachineInfo {
        hostname: crate::tls::hostname().unwrap_or_default(),
        machine_id: std::fs::read_to_string("/etc/machine-id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        local_ip: local_ip.to_string(),
        system_name: "Linux".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        command_types: super::launch::supported_command_types(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn key_is_stable_private_and_signs_the_protocol_messages() {
        let tmp = tempfile::tempdir().unwrap();
        let k1 = Key::load_or_generate(tmp.path()).unwrap();
        let k2 = Key::load_or_generate(tmp.path()).unwrap();
        assert_eq!(k1.public_b64(), k2.public_b64());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(tmp.path().join("identity.pkcs8"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let pk = B64.decode(k1.public_b64()).unwrap();
        assert_eq!(pk.len(), 32);
        let AgentMsg::Register {
            signature,
            public_key,
            ..
        } = k1.register("bm9uY2U=", "sec", MachineInfo::default(), Vec::new())
        else {
            unreachable!()
        };
        let msg = protocol::auth_message("bm9uY2U=", &protocol::register_claim(&public_key));
        UnparsedPublicKey::new(&ED25519, &pk)
            .verify(&msg, &B64.decode(signature).unwrap())
            .unwrap();
        let AgentMsg::Hello { signature, .. } =
            k1.hello("bjI=", "mi-1", MachineInfo::default(), vec![])
        else {
            unreachable!()
        };
        let msg = protocol::auth_message("bjI=", &protocol::hello_claim("mi-1"));
        UnparsedPublicKey::new(&ED25519, &pk)
            .verify(&msg, &B64.decode(signature).unwrap())
            .unwrap();
    }

    #[test]
    fn state_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(State::load(tmp.path()).unwrap(), None);
        let s = State {
            instance_id: "mi-1".into(),
            server: "https://h:1".into(),
            fingerprint: Some("ab".repeat(32)),
            ca_file: None,
        };
        s.save(tmp.path()).unwrap();
        assert_eq!(State::load(tmp.path()).unwrap(), Some(s.clone()));
        assert!(matches!(s.trust(), Some(Trust::Pinned(_))));
    }
}
