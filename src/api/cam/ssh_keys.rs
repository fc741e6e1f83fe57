//! Ssh public keys, drover's extension beside CAM's access keys:
//! ImportSshPublicKey, DescribeSshPublicKeys, DeleteSshPublicKey. A key
//! lets whoever holds its private half sign in to the ssh gateway as the
//! key's user, so these actions are scoped like access keys (`scope.rs`:
//! the caller's own keys without `TargetUin`, a sub-user's with it, the
//! account's only for root).

use serde_json::{json, Value};

use super::super::decided::Request;
use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::Api;
use super::keys::owner;
use crate::gate::Authorized;
use crate::store::ssh_keys::{self, SshKey};
use crate::timefmt::{cam as cam_time, now_ms};

/// Keys one user may hold.
pub const MAX_KEYS_PER_USER: i64 = 10;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 256;

fn check_description(d: &str) -> R<()> {
    if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
        return Err(ApiError::new(
            Code::InvalidParameterParamError,
            format!("Description must be at most {MAX_DESCRIPTION} characters, without control characters"),
        ));
    }
    Ok(())
}

fn key_view(k: &SshKey) -> Value {
    json!({
        "KeyId": k.key_id,
        "Algorithm": k.algorithm,
        "Fingerprint": k.fingerprint,
        "PublicKey": k.public_key,
        "Description": k.description,
        "CreateTime": cam_time(k.created_ms),
        "LastUsedTime": cam_time(k.last_used_ms),
    })
}

pub async fn import(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let text = q.str("PublicKey")?;
    let description = q.opt_str("Description")?;
    q.finish()?;
    let parsed = crate::sshkey::parse(&text).map_err(|e| {
        ApiError::new(
            Code::InvalidParameterValueInvalidSshPublicKey,
            e.to_string(),
        )
    })?;
    // Without a Description the key's own comment ("ann@laptop") names it.
    let description = description.unwrap_or_else(|| parsed.comment.clone());
    check_description(&description)?;
    let user_id = owner(api, p, a.cam()?.first()?, "ssh keys").await?;
    let key = SshKey {
        key_id: crate::ids::new_id("sshkey"),
        user_id,
        algorithm: parsed.algorithm,
        fingerprint: parsed.fingerprint,
        public_key: parsed.line,
        description,
        created_ms: now_ms(),
        last_used_ms: 0,
    };
    let stored = key.clone();
    api.store
        .write(move |c| ssh_keys::insert_limited(c, &stored, MAX_KEYS_PER_USER))
        .await?;
    Ok(json!({ "SshPublicKey": key_view(&key) }))
}

pub async fn describe(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let p = a.who();
    q.finish()?;
    let user_id = owner(api, p, a.cam()?.first()?, "ssh keys").await?;
    let list = api
        .store
        .read(move |c| ssh_keys::list_for_user(c, &user_id))
        .await?;
    Ok(json!({
        "TotalCount": list.len(),
        "SshPublicKeys": list.iter().map(key_view).collect::<Vec<_>>(),
    }))
}

pub async fn delete(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let id = q.str("KeyId")?;
    q.finish()?;
    let user_id = owner(api, p, a.cam()?.first()?, "ssh keys").await?;
    api.store
        .write(move |c| ssh_keys::delete(c, &user_id, &id))
        .await?;
    Ok(json!({}))
}
