//! Secrets at rest: AEAD (ChaCha20-Poly1305, ring) under a 256-bit key kept
//! in `DATA_DIR/secret.key` (mode 0600). SQLite only ever holds ciphertext;
//! the associated data binds each ciphertext to the row it belongs to, so a
//! value copied into another row does not decrypt.

use std::path::Path;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::ids::random_bytes;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("secret key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("secret key file {0} is not 32 bytes")]
    BadKey(String),
    #[error("ciphertext does not decrypt (wrong key or tampered)")]
    Decrypt,
}

/// Equality whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// PBKDF2-HMAC-SHA256 rounds for console passwords (OWASP's floor is 600k for
/// SHA-256; 150k keeps a login under ~100 ms on a small appliance).
pub const PASSWORD_ITERATIONS: u32 = 150_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// Hashes a console password with a fresh random salt: `salt || hash`.
pub fn hash_password(password: &str) -> Vec<u8> {
    let salt = random_bytes::<SALT_LEN>();
    let mut out = vec![0u8; SALT_LEN + HASH_LEN];
    out[..SALT_LEN].copy_from_slice(&salt);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(),
        &salt,
        password.as_bytes(),
        &mut out[SALT_LEN..],
    );
    out
}

/// Checks a password against `salt || hash` in constant time (ring's verify).
/// A malformed stored value never matches, but costs the same work.
pub fn verify_password_hash(stored: &[u8], password: &str) -> bool {
    let (salt, hash) = if stored.len() == SALT_LEN + HASH_LEN {
        stored.split_at(SALT_LEN)
    } else {
        (&[0u8; SALT_LEN][..], &[0u8; HASH_LEN][..])
    };
    let ok = ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(),
        salt,
        password.as_bytes(),
        hash,
    )
    .is_ok();
    ok && stored.len() == SALT_LEN + HASH_LEN
}

fn iterations() -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(PASSWORD_ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN)
}

pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// Loads the data dir's key, creating it on first use.
    pub fn open(data_dir: &Path) -> Result<SecretBox, CryptoError> {
        let path = data_dir.join("secret.key");
        let name = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = random_bytes::<32>();
                crate::fsutil::write_private(&path, &fresh)
                    .map_err(|e| CryptoError::KeyFile(name.clone(), e))?;
                fresh.to_vec()
            }
            Err(e) => return Err(CryptoError::KeyFile(name, e)),
        };
        Self::from_key(&bytes).ok_or(CryptoError::BadKey(name))
    }

    pub fn from_key(bytes: &[u8]) -> Option<SecretBox> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(SecretBox {
            key: LessSafeKey::new(unbound),
        })
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut out = plaintext.to_vec();
        // Sealing only fails for inputs beyond ChaCha20's 256 GiB limit.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut out,
            )
            .is_err()
        {
            return Vec::new();
        }
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&out);
        sealed
    }

    pub fn open_sealed(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + aead::MAX_TAG_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_binds_context() {
        let b = SecretBox::from_key(&[7u8; 32]).unwrap_or_else(|| unreachable!());
        let sealed = b.seal("key:AKID1", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            b.open_sealed("key:AKID1", &sealed).ok(),
            Some(b"hunter2".to_vec())
        );
        assert!(b.open_sealed("key:AKID2", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(b.open_sealed("key:AKID1", &tampered).is_err());
    }

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        let a = SecretBox::open(dir.path()).unwrap_or_else(|_| unreachable!());
        let sealed = a.seal("x", b"v");
        let b = SecretBox::open(dir.path()).unwrap_or_else(|_| unreachable!());
        assert_eq!(b.open_sealed("x", &sealed).ok(), Some(b"v".to_vec()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secret.key"))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }
}
