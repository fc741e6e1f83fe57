//! The replay guard: what a signature may be used for once it has been seen.
//!
//! The official SDKs sign only `content-type` and `host` in TC3, so neither
//! X-TC-Action nor X-TC-Version is covered: a captured `EnableInvoker
//! {InvokerId}` could otherwise be sent again as `DeleteInvoker`, and a
//! signed RunCommand sent twice within the timestamp window would run twice.
//! So every verified signature is remembered, until its timestamp leaves the
//! window, with what it was first used for (action, version, body, query):
//!
//! * on the connection it was first used on, the same signature is served
//!   again whatever it asks for: only the client that made that TLS
//!   connection can send on it, and the SDKs reuse one connection for a
//!   script's calls, so two different calls with byte-identical parameters
//!   in the same second (which share a signature) keep working;
//! * on any other connection, a signature first used for a read-only
//!   action (Describe*, List*, …) serves read-only actions again, because a
//!   polling client may open a new connection per request and several
//!   tools of one key send the same `{}` within a second; a signature that
//!   is, or would become, a mutating request is refused: re-bound to
//!   another action, version or body, or replayed.
//!
//! A first use that is itself forged (a captured request re-bound and sent
//! before the original arrives) cannot be told apart by any server; the
//! guard closes replays and re-binding after the original, and drover's own
//! client signs X-TC-Action and a nonce so its requests are bound outright.
//!
//! Only requests whose signature verified are remembered, so an anonymous
//! flood cannot fill the memory. A key holder can: each SecretId may hold at
//! most `per_key` live entries and the whole guard `max_entries`; past
//! either, new signatures are refused (fail closed) rather than forgotten,
//! because forgetting would reopen the replay.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use ring::digest;

/// What a signature was first used for, as a SHA-256 digest.
pub type Binding = [u8; 32];

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("this signature was already used for another action, version or body")]
    Rebound,
    #[error("this signed request was already served; a changing request is served once")]
    Replayed,
    #[error("too many signed requests within the timestamp window")]
    Full,
}

/// The TLS connection a request arrived on (server-assigned, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId(pub u64);

struct Entry {
    binding: Binding,
    read_only: bool,
    conn: Option<ConnId>,
    /// Which key's quota the entry counts against (a digest of the SecretId).
    owner: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<[u8; 32], Entry>,
    /// (expiry, key) in expiry order, so expired entries leave cheaply.
    by_expiry: BTreeSet<(i64, [u8; 32])>,
    per_key: HashMap<u64, usize>,
}

pub struct ReplayGuard {
    inner: Mutex<Inner>,
    max_entries: usize,
    per_key: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        // About 200 bytes an entry (196 measured at 400,000 entries): at
        // most about 80 MB, and one key may sign 150,000 distinct requests
        // in 5 minutes (500/s).
        Self::with_limits(400_000, 150_000)
    }
}

