//! Who is calling: verification of a request's signature (TC3-HMAC-SHA256,
//! or the older v1 HmacSHA1/HmacSHA256 the SDKs offer as `signMethod`),
//! resolution of its SecretId to a principal, and the replay guard. Any
//! doubt fails closed.

use hyper::http::request::Parts;

use super::error::{ApiError, Code};
use super::{form, replay, Api};
use crate::sign::{self, SignInput};
use crate::store::{groups, keys, users};

/// Requests more than this far from the server's clock are refused (replay window).
const MAX_SKEW_SECS: i64 = 300;

/// The API a request speaks, chosen by its X-TC-Version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// TAT 2020-10-28: commands, invocations, instances.
    Tat,
    /// CAM 2019-01-16: users, groups, policies, access keys.
    Cam,
}

impl Service {
    /// The service an API version belongs to; the version, not the
    /// credential scope, says which API a request speaks.
    pub fn from_version(version: &str) -> Option<Service> {
        match version {
            super::TAT_VERSION => Some(Service::Tat),
            super::CAM_VERSION => Some(Service::Cam),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Tat => "tat",
            Service::Cam => "cam",
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
        Code::AuthFailureSignatureFailure,
        "the request signature does not match; check the SecretKey and the signing steps",
    )
}

/// A request whose signature verified: who sent it, what it asks for, and
/// its parameters (from a JSON body, a form body or the query string).
pub struct Signed {
    pub principal: Principal,
    pub action: String,
    pub version: String,
    /// X-TC-Region (TC3) or Region (v1), when the client named one.
    pub region: Option<String>,
    pub params: super::request::Params,
}

/// What a signature scheme proved, before the key is known to be good.
struct Claim {
    signature: String,
    timestamp: i64,
    action: String,
    version: String,
    region: Option<String>,
    params: super::request::Params,
}

/// Verifies a request's signature (TC3-HMAC-SHA256 in the Authorization
/// header, or the v1 HmacSHA1/HmacSHA256 signature in its parameters),
/// resolves its key to a principal, and admits it past the replay guard.
pub async fn authenticate(api: &Api, parts: &Parts, body: &[u8]) -> Result<Signed, ApiError> {
    let conn = parts.extensions.get::<replay::ConnId>().copied();
    let (claim, key, user, group_ids) = if header(parts, "authorization").is_some() {
        tc3(api, parts, body).await?
    } else {
        v1(api, parts, body).await?
    };
    let binding = replay::binding(
        &claim.action,
        &claim.version,
        parts.method.as_str(),
        parts.uri.query().unwrap_or(""),
        body,
    );
    let now = crate::timefmt::now_ms() / 1000;
    api.replay
        .admit(
            conn,
            &key.secret_id,
            &claim.signature,
            binding,
            replay::is_read_only(&claim.action),
            claim.timestamp + MAX_SKEW_SECS + 1,
            now,
        )
        .map_err(|e| match e {
            replay::ReplayError::Full => ApiError::new(
                Code::RequestLimitExceeded,
                "too many signed requests within the last 5 minutes; try again later",
            ),
            // The SDKs sign neither the action nor a nonce: two calls with
            // identical parameters in one second share a signature.
            other => ApiError::new(
                Code::AuthFailureSignatureFailure,
                format!("{other}; sign each request anew (calls with identical parameters sent from new connections within one second share a signature)"),
            ),
        })?;
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
    Ok(Signed {
        principal,
        action: claim.action,
        version: claim.version,
        region: claim.region,
        params: claim.params,
    })
}

type Verified = (Claim, keys::AccessKey, Option<users::User>, Vec<i64>);

fn check_timestamp(raw: Option<&str>, name: &str) -> Result<i64, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::missing(name))?;
    let timestamp = raw.trim().parse::<i64>().map_err(|_| {
        ApiError::new(
            Code::InvalidParameter,
            format!("{name} must be a Unix time in seconds"),
        )
    })?;
    let now = crate::timefmt::now_ms() / 1000;
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Err(ApiError::new(
            Code::AuthFailureSignatureExpire,
            format!("the request timestamp {timestamp} is more than {MAX_SKEW_SECS} s from the server time {now}"),
        ));
    }
    Ok(timestamp)
}

