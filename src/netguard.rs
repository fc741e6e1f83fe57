//! Bounds on what a client may hold before it has proven anything.
//!
//! * `ConnLimits` counts open connections per source (an IPv4 address, or an
//!   IPv6 /64, which one host usually owns whole) and in total, and apart
//!   from those the connections of a source that have not yet delivered a
//!   whole request head ("pending"). A connection over the open or total
//!   limit is closed at once. One over the pending bound is not: with
//!   `admit_waiting` it waits, in arrival order and at most until a
//!   deadline (the header timeout), for one of its source's pending slots
//!   before any TLS work is spent on it, still counting as open meanwhile.
//!   So half-sent requests from one source (slowloris) cannot use up the
//!   descriptors (open limit) or the handshake work (pending bound) that
//!   everyone else needs, and cannot touch another source's slots, while a
//!   fleet behind one NAT address that reconnects at once (after a server
//!   restart) queues for a few milliseconds instead of being turned away
//!   and retrying. Clients that keep finished connections alive (SDK
//!   pools) are held to the larger open limit. An agent's WebSocket stops
//!   counting against its source once the agent has authenticated, so a
//!   fleet behind one NAT address is not limited.
//! * `Budgeted` wraps an agent connection's byte stream and refuses to read
//!   more than 64 KB until the agent has authenticated: a huge frame sent
//!   before Register/Hello costs the server that budget, not its size.
//!
//! Timeouts (header, idle keep-alive, request) are applied in `server.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Bytes an agent connection may send before it has authenticated. A
/// Register (machine facts, ten tags, a register code) needs about 1 KB; a
/// Hello also lists the tasks the agent's journal holds (16 bytes each),
/// and an agent that was cut off during a large fan-out may hold a few
/// thousand. 64 KB covers about 4,000 while a flood of unauthenticated
/// connections still costs the server 64 KB each, not the 64 MB a frame
/// may otherwise announce.
pub const PRE_AUTH_BYTES: usize = 64 * 1024;
/// Largest WebSocket message (and frame) an authenticated agent may send:
/// output comes in chunks of 32 KB, so this is ample.
pub const MAX_AGENT_MESSAGE: usize = 4 << 20;

/// Connection and timing limits of the HTTPS listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections one source may hold (agents' authenticated
    /// WebSockets excepted).
    pub per_source: usize,
    /// Of those, connections that have not yet sent a whole request head.
    pub pending_per_source: usize,
    /// Open connections in total.
    pub total: usize,
    /// Time to send a request's headers; also how long an idle kept-alive
    /// connection stays open.
    pub header_timeout: Duration,
    /// Time to send a request's body and have it answered.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_source: 1024,
            pending_per_source: 64,
            total: 16_384,
            header_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A source address as the per-source limit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6Prefix(u64),
}

fn source_of(ip: IpAddr) -> Source {
    match ip {
        IpAddr::V4(a) => Source::V4(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Source::V4(u32::from(v4)),
            None => Source::V6Prefix((u128::from(a) >> 64) as u64),
        },
    }
}

/// Open connections of one source and its pending slots. Every pending
/// connection is also open, so the entry lives while anything is open.
#[derive(Debug)]
struct Counts {
    open: usize,
    /// `pending_per_source` permits; tokio's semaphore is fair, so waiting
    /// connections get slots in the order they arrived.
    pending: Arc<Semaphore>,
}

/// Live connection counts.
#[derive(Debug)]
pub struct ConnLimits {
    limits: Limits,
    total: AtomicUsize,
    by_source: Mutex<HashMap<Source, Counts>>,
}

/// One admitted connection; dropping it gives its places back.
#[derive(Debug)]
pub struct Admission {
    owner: Arc<ConnLimits>,
    /// The source while the connection counts against its open limit.
    source: Mutex<Option<Source>>,
    /// The pending slot until a whole request head arrived.
    pending: Mutex<Option<OwnedSemaphorePermit>>,
}