/// The digest that binds a signature to what it was used for.
pub fn binding(action: &str, version: &str, method: &str, query: &str, body: &[u8]) -> Binding {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        action.as_bytes(),
        version.as_bytes(),
        method.as_bytes(),
        query.as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.update(digest::digest(&digest::SHA256, body).as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Actions that change nothing, which a polling client may repeat verbatim.
/// Anything not listed here counts as mutating (fail closed).
pub fn is_read_only(action: &str) -> bool {
    ["Describe", "Get", "List", "Preview", "Simulate"]
        .iter()
        .any(|p| action.starts_with(p))
}

impl ReplayGuard {
    pub fn with_limits(max_entries: usize, per_key: usize) -> ReplayGuard {
        ReplayGuard {
            inner: Mutex::new(Inner::default()),
            max_entries,
            per_key,
        }
    }

    /// Admits or refuses one verified request. `expires` is the Unix second
    /// after which its timestamp is outside the window anyway.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &self,
        conn: Option<ConnId>,
        secret_id: &str,
        signature: &str,
        binding: Binding,
        read_only: bool,
        expires: i64,
        now: i64,
    ) -> Result<(), ReplayError> {
        let key = {
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(secret_id.as_bytes());
            ctx.update(b"\0");
            ctx.update(signature.as_bytes());
            let mut k = [0u8; 32];
            k.copy_from_slice(ctx.finish().as_ref());
            k
        };
        // A poisoned lock only means another request panicked mid-update;
        // the maps are still consistent enough to refuse or admit by.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.expire(now);
        if let Some(e) = g.entries.get(&key) {
            if conn.is_some() && e.conn == conn {
                return Ok(());
            }
            // Reads stay reads: a read-only signature may serve any read
            // again (pollers; several tools of one key sending `{}` in the
            // same second), but never anything that changes state.
            if e.read_only && read_only {
                return Ok(());
            }
            if e.binding != binding {
                return Err(ReplayError::Rebound);
            }
            return Err(ReplayError::Replayed);
        }
        let owner = {
            let d = digest::digest(&digest::SHA256, secret_id.as_bytes());
            let mut b = [0u8; 8];
            b.copy_from_slice(&d.as_ref()[..8]);
            u64::from_be_bytes(b)
        };
        let held = g.per_key.get(&owner).copied().unwrap_or(0);
        if held >= self.per_key || g.entries.len() >= self.max_entries {
            return Err(ReplayError::Full);
        }
        g.entries.insert(
            key,
            Entry {
                binding,
                read_only,
                conn,
                owner,
            },
        );
        g.by_expiry.insert((expires, key));
        *g.per_key.entry(owner).or_insert(0) += 1;
        Ok(())
    }

    /// Live entries (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn expire(&mut self, now: i64) {
        while let Some(&(exp, key)) = self.by_expiry.first() {
            if exp >= now {
                break;
            }
            self.by_expiry.remove(&(exp, key));
            if let Some(e) = self.entries.remove(&key) {
                if let Some(n) = self.per_key.get_mut(&e.owner) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.per_key.remove(&e.owner);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(action: &str) -> Binding {
        binding(
            action,
            "2020-10-28",
            "POST",
            "",
            br#"{"InvokerId":"ivk-1"}"#,
        )
    }

    #[test]
    fn rebinding_and_replay_are_refused_reads_repeat() {
        let g = ReplayGuard::default();
        assert_eq!(
            g.admit(None, "k", "s1", b("EnableInvoker"), false, 100, 0),
            Ok(())
        );
        assert_eq!(
            g.admit(None, "k", "s1", b("DeleteInvoker"), false, 100, 1),
            Err(ReplayError::Rebound)
        );
        assert_eq!(
            g.admit(None, "k", "s1", b("EnableInvoker"), false, 100, 1),
            Err(ReplayError::Replayed)
        );
        assert_eq!(
            g.admit(None, "k", "s2", b("DescribeInvokers"), true, 100, 1),
            Ok(())
        );
        assert_eq!(
            g.admit(None, "k", "s2", b("DescribeInvokers"), true, 100, 1),
            Ok(())
        );
        assert_eq!(
            g.admit(None, "k", "s2", b("DeleteInvoker"), false, 100, 1),
            Err(ReplayError::Rebound)
        );
        // A read's signature cannot become a write with the same binding either.
        assert_eq!(
            g.admit(None, "k", "s2", b("DescribeInvokers"), false, 100, 1),
            Err(ReplayError::Replayed)
        );
        // The same signature string under another key is another request.
        assert_eq!(
            g.admit(None, "k2", "s1", b("DeleteInvoker"), false, 100, 1),
            Ok(())
        );
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn the_first_connection_may_reuse_a_signature() {
        let g = ReplayGuard::default();
        let (c1, c2) = (Some(ConnId(1)), Some(ConnId(2)));
        assert_eq!(
            g.admit(c1, "k", "s", b("DisableInvoker"), false, 100, 0),
            Ok(())
        );
        assert_eq!(
            g.admit(c1, "k", "s", b("EnableInvoker"), false, 100, 0),
            Ok(())
        );
        assert_eq!(
            g.admit(c2, "k", "s", b("DeleteInvoker"), false, 100, 0),
            Err(ReplayError::Rebound)
        );
        assert_eq!(
            g.admit(c2, "k", "s", b("DisableInvoker"), false, 100, 0),
            Err(ReplayError::Replayed)
        );
        assert_eq!(
            g.admit(None, "k", "s", b("DisableInvoker"), false, 100, 0),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn entries_leave_after_their_window_and_limits_fail_closed() {
        let g = ReplayGuard::with_limits(4, 2);
        assert_eq!(g.admit(None, "a", "1", b("X"), false, 10, 0), Ok(()));
        assert_eq!(g.admit(None, "a", "2", b("X"), false, 20, 0), Ok(()));
        assert_eq!(
            g.admit(None, "a", "3", b("X"), false, 20, 0),
            Err(ReplayError::Full)
        );
        assert_eq!(g.admit(None, "b", "1", b("X"), false, 20, 0), Ok(()));
        assert_eq!(g.admit(None, "c", "1", b("X"), false, 20, 0), Ok(()));
        assert_eq!(
            g.admit(None, "d", "1", b("X"), false, 20, 0),
            Err(ReplayError::Full)
        );
        // Once "a"/"1" has expired, its slot is free again, and only then.
        assert_eq!(
            g.admit(None, "a", "3", b("X"), false, 20, 10),
            Err(ReplayError::Full)
        );
        assert_eq!(g.admit(None, "a", "3", b("X"), false, 20, 11), Ok(()));
        assert_eq!(g.len(), 4);
        assert_eq!(g.admit(None, "z", "z", b("X"), false, 30, 21), Ok(()));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn read_only_actions() {
        for a in [
            "DescribeInvocations",
            "ListUsers",
            "GetUser",
            "PreviewReplacedCommandContent",
        ] {
            assert!(is_read_only(a), "{a}");
        }
        for a in [
            "RunCommand",
            "DeleteInvoker",
            "EnableInvoker",
            "",
            "describeX",
        ] {
            assert!(!is_read_only(a), "{a}");
        }
    }
}
