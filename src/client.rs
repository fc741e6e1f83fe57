//! drover's own API client: TC3-signed JSON calls over HTTPS, used by
//! `drover run`, the demo, and the integration tests. One keep-alive
//! connection, re-dialled when the server closes it.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;

use crate::tls::Trust;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{code}: {message} (RequestId {request_id})")]
    Api {
        code: String,
        message: String,
        request_id: String,
    },
    #[error("bad server URL {0:?}: want https://HOST:PORT")]
    Url(String),
    #[error("connecting to {0}: {1}")]
    Connect(String, String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("unexpected response: {0}")]
    Response(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl ClientError {
    /// The TAT error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub struct Client {
    host: String,
    port: u16,
    secret_id: String,
    secret_key: String,
    connector: TlsConnector,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
    /// Seconds added to the clock when signing (tests use it for skew).
    pub clock_skew: i64,
}

/// Splits `https://host:port[/]` into host and port.
pub fn parse_url(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?.trim_end_matches('/');
    if rest.starts_with('[') {
        let (h, p) = rest.strip_prefix('[')?.split_once("]:")?;
        return Some((h.to_string(), p.parse().ok()?));
    }
    let (h, p) = rest.rsplit_once(':').unwrap_or((rest, "443"));
    Some((h.to_string(), p.parse().ok()?))
}

impl Client {
    pub fn new(
        url: &str,
        secret_id: &str,
        secret_key: &str,
        trust: &Trust,
    ) -> Result<Client, ClientError> {
        let (host, port) = parse_url(url).ok_or_else(|| ClientError::Url(url.into()))?;
        let cfg = trust.client_config()?;
        Ok(Client {
            host,
            port,
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            connector: TlsConnector::from(Arc::new(cfg)),
            conn: Mutex::new(None),
            clock_skew: 0,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let addr = self.authority();
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|e| ClientError::Connect(addr.clone(), e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|_| ClientError::Url(self.host.clone()))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Connect(addr.clone(), e.to_string()))?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// Calls `action` (service "tat", version 2020-10-28) with `params`.
    pub async fn call(&self, action: &str, params: &Value) -> Result<Value, ClientError> {
        self.call_as("tat", crate::api::TAT_VERSION, action, params)
            .await
    }

    pub async fn call_as(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &Value,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(params).map_err(|e| ClientError::Transport(e.to_string()))?;
        let host = self.authority();
        let ts = crate::timefmt::now_ms() / 1000 + self.clock_skew;
        let nonce = hex::encode(crate::ids::random_bytes::<12>());
        let bound = crate::sign::Bound {
            host: &host,
            action,
            version,
            nonce: &nonce,
        };
        let auth = crate::sign::authorization_header(
            &self.secret_id,
            &self.secret_key,
            &bound,
            service,
            ts,
            &body,
        );
        let req = hyper::Request::post("/")
            .header("host", &host)
            .header("content-type", "application/json")
            .header("x-tc-action", action)
            .header("x-tc-version", version)
            .header("x-tc-timestamp", ts.to_string())
            .header(crate::sign::NONCE_HEADER, &nonce)
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let mut guard = self.conn.lock().await;
        let reusable = match guard.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *guard = Some(self.dial().await?);
        }
        let Some(sender) = guard.as_mut() else {
            return Err(ClientError::Transport("no connection".into()));
        };
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(ClientError::Transport(e.to_string()));
            }
        };
        drop(guard);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(e.to_string()))?;
        let r = v
            .get("Response")
            .cloned()
            .ok_or_else(|| ClientError::Response("no Response object".into()))?;
        if let Some(err) = r.get("Error") {
            let s = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(ClientError::Api {
                code: s("Code"),
                message: s("Message"),
                request_id: r
                    .get("RequestId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
            });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_urls() {
        assert_eq!(super::parse_url("https://h:8443"), Some(("h".into(), 8443)));
        assert_eq!(super::parse_url("https://h/"), Some(("h".into(), 443)));
        assert_eq!(super::parse_url("https://[::1]:9"), Some(("::1".into(), 9)));
        assert_eq!(super::parse_url("http://h:1"), None);
    }
}