/// The Host header as sent, and without its port: the SDKs differ (Python
/// signs what it sends, Node signs the host name alone).
fn host_forms(parts: &Parts) -> Vec<String> {
    let host = header(parts, "host").unwrap_or("").to_string();
    let mut out = vec![host.clone()];
    let bare = match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            host[..i].to_string()
        }
        _ => host.clone(),
    };
    if bare != host {
        out.push(bare);
    }
    out
}

/// Parameters of a request that carries them in the query string or as a
/// form body; a JSON body otherwise.
fn params_of(parts: &Parts, body: &[u8]) -> Result<super::request::Params, ApiError> {
    use super::request::Params;
    if parts.method == hyper::Method::GET {
        return Params::from_form(form::decode(parts.uri.query().unwrap_or("").as_bytes()));
    }
    let ctype = header(parts, "content-type").unwrap_or("");
    if ctype
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Params::from_form(form::decode(body));
    }
    if ctype.to_ascii_lowercase().starts_with("multipart/") {
        return Err(ApiError::new(
            Code::UnsupportedProtocol,
            "multipart requests are not supported; send JSON",
        ));
    }
    Params::parse(body)
}

async fn load_key(
    api: &Api,
    secret_id: &str,
) -> Result<(keys::AccessKey, Option<users::User>, Vec<i64>, String), ApiError> {
    let lookup = secret_id.to_string();
    let found = api
        .store
        .read(move |c| {
            let Some(key) = keys::get(c, &lookup)?.filter(|k| k.active) else {
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
            Code::AuthFailureSecretIdNotFound,
            "the SecretId does not exist or has been disabled",
        )
    })?;
    let secret = api
        .secrets
        .open_sealed(&format!("key:{}", key.secret_id), &key.secret_enc)
        .map_err(|_| ApiError::internal())?;
    let secret = String::from_utf8(secret).map_err(|_| ApiError::internal())?;
    Ok((key, user, group_ids, secret))
}

/// TC3-HMAC-SHA256. The credential scope's service is whatever the client
/// derived it from (the SDKs take the endpoint's first label, so
/// `127.0.0.1:8443` signs as "127"): it must be tat, cam or that label, and
/// it chooses nothing; the API version does.
async fn tc3(api: &Api, parts: &Parts, body: &[u8]) -> Result<Verified, ApiError> {
    let raw = header(parts, "authorization").unwrap_or("");
    let Some(auth) = sign::parse_authorization(raw) else {
        return Err(ApiError::new(
            Code::AuthFailureInvalidAuthorization,
            "the Authorization header is not a TC3-HMAC-SHA256 authorization",
        ));
    };
    let timestamp = check_timestamp(header(parts, "x-tc-timestamp"), "X-TC-Timestamp")?;
    let hosts = host_forms(parts);
    let first_label = hosts
        .last()
        .and_then(|h| h.split('.').next())
        .unwrap_or("")
        .to_ascii_lowercase();
    let service_ok = auth.service == "tat"
        || auth.service == "cam"
        || (!first_label.is_empty() && auth.service == first_label);
    if !service_ok {
        return Err(ApiError::new(
            Code::AuthFailureSignatureFailure,
            format!(
                "the credential scope names service {:?}; sign with tat, cam or the endpoint's first label",
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
            Code::AuthFailureInvalidAuthorization,
            "SignedHeaders must include content-type and host",
        ));
    }
    let unsigned = header(parts, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD");
    if unsigned && !api.allow_unsigned_payload {
        return Err(ApiError::new(
            Code::AuthFailureInvalidAuthorization,
            "X-TC-Content-SHA256: UNSIGNED-PAYLOAD is refused: this server requires the body to be signed (an operator may allow it with `drover server --allow-unsigned-payload`)",
        ));
    }
    let (key, user, group_ids, secret) = load_key(api, &auth.secret_id).await?;
    // The SDKs hash the literal text in place of the body.
    let payload_hash = if unsigned {
        sign::sha256_hex(b"UNSIGNED-PAYLOAD")
    } else {
        sign::sha256_hex(body)
    };
    let verified = hosts.iter().any(|host| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| {
                let v = if n == "host" { host.clone() } else { v.clone() };
                (n.clone(), v)
            })
            .collect();
        let input = SignInput {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            signed_headers: &auth.signed_headers,
            payload_hash: &payload_hash,
            timestamp,
            service: &auth.service,
        };
        sign::verify(&secret, &input, &auth.signature)
    });
    if !verified {
        return Err(sig_failure());
    }
    let claim = Claim {
        signature: auth.signature,
        timestamp,
        action: header(parts, "x-tc-action").unwrap_or("").to_string(),
        version: header(parts, "x-tc-version").unwrap_or("").to_string(),
        region: header(parts, "x-tc-region").map(String::from),
        params: params_of(parts, body)?,
    };
    Ok((claim, key, user, group_ids))
}

