//! Who is calling: TC3-HMAC-SHA256 verification of a request and resolution
//! of its SecretId to a principal. Any doubt fails closed.

use hyper::http::request::Parts;

use super::error::ApiError;
use super::Api;
use crate::sign::{self, SignInput};
use crate::store::{groups, keys, users};

/// Requests more than this far from the server's clock are refused (replay window).
const MAX_SKEW_SECS: i64 = 300;

/// The API a request speaks, named by its credential scope's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// TAT 2020-10-28: commands, invocations, instances.
    Tat,
    /// CAM 2019-01-16: users, groups, policies, access keys.
    Cam,
}

impl Service {
    fn from_scope(name: &str) -> Option<Service> {
        match name {
            "tat" => Some(Service::Tat),
            "cam" => Some(Service::Cam),
            _ => None,
        }
    }
}

/// An authenticated caller: the account itself (root) or one sub-user.
/// This is everything an authorization decision may know about who calls;
/// `store::policies::load_policy_inputs` gives what applies to them.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Owner of the key in `access_keys.user_id`: "root" for the account
    /// itself, a sub-user's uin otherwise.
    pub user_id: String,
    pub secret_id: String,
    /// The caller's uin: the account's (OwnerUin) for root.
    pub uin: String,
    /// The sub-user's name; "root" for the account.
    pub name: String,
    /// Groups the sub-user belongs to when the request arrived (empty for root).
    pub group_ids: Vec<i64>,
    /// What the caller may do. Until `Api::call` loads the real grants a
    /// sub-user holds none, so a path that forgets to load them fails closed.
    pub grants: std::sync::Arc<super::authz::Grants>,
}

impl Principal {
    /// True for the account itself, which no policy restricts.
    pub fn is_root(&self) -> bool {
        self.user_id == "root"
    }
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

/// Verifies a request's signature and resolves its key to a principal and
/// the service its credential scope names.
pub async fn authenticate(
    api: &Api,
    parts: &Parts,
    body: &[u8],
) -> Result<(Principal, Service), ApiError> {
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
    let Some(service) = Service::from_scope(&auth.service) else {
        return Err(ApiError::new(
            "AuthFailure.SignatureFailure",
            format!(
                "the credential scope names service {:?}; this endpoint serves tat and cam",
                auth.service
            ),
        ));
    };
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
    let found = api
        .store
        .read(move |c| {
            let Some(key) = keys::get(c, &secret_id)?.filter(|k| k.active) else {
                return Ok(None);
            };
            if key.user_id == "root" {
                return Ok(Some((key, None, Vec::new())));
            }
            // A key whose owner was deleted behind its back is no key at all.
            let Some(user) = users::get_by_uin(c, &key.user_id)? else {
                return Ok(None);
            };
            let group_ids = groups::group_ids_for_user(c, &user.uin)?;
            Ok(Some((key, Some(user), group_ids)))
        })
        .await
        .map_err(ApiError::from)?;
    let (key, user, group_ids) = found.ok_or_else(|| {
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
    let (uin, name) = match user {
        Some(u) => (u.uin, u.name),
        None => (api.account_uin.clone(), "root".to_string()),
    };
    let grants = if key.user_id == "root" {
        super::authz::Grants::root()
    } else {
        super::authz::Grants::default()
    };
    let principal = Principal {
        user_id: key.user_id,
        secret_id: key.secret_id,
        uin,
        name,
        group_ids,
        grants: std::sync::Arc::new(grants),
    };
    Ok((principal, service))
}

/// The principal of a signed-in console user (no key involved).
pub fn principal_for_user(
    conn: &rusqlite::Connection,
    uin: &str,
) -> crate::store::Result<Option<Principal>> {
    let Some(user) = users::get_by_uin(conn, uin)? else {
        return Ok(None);
    };
    let group_ids = groups::group_ids_for_user(conn, &user.uin)?;
    Ok(Some(Principal {
        user_id: user.uin.clone(),
        secret_id: String::new(),
        uin: user.uin,
        name: user.name,
        group_ids,
        grants: Default::default(),
    }))
}
