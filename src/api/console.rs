//! Web-console sign-in: `POST /console/login` turns a sub-user's console
//! password into a session cookie (HttpOnly, SameSite=Strict, Secure), and
//! `POST /console/api` lets the console call the same actions, through the
//! same handlers, as that user. Every state-changing console request must
//! carry the session's CSRF token in `X-CSRF-Token`. Sessions end after 30
//! idle minutes, 12 hours in all, or `POST /console/logout`.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::audit::{self, Trail};
use super::error::{ApiError, Code};
use super::request::Params;
use super::{envelope, json_reply, Api, Principal, Reply, Service, CAM_VERSION, TAT_VERSION};
use crate::sign::sha256_hex;
use crate::store::sessions::{self, Session};
use crate::store::users::LoginError;
use crate::timefmt::{iso, now_ms};

pub const COOKIE: &str = "drover_session";
const IDLE_MS: i64 = 30 * 60 * 1000;
const LIFETIME_MS: i64 = 12 * 3600 * 1000;
const MAX_BODY: usize = 1 << 20;

fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::ids::random_bytes::<32>())
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(COOKIE)?
                .strip_prefix('=')
                .map(String::from)
        })
}

/// Refuses cross-site requests outright: a browser always sends Origin on
/// a cross-origin POST, and it must name this very host.
pub(super) fn same_origin(parts: &Parts) -> bool {
    match (header(parts, "origin"), header(parts, "host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.strip_prefix("https://") == Some(host),
        (Some(_), None) => false,
    }
}

fn cookie(value: &str, max_age_s: i64) -> HeaderValue {
    let v =
        format!("{COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}");
    HeaderValue::from_str(&v)
        .unwrap_or_else(|_| HeaderValue::from_static("drover_session=; Max-Age=0"))
}

async fn body_of(body: Incoming) -> Result<Bytes, ApiError> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| {
            ApiError::new(
                Code::RequestSizeLimitExceeded,
                "the request body is too large",
            )
        })
}

/// Serves everything under `/console/`.
pub async fn serve(api: Arc<Api>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
    let request_id = crate::ids::request_id();
    let (parts, body) = req.into_parts();
    // Read the whole (bounded) body before anything can refuse the request:
    // an answer that leaves it unread makes hyper drop the connection, and
    // a client reusing that kept-alive connection then sees a reset.
    let body = body_of(body).await;
    let mut trail = Trail {
        service: "console".into(),
        ..Default::default()
    };
    let mut set_cookie = None;
    let path = parts.uri.path().to_string();
    let (action, result) = if !same_origin(&parts) {
        (
            "Console".to_string(),
            Err(ApiError::new(
                Code::UnauthorizedOperation,
                "cross-origin console requests are refused",
            )),
        )
    } else {
        match (&parts.method, path.as_str()) {
            (&Method::POST, "/console/login") => {
                let r = login(&api, body, peer, &mut trail, &mut set_cookie).await;
                ("ConsoleLogin".to_string(), r)
            }
            (&Method::POST, "/console/logout") => {
                let r = logout(&api, &parts, &mut trail, &mut set_cookie).await;
                ("ConsoleLogout".to_string(), r)
            }
            (&Method::GET, "/console/session") => (
                "ConsoleSession".to_string(),
                whoami(&api, &parts, &mut trail).await,
            ),
            (&Method::GET, "/console/ssh-info") => (
                "ConsoleView".to_string(),
                ssh_info(&api, &parts, &mut trail).await,
            ),
            (&Method::POST, "/console/can" | "/console/groups" | "/console/validate-policy") => (
                "ConsoleView".to_string(),
                console_view(&api, &parts, body, &path, peer, &mut trail).await,
            ),
            (&Method::POST, "/console/api") => {
                let action = header(&parts, "x-tc-action").unwrap_or("").to_string();
                let r = console_call(&api, &parts, body, &action, peer, &mut trail).await;
                (action, r)
            }
            _ => (
                "Console".to_string(),
                Err(ApiError::new(
                    Code::InvalidAction,
                    format!("no console endpoint {path}"),
                )),
            ),
        }
    };
    // Session lookups and read-only views are not worth an audit row each;
    // everything else is.
    if action != "ConsoleSession" && action != "ConsoleView" {
        let outcome = match &result {
            Ok(_) => "Success".to_string(),
            Err(e) => e.code.to_string(),
        };
        audit::record(&api, trail.into_event(&request_id, peer, &action, outcome)).await;
    }
    let status = result
        .as_ref()
        .err()
        .map_or(StatusCode::OK, ApiError::console_status);
    let mut reply = json_reply(status, &envelope(&request_id, result));
    if let Some(c) = set_cookie {
        reply.headers_mut().insert(SET_COOKIE, c);
    }
    reply
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    reply.headers_mut().insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000"),
    );
    reply
}

