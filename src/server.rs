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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

pub mod metrics;

use crate::api::{json_reply, Api, Reply};
use crate::crypto::SecretBox;
use crate::dispatch::{self, Dispatcher, Settings};
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
    let dispatch = Dispatcher::new(store.clone(), secrets.clone(), cfg.settings.clone());
    let api = Arc::new(Api {
        store,
        secrets,
        dispatch: dispatch.clone(),
        account_uin,
        region: cfg.region.clone(),
        fingerprint: fingerprint.clone(),
        policy_cache: Default::default(),
        schedule_changed: Default::default(),
    });
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| ServerError::Listen(cfg.listen.clone(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(cfg.listen.clone(), e))?;
    let _ = std::fs::write(cfg.data_dir.join("server.addr"), addr.to_string());
    let shutdown = CancellationToken::new();
    dispatch.spawn_sweeper(shutdown.clone());
    crate::notify::spawn(
        api.store.clone(),
        api.secrets.clone(),
        cfg.webhooks.clone(),
        dispatch.webhook_wake.clone(),
        shutdown.clone(),
    );
    crate::scheduler::spawn(
        api.clone(),
        api.schedule_changed.clone(),
        cfg.schedule,
        shutdown.clone(),
    );
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor,
        api.clone(),
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
    shutdown: CancellationToken,
) {
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
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => return,
                };
            let svc_shutdown = shutdown.clone();
            let svc = service_fn(move |req| {
                let (api, shutdown) = (api.clone(), svc_shutdown.clone());
                async move { Ok::<_, std::convert::Infallible>(route(api, req, peer, shutdown).await) }
            });
            let conn = http1::Builder::new()
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
) -> Reply {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::POST, "/") => api.serve(req, peer).await,
        (_, p) if p.starts_with("/console/") => crate::api::console::serve(api, req, peer).await,
        (&Method::GET, crate::protocol::AGENT_PATH) => upgrade_agent(api, req, peer, shutdown),
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, p) => crate::web::serve(p),
        _ => json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"Response": {"Error": {"Code": "UnsupportedProtocol", "Message": "use POST / for API calls"}}}),
        ),
    }
}

fn upgrade_agent(
    api: Arc<Api>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Reply {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let is_upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(accept) = key.filter(|_| is_upgrade) else {
        return plain(StatusCode::BAD_REQUEST, "websocket upgrade required\n");
    };
    let dispatch = api.dispatch.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(&mut req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                dispatch::serve_agent(dispatch, ws, peer, shutdown).await;
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
