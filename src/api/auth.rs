//! Who is calling: TC3-HMAC-SHA256 verification of a request and resolution
//! of its SecretId to a principal. Any doubt fails closed.

use hyper::http::request::Parts;

use super::error::ApiError;
use super::Api;
use crate::sign::{self, SignInput};
use crate::store::keys;

/// Requests more than this far from the server's clock are refused (replay window).
const MAX_SKEW_SECS: i64 = 300;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// "root" for the account itself; sub-users get their own ids.
    pub user_id: String,
    pub secret_id: String,
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn sig_failure() -> ApiError {
    ApiError::new(
        "AuthFailure.SignatureFailure",
        "the request signature does not match; check the SecretKey and the signing steps",
    )
}

pub async fn authenticate(api: &Api, parts: &Parts, body: &[u8]) -> Result<Principal, ApiError> {
    let Some(auth) = header(parts, "authorization") else {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "the Authorization header is missing",
        ));
    };
    let Some(auth) = sign::parse_authorization(auth) else {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "the Authorization header is not a TC3-HMAC-SHA256 authorization",
        ));
    };
    let timestamp = header(parts, "x-tc-timestamp")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .ok_or_else(|| ApiError::missing("X-TC-Timestamp"))?;
    let now = crate::timefmt::now_ms() / 1000;
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Err(ApiError::new(
            "AuthFailure.SignatureExpire",
            format!("the request timestamp {timestamp} is more than {MAX_SKEW_SECS} s from the server time {now}"),
        ));
    }
    if auth.service != "tat" {
        return Err(ApiError::new(
            "AuthFailure.SignatureFailure",
            format!(
                "the credential scope names service {:?}; this endpoint serves tat",
                auth.service
            ),
        ));
    }
    if auth.date != sign::scope_date(timestamp) {
        return Err(sig_failure());
    }
    let mut headers = Vec::new();
    for name in auth.signed_headers.split(';') {
        let name = name.trim().to_ascii_lowercase();
        let value = header(parts, &name).unwrap_or("").to_string();
        headers.push((name, value));
    }
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    if !names.contains(&"host") || !names.contains(&"content-type") {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "SignedHeaders must include content-type and host",
        ));
    }
    let secret_id = auth.secret_id.clone();
    let key = api
        .store
        .read(move |c| keys::get(c, &secret_id))
        .await
        .map_err(ApiError::from)?
        .filter(|k| k.active)
        .ok_or_else(|| {
            ApiError::new(
                "AuthFailure.SecretIdNotFound",
                "the SecretId does not exist or has been disabled",
            )
        })?;
    let secret = api
        .secrets
        .open_sealed(&format!("key:{}", key.secret_id), &key.secret_enc)
        .map_err(|_| ApiError::internal())?;
    let secret = String::from_utf8(secret).map_err(|_| ApiError::internal())?;
    let payload_hash = match header(parts, "x-tc-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        _ => sign::sha256_hex(body),
    };
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let input = SignInput {
        method: parts.method.as_str(),
        path,
        query,
        headers: &headers,
        signed_headers: &auth.signed_headers,
        payload_hash: &payload_hash,
        timestamp,
        service: &auth.service,
    };
    if !sign::verify(&secret, &input, &auth.signature) {
        return Err(sig_failure());
    }
    Ok(Principal {
        user_id: key.user_id,
        secret_id: key.secret_id,
    })
}