async fn login(
    api: &Api,
    body: Result<Bytes, ApiError>,
    peer: SocketAddr,
    trail: &mut Trail,
    set_cookie: &mut Option<HeaderValue>,
) -> Result<Value, ApiError> {
    let mut q = Params::parse(&body?)?;
    let name = q.str("UserName")?;
    let password = q.str("Password")?;
    // Sets a new password in the same sign-in: required when the user must
    // reset it (NeedResetPassword), allowed any time.
    let new_password = q.opt_str("NewPassword")?;
    q.finish()?;
    let new_hash = match new_password {
        Some(pw) => Some(new_password_hash(pw, password.clone()).await?),
        None => None,
    };
    trail.resources = vec![name.clone()];
    let now = now_ms();
    let token = new_token();
    let csrf = new_token();
    let (token_hash, csrf_hash) = (sha256_hex(token.as_bytes()), sha256_hex(csrf.as_bytes()));
    let lookup = name.clone();
    let facts = api
        .store
        .read(move |c| super::console_root::login_facts(c, &lookup))
        .await?;
    // The PBKDF2 check is slow on purpose: run it on the blocking pool,
    // never inside the store's single writer.
    let stored = facts
        .as_ref()
        .and_then(|f| f.password_hash.clone())
        .unwrap_or_default();
    // A bounded number of hashes at once, and a per-source budget of
    // attempts (api/abuse.rs): a flood of sign-ins is refused, not queued.
    let ticket = api.abuse.login.enter(peer.ip(), now).await?;
    let ok = tokio::task::spawn_blocking(move || {
        crate::crypto::verify_password_hash(&stored, &password)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    if ok {
        ticket.succeeded();
    }
    drop(ticket);
    let outcome = match facts {
        None => Err(LoginError::UnknownUser),
        Some(f) if f.locked_until_ms > now => Err(LoginError::Locked {
            until_ms: f.locked_until_ms,
        }),
        Some(f) => {
            api.store
                .write(move |c| {
                    match super::console_root::record_login(c, &f.uin, ok, now) {
                        Ok(()) => {}
                        Err(LoginError::Store(e)) => return Err(e),
                        Err(other) => return Ok(Err(other)),
                    }
                    match &new_hash {
                        Some(h) => super::console_root::reset_password(c, &f.uin, h)?,
                        None if f.need_reset_password => return Ok(Err(LoginError::ResetRequired)),
                        None => {}
                    }
                    let s = Session {
                        user_id: f.uin.clone(),
                        csrf_hash,
                        created_ms: now,
                        last_seen_ms: now,
                        expires_ms: now + LIFETIME_MS,
                    };
                    sessions::create(c, &token_hash, &s)?;
                    Ok(Ok((f.uin, name)))
                })
                .await?
        }
    };
    let (uin, name) = outcome.map_err(|e| match e {
        LoginError::Locked { until_ms } => ApiError::new(
            Code::AuthFailureLoginLocked,
            format!(
                "too many failed sign-ins; try again after {}",
                iso(until_ms)
            ),
        ),
        // Said only after the right password: nothing leaks to a guesser.
        LoginError::ResetRequired => ApiError::new(
            Code::AuthFailurePasswordResetRequired,
            "this password must be changed before signing in: send UserName, Password and \
             NewPassword to /console/login",
        ),
        // One answer for unknown user, wrong password and disabled console
        // login, so sign-in reveals nothing about which names exist.
        _ => ApiError::new(
            Code::AuthFailureLoginFailed,
            "the user name or password is wrong",
        ),
    })?;
    trail.principal = uin.clone();
    trail.decision = "allow".into();
    *set_cookie = Some(cookie(&token, LIFETIME_MS / 1000));
    Ok(json!({
        "UserName": name,
        "Uin": uin,
        "CsrfToken": csrf,
        "ExpiresAt": iso(now + LIFETIME_MS),
    }))
}

/// Checks a new console password against CAM's rule and against the
/// current one (a reset that keeps the password is no reset), then hashes
/// it, all off the async threads.
async fn new_password_hash(new: String, current: String) -> Result<Vec<u8>, ApiError> {
    super::cam::check_password(&new)?;
    if new == current {
        return Err(ApiError::new(
            Code::InvalidParameterPasswordViolatedRules,
            "NewPassword must differ from the current password",
        ));
    }
    tokio::task::spawn_blocking(move || crate::crypto::hash_password(&new))
        .await
        .map_err(|_| ApiError::internal())
}

/// The session and principal behind a request's cookie.
pub(super) async fn session(
    api: &Api,
    parts: &Parts,
) -> Result<(String, Session, Principal), ApiError> {
    let none = || {
        ApiError::new(
            Code::AuthFailureSessionExpired,
            "not signed in, or the session has expired",
        )
    };
    let token = session_token(parts).ok_or_else(none)?;
    let hash = sha256_hex(token.as_bytes());
    let h = hash.clone();
    let now = now_ms();
    let found = api
        .store
        .write(move |c| {
            let Some(s) = sessions::touch(c, &h, now, IDLE_MS)? else {
                return Ok(None);
            };
            // Password changes, ConsoleLogin=0, a reset demand and deletion
            // end sessions when they happen (store::users); this check makes
            // a session that survived any other way worthless too.
            if s.user_id != crate::store::root_login::ROOT
                && !crate::store::users::may_keep_session(c, &s.user_id)?
            {
                sessions::delete(c, &h)?;
                return Ok(None);
            }
            Ok(super::console_root::principal(c, &s.user_id)?.map(|p| (s, p)))
        })
        .await?;
    let (s, mut p) = found.ok_or_else(none)?;
    super::console_root::fill_account(api, &mut p);
    Ok((hash, s, p))
}

/// Whether `given` is the session's CSRF token (constant-time).
pub(super) fn csrf_matches(given: &str, s: &Session) -> bool {
    crate::crypto::ct_eq(
        sha256_hex(given.as_bytes()).as_bytes(),
        s.csrf_hash.as_bytes(),
    )
}

fn check_csrf(parts: &Parts, s: &Session) -> Result<(), ApiError> {
    let given = header(parts, "x-csrf-token").unwrap_or("");
    if crate::crypto::ct_eq(
        sha256_hex(given.as_bytes()).as_bytes(),
        s.csrf_hash.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::UnauthorizedOperation,
            "the X-CSRF-Token header is missing or wrong",
        ))
    }
}

