//! The delivery worker: one task owned by the server. It leases due
//! deliveries from SQLite, sends each (a few at a time, so one slow receiver
//! does not hold back the others), and records every attempt and what
//! follows: DELIVERED on a 2xx reply, another attempt after a backoff, or
//! FAILED after the last one. Because the queue is in SQLite, deliveries
//! pending at shutdown are sent after the next start.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{dest, http, sign, Settings, EVENT_FINISHED};
use crate::crypto::SecretBox;
use crate::store::webhooks::{self, Attempt, Delivery};
use crate::store::Store;
use crate::timefmt::now_ms;

/// Deliveries sent at the same time.
const PARALLEL: usize = 8;
/// Added to an attempt's timeout for its lease, so a lease outlives the
/// attempt it covers and the write that records it.
const LEASE_MARGIN_MS: i64 = 2_000;

struct Worker {
    store: Store,
    secrets: Arc<SecretBox>,
    settings: Settings,
    tls: Result<Arc<rustls::ClientConfig>, String>,
}

/// Starts the worker; `wake` is notified when tasks end, so a new
/// notification goes out at once rather than at the next poll.
pub fn spawn(
    store: Store,
    secrets: Arc<SecretBox>,
    settings: Settings,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let w = Arc::new(Worker {
        store,
        secrets,
        settings,
        tls: http::tls_config(),
    });
    tokio::spawn(async move { run(w, wake, shutdown).await });
}

async fn run(w: Arc<Worker>, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut inflight = JoinSet::new();
    loop {
        let now = now_ms();
        let free = PARALLEL.saturating_sub(inflight.len()) as i64;
        if free > 0 {
            let lease = now + w.settings.attempt_timeout_ms as i64 + LEASE_MARGIN_MS;
            match w
                .store
                .write(move |c| webhooks::claim_due(c, now, lease, free))
                .await
            {
                Ok(due) => {
                    for d in due {
                        let w = w.clone();
                        inflight.spawn(async move { w.attempt(d).await });
                    }
                }
                Err(e) => tracing::warn!("webhook queue: {e}"),
            }
        }
        let poll = w.settings.poll_ms.max(10);
        let next = w.store.read(webhooks::next_due).await.ok().flatten();
        let wait = match next {
            Some(at) => ((at - now_ms()).max(10) as u64).min(poll),
            None => poll,
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Attempts cut short here keep their lease and run again after a restart.
    inflight.abort_all();
}

impl Worker {
    async fn attempt(&self, d: Delivery) {
        let n = d.attempts + 1;
        // The attempt is recorded at its start: an end time would tell the
        // caller how long the destination took to refuse or time out.
        let at = now_ms();
        let sent = self.send(&d).await;
        if let Err(e) = &sent {
            // The operator's log keeps the reason; the caller does not.
            tracing::info!(delivery = %d.id, attempt = n, "webhook attempt failed: {e}");
        }
        let (http_status, error) = match &sent {
            Ok(code) if (200..300).contains(code) => (Some(*code as i64), String::new()),
            Ok(code) => (Some(*code as i64), format!("HTTP {code}")),
            Err(e) => (None, e.public().to_string()),
        };
        let last =
            n >= self.settings.max_attempts as i64 || matches!(sent, Err(Fatal(_) | Refused));
        let m = &crate::metrics::METRICS;
        let (status, next) = if error.is_empty() {
            m.webhook_delivered.inc();
            (webhooks::DELIVERED, 0)
        } else if last {
            m.webhook_failed.inc();
            (webhooks::FAILED, 0)
        } else {
            m.webhook_retried.inc();
            let wait = self.settings.backoff_ms(n as u32) as i64;
            (webhooks::PENDING, at + wait)
        };
        tracing::info!(
            delivery = %d.id,
            invocation = %d.invocation_id,
            attempt = n,
            outcome = if error.is_empty() { "delivered" } else { error.as_str() },
            status,
            "webhook attempt"
        );
        let a = Attempt {
            delivery_id: d.id.clone(),
            attempt: n,
            at_ms: at,
            http_status,
            error,
        };
        if let Err(e) = self
            .store
            .write(move |c| webhooks::record_attempt(c, &a, status, next))
            .await
        {
            tracing::warn!(delivery = %d.id, "recording a webhook attempt: {e}");
        }
    }

    /// One POST; the HTTP status, or why there is none.
    async fn send(&self, d: &Delivery) -> Result<u16, SendError> {
        let key = self
            .secrets
            .open_sealed(&super::seal_context(&d.secret_owner), &d.secret_enc)
            .map_err(|_| Fatal("the stored webhook key does not decrypt".into()))?;
        let target = http::Target::parse(&d.url).map_err(|e| Fatal(e.to_string()))?;
        let addrs = match self.settings.allow.resolve(&target.host, target.port).await {
            Ok(a) => a,
            Err(dest::Refusal::Forbidden) => return Err(Refused),
            Err(dest::Refusal::Unresolved) => return Err(Retry("no address".into())),
        };
        let t = now_ms() / 1000;
        let headers = [
            ("X-Drover-Event", EVENT_FINISHED.to_string()),
            ("X-Drover-Delivery", d.id.clone()),
            ("X-Drover-Signature", sign(&key, t, d.body.as_bytes())),
        ];
        let timeout = Duration::from_millis(self.settings.attempt_timeout_ms);
        http::post(
            &target,
            &addrs,
            &self.tls,
            &headers,
            Bytes::from(d.body.clone()),
            timeout,
        )
        .await
        .map_err(Retry)
    }
}

/// Why an attempt got no HTTP status: worth retrying, or not. The text is
/// for the server's log only.
enum SendError {
    Retry(String),
    Fatal(String),
    /// The destination resolves to an address the server may not reach.
    Refused,
}
use SendError::{Fatal, Refused, Retry};

/// What every network failure looks like to the caller: refused, reset,
/// unreachable, timed out, unresolvable or a TLS failure are one message, so
/// webhooks cannot be used to map which hosts and ports answer.
pub const NO_REPLY: &str = "delivery failed: no HTTP reply";
/// The recorded error of a destination outside the permitted ranges.
pub const NOT_PERMITTED: &str =
    "delivery refused: the destination is not a permitted address (see --webhook-allow)";

impl SendError {
    fn public(&self) -> &str {
        match self {
            Retry(_) => NO_REPLY,
            Fatal(m) => m,
            Refused => NOT_PERMITTED,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retry(m) | Fatal(m) => f.write_str(m),
            Refused => f.write_str(NOT_PERMITTED),
        }
    }
}
