//! TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, for both
//! the server (verify) and drover's own client (sign), and the older v1
//! signature (HmacSHA1/HmacSHA256 over the sorted parameters) that the SDKs
//! still offer as `signMethod`, for the server only.
//!
//! The official SDKs sign `content-type;host` over the exact header values
//! they send, so the server rebuilds the canonical request from the headers
//! as received. Comparison is constant-time.

use ring::{digest, hmac};

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of a request that the signature covers.
pub struct SignInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// (lowercase name, value) in the order listed in `signed_headers`.
    pub headers: &'a [(String, String)],
    pub signed_headers: &'a str,
    /// Hex SHA-256 of the body, or the literal "UNSIGNED-PAYLOAD".
    pub payload_hash: &'a str,
    pub timestamp: i64,
    /// The service in the credential scope: "tat" or "cam".
    pub service: &'a str,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
}

/// The UTC date of a Unix timestamp, `YYYY-MM-DD`, as the credential scope uses.
pub fn scope_date(timestamp: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(timestamp)
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_default()
}

/// The signing key and string-to-sign of a request.
fn signing_parts(secret_key: &str, input: &SignInput<'_>) -> (hmac::Key, String) {
    let mut canonical_headers = String::new();
    for (k, v) in input.headers {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(v.trim());
        canonical_headers.push('\n');
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        input.path,
        input.query,
        canonical_headers,
        input.signed_headers,
        input.payload_hash
    );
    let date = scope_date(input.timestamp);
    let scope = format!("{date}/{}/tc3_request", input.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        input.timestamp,
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(k_date.as_ref(), input.service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"tc3_request");
    (
        hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref()),
        string_to_sign,
    )
}

/// The hex signature of a request under `secret_key`.
pub fn signature(secret_key: &str, input: &SignInput<'_>) -> String {
    let (key, sts) = signing_parts(secret_key, input);
    hex::encode(hmac::sign(&key, sts.as_bytes()))
}

/// Checks a hex signature in constant time (ring's HMAC verification).
pub fn verify(secret_key: &str, input: &SignInput<'_>, given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex) else {
        return false;
    };
    let (key, sts) = signing_parts(secret_key, input);
    hmac::verify(&key, sts.as_bytes(), &given).is_ok()
}

/// The v1 signature methods (`SignatureMethod`, default HmacSHA1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Method {
    HmacSha1,
    HmacSha256,
}