async fn logout(
    api: &Api,
    parts: &Parts,
    trail: &mut Trail,
    set_cookie: &mut Option<HeaderValue>,
) -> Result<Value, ApiError> {
    let (hash, s, p) = session(api, parts).await?;
    trail.principal = p.user_id.clone();
    check_csrf(parts, &s)?;
    api.store.write(move |c| sessions::delete(c, &hash)).await?;
    *set_cookie = Some(cookie("", 0));
    Ok(json!({}))
}

async fn whoami(api: &Api, parts: &Parts, trail: &mut Trail) -> Result<Value, ApiError> {
    let (_, s, p) = session(api, parts).await?;
    trail.principal = p.user_id.clone();
    Ok(
        json!({ "UserName": p.name, "Uin": p.uin, "ExpiresAt": iso(s.expires_ms.min(s.last_seen_ms + IDLE_MS)) }),
    )
}

/// The ssh gateway's address and host key fingerprint, for the console to
/// show (`Enabled: false` when the server runs without `--ssh-listen`).
async fn ssh_info(api: &Api, parts: &Parts, trail: &mut Trail) -> Result<Value, ApiError> {
    // A read, like whoami: the session is enough, no CSRF token needed.
    let (_, _, p) = session(api, parts).await?;
    trail.principal = p.user_id.clone();
    Ok(match api.ssh_info.get() {
        Some(info) => {
            let mut v = serde_json::to_value(info).map_err(|_| ApiError::internal())?;
            if let Some(m) = v.as_object_mut() {
                m.insert("Enabled".into(), Value::Bool(true));
            }
            v
        }
        None => json!({ "Enabled": false }),
    })
}

/// The principal of a state-changing console request: a live session and
/// its CSRF token, both checked.
async fn signed_in(api: &Api, parts: &Parts, trail: &mut Trail) -> Result<Principal, ApiError> {
    let (_, s, p) = session(api, parts).await?;
    trail.principal = p.user_id.clone();
    check_csrf(parts, &s)?;
    Ok(p)
}

async fn console_call(
    api: &Api,
    parts: &Parts,
    body: Result<Bytes, ApiError>,
    action: &str,
    peer: SocketAddr,
    trail: &mut Trail,
) -> Result<Value, ApiError> {
    let p = signed_in(api, parts, trail).await?;
    let service = match header(parts, "x-tc-version").unwrap_or(TAT_VERSION) {
        TAT_VERSION => Service::Tat,
        CAM_VERSION => Service::Cam,
        other => {
            return Err(ApiError::new(
                Code::NoSuchVersion,
                format!("the API version {other:?} does not exist"),
            ));
        }
    };
    if action.is_empty() {
        return Err(ApiError::missing("X-TC-Action"));
    }
    let params = Params::parse(&body?)?;
    api.call(&p, service, action, params, Some(peer.ip()), trail)
        .await
}

/// The console's own read-only views (api/console_views.rs), behind the
/// session and its CSRF token like every other console call.
async fn console_view(
    api: &Api,
    parts: &Parts,
    body: Result<Bytes, ApiError>,
    path: &str,
    peer: SocketAddr,
    trail: &mut Trail,
) -> Result<Value, ApiError> {
    let p = signed_in(api, parts, trail).await?;
    let body = body?;
    if path == "/console/can" {
        super::console_views::can(api, &p, &body, peer.ip()).await
    } else if path == "/console/validate-policy" {
        super::console_views::validate_policy(&body)
    } else {
        super::console_views::groups(api, &p, &body, peer.ip()).await
    }
}
