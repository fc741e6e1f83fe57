//! The metrics endpoint: `GET /metrics` in the Prometheus text format, on
//! its own plain-HTTP listener (`drover server --metrics-listen ADDR`).
//!
//! A separate address rather than a route of the API: scrapers speak
//! neither TC3 signatures nor the appliance's pinned TLS, and an operator
//! binds it to loopback or a monitoring network, so the API's audience
//! never reaches it. It serves counts, latencies and action names only —
//! no ids, names, output or secrets. Nothing is served until asked, and
//! the gauges of state (agents connected, tasks by status) are read at
//! scrape time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::metrics::{Snapshot, METRICS};

/// The exposition text, with the state gauges read now.
pub async fn render(api: &Api) -> String {
    let tasks_by_status = api
        .store
        .read(crate::store::stats::tasks_by_status)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!("metrics: counting tasks failed: {e}");
            Vec::new()
        });
    METRICS.render(&Snapshot {
        agents_connected: api.dispatch.connected_count(),
        tasks_by_status,
    })
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, api: Arc<Api>, shutdown: CancellationToken) {
    loop {
        let tcp = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!("metrics accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let api = api.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(reply(&api, &req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), svc);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

async fn reply<B>(api: &Api, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            render(api).await,
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try GET /metrics\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