impl V1Method {
    pub fn parse(name: Option<&str>) -> Option<V1Method> {
        match name {
            None | Some("HmacSHA1") => Some(V1Method::HmacSha1),
            Some("HmacSHA256") => Some(V1Method::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The v1 string to sign: `METHOD` + host + path + `?` + the parameters
/// (all but `Signature`, decoded) sorted by name and joined as `k=v&...`,
/// values as the client wrote them before URL-encoding.
pub fn v1_string_to_sign(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{method}{host}{path}?{}", joined.join("&"))
}

/// The base64 v1 signature of a string to sign.
pub fn v1_signature(secret_key: &str, method: V1Method, string_to_sign: &str) -> String {
    use base64::Engine;
    let alg = match method {
        V1Method::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        V1Method::HmacSha256 => hmac::HMAC_SHA256,
    };
    let tag = hmac::sign(
        &hmac::Key::new(alg, secret_key.as_bytes()),
        string_to_sign.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Checks a base64 v1 signature in constant time.
pub fn v1_verify(
    secret_key: &str,
    method: V1Method,
    string_to_sign: &str,
    given_b64: &str,
) -> bool {
    use base64::Engine;
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(given_b64.trim()) else {
        return false;
    };
    let alg = match method {
        V1Method::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        V1Method::HmacSha256 => hmac::HMAC_SHA256,
    };
    let key = hmac::Key::new(alg, secret_key.as_bytes());
    hmac::verify(&key, string_to_sign.as_bytes(), &given).is_ok()
}

/// A parsed `Authorization: TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, PartialEq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: String,
    pub signature: String,
}

pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.trim();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => cred = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => sig = Some(v.trim()),
            _ => return None,
        }
    }
    let mut c = cred?.split('/');
    let (Some(id), Some(date), Some(service), Some("tc3_request"), None) =
        (c.next(), c.next(), c.next(), c.next(), c.next())
    else {
        return None;
    };
    Some(Authorization {
        secret_id: id.to_string(),
        date: date.to_string(),
        service: service.to_string(),
        signed_headers: signed?.to_string(),
        signature: sig?.to_string(),
    })
}

/// What drover's own client signs besides the body: the official SDKs sign
/// only content-type and host; drover also signs the action, the version and
/// a per-request nonce, so its signatures are bound to their action and two
/// identical calls in one second are still two requests.
pub struct Bound<'a> {
    pub host: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    pub nonce: &'a str,
}

/// The header drover's client puts its nonce in (signed, see `Bound`).
pub const NONCE_HEADER: &str = "x-drover-nonce";

/// Builds the Authorization header value for a JSON POST to `/`.
pub fn authorization_header(
    secret_id: &str,
    secret_key: &str,
    bound: &Bound<'_>,
    service: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let headers = [
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), bound.host.to_string()),
        ("x-drover-nonce".to_string(), bound.nonce.to_string()),
        ("x-tc-action".to_string(), bound.action.to_string()),
        ("x-tc-version".to_string(), bound.version.to_string()),
    ];
    let signed = "content-type;host;x-drover-nonce;x-tc-action;x-tc-version";
    let payload_hash = sha256_hex(body);
    let sig = signature(
        secret_key,
        &SignInput {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            signed_headers: signed,
            payload_hash: &payload_hash,
            timestamp,
            service,
        },
    );
    format!(
        "{ALGORITHM} Credential={secret_id}/{}/{service}/tc3_request, SignedHeaders={signed}, Signature={sig}",
        scope_date(timestamp)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked against the official Python SDK's `Sign.sign_tc3` for
    /// the same canonical request.
    #[test]
    fn matches_official_sdk() {
        let headers = [
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), "127.0.0.1:8443".to_string()),
        ];
        let sig = signature(
            "SECRETKEY",
            &SignInput {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                signed_headers: "content-type;host",
                payload_hash: &sha256_hex(br#"{"Limit": 1}"#),
                timestamp: 1_700_000_000,
                service: "tat",
            },
        );
        assert_eq!(
            sig,
            "775bda72c528cfb3c0806b94089a4274033a2df88ec5f905a703f7a3c2d85b30"
        );
    }

    /// Cross-checked against the official Python SDK's `Sign.sign` and
    /// `_format_sign_string` for the same parameters.
    #[test]
    fn v1_matches_official_sdk() {
        let params = vec![
            ("Action".to_string(), "DescribeRegions".to_string()),
            ("Nonce".to_string(), "11886".to_string()),
            ("Timestamp".to_string(), "1700000000".to_string()),
            ("SecretId".to_string(), "AKID1".to_string()),
            ("Version".to_string(), "2020-10-28".to_string()),
            ("Signature".to_string(), "ignored".to_string()),
        ];
        let sts = v1_string_to_sign("GET", "127.0.0.1:8443", "/", &params);
        assert_eq!(
            sts,
            "GET127.0.0.1:8443/?Action=DescribeRegions&Nonce=11886&SecretId=AKID1&Timestamp=1700000000&Version=2020-10-28"
        );
        let sha1 = v1_signature("SECRETKEY", V1Method::HmacSha1, &sts);
        let sha256 = v1_signature("SECRETKEY", V1Method::HmacSha256, &sts);
        assert_eq!(sha1, "96y+KH22cLeJi5BFYiYyFYWAcZs=");
        assert_eq!(sha256, "GUzvlW/i3lEih+mrvk7RXQycgqIVXgFTOG7pyTDZBkQ=");
        assert!(v1_verify("SECRETKEY", V1Method::HmacSha1, &sts, &sha1));
        assert!(!v1_verify("SECRETKEY", V1Method::HmacSha256, &sts, &sha1));
        assert!(!v1_verify("OTHER", V1Method::HmacSha1, &sts, &sha1));
        assert!(!v1_verify("SECRETKEY", V1Method::HmacSha1, &sts, "%%"));
        assert_eq!(V1Method::parse(None), Some(V1Method::HmacSha1));
        assert_eq!(
            V1Method::parse(Some("HmacSHA256")),
            Some(V1Method::HmacSha256)
        );
        assert_eq!(V1Method::parse(Some("TC3-HMAC-SHA256")), None);
    }

    #[test]
    fn parses_authorization_and_rejects_junk() {
        let bound = Bound {
            host: "h:1",
            action: "A",
            version: "v",
            nonce: "n",
        };
        let h = authorization_header("AKID1", "key", &bound, "tat", 1_700_000_000, b"{}");
        let a = parse_authorization(&h);
        assert!(a.is_some(), "{h}");
        let a = a.unwrap_or_else(|| unreachable!());
        assert_eq!(a.secret_id, "AKID1");
        assert_eq!(a.service, "tat");
        assert_eq!(
            a.signed_headers,
            "content-type;host;x-drover-nonce;x-tc-action;x-tc-version"
        );
        assert!(parse_authorization("TC3-HMAC-SHA256 Credential=x").is_none());
        assert!(parse_authorization("HMAC Credential=a/b/c/tc3_request").is_none());
        let headers = [("host".to_string(), "h".to_string())];
        let input = SignInput {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            signed_headers: "host",
            payload_hash: "UNSIGNED-PAYLOAD",
            timestamp: 1_700_000_000,
            service: "tat",
        };
        let good = signature("k", &input);
        assert!(verify("k", &input, &good));
        assert!(!verify("k2", &input, &good));
        assert!(!verify("k", &input, "zz"));
    }
}
