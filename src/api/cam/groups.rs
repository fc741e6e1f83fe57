//! User groups: CreateGroup, GetGroup, ListGroups, DeleteGroup,
//! AddUserToGroup, RemoveUserFromGroup, ListUsersForGroup, ListGroupsForUser.

use super::super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::super::error::ApiError;
use super::super::request::{Params, R};
use super::super::Api;
use super::users::member_info;
use super::{check_len, page_rp, param_error, valid_name};
use crate::store::groups::{self, Group};
use crate::store::query::Page;
use crate::store::{users, Entity};
use crate::timefmt::{cam as cam_time, now_ms};

fn group_info(g: &Group) -> Value {
    json!({
        "GroupId": g.group_id,
        "GroupName": g.name,
        "CreateTime": cam_time(g.created_ms),
        "Remark": g.remark,
    })
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

pub async fn get(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let id = a.cam()?.first()?.require_int(Entity::Group)?;
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

pub async fn delete(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let id = a.cam()?.first()?.require_int(Entity::Group)?;
    api.store.write(move |c| groups::delete(c, id)).await?;
    Ok(json!({}))
}

/// The (group, user) pairs of AddUserToGroup / RemoveUserFromGroup, as
/// the gate resolved them: NotFound for a user or group that does not exist.
fn pairs(a: &Authorized<Request>) -> R<Vec<(i64, String)>> {
    a.cam()?
        .groups
        .iter()
        .map(|g| match g.as_slice() {
            [group, user] => Ok((
                group.require_int(Entity::Group)?,
                user.require(Entity::User)?,
            )),
            _ => Err(ApiError::internal()),
        })
        .collect()
}

pub async fn add_users(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let info = pairs(&a)?;
    api.store
        .write(move |c| {
            let now = now_ms();
            for (group, uin) in &info {
                users::require_uin(c, uin)?;
                groups::add_member(c, *group, uin, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn remove_users(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let info = pairs(&a)?;
    api.store
        .write(move |c| {
            for (group, uin) in &info {
                users::require_uin(c, uin)?;
                groups::remove_member(c, *group, uin)?;
            }
            Ok(())
        })
        .await?;
    Ok(json!({}))
}

pub async fn users_for_group(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = a.cam()?.first()?.require_int(Entity::Group)?;
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
    let page = page_rp(&mut q, 200)?;
    q.finish()?;
    // SubUin, Uid, or the caller's own groups, as the gate resolved them.
    let uin = a.cam()?.first()?.require(Entity::User)?;
    let (n, list) = api
        .store
        .read(move |c| {
            let uin = users::require_uin(c, &uin)?.uin;
            groups::groups_for_user(c, &uin, page)
        })
        .await?;
    Ok(json!({
        "TotalNum": n,
        "GroupInfo": list.iter().map(group_info).collect::<Vec<_>>(),
    }))
}