impl ConnLimits {
    pub fn new(limits: Limits) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            limits,
            total: AtomicUsize::new(0),
            by_source: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits a connection from `ip` with a pending slot, or `None` when a
    /// limit is reached (the pending bound included).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let (admission, slots) = self.enter(ip)?;
        let permit = slots.try_acquire_owned().ok()?;
        admission.hold_pending(permit);
        Some(admission)
    }

    /// Admits a connection from `ip` at once against the open and total
    /// limits (`None` over them), then waits until `deadline` for one of
    /// the source's pending slots (`None` if none came free in time).
    /// Callers wait before spending anything else on the connection.
    pub async fn admit_waiting(
        self: &Arc<Self>,
        ip: IpAddr,
        deadline: Instant,
    ) -> Option<Admission> {
        let (admission, slots) = self.enter(ip)?;
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                crate::metrics::METRICS.conn_queued.inc();
                tokio::time::timeout_at(deadline, slots.acquire_owned())
                    .await
                    .ok()?
                    .ok()?
            }
        };
        admission.hold_pending(permit);
        Some(admission)
    }

    /// Counts a connection from `ip` as open (`None` over the open or the
    /// total limit); returns its source's pending slots.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<(Admission, Arc<Semaphore>)> {
        let src = source_of(ip);
        let mut map = self.by_source.lock().ok()?;
        if self.total.load(Ordering::Relaxed) >= self.limits.total {
            return None;
        }
        let n = map.entry(src).or_insert_with(|| Counts {
            open: 0,
            pending: Arc::new(Semaphore::new(self.limits.pending_per_source)),
        });
        if n.open >= self.limits.per_source {
            return None;
        }
        n.open += 1;
        let slots = n.pending.clone();
        self.total.fetch_add(1, Ordering::Relaxed);
        let admission = Admission {
            owner: self.clone(),
            source: Mutex::new(Some(src)),
            pending: Mutex::new(None),
        };
        Some((admission, slots))
    }

    fn release(&self, src: Source) {
        if let Ok(mut map) = self.by_source.lock() {
            if let Some(n) = map.get_mut(&src) {
                n.open = n.open.saturating_sub(1);
                if n.open == 0 {
                    map.remove(&src);
                }
            }
        }
    }

    /// Connections open now from `ip`'s source (for tests and metrics).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.by_source
            .lock()
            .ok()
            .and_then(|m| m.get(&source_of(ip)).map(|c| c.open))
            .unwrap_or(0)
    }
}

