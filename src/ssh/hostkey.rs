//! The gateway's host key: an Ed25519 key generated on first start into
//! `DATA_DIR/ssh/ssh_host_ed25519_key` (mode 0600, OpenSSH's private key
//! format, so `ssh-keygen -lf` reads it) with its `.pub` beside it. Its
//! SHA256 fingerprint is what people compare when ssh first asks about the
//! host; the server prints it at start and the console shows it.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

use super::SshError;

/// The host key and how people recognise it.
pub struct HostKey {
    pub key: PrivateKey,
    /// `SHA256:<base64>`, as ssh prints it.
    pub fingerprint: String,
    /// The public key line (`ssh-ed25519 AAAA...`), for known_hosts files.
    pub public_line: String,
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ssh").join("ssh_host_ed25519_key")
}

/// Loads the host key, generating it first if there is none yet. A key
/// file that exists but cannot be read stops the start: a silently new host
/// key would look like an attack to every client that knew the old one.
pub fn load_or_generate(data_dir: &Path) -> Result<HostKey, SshError> {
    let path = key_path(data_dir);
    let key = match std::fs::read(&path) {
        Ok(pem) => PrivateKey::from_openssh(&pem).map_err(|e| SshError::HostKey {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(&path)?,
        Err(e) => {
            return Err(SshError::HostKey {
                path,
                reason: e.to_string(),
            })
        }
    };
    let public = key.public_key();
    let public_line = public
        .to_openssh()
        .map_err(|e| SshError::HostKey {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .trim()
        .to_string();
    Ok(HostKey {
        fingerprint: crate::sshkey::fingerprint(public),
        public_line,
        key,
    })
}

fn generate(path: &Path) -> Result<PrivateKey, SshError> {
    let fail = |reason: String| SshError::HostKey {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir).map_err(|e| fail(e.to_string()))?;
    }
    // The seed comes from the system CSPRNG (ring), like every other
    // secret drover makes.
    let seed = Seed(crate::ids::random_bytes::<32>());
    let pair = Ed25519Keypair::from_seed(&seed.0);
    let key = PrivateKey::new(KeypairData::Ed25519(pair), "drover ssh gateway")
        .map_err(|e| fail(e.to_string()))?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
    crate::fsutil::write_private(path, pem.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::write(path.with_extension("pub"), format!("{}\n", public.trim()));
    Ok(key)
}

/// The key's seed, wiped when dropped (the key itself lives in the file
/// and in `PrivateKey`, which wipes its own copy).
struct Seed([u8; 32]);

impl Drop for Seed {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let mode = std::fs::metadata(key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(first.fingerprint.starts_with("SHA256:"));
        assert!(first.public_line.starts_with("ssh-ed25519 "));
        let again = load_or_generate(dir.path()).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint);
        // A damaged key file stops the start instead of being replaced.
        std::fs::write(key_path(dir.path()), b"garbage").unwrap();
        assert!(load_or_generate(dir.path()).is_err());
    }
}
