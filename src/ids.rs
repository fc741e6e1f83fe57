//! Resource identifiers in TAT's shape: a prefix and 8 lowercase
//! alphanumerics (`cmd-1a2b3c4d`), drawn from the system CSPRNG.

use ring::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SystemRandom only fails if the OS RNG is unavailable, which leaves
    // nothing sensible to do but stop.
    if SystemRandom::new().fill(&mut out).is_err() {
        std::process::abort();
    }
    out
}

/// A new id such as `inv-0k3j9x2a`.
pub fn new_id(prefix: &str) -> String {
    let raw = random_bytes::<8>();
    let mut s = String::with_capacity(prefix.len() + 9);
    s.push_str(prefix);
    s.push('-');
    for b in raw {
        // 36 does not divide 256, but a bias of <1% in ids is harmless.
        s.push(ALPHABET[(b as usize) % ALPHABET.len()] as char);
    }
    s
}

/// True when `id` has the given prefix and 8 lowercase alphanumerics.
pub fn is_valid(id: &str, prefix: &str) -> bool {
    let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    rest.len() == 8 && rest.bytes().all(|b| ALPHABET.contains(&b))
}

/// A random token of `n` (at most 64) ASCII letters and digits, as access
/// keys use (`AKID` + 32 for a SecretId, 32 for a SecretKey).
pub fn random_token(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    random_bytes::<64>()
        .iter()
        .take(n)
        .map(|b| A[(*b as usize) % A.len()] as char)
        .collect()
}

/// A request id in UUID form, as TAT returns.
pub fn request_id() -> String {
    let b = random_bytes::<16>();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_validate() {
        let id = new_id("cmd");
        assert!(is_valid(&id, "cmd"), "{id}");
        assert!(!is_valid(&id, "inv"));
        assert!(!is_valid("cmd-ABCDEFGH", "cmd"));
        assert!(!is_valid("cmd-abc", "cmd"));
        assert_ne!(new_id("cmd"), new_id("cmd"));
    }
}