/// Parameters of the v1 signature and the common parameters it carries,
/// which are not the action's own.
const V1_COMMON: [&str; 11] = [
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "RequestClient",
    "Language",
    "Token",
];

/// The v1 signature: every parameter, with Nonce and Timestamp, signed with
/// HmacSHA1 or HmacSHA256, in the query string (GET) or a form body (POST).
async fn v1(api: &Api, parts: &Parts, body: &[u8]) -> Result<Verified, ApiError> {
    let form_body = header(parts, "content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let pairs = if parts.method == hyper::Method::GET {
        form::decode(parts.uri.query().unwrap_or("").as_bytes())
    } else if form_body {
        form::decode(body)
    } else {
        Vec::new()
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(signature) = get("Signature") else {
        return Err(ApiError::new(
            Code::AuthFailureInvalidAuthorization,
            "the Authorization header is missing (and no v1 Signature parameter was given)",
        ));
    };
    let signature = signature.to_string();
    let Some(method) = sign::V1Method::parse(get("SignatureMethod")) else {
        return Err(ApiError::new(
            Code::AuthFailureInvalidAuthorization,
            "SignatureMethod must be HmacSHA1 or HmacSHA256",
        ));
    };
    let timestamp = check_timestamp(get("Timestamp"), "Timestamp")?;
    if get("Nonce").is_none_or(|n| n.trim().parse::<u64>().is_err()) {
        return Err(ApiError::new(
            Code::AuthFailureInvalidAuthorization,
            "the v1 signature needs Nonce, a positive integer",
        ));
    }
    let secret_id = get("SecretId")
        .ok_or_else(|| ApiError::missing("SecretId"))?
        .to_string();
    if pairs
        .iter()
        .filter(|(k, _)| V1_COMMON.contains(&k.as_str()))
        .count()
        != pairs
            .iter()
            .filter(|(k, _)| V1_COMMON.contains(&k.as_str()))
            .map(|(k, _)| k)
            .collect::<std::collections::HashSet<_>>()
            .len()
    {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "a common parameter of the v1 signature is given twice",
        ));
    }
    let (key, user, group_ids, secret) = load_key(api, &secret_id).await?;
    let verified = host_forms(parts).iter().any(|host| {
        let sts = sign::v1_string_to_sign(parts.method.as_str(), host, parts.uri.path(), &pairs);
        sign::v1_verify(&secret, method, &sts, &signature)
    });
    if !verified {
        return Err(sig_failure());
    }
    let action = get("Action").unwrap_or("").to_string();
    let version = get("Version").unwrap_or("").to_string();
    let region = get("Region").map(String::from);
    let own: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| !V1_COMMON.contains(&k.as_str()))
        .collect();
    let claim = Claim {
        signature,
        timestamp,
        action,
        version,
        region,
        params: super::request::Params::from_form(own)?,
    };
    Ok((claim, key, user, group_ids))
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
