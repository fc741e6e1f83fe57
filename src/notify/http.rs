//! The webhook's HTTP client: one POST per connection over HTTP/1.1, plain
//! or TLS. HTTPS receivers are verified against the system's trust roots
//! (there is no way to turn verification off); redirects are not followed
//! (a 3xx is a failed attempt); at most `MAX_REPLY` bytes of the reply are
//! read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::WebhookError;

/// The most of a receiver's reply body read (and then discarded).
const MAX_REPLY: usize = 64 * 1024;

/// A parsed webhook URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub https: bool,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The `Host` header: host and port as written.
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, WebhookError> {
        if url.len() > super::MAX_URL {
            return Err(WebhookError::BadUrl("must be at most 2048 characters"));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| WebhookError::BadUrl("is not a valid URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(WebhookError::BadUrl("must start with http:// or https://")),
        };
        let auth = uri
            .authority()
            .ok_or(WebhookError::BadUrl("must name a host"))?;
        // Credentials in a URL would be shown by every Describe call.
        if auth.as_str().contains('@') {
            return Err(WebhookError::BadUrl("must not contain user information"));
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(WebhookError::BadUrl("must name a host"));
        }
        Ok(Target {
            https,
            host: host.to_string(),
            port: auth.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: auth.as_str().to_string(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into()),
        })
    }
}

/// The TLS client configuration for HTTPS receivers: the system's roots.
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system trust roots found: HTTPS webhooks will fail to verify");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// POSTs `body` with `headers` and returns the reply's HTTP status, or why
/// no status came back. The whole exchange is bounded by `timeout`.
/// `addrs` are the target's addresses, already resolved and checked
/// (`dest::Destinations::resolve`): the connection goes to one of them and
/// the host name is never looked up again.
pub async fn post(
    target: &Target,
    addrs: &[SocketAddr],
    tls: &Result<Arc<rustls::ClientConfig>, String>,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<u16, String> {
    match tokio::time::timeout(timeout, exchange(target, addrs, tls, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(format!("timed out after {} s", timeout.as_secs_f32())),
    }
}

async fn exchange(
    target: &Target,
    addrs: &[SocketAddr],
    tls: &Result<Arc<rustls::ClientConfig>, String>,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<u16, String> {
    let tcp = TcpStream::connect(addrs)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if target.https {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|_| "invalid TLS server name".to_string())?;
        let stream = TlsConnector::from(tls.clone()?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        send(stream, target, headers, body).await
    } else {
        send(tcp, target, headers, body).await
    }
}

async fn send<S>(
    stream: S,
    target: &Target,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::post(target.path_and_query.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "drover-webhook/1")
        .header(hyper::header::CONTENT_LENGTH, body.len());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let reply = sender
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP: {e}"));
    let result = match reply {
        Ok(r) => {
            let status = r.status().as_u16();
            // Read what the receiver says, up to a limit, then hang up.
            let _ = Limited::new(r.into_body(), MAX_REPLY).collect().await;
            Ok(status)
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("https://hooks.example.com/a/b?c=d").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path_and_query.as_str()),
            (true, "hooks.example.com", 443, "/a/b?c=d")
        );
        let t = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.authority.as_str()),
            (false, "::1", 8080, "[::1]:8080")
        );
        assert_eq!(t.path_and_query, "/");
    }
}
