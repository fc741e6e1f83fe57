//! Bounds on what a client may hold before it has proven anything.
//!
//! * `ConnLimits` counts open connections per source (an IPv4 address, or an
//!   IPv6 /64, which one host usually owns whole) and in total, and apart
//!   from those the connections of a source that have not yet delivered a
//!   whole request head ("pending"). A connection over any limit is closed
//!   at once, so half-sent requests from one source (slowloris) cannot use
//!   up the descriptors everyone else needs, while clients that keep
//!   finished connections alive (SDK pools) are held to the larger limit.
//!   An agent's WebSocket stops counting against its source once the agent
//!   has authenticated, so a fleet behind one NAT address is not limited.
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

/// Open and pending connections of one source.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    open: usize,
    pending: usize,
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
    /// (source, still pending) while the connection counts against it.
    source: Mutex<Option<(Source, bool)>>,
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

    /// Admits a connection from `ip`, or `None` when a limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let src = source_of(ip);
        let Ok(mut map) = self.by_source.lock() else {
            return None;
        };
        if self.total.load(Ordering::Relaxed) >= self.limits.total {
            return None;
        }
        let n = map.entry(src).or_default();
        if n.open >= self.limits.per_source || n.pending >= self.limits.pending_per_source {
            return None;
        }
        n.open += 1;
        n.pending += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Admission {
            owner: self.clone(),
            source: Mutex::new(Some((src, true))),
        })
    }

    fn release(&self, src: Source, open: bool, pending: bool) {
        if let Ok(mut map) = self.by_source.lock() {
            if let Some(n) = map.get_mut(&src) {
                if open {
                    n.open = n.open.saturating_sub(1);
                }
                if pending {
                    n.pending = n.pending.saturating_sub(1);
                }
                if n.open == 0 && n.pending == 0 {
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
    /// A whole request head arrived: the connection is no longer pending.
    pub fn request_seen(&self) {
        let Ok(mut s) = self.source.lock() else {
            return;
        };
        if let Some((src, pending)) = s.as_mut() {
            if *pending {
                *pending = false;
                self.owner.release(*src, false, true);
            }
        }
    }

    /// The connection no longer counts against its source (an agent that
    /// authenticated); it still counts in the total.
    pub fn leave_source(&self) {
        let taken = self.source.lock().ok().and_then(|mut s| s.take());
        if let Some((src, pending)) = taken {
            self.owner.release(src, true, pending);
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
