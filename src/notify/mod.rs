//! Webhook notifications (a drover extension): when an invocation that has a
//! webhook reaches a final state, one signed JSON POST tells its receiver.
//!
//! * `task_final` is the one hook dispatch calls, inside the write
//!   transaction that made a task final. When that task was the invocation's
//!   last, it queues the notification in the same transaction, so it is
//!   queued exactly once and survives a crash.
//! * `worker` sends due deliveries, with exponential backoff, and records
//!   every attempt; `http` is its small HTTP/1.1 client (no redirects, a
//!   bounded reply read, HTTPS verified against the system's roots).
//! * The key is sealed at rest, never logged and never returned; `sign`
//!   computes `X-Drover-Signature: t=<unix secs>,v1=<hex HMAC-SHA256 of
//!   "<t>.<body>">`.

mod dest;
mod http;
mod worker;

pub use dest::Destinations;
pub use worker::spawn;

use serde_json::json;

use crate::store::status::invocation_status;
use crate::store::webhooks::{self, Delivery};
use crate::timefmt::iso;

/// Event name of the one notification drover sends.
pub const EVENT_FINISHED: &str = "invocation.finished";
const MAX_URL: usize = 2048;
const MIN_SECRET: usize = 16;
const MAX_SECRET: usize = 256;

/// Delivery timing: retries with exponential backoff.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts before a delivery is FAILED.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub first_backoff_ms: u64,
    /// Longest wait between two attempts.
    pub max_backoff_ms: u64,
    /// One attempt's limit: connect, TLS, request and reply together.
    pub attempt_timeout_ms: u64,
    /// How often the worker looks for due deliveries when nothing wakes it.
    pub poll_ms: u64,
    /// Ranges allowed in spite of the SSRF rules (`--webhook-allow`).
    pub allow: Destinations,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 8,
            first_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            attempt_timeout_ms: 10_000,
            poll_ms: 1_000,
            allow: Destinations::default(),
        }
    }
}

impl Settings {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first_backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_backoff_ms)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookError {
    #[error("Webhook.Url {0}")]
    BadUrl(&'static str),
    #[error("Webhook.Secret must be {MIN_SECRET} to {MAX_SECRET} characters")]
    BadSecret,
    #[error("Webhook.Url must not name a loopback, private, link-local or metadata address (an administrator may allow ranges with --webhook-allow)")]
    Forbidden,
}

/// A validated webhook: where to POST and the HMAC key. Debug hides the key.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"***")
            .finish()
    }
}

impl Webhook {
    /// Refuses a URL whose host is a literal address (or `localhost`) the
    /// server would never deliver to; names are checked again, after
    /// resolution, at every delivery.
    pub fn check_destination(&self, allow: &Destinations) -> Result<(), WebhookError> {
        let t = http::Target::parse(&self.url)?;
        if allow.literal_permitted(&t.host) {
            Ok(())
        } else {
            Err(WebhookError::Forbidden)
        }
    }

    pub fn new(url: &str, secret: &str) -> Result<Webhook, WebhookError> {
        http::Target::parse(url)?;
        let n = secret.chars().count();
        if !(MIN_SECRET..=MAX_SECRET).contains(&n) {
            return Err(WebhookError::BadSecret);
        }
        Ok(Webhook {
            url: url.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The row that stores this webhook for `owner_id`, its key sealed and
    /// bound to that owner.
    pub fn seal(
        &self,
        secrets: &crate::crypto::SecretBox,
        owner_id: &str,
        invoker_id: Option<String>,
        now: i64,
    ) -> webhooks::Config {
        webhooks::Config {
            owner_id: owner_id.to_string(),
            url: self.url.clone(),
            secret_enc: secrets.seal(&seal_context(owner_id), self.secret.as_bytes()),
            invoker_id,
            created_ms: now,
        }
    }

    /// Opens a stored webhook (to copy an invoker's onto its invocations).
    pub fn open(
        secrets: &crate::crypto::SecretBox,
        c: &webhooks::Config,
    ) -> Result<Webhook, crate::crypto::CryptoError> {
        let key = secrets.open_sealed(&seal_context(&c.owner_id), &c.secret_enc)?;
        Ok(Webhook {
            url: c.url.clone(),
            secret: String::from_utf8_lossy(&key).into_owned(),
        })
    }
}

fn seal_context(owner_id: &str) -> String {
    format!("webhook:{owner_id}")
}

/// The hook: call it, in the same write transaction, right after a task of
/// any invocation became final. When that completes an invocation with a
/// webhook, its notification is queued (once). Cheap when it does not.
pub fn task_final(
    conn: &rusqlite::Connection,
    task_id: &str,
    now: i64,
) -> crate::store::Result<()> {
    let Some(f) = webhooks::finished_invocation(conn, task_id)? else {
        return Ok(());
    };
    let id = crate::ids::new_id("whd");
    let statuses: Vec<_> = f.tasks.iter().map(|t| t.status).collect();
    let finished = f.tasks.iter().map(|t| t.end_ms).max().unwrap_or(now);
    let body = json!({
        "Event": EVENT_FINISHED,
        "DeliveryId": id,
        "InvocationId": f.invocation.id,
        "InvokerId": f.webhook.invoker_id,
        "CommandId": f.invocation.command_id,
        "InvocationStatus": invocation_status(&statuses),
        "Tasks": f.tasks.iter().map(|t| json!({
            "InvocationTaskId": t.id,
            "InstanceId": t.instance_id,
            "TaskStatus": t.status.as_str(),
            "ExitCode": t.exit_code,
        })).collect::<Vec<_>>(),
        "FinishedTime": iso(finished),
    });
    webhooks::enqueue(
        conn,
        &Delivery {
            id,
            invocation_id: f.invocation.id,
            invoker_id: f.webhook.invoker_id,
            url: f.webhook.url,
            secret_owner: f.webhook.owner_id,
            secret_enc: f.webhook.secret_enc,
            body: body.to_string(),
            status: webhooks::PENDING.into(),
            attempts: 0,
            next_ms: now,
            created_ms: now,
            updated_ms: now,
        },
    )?;
    Ok(())
}

/// The `X-Drover-Signature` value for `body` sent at unix time `t`.
pub fn sign(key: &[u8], t: i64, body: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_url_and_secret() {
        let key = "0123456789abcdef";
        assert!(Webhook::new("https://hooks.example.com/x?y=1", key).is_ok());
        assert!(Webhook::new("http://127.0.0.1:8080/", key).is_ok());
        assert!(Webhook::new("http://[::1]:8080/h", key).is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/x",
            "http:///x",
            "http://user:pw@example.com/",
            "http://exa mple.com/",
            "",
        ] {
            assert!(
                matches!(Webhook::new(bad, key), Err(WebhookError::BadUrl(_))),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(Webhook::new(&long, key).is_err());
        assert_eq!(
            Webhook::new("https://example.com/", "short"),
            Err(WebhookError::BadSecret)
        );
        assert!(Webhook::new("https://example.com/", &"k".repeat(257)).is_err());
        assert!(!format!("{:?}", Webhook::new("http://a/", key)).contains(key));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Settings::default();
        let waits: Vec<u64> = (1..=8).map(|n| s.backoff_ms(n)).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(s.backoff_ms(u32::MAX), 60_000);
    }

    #[test]
    fn signature_covers_time_and_body() {
        let a = sign(b"key-key-key-key!", 1_700_000_000, b"{\"a\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, sign(b"key-key-key-key!", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(a, sign(b"key-key-key-key!", 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(a, sign(b"other-key-other!", 1_700_000_000, b"{\"a\":1}"));
    }
}
