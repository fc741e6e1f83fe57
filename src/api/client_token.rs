//! `ClientToken` (a drover extension, as EC2 and SSM have it) on
//! RunCommand, InvokeCommand and CreateInvoker: a client that lost the
//! answer to a start can send the same request again with the same token and
//! gets the first answer back, with nothing started twice. The same token
//! with different parameters is refused with
//! `InvalidParameter.IdempotentParameterMismatch`. Tokens belong to one
//! principal and expire after 24 hours (`store::client_tokens`).

use serde_json::Value;

use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::{Api, Principal};
use crate::policy::Action;
use crate::store::client_tokens::{self, Recorded};
use crate::timefmt::now_ms;

/// Longest token: 64 characters, as EC2 allows.
const MAX_TOKEN: usize = 64;

/// A start made with a token: who, which token, and what was asked.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    principal: String,
    token: String,
    fingerprint: String,
}

/// Takes `ClientToken` from a RunCommand, InvokeCommand or CreateInvoker
/// before anything else is read (its fingerprint covers the action and
/// every other parameter as sent). Other actions keep it, so for them it is
/// an unknown parameter as before.
pub(crate) fn take(q: &mut Params, p: &Principal, action: Action) -> R<Option<Claim>> {
    if !matches!(
        action,
        Action::RunCommand | Action::InvokeCommand | Action::CreateInvoker
    ) {
        return Ok(None);
    }
    read(q, p, action.api_name())
}

fn read(q: &mut Params, p: &Principal, action: &str) -> R<Option<Claim>> {
    let Some(token) = q.opt_str("ClientToken")? else {
        return Ok(None);
    };
    if token.is_empty() || token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            Code::InvalidParameterValueInvalidClientToken,
            format!("ClientToken must be 1 to {MAX_TOKEN} printable ASCII characters"),
        ));
    }
    // serde_json's Map is ordered by key, so equal requests give equal text.
    let canonical = format!("{action}\n{}", Value::Object(q.remaining().clone()));
    Ok(Some(Claim {
        principal: p.user_id.clone(),
        token,
        fingerprint: crate::sign::sha256_hex(canonical.as_bytes()),
    }))
}

/// The first answer given to this token, when there is one: the caller
/// returns it instead of starting anything.
pub(crate) async fn replay(api: &Api, claim: &Option<Claim>) -> R<Option<Value>> {
    let Some(c) = claim.clone() else {
        return Ok(None);
    };
    let found = api
        .store
        .read(move |conn| client_tokens::lookup(conn, &c.principal, &c.token, now_ms()))
        .await?;
    let Some(rec) = found else {
        return Ok(None);
    };
    let Some(c) = claim else {
        return Ok(None);
    };
    if rec.fingerprint != c.fingerprint {
        return Err(ApiError::new(
            Code::InvalidParameterIdempotentParameterMismatch,
            "this ClientToken was used with different parameters within the last 24 hours",
        ));
    }
    serde_json::from_str(&rec.result)
        .map(Some)
        .map_err(|_| ApiError::internal())
}

/// Records `result` for the claim inside the caller's write transaction.
pub(crate) fn record(
    conn: &rusqlite::Connection,
    claim: &Claim,
    result: &Value,
) -> crate::store::Result<()> {
    client_tokens::record(
        conn,
        &claim.principal,
        &claim.token,
        &Recorded {
            fingerprint: claim.fingerprint.clone(),
            result: result.to_string(),
        },
        now_ms(),
    )
}

/// After a failed start: when a concurrent call with the same token won
/// (its record made ours fail), its answer is ours; otherwise the error.
pub(crate) async fn or_winner(api: &Api, claim: &Option<Claim>, e: ApiError) -> R<Value> {
    match replay(api, claim).await? {
        Some(v) => Ok(v),
        None => Err(e),
    }
}