impl Admission {
    fn hold_pending(&self, permit: OwnedSemaphorePermit) {
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(permit);
        }
    }

    /// A whole request head arrived: the connection is no longer pending.
    pub fn request_seen(&self) {
        let permit = self.pending.lock().ok().and_then(|mut p| p.take());
        drop(permit);
    }

    /// The connection no longer counts against its source (an agent that
    /// authenticated); it still counts in the total.
    pub fn leave_source(&self) {
        self.request_seen();
        let taken = self.source.lock().ok().and_then(|mut s| s.take());
        if let Some(src) = taken {
            self.owner.release(src);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.leave_source();
        self.owner.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lifted once the agent on a connection has authenticated.
#[derive(Debug, Clone, Default)]
pub struct PreAuth(Arc<AtomicBool>);

impl PreAuth {
    pub fn lift(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn lifted(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A byte stream that reads at most `PRE_AUTH_BYTES` until its `PreAuth`
/// is lifted; past that a read fails and the connection ends.
pub struct Budgeted<S> {
    inner: S,
    read: usize,
    gate: PreAuth,
}

impl<S> Budgeted<S> {
    pub fn new(inner: S, gate: PreAuth) -> Self {
        Budgeted {
            inner,
            read: 0,
            gate,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let open = self.gate.lifted();
        if !open && self.read >= PRE_AUTH_BYTES {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "too much data before authentication",
            )));
        }
        // Before authentication, never read past the budget in one go.
        let room = if open {
            buf.remaining()
        } else {
            buf.remaining().min(PRE_AUTH_BYTES - self.read)
        };
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
        let r = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        buf.advance(n);
        self.read = self.read.saturating_add(n);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises this process's open-file limit to its hard limit, so the
/// connection limit (not the descriptor table) decides who is turned away.
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn limits_per_source_and_total() {
        let l = ConnLimits::new(Limits {
            per_source: 2,
            total: 3,
            ..Limits::default()
        });
        assert_eq!(l.limits().pending_per_source, 64);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = l.admit(a).unwrap();
        let a2 = l.admit("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(l.admit(a).is_none(), "third from one source");
        let b1 = l.admit(b).unwrap();
        assert!(l.admit("10.0.0.3".parse().unwrap()).is_none(), "total");
        a1.leave_source();
        assert!(l.admit(a).is_none(), "total still counts it");
        drop(b1);
        let a3 = l.admit(a).unwrap();
        assert_eq!(l.open_from(a), 2);
        drop((a1, a2, a3));
        assert_eq!(l.open_from(a), 0);
        // One IPv6 /64 is one source.
        let l = ConnLimits::new(Limits {
            per_source: 1,
            ..Limits::default()
        });
        let _x = l.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert!(l.admit("2001:db8::2".parse().unwrap()).is_none());
        assert!(l.admit("2001:db8:0:1::2".parse().unwrap()).is_some());
        // Pending connections have their own, smaller limit.
        let l = ConnLimits::new(Limits {
            per_source: 3,
            pending_per_source: 1,
            ..Limits::default()
        });
        let c: IpAddr = "10.0.0.7".parse().unwrap();
        let c1 = l.admit(c).unwrap();
        assert!(l.admit(c).is_none(), "a second pending one");
        c1.request_seen();
        c1.request_seen();
        let c2 = l.admit(c).unwrap();
        c2.request_seen();
        let _c3 = l.admit(c).unwrap();
        assert!(l.admit(c).is_none(), "open limit");
        drop(c1);
        assert_eq!(l.open_from(c), 2);
    }

    #[tokio::test]
    async fn over_the_pending_bound_a_connection_waits_its_turn() {
        let l = ConnLimits::new(Limits {
            per_source: 3,
            pending_per_source: 1,
            ..Limits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let far = Instant::now() + Duration::from_secs(3600);
        let first = l.admit_waiting(a, far).await.unwrap();
        // The pending bound is full: a waiter still counts as open.
        let second = tokio::spawn({
            let l = l.clone();
            async move { l.admit_waiting(a, far).await }
        });
        while l.open_from(a) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(l.admit(a).is_none(), "no slot without waiting");
        // Another source is not held up by this one.
        let other = l.admit("10.0.0.2".parse().unwrap()).unwrap();
        // A third waiter gives up at its deadline.
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(l.admit_waiting(a, soon).await.is_none());
        assert_eq!(l.open_from(a), 2, "the one that gave up is gone");
        // Over the open limit: refused at once, not queued.
        let third = tokio::spawn({
            let l = l.clone();
            async move { l.admit_waiting(a, far).await }
        });
        while l.open_from(a) < 3 {
            tokio::task::yield_now().await;
        }
        assert!(l.admit_waiting(a, far).await.is_none(), "open limit");
        // The first one's request head frees its slot for the second.
        first.request_seen();
        let second = second.await.unwrap().unwrap();
        assert_eq!(l.open_from(a), 3);
        second.request_seen();
        let third = third.await.unwrap().unwrap();
        drop((first, second, other));
        assert_eq!(l.open_from(a), 1);
        drop(third);
        assert_eq!(l.open_from(a), 0);
    }

    #[tokio::test]
    async fn reads_stop_at_the_budget_until_lifted() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let gate = PreAuth::default();
        let mut r = Budgeted::new(rx, gate.clone());
        tx.write_all(&vec![7u8; PRE_AUTH_BYTES * 4]).await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let err = loop {
            match r.read(&mut buf).await {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(got.len(), PRE_AUTH_BYTES);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        gate.lift();
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0);
    }
}
