//! Ssh public keys as drover accepts them: parsed strictly from OpenSSH's
//! one-line form, limited to the algorithms the gateway verifies (Ed25519,
//! ECDSA on the NIST curves, RSA of at least 2048 bits), and named by the
//! SHA256 fingerprint `ssh-keygen -l` prints. A leaf module: the API stores
//! keys with it and the ssh gateway (`src/ssh/`) finds them with it, so
//! both compute the same fingerprint.

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{HashAlg, PublicKey};

/// Longest key line accepted (an RSA 16384-bit key is about 2.8 KB).
pub const MAX_LINE: usize = 8 * 1024;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the public key is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("the public key is not in OpenSSH's form (\"ssh-ed25519 AAAA... comment\")")]
    Unreadable,
    #[error(
        "the key type {0} is not accepted; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa"
    )]
    Algorithm(String),
    #[error("an RSA key must have at least {MIN_RSA_BITS} bits")]
    WeakRsa,
}

/// A key ready to store: what it is, its name, and its canonical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    pub algorithm: String,
    pub fingerprint: String,
    /// `<algorithm> <base64>`, the comment left out.
    pub line: String,
    /// The comment the line carried (may be empty).
    pub comment: String,
}

/// The SHA256 fingerprint of a key, `SHA256:<base64 without padding>`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Whether the gateway accepts keys of this kind at all.
pub fn accepted(key: &PublicKey) -> Result<(), KeyError> {
    match key.key_data() {
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => Ok(()),
        KeyData::Rsa(rsa) => {
            // The modulus is big-endian with possible leading zero bytes.
            let n = rsa.n().as_bytes();
            let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
            let bits = n.get(first).map_or(0, |b| {
                (n.len() - first - 1) * 8 + (8 - b.leading_zeros() as usize)
            });
            if bits >= MIN_RSA_BITS {
                Ok(())
            } else {
                Err(KeyError::WeakRsa)
            }
        }
        _ => Err(KeyError::Algorithm(key.algorithm().as_str().to_string())),
    }
}

/// Parses one OpenSSH public key line (`authorized_keys` options are not
/// accepted: drover decides what a key may do, not the key line).
pub fn parse(text: &str) -> Result<ParsedKey, KeyError> {
    if text.len() > MAX_LINE {
        return Err(KeyError::TooLong);
    }
    let text = text.trim();
    if text.contains(['\n', '\r']) {
        return Err(KeyError::Unreadable);
    }
    let key = PublicKey::from_openssh(text).map_err(|_| KeyError::Unreadable)?;
    accepted(&key)?;
    let comment = key.comment().as_str_lossy().to_string();
    let mut bare = key.clone();
    bare.set_comment("");
    let line = bare
        .to_openssh()
        .map_err(|_| KeyError::Unreadable)?
        .trim()
        .to_string();
    Ok(ParsedKey {
        algorithm: key.algorithm().as_str().to_string(),
        fingerprint: fingerprint(&key),
        line,
        comment,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Public halves of throwaway keys made with ssh-keygen for these tests.
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2OTCtLnIBy3zfgRB8usXSTS3DUOn81LWMNSkkNf5ur ann@laptop";
    const ED_FP: &str = "SHA256:YA1oCjw4xub96VC0TF1pMqaChnEHGHKxDg3GLeZrdTM";
    const EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNm6gJGK21ZYgJ5ZxyvM0o+yYTb3TCBRuSoCXNZGYt76sWc0a4ky+2h6MmCj3uw59zcD2vunKOCNhrjOuQuyQyk= e";
    const EC_FP: &str = "SHA256:8Jdjp4boea43kb8qBSpCRPM1Alwt7SZpU5mup8AiDA0";
    const RSA_1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDVZ7eNBlfWhVJG888c31i1RxvOvRsMmnsjXdHyk4BYmZLuClpU4SCBaBVxh0zJf/xo9sWQrjjVdbSTQ7V9prP5OXzKHgxA9GKH6xeMpLoCHSrQASS1QBjqUQQq5NNE3yJLdYOPc+GU6ma1M50QJM0jIFbWxsX4Vg9ZrPEsJ1RYdw== weak";

    #[test]
    fn reads_an_ed25519_key_and_names_it_as_ssh_keygen_does() {
        let k = parse(ED).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment, "ann@laptop");
        // What `ssh-keygen -lf` printed for these keys.
        assert_eq!(k.fingerprint, ED_FP);
        assert_eq!(parse(EC).unwrap().fingerprint, EC_FP);
        assert!(k.line.starts_with("ssh-ed25519 AAAA") && !k.line.contains("ann"));
        // The same key without its comment is the same key.
        assert_eq!(parse(&k.line).unwrap().fingerprint, k.fingerprint);
    }

    #[test]
    fn refuses_what_is_not_one_key() {
        assert_eq!(parse("hello"), Err(KeyError::Unreadable));
        assert_eq!(parse(""), Err(KeyError::Unreadable));
        assert_eq!(parse(&format!("{ED}\n{ED}")), Err(KeyError::Unreadable));
        assert_eq!(
            parse(&format!("command=\"x\" {ED}")),
            Err(KeyError::Unreadable)
        );
        assert_eq!(parse(&"A".repeat(MAX_LINE + 1)), Err(KeyError::TooLong));
        assert_eq!(parse(RSA_1024), Err(KeyError::WeakRsa));
    }
}
