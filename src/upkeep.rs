//! Storage upkeep inside a running server: the retention prune, once soon
//! after start and then every `interval` (daily by default), in small
//! batches through the store's writer so API writes interleave. Stops with
//! the server's shutdown token.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::retention::{self, Pruned, Retention};
use crate::store::Store;

/// Delay of the first prune after start, so start-up work goes first.
const FIRST_RUN: Duration = Duration::from_secs(30);

pub fn spawn(store: Store, r: Retention, interval: Duration, shutdown: CancellationToken) {
    if !r.prunes() {
        return;
    }
    tokio::spawn(async move {
        let mut wait = FIRST_RUN.min(interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = interval;
            match prune(&store, r, &shutdown).await {
                Ok(p) if p != Pruned::default() => tracing::info!(
                    invocations = p.invocations,
                    audit_events = p.audit_events,
                    sessions = p.sessions,
                    other = p.other,
                    "retention prune"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("retention prune failed: {e}"),
            }
        }
    });
}

async fn prune(
    store: &Store,
    r: Retention,
    shutdown: &CancellationToken,
) -> crate::store::Result<Pruned> {
    let now = crate::timefmt::now_ms();
    let mut total = Pruned::default();
    while !shutdown.is_cancelled() {
        let (p, done) = store
            .write(move |c| retention::prune_batch(c, &r, now))
            .await?;
        total += p;
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}
