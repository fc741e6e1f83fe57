//! drover's access extensions beside CAM: Azure-style role assignments
//! (CreateRoleAssignment, DeleteRoleAssignment, ListRoleAssignments) and the
//! policy simulator (SimulatePrincipalPolicy), which answers "why can't Ann
//! run this?" with the statements that decided.

use serde_json::{json, Value};

use super::cam::scope::{principal_type, PrincipalKind, Target};
use super::decided::Request;
use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::{Api, Principal};
use crate::gate::Authorized;
use crate::policy::{AzureRole, Resource, ResourceKind};
use crate::store::policies::RoleAssignment;
use crate::store::{commands, groups, role_assignments, users, Entity, StoreError};
use crate::timefmt::{iso, now_ms};

fn view(a: &RoleAssignment) -> Value {
    json!({
        "RoleAssignmentId": a.id,
        "PrincipalType": if a.principal_type == "group" { "Group" } else { "User" },
        "PrincipalId": a.principal_id,
        "RoleName": a.role_name,
        "Scope": a.scope,
        "CreatedTime": iso(a.created_ms),
    })
}

pub async fn create(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let role_name = q.str("RoleName")?;
    let scope = q.opt_str("Scope")?.unwrap_or_else(|| "account".into());
    q.finish()?;
    // The principal as the gate read and decided it.
    let principal = a.cam()?.first()?.clone();
    let (kind, entity) = match principal.target {
        Target::Group(_) | Target::Unknown(ResourceKind::CamGroup, _) => ("group", Entity::Group),
        _ => ("user", Entity::Uin),
    };
    let role = AzureRole::from_name(&role_name).ok_or_else(|| {
        ApiError::new(
            Code::ResourceNotFoundRoleNotFound,
            format!("there is no built-in role {role_name:?}"),
        )
    })?;
    if scope != "account" && !crate::ids::is_valid(&scope, "cmd") {
        return Err(ApiError::value(
            "Scope must be \"account\" or a command id (cmd-xxxxxxxx)",
        ));
    }
    let a = RoleAssignment {
        id: crate::ids::new_id("ra"),
        principal_type: kind.into(),
        principal_id: principal.asked(),
        role_name: role.name().into(),
        scope,
        created_ms: now_ms(),
    };
    let id = api
        .store
        .write(move |c| {
            let id = principal.require(entity)?;
            let known = if entity == Entity::Uin {
                users::get_by_uin(c, &id)?.is_some()
            } else {
                groups::get(c, id.parse::<i64>().unwrap_or(-1))?.is_some()
            };
            if !known {
                return Err(StoreError::missing(entity, id));
            }
            if a.scope != "account" {
                commands::get(c, &a.scope)?;
            }
            role_assignments::insert(c, &a)
        })
        .await?;
    Ok(json!({ "RoleAssignmentId": id }))
}

pub async fn delete(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    // The assignment the gate decided on (by the principal it binds).
    let Target::RoleAssignment(id) = a.cam()?.first()?.target.clone() else {
        return Err(ApiError::internal());
    };
    api.store
        .write(move |c| role_assignments::delete(c, &id))
        .await?;
    Ok(json!({}))
}

pub async fn list(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let kind = principal_type(&mut q, false)?.map(|k| match k {
        PrincipalKind::User => "user",
        PrincipalKind::Group => "group",
    });
    let principal_id = q.opt_str("PrincipalId")?;
    let page = q.page()?;
    q.finish()?;
    let (total, rows) = api
        .store
        .read(move |c| role_assignments::list(c, kind, principal_id.as_deref(), page))
        .await?;
    Ok(
        json!({ "TotalCount": total, "RoleAssignmentSet": rows.iter().map(view).collect::<Vec<_>>() }),
    )
}

/// A resource as the simulator takes it: a qcs name, or a bare command or
/// instance id (completed with this account and region, and its tags).
async fn resource(api: &Api, given: &str) -> R<Resource> {
    if given.starts_with("qcs:") || given == "*" {
        return Ok(Resource::new(given));
    }
    if crate::ids::is_valid(given, "cmd") {
        return api.command_resource(given).await;
    }
    if crate::ids::is_valid(given, "mi") {
        let mut v = api.instance_resources(&[given.to_string()]).await?;
        return v.pop().ok_or_else(ApiError::internal);
    }
    Ok(Resource::new(ResourceKind::Any.qcs(
        &api.region,
        &api.account_uin,
        given,
    )))
}

pub async fn simulate(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let action = q.str("Action")?;
    let resources = q.opt_str_list("Resources")?.unwrap_or_default();
    let source_ip = q.opt_str("SourceIp")?;
    q.finish()?;
    // The principal the gate decided the caller may simulate.
    let principal = a.cam()?.first()?.clone();
    if let Target::Group(_) | Target::Unknown(ResourceKind::CamGroup, _) = principal.target {
        return Err(ApiError::value(
            "only users can be simulated: a group's members differ in their other grants",
        ));
    }
    let ip = match source_ip {
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::value(format!("SourceIp {s:?} is not an IP address")))?,
        ),
        None => None,
    };
    let qualified = if action.contains(':') {
        action.clone()
    } else {
        crate::policy::policy_action(&action, false)
            .ok_or_else(|| ApiError::value(format!("unknown action {action:?}")))?
            .to_string()
    };
    let principal_id = principal.require(Entity::Uin)?;
    let lookup = principal_id.clone();
    // Whom to explain is the principal named, never the caller: the gate
    // (cam::scope) has already decided that the caller may simulate it.
    let who = if principal.target == Target::Account || principal_id == api.account_uin {
        Some(Principal {
            user_id: "root".into(),
            secret_id: String::new(),
            uin: api.account_uin.clone(),
            name: "root".into(),
            group_ids: Vec::new(),
            grants: std::sync::Arc::new(super::authz::Grants::root()),
        })
    } else {
        api.store
            .read(move |c| super::auth::principal_for_user(c, &lookup))
            .await?
    };
    let who =
        who.ok_or_else(|| ApiError::from(StoreError::missing(Entity::Uin, principal_id.clone())))?;
    let grants = api.grants(&who, ip).await?;
    let mut named = Vec::new();
    for r in &resources {
        named.push(resource(api, r).await?);
    }
    let d = grants.decide(&qualified, &named);
    Ok(json!({
        "Allowed": d.allowed,
        "Reason": format!("{:?}", d.reason),
        "DeniedResource": d.denied_resource,
        "DecidingStatements": d.deciding.iter().map(|s| json!({
            "PolicyId": s.policy_id,
            "PolicyName": s.policy_name,
            "StatementIndex": s.statement_index,
        })).collect::<Vec<_>>(),
        "Explanation": format!("{qualified}: {d}"),
    }))
}
