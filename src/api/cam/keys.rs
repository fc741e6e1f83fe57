//! Access keys and the caller's identity: CreateAccessKey, ListAccessKeys,
//! UpdateAccessKey, DeleteAccessKey, GetUserAppId. A SecretKey is sealed
//! with the appliance's SecretBox and shown once, in CreateAccessKey's (or
//! AddUser's) response.

use super::super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::{Api, Principal};
use super::scope::{Resolved, Target};
use crate::store::keys::{self, AccessKey, KeyInfo};
use crate::store::{users, Entity};
use crate::timefmt::{cam as cam_time, now_ms};

/// Keys one user may hold, as CAM allows. `drover admin create-key` is not
/// bound by it, so an operator can always get back in.
pub const MAX_KEYS_PER_USER: i64 = 2;

/// A new key for `user_id`, sealed exactly as `cli::admin::create_root_key`
/// seals it; returns the stored row and the plaintext SecretKey.
pub fn mint(api: &Api, user_id: String, description: String) -> (AccessKey, String) {
    let secret_id = format!("AKID{}", crate::ids::random_token(32));
    let secret_key = crate::ids::random_token(32);
    let key = AccessKey {
        secret_enc: api
            .secrets
            .seal(&format!("key:{secret_id}"), secret_key.as_bytes()),
        secret_id,
        user_id,
        active: true,
        description,
    };
    (key, secret_key)
}

/// Whose keys an action works on, as the gate decided it: the caller's own
/// without TargetUin; the account's (root's) for the OwnerUin; otherwise
/// the sub-user's. `what` names the credentials in the refusal (ssh keys
/// use the same rule).
pub(super) async fn owner(api: &Api, p: &Principal, target: &Resolved, what: &str) -> R<String> {
    if target.target == Target::Caller {
        return Ok(p.user_id.clone());
    }
    let uin = target.require(Entity::User)?;
    if uin == api.account_uin {
        if !p.is_root() {
            return Err(ApiError::new(
                Code::OperationDeniedSubUin,
                format!("a sub-user may not manage the account's own {what}"),
            ));
        }
        return Ok("root".into());
    }
    let u = api.store.read(move |c| users::require_uin(c, &uin)).await?;
    Ok(u.uin)
}

fn check_description(d: &str) -> R<()> {
    let ok = |c: char| c.is_alphanumeric() || "_+=,.@:/-".contains(c);
    if d.chars().count() > 1024 || !d.chars().all(ok) {
        return Err(ApiError::new(
            Code::InvalidParameterParamError,
            "Description must be at most 1024 letters, digits or _+=,.@:/-",
        ));
    }
    Ok(())
}

pub async fn create(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let description = q.opt_str("Description")?.unwrap_or_default();
    q.finish()?;
    check_description(&description)?;
    let user_id = owner(api, p, a.cam()?.first()?, "access keys").await?;
    let (key, secret) = mint(api, user_id, description);
    let stored = key.clone();
    let now = now_ms();
    api.store
        .write(move |c| keys::insert_limited(c, &stored, MAX_KEYS_PER_USER, now))
        .await?;
    Ok(json!({
        "AccessKey": {
            "AccessKeyId": key.secret_id,
            "SecretAccessKey": secret,
            "Status": "Active",
            "CreateTime": cam_time(now),
            "Description": key.description,
        }
    }))
}

fn key_info(k: &KeyInfo) -> Value {
    json!({
        "AccessKeyId": k.secret_id,
        "Status": k.status,
        "CreateTime": cam_time(k.created_ms),
        "Description": k.description,
    })
}

pub async fn list(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let p = a.who();
    q.finish()?;
    let user_id = owner(api, p, a.cam()?.first()?, "access keys").await?;
    let list = api
        .store
        .read(move |c| keys::list_for_user(c, &user_id))
        .await?;
    Ok(json!({ "AccessKeys": list.iter().map(key_info).collect::<Vec<_>>() }))
}

pub async fn update(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let id = q.str("AccessKeyId")?;
    let status = q.str("Status")?;
    q.finish()?;
    let active = match status.as_str() {
        "Active" => true,
        "Inactive" => false,
        other => {
            return Err(ApiError::new(
                Code::InvalidParameterParamError,
                format!("Status must be Active or Inactive, got {other:?}"),
            ))
        }
    };
    let user_id = owner(api, p, a.cam()?.first()?, "access keys").await?;
    api.store
        .write(move |c| keys::set_status(c, &user_id, &id, active))
        .await?;
    Ok(json!({}))
}

pub async fn delete(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let id = q.str("AccessKeyId")?;
    q.finish()?;
    let user_id = owner(api, p, a.cam()?.first()?, "access keys").await?;
    api.store
        .write(move |c| keys::delete(c, &user_id, &id))
        .await?;
    Ok(json!({}))
}

/// AppId is a stable number derived from the account uin (drover has no
/// billing account to take one from).
fn derived_app_id(account_uin: &str) -> u64 {
    1_250_000_000 + account_uin.parse::<u64>().unwrap_or(0) % 100_000_000
}

pub async fn app_id(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let p = a.who();
    q.finish()?;
    Ok(json!({
        "Uin": p.uin,
        "OwnerUin": api.account_uin,
        "AppId": derived_app_id(&api.account_uin),
    }))
}
