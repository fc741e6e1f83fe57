//! Wiring of the control plane: storage, secrets, TLS, dispatch and the API
//! behind one HTTPS listener. `start` runs it in-process (tests and the demo
//! use this); `drover server` calls it and waits for a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

pub mod metrics;

use crate::api::{json_reply, Api, Reply};
use crate::crypto::SecretBox;
use crate::dispatch::{self, Dispatcher, Settings};
use crate::netguard::{Admission, Budgeted, ConnLimits, PreAuth};
use crate::store::{keys, Store};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub region: String,
    pub settings: Settings,
    /// Time zone and grace window of scheduled invokers.
    pub schedule: crate::scheduler::Settings,
    /// Retries and timeouts of webhook deliveries.
    pub webhooks: crate::notify::Settings,
    /// Accept TC3 requests signed with `UNSIGNED-PAYLOAD` (default: refuse).
    pub allow_unsigned_payload: bool,
    /// Abuse bounds and storage upkeep (connection limits, timeouts, ...).
    pub ops: OpsSettings,
}

/// Operational bounds of a server: what one client may hold, and how much
/// the appliance keeps.
#[derive(Debug, Clone)]
pub struct OpsSettings {
    /// Connection limits and timeouts of the HTTPS listener.
    pub net: crate::netguard::Limits,
    /// Output kept per task, in bytes (0: all of it).
    pub max_output_bytes: i64,
    /// How long invocations and audit events are kept.
    pub retention: crate::store::retention::Retention,
    /// How often the retention prune runs.
    pub prune_interval: Duration,
    /// Session recording: size cap and input recording.
    pub recording: crate::session::record::Settings,
    /// Limits of interactive sessions (idle time, length, how many).
    pub sessions: crate::session::Limits,
}

impl Default for OpsSettings {
    fn default() -> Self {
        OpsSettings {
            net: Default::default(),
            max_output_bytes: crate::store::limits::DEFAULT_MAX_OUTPUT,
            retention: Default::default(),
            prune_interval: Duration::from_secs(24 * 3600),
            recording: Default::default(),
            sessions: Default::default(),
        }
    }
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub fingerprint: String,
    pub cert_path: PathBuf,
    pub api: Arc<Api>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, closes agent links and waits for the accept loop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub async fn start(cfg: Config) -> Result<Running, ServerError> {
    crate::fsutil::create_private_dir(&cfg.data_dir)
        .map_err(|e| ServerError::DataDir(cfg.data_dir.clone(), e))?;
    let identity = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => crate::tls::load(c, k)?,
        _ => crate::tls::load_or_generate(&cfg.data_dir)?,
    };
    let cert_path = cfg
        .tls_cert
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("tls").join("cert.pem"));
    let fingerprint = identity.fingerprint();
    let acceptor = TlsAcceptor::from(Arc::new(identity.server_config()?));
    let secrets = Arc::new(SecretBox::open(&cfg.data_dir)?);
    let store = Store::open(&cfg.data_dir)?;
    let account_uin = store.write(keys::account_uin).await?;
    // No session outlives the server that relayed it: any still marked
    // live was cut off by a stop or a crash.
    let orphans = store
        .write(|c| crate::store::recordings::close_orphans(c, crate::timefmt::now_ms()))
        .await?;
    if orphans > 0 {
        tracing::info!(
            sessions = orphans,
            "sessions left live by the last run marked ended"
        );
    }
    let cap = cfg.ops.max_output_bytes;
    store
        .write(move |c| crate::store::limits::set_max_output(c, cap))
        .await?;
    let dispatch = Dispatcher::new(store.clone(), secrets.clone(), cfg.settings.clone());
    let gate = Arc::new(crate::gate::Gate::new(
        store.clone(),
        cfg.region.clone(),
        account_uin.clone(),
    ));
    let runner = Arc::new(crate::run::Runner {
        store: store.clone(),
        secrets: secrets.clone(),
        dispatch: dispatch.clone(),
        gate: gate.clone(),
    });
    let shutdown = CancellationToken::new();
    let sessions = crate::session::Sessions::new(
        dispatch.clone(),
        store.clone(),
        cfg.ops.sessions.clone(),
        cfg.ops.recording,
        shutdown.clone(),
    );
    let api = Arc::new(Api {
        sessions,
        store,
        secrets,
        dispatch: dispatch.clone(),
        account_uin,
        region: cfg.region.clone(),
        fingerprint: fingerprint.clone(),
        gate,
        runner: runner.clone(),
        schedule_changed: Default::default(),
        webhook_allow: cfg.webhooks.allow.clone(),
        abuse: Default::default(),
        replay: Default::default(),
        allow_unsigned_payload: cfg.allow_unsigned_payload,
        ssh_info: Default::default(),
    });
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| ServerError::Listen(cfg.listen.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(cfg.listen.clone(), e))?;
    let _ = std::fs::write(cfg.data_dir.join("server.addr"), addr.to_string());
    dispatch.spawn_sweeper(shutdown.clone());
    crate::notify::spawn(
        api.store.clone(),
        api.secrets.clone(),
        cfg.webhooks.clone(),
        dispatch.webhook_wake.clone(),
        shutdown.clone(),
    );
    crate::scheduler::spawn(
        runner,
        api.schedule_changed.clone(),
        cfg.schedule,
        shutdown.clone(),
    );
    crate::upkeep::spawn(
        api.store.clone(),
        cfg.ops.retention,
        cfg.ops.prune_interval,
        shutdown.clone(),
    );
    spawn_audit_flusher(api.clone(), shutdown.clone());
    crate::netguard::raise_nofile_limit();
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor,
        api.clone(),
        ConnLimits::new(cfg.ops.net.clone()),
        shutdown.clone(),
    ));
    tracing::info!(%addr, fingerprint = %fingerprint, "drover server listening (https)");
    Ok(Running {
        addr,
        fingerprint,
        cert_path,
        api,
        shutdown,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    conns: Arc<ConnLimits>,
    shutdown: CancellationToken,
) {
    let mut conn_seq: u64 = 0;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, api, shutdown) = (acceptor.clone(), api.clone(), shutdown.clone());
        let limits = conns.limits().clone();
        let conns = conns.clone();
        // Names the connection for the replay guard (see api::replay).
        conn_seq += 1;
        let conn_id = crate::api::ConnId(conn_seq);
        tokio::spawn(async move {
            // Over the open or total limit: closed at once. Over the pending
            // bound: wait for a slot of the source before any TLS work is
            // spent. The wait and the handshake share one header timeout,
            // so a stalled connection lives no longer than before.
            let deadline = tokio::time::Instant::now() + limits.header_timeout;
            let Some(admission) = conns.admit_waiting(peer.ip(), deadline).await else {
                tracing::debug!(%peer, "connection refused: limit reached");
                return;
            };
            let admission = Arc::new(admission);
            let tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let svc_shutdown = shutdown.clone();
            let svc_admission = admission.clone();
            let request_timeout = limits.request_timeout;
            let svc = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(conn_id);
                let (api, shutdown) = (api.clone(), svc_shutdown.clone());
                let admission = svc_admission.clone();
                admission.request_seen();
                async move {
                    // Body and answer within the request timeout; a client
                    // that drips its body is cut off (the connection closes).
                    let routed = route(api, req, peer, shutdown, admission);
                    Ok::<_, std::convert::Infallible>(
                        match tokio::time::timeout(request_timeout, routed).await {
                            Ok(r) => r,
                            Err(_) => timed_out(),
                        },
                    )
                }
            });
            // The header timeout also bounds how long a kept-alive
            // connection may sit idle: hyper starts it whenever it waits
            // for the next request's head.
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}

