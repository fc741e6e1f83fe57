//! User groups: CreateGroup, GetGroup, ListGroups, DeleteGroup,
//! AddUserToGroup, RemoveUserFromGroup, ListUsersForGroup, ListGroupsForUser.

use super::super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Map, Value};

use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::Api;
use super::users::member_info;
use super::{check_len, opt_uin, page_rp, param_error, valid_name};
use crate::store::groups::{self, Group};
use crate::store::query::Page;
use crate::store::users;
use crate::timefmt::{cam as cam_time, now_ms};

/// Pairs one AddUserToGroup or RemoveUserFromGroup call may carry.
const MAX_INFO: usize = 50;

fn group_info(g: &Group) -> Value {
    json!({
        "GroupId": g.group_id,
        "GroupName": g.name,
        "CreateTime": cam_time(g.created_ms),
        "Remark": g.remark,
    })
}

/// A required group id parameter.
pub(super) fn group_id(q: &mut Params, name: &str) -> R<i64> {
    let id = q.opt_i64(name)?.ok_or_else(|| ApiError::missing(name))?;
    if id <= 0 {
        return Err(ApiError::new(
            Code::InvalidParameterGroupIdError,
            format!("{name} {id} is not a valid group id"),
        ));
    }
    Ok(id)
}

pub async fn create(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let name = q.str("GroupName")?;
    let remark = q.opt_str("Remark")?.unwrap_or_default();
    q.finish()?;
    if !valid_name(&name, 64) {
        return Err(param_error(
            "GroupName must be 1 to 64 letters, digits or +=,.@_-",
        ));
    }
    check_len("Remark", &remark, 255)?;
    let id = api
        .store
        .write(move |c| groups::insert(c, &name, &remark, now_ms()))
        .await?;
    Ok(json!({ "GroupId": id }))
}

pub async fn get(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = group_id(&mut q, "GroupId")?;
    q.finish()?;
    let all = Page {
        offset: 0,
        limit: i64::MAX,
    };
    let (g, (n, members)) = api
        .store
        .read(move |c| Ok((groups::require(c, id)?, groups::members(c, id, all)?)))
        .await?;
    Ok(json!({
        "GroupId": g.group_id,
        "GroupName": g.name,
        "GroupNum": n,
        "Remark": g.remark,
        "CreateTime": cam_time(g.created_ms),
        "UserInfo": members.iter().map(member_info).collect::<Vec<_>>(),
    }))
}

pub async fn list(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let page = page_rp(&mut q, 200)?;
    let keyword = q.opt_str("Keyword")?.unwrap_or_default();
    q.finish()?;
    check_len("Keyword", &keyword, 64)?;
    let (n, list) = api
        .store
        .read(move |c| groups::list(c, &keyword, page))
        .await?;
    Ok(json!({
        "TotalNum": n,
        "GroupInfo": list.iter().map(group_info).collect::<Vec<_>>(),
    }))
}

pub async fn delete(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = group_id(&mut q, "GroupId")?;
    q.finish()?;
    api.store.write(move |c| groups::delete(c, id)).await?;
    Ok(json!({}))
}

/// One `GroupIdOfUidInfo`: a group and a user named by Uin or Uid.
struct Pair {
    group_id: i64,
    uin: Option<i64>,
    uid: Option<i64>,
}

fn read_info(q: &mut Params) -> R<Vec<Pair>> {
    let Some(v) = q.opt_value("Info") else {
        return Err(ApiError::missing("Info"));
    };
    let Value::Array(items) = v else {
        return Err(ApiError::wrong_type("Info", "an array of GroupIdOfUidInfo"));
    };
    if items.is_empty() {
        return Err(ApiError::missing("Info"));
    }
    if items.len() > MAX_INFO {
        return Err(ApiError::new(
            Code::InvalidParameterOperateEntitiesOverLimit,
            format!("Info allows at most {MAX_INFO} entries"),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut m) = item else {
                return Err(ApiError::wrong_type("Info", "an array of GroupIdOfUidInfo"));
            };
            let int = |m: &mut Map<String, Value>, k: &str| match m.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| ApiError::wrong_type(&format!("Info.{k}"), "an integer")),
            };
            let pair = Pair {
                group_id: int(&mut m, "GroupId")?
                    .ok_or_else(|| ApiError::missing("Info.GroupId"))?,
                uin: int(&mut m, "Uin")?,
                uid: int(&mut m, "Uid")?,
            };
            if let Some(k) = m.keys().next() {
                return Err(ApiError::unknown_param(&format!("Info.{k}")));
            }
            if pair.uin.is_none() && pair.uid.is_none() {
                return Err(ApiError::new(
                    Code::InvalidParameterUserUinAndUinNotAllNull,
                    "each Info entry needs a Uin or a Uid",
                ));
            }
            Ok(pair)
        })
        .collect()
}

/// The uin of the user a pair names (Uin wins over Uid, as in CAM).
fn resolve(c: &rusqlite::Connection, p: &Pair) -> crate::store::Result<String> {
    match (p.uin, p.uid) {
        (Some(uin), _) => Ok(users::require_uin(c, &uin.to_string())?.uin),
        (None, Some(uid)) => users::get_by_uid(c, uid)?.map(|u| u.uin).ok_or_else(|| {
            crate::store::StoreError::missing(crate::store::Entity::User, format!("uid {uid}"))
        }),
        (None, None) => Err(crate::store::StoreError::missing(
            crate::store::Entity::User,
            "",
        )),
    }
}

pub async fn add_users(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let info = read_info(&mut q)?;
    q.finish()?;
    api.store
        .write(move |c| {
            let now = now_ms();
            for p in &info {
                let uin = resolve(c, p)?;
                groups::add_member(c, p.group_id, &uin, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn remove_users(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let info = read_info(&mut q)?;
    q.finish()?;
    api.store
        .write(move |c| {
            for p in &info {
                let uin = resolve(c, p)?;
                groups::remove_member(c, p.group_id, &uin)?;
            }
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn users_for_group(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = group_id(&mut q, "GroupId")?;
    let page = page_rp(&mut q, 200)?;
    q.finish()?;
    let (n, members) = api
        .store
        .read(move |c| groups::members(c, id, page))
        .await?;
    Ok(json!({
        "TotalNum": n,
        "UserInfo": members.iter().map(member_info).collect::<Vec<_>>(),
    }))
}

pub async fn groups_for_user(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let uid = q.opt_i64("Uid")?;
    let sub_uin = opt_uin(&mut q, "SubUin")?;
    let page = page_rp(&mut q, 200)?;
    q.finish()?;
    if sub_uin.is_none() && uid.is_none() && p.is_root() {
        return Err(ApiError::missing("SubUin"));
    }
    // Without Uid or SubUin, the caller's own groups.
    let own = (!p.is_root()).then(|| p.user_id.clone());
    let (n, list) = api
        .store
        .read(move |c| {
            let uin = match (sub_uin, uid, own) {
                (Some(uin), _, _) => users::require_uin(c, &uin)?.uin,
                (None, Some(uid), _) => resolve(
                    c,
                    &Pair {
                        group_id: 0,
                        uin: None,
                        uid: Some(uid),
                    },
                )?,
                (None, None, own) => own.unwrap_or_default(),
            };
            groups::groups_for_user(c, &uin, page)
        })
        .await?;
    Ok(json!({
        "TotalNum": n,
        "GroupInfo": list.iter().map(group_info).collect::<Vec<_>>(),
    }))
}
