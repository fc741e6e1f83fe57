//! Bounds on what unauthenticated callers cost the server.
//!
//! * `LoginGuard`: console sign-in runs PBKDF2, slow on purpose. Each
//!   source gets a small bucket of attempts (refilled over time; a
//!   successful sign-in gives its attempt back), and only a few hashes run
//!   at once with a short queue behind them, so a flood of bad sign-ins
//!   cannot take the CPU from everyone else. Over either bound the answer is
//!   `RequestLimitExceeded` at once, without hashing.
//! * `PreAuthAudit`: requests that fail before authentication are audited
//!   in detail up to a few per source per minute; the rest of that minute is
//!   summed up in one row per source ("N more ..."), so evidence is kept
//!   while an attacker cannot fill the audit log with rows, or with strings
//!   of their choosing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ApiError, Code};
use crate::store::audit::AuditEvent;

/// Sign-in attempts a source may make in a burst.
const LOGIN_BURST: f64 = 20.0;
/// One attempt comes back every this many milliseconds.
const LOGIN_REFILL_MS: f64 = 3_000.0;
/// Sign-ins waiting for a hashing slot before further ones are refused.
const LOGIN_QUEUE: usize = 16;
/// Sources tracked at once; past this the fullest buckets are forgotten.
const MAX_SOURCES: usize = 10_000;

/// Pre-authentication failures audited in detail per source and minute.
const PRE_AUTH_DETAIL: u32 = 30;
const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Per-source sign-in throttle and bounded concurrent password hashing.
#[derive(Debug)]
pub struct LoginGuard {
    hashing: Arc<Semaphore>,
    waiting: AtomicUsize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A slot to hash one password; give it back with `succeeded` on success.
pub struct LoginTicket<'a> {
    guard: &'a LoginGuard,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl LoginTicket<'_> {
    /// A successful sign-in does not count against its source.
    pub fn succeeded(&self) {
        if let Ok(mut b) = self.guard.buckets.lock() {
            if let Some(b) = b.get_mut(&self.ip) {
                b.tokens = (b.tokens + 1.0).min(LOGIN_BURST);
            }
        }
    }
}

fn throttled() -> ApiError {
    ApiError::new(
        Code::RequestLimitExceeded,
        "too many sign-in attempts; try again later",
    )
}

impl Default for LoginGuard {
    fn default() -> Self {
        // Half the cores (at least one) may hash; the rest serve everyone else.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        LoginGuard {
            hashing: Arc::new(Semaphore::new((cores / 2).max(1))),
            waiting: AtomicUsize::new(0),
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginGuard {
    /// Takes one attempt from `ip`'s bucket and waits for a hashing slot,
    /// or refuses at once.
    pub async fn enter(&self, ip: IpAddr, now_ms: i64) -> Result<LoginTicket<'_>, ApiError> {
        {
            let mut map = self.buckets.lock().map_err(|_| ApiError::internal())?;
            if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
                // Forget sources whose bucket has refilled: they lose nothing.
                map.retain(|_, b| refill(*b, now_ms).tokens < LOGIN_BURST);
                if map.len() >= MAX_SOURCES {
                    return Err(throttled());
                }
            }
            let b = map.entry(ip).or_insert(Bucket {
                tokens: LOGIN_BURST,
                at_ms: now_ms,
            });
            *b = refill(*b, now_ms);
            if b.tokens < 1.0 {
                return Err(throttled());
            }
            b.tokens -= 1.0;
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= LOGIN_QUEUE {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(throttled());
        }
        let permit = self.hashing.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| ApiError::internal())?;
        Ok(LoginTicket {
            guard: self,
            ip,
            _permit: permit,
        })
    }
}

fn refill(b: Bucket, now_ms: i64) -> Bucket {
    let gained = (now_ms - b.at_ms).max(0) as f64 / LOGIN_REFILL_MS;
    Bucket {
        tokens: (b.tokens + gained).min(LOGIN_BURST),
        at_ms: now_ms.max(b.at_ms),
    }
}

#[derive(Debug, Clone)]
struct Window {
    start_ms: i64,
    seen: u32,
    last_outcome: String,
}

/// Aggregation of pre-authentication failures per source and minute.
#[derive(Debug, Default)]
pub struct PreAuthAudit {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl PreAuthAudit {
    /// Whether this failure is written in detail; otherwise it is counted.
    /// Also returns the summaries of windows that have ended.
    pub fn note(&self, ip: IpAddr, outcome: &str, now_ms: i64) -> (bool, Vec<AuditEvent>) {
        let Ok(mut map) = self.windows.lock() else {
            return (true, Vec::new());
        };
        let mut done = take_ended(&mut map, now_ms);
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            // Too many sources at once: close every window now, so the
            // map stays bounded and nothing counted is lost.
            done.extend(take_ended(&mut map, i64::MAX));
        }
        let w = map.entry(ip).or_insert(Window {
            start_ms: now_ms,
            seen: 0,
            last_outcome: String::new(),
        });
        w.seen += 1;
        w.last_outcome = outcome.chars().take(64).collect();
        (w.seen <= PRE_AUTH_DETAIL, done)
    }