/// Writes the per-minute summaries of pre-authentication failures as their
/// minutes end, and whatever is counted at shutdown.
fn spawn_audit_flusher(api: Arc<Api>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
            api.flush_pre_auth_audit(crate::timefmt::now_ms()).await;
        }
        api.flush_pre_auth_audit(i64::MAX).await;
    });
}

/// The reply to a request that was not complete and answered in time.
fn timed_out() -> Reply {
    let mut r = json_reply(
        StatusCode::REQUEST_TIMEOUT,
        &serde_json::json!({"Response": {"Error": {"Code": "RequestTimeout", "Message": "the request was not received and answered in time"}}}),
    );
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    let mut r = Reply::new(http_body_util::Full::new(bytes::Bytes::from_static(
        text.as_bytes(),
    )));
    *r.status_mut() = status;
    r
}

async fn route(
    api: Arc<Api>,
    req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    admission: Arc<Admission>,
) -> Reply {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::POST, "/") => api.serve(req, peer).await,
        // The SDKs' reqMethod="GET" calls `GET /?Action=...` (v1) or `GET /?...`
        // with TC3 headers; a browser's `GET /` still gets the console.
        (&Method::GET, "/") if is_api_get(&req) => api.serve(req, peer).await,
        (&Method::GET, "/console/push") => {
            crate::api::console_push::upgrade(api, req, peer, shutdown).await
        }
        (&Method::GET, p) if crate::api::recordings::cast_path(p).is_some() => {
            crate::api::recordings::serve_cast(api, req, peer).await
        }
        // The same path answers the console's "who am I" (plain GET) and
        // opens a terminal (a WebSocket upgrade).
        (&Method::GET, "/console/session") if wants_websocket(&req) => {
            crate::api::console_session::upgrade(api, req, peer, shutdown).await
        }
        (_, p) if p.starts_with("/console/") => crate::api::console::serve(api, req, peer).await,
        (&Method::GET, crate::protocol::AGENT_PATH) => {
            upgrade_agent(api, req, peer, shutdown, admission)
        }
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, p) => crate::web::serve(p),
        _ => json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"Response": {"Error": {"Code": crate::api::error::Code::UnsupportedProtocol, "Message": "use POST / for API calls"}}}),
        ),
    }
}

/// Whether a `GET /` is an API call rather than a browser opening the console.
fn is_api_get(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    h.contains_key(hyper::header::AUTHORIZATION)
        || h.contains_key("x-tc-action")
        || req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv.starts_with("Action=") || kv.starts_with("Signature="))
        })
}

/// Whether a request asks to become a WebSocket.
fn wants_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn upgrade_agent(
    api: Arc<Api>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
    admission: Arc<Admission>,
) -> Reply {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let is_upgrade = wants_websocket(&req);
    let Some(accept) = key.filter(|_| is_upgrade) else {
        return plain(StatusCode::BAD_REQUEST, "websocket upgrade required\n");
    };
    let dispatch = api.dispatch.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(&mut req).await {
            Ok(upgraded) => {
                // 64 KB until the agent has authenticated; then messages
                // as large as the protocol needs.
                let pre_auth = PreAuth::default();
                let io = Budgeted::new(TokioIo::new(upgraded), pre_auth.clone());
                let cfg = WebSocketConfig {
                    max_message_size: Some(crate::netguard::MAX_AGENT_MESSAGE),
                    max_frame_size: Some(crate::netguard::MAX_AGENT_MESSAGE),
                    ..WebSocketConfig::default()
                };
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg)).await;
                let authenticated = move || {
                    pre_auth.lift();
                    admission.leave_source();
                };
                dispatch::serve_agent(dispatch, ws, peer, shutdown, authenticated).await;
            }
            Err(e) => tracing::debug!("agent upgrade failed: {e}"),
        }
    });
    let mut r = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}
