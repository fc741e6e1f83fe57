//! A small signed TAT client for the tests: one HTTPS connection per call,
//! TC3-HMAC-SHA256 through `drover::sign`, so every request is what an
//! official SDK would send.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use drover::tls::Trust;

#[derive(Debug)]
pub enum ClientError {
    /// The API answered with `Response.Error`.
    Api { code: String, message: String },
    /// The request did not get an answer.
    Transport(String),
}

impl ClientError {
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::Transport(_) => "Transport",
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Api { code, message } => write!(f, "{code}: {message}"),
            ClientError::Transport(m) => write!(f, "transport: {m}"),
        }
    }
}

pub struct Client {
    pub host: String,
    pub secret_id: String,
    pub secret_key: String,
    /// Seconds added to the signing timestamp (to test the replay window).
    pub clock_skew: i64,
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    pub fn new(endpoint: &str, secret_id: &str, secret_key: &str, trust: &Trust) -> Client {
        let host = endpoint
            .trim_start_matches("https://")
            .trim_end_matches('/');
        Client {
            host: host.to_string(),
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            clock_skew: 0,
            tls: Arc::new(trust.client_config().unwrap()),
        }
    }

    pub async fn call(&self, action: &str, params: &Value) -> Result<Value, ClientError> {
        self.call_as("tat", "2020-10-28", action, params).await
    }

    /// The raw `Response` object text of a call, errors included.
    pub async fn call_raw(&self, action: &str, params: &Value) -> String {
        match self.call(action, params).await {
            Ok(v) => v.to_string(),
            Err(e) => e.to_string(),
        }
    }

    pub async fn call_as(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &Value,
    ) -> Result<Value, ClientError> {
        let t = |e: &dyn std::fmt::Display| ClientError::Transport(e.to_string());
        let body = serde_json::to_vec(params).unwrap();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + self.clock_skew;
        let auth = drover::sign::authorization_header(
            &self.secret_id,
            &self.secret_key,
            &self.host,
            service,
            ts,
            &body,
        );
        let tcp = TcpStream::connect(&self.host).await.map_err(|e| t(&e))?;
        let ip = self
            .host
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.host);
        let name = rustls::pki_types::ServerName::try_from(ip.to_string()).map_err(|e| t(&e))?;
        let tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| t(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| t(&e))?;
        tokio::spawn(conn);
        let req = hyper::Request::post("/")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("authorization", auth)
            .header("x-tc-action", action)
            .header("x-tc-version", version)
            .header("x-tc-timestamp", ts.to_string())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = sender.send_request(req).await.map_err(|e| t(&e))?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| t(&e))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| t(&e))?;
        let r = v["Response"].clone();
        if let Some(err) = r.get("Error") {
            return Err(ClientError::Api {
                code: err["Code"].as_str().unwrap_or("").to_string(),
                message: err["Message"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(r)
    }
}