    /// Summaries of the windows ended by `now_ms` (all of them with
    /// `i64::MAX`, at shutdown).
    pub fn flush(&self, now_ms: i64) -> Vec<AuditEvent> {
        match self.windows.lock() {
            Ok(mut map) => take_ended(&mut map, now_ms),
            Err(_) => Vec::new(),
        }
    }
}

fn take_ended(map: &mut HashMap<IpAddr, Window>, now_ms: i64) -> Vec<AuditEvent> {
    let ended: Vec<IpAddr> = map
        .iter()
        .filter(|(_, w)| now_ms == i64::MAX || w.start_ms + WINDOW_MS <= now_ms)
        .map(|(ip, _)| *ip)
        .collect();
    let mut out = Vec::new();
    for ip in ended {
        let Some(w) = map.remove(&ip) else { continue };
        if w.seen > PRE_AUTH_DETAIL {
            out.push(summary(ip, &w, now_ms.min(w.start_ms + WINDOW_MS)));
        }
    }
    out
}

fn summary(ip: IpAddr, w: &Window, at_ms: i64) -> AuditEvent {
    let more = w.seen - PRE_AUTH_DETAIL;
    AuditEvent {
        time_ms: at_ms,
        time: String::new(),
        request_id: String::new(),
        principal: String::new(),
        secret_id: String::new(),
        source_ip: ip.to_string(),
        service: String::new(),
        action: "PreAuthFailures".into(),
        resources: Vec::new(),
        decision: String::new(),
        deciding_statement: String::new(),
        outcome: format!(
            "{more} more requests failed before authentication in this minute (last: {})",
            w.last_outcome
        ),
    }
}

/// Both guards, one per server.
#[derive(Debug, Default)]
pub struct Abuse {
    pub login: LoginGuard,
    pub pre_auth: PreAuthAudit,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_source_runs_out_of_attempts_and_gets_them_back() {
        let g = LoginGuard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..LOGIN_BURST as usize {
            drop(g.enter(ip, 0).await.unwrap());
        }
        assert!(g.enter(ip, 0).await.is_err());
        assert!(g.enter("10.0.0.2".parse().unwrap(), 0).await.is_ok());
        // Refilled with time; a success gives its attempt back.
        let t = g.enter(ip, LOGIN_REFILL_MS as i64).await.unwrap();
        t.succeeded();
        drop(t);
        assert!(g.enter(ip, LOGIN_REFILL_MS as i64).await.is_ok());
    }

    #[test]
    fn pre_auth_failures_are_detailed_then_summed_per_minute() {
        let a = PreAuthAudit::default();
        let ip: IpAddr = "10.9.9.9".parse().unwrap();
        let mut detailed = 0;
        for i in 0..1000 {
            let (write, done) = a.note(ip, Code::AuthFailureSignatureFailure.as_str(), i);
            assert!(done.is_empty());
            detailed += usize::from(write);
        }
        assert_eq!(detailed, PRE_AUTH_DETAIL as usize);
        let (write, done) = a.note(
            ip,
            Code::AuthFailureSecretIdNotFound.as_str(),
            WINDOW_MS + 5,
        );
        assert!(write, "a new minute starts in detail");
        assert_eq!(done.len(), 1);
        assert!(
            done[0].outcome.starts_with("970 more"),
            "{}",
            done[0].outcome
        );
        assert_eq!(done[0].source_ip, "10.9.9.9");
        // A window without overflow leaves no summary.
        assert!(a.flush(i64::MAX).is_empty());
    }
}
