//! Policies and attachments: CreatePolicy, GetPolicy, UpdatePolicy,
//! DeletePolicy, ListPolicies, Attach/DetachUserPolicy,
//! Attach/DetachGroupPolicy, ListAttachedUserPolicies,
//! ListAttachedGroupPolicies, ListAttachedUserAllPolicies.

use super::super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::super::error::{ApiError, Code};
use super::super::request::{Params, R};
use super::super::Api;
use super::scope::Target as ScopeTarget;
use super::{check_len, page_rp, param_error, valid_name};
use crate::store::policies::{self, Attached, Effective, Listed, Policy, Scope, Target};
use crate::store::Entity;
use crate::timefmt::{cam as cam_time, now_ms};

/// Longest policy document CAM accepts, in characters.
const MAX_DOCUMENT: usize = 6144;

fn check_document(doc: &str) -> R<()> {
    if doc.chars().count() > MAX_DOCUMENT {
        return Err(ApiError::new(
            Code::InvalidParameterPolicyDocumentLengthOverLimit,
            format!("PolicyDocument is longer than {MAX_DOCUMENT} characters"),
        ));
    }
    super::validate_policy_document(doc).map_err(ApiError::from)
}

fn check_description(d: &str) -> R<()> {
    if d.len() > 300 {
        return Err(ApiError::new(
            Code::InvalidParameterDescriptionLengthOverlimit,
            "Description must be at most 300 bytes",
        ));
    }
    Ok(())
}

fn check_policy_name(name: &str) -> R<()> {
    if !valid_name(name, 128) {
        return Err(ApiError::new(
            Code::InvalidParameterPolicyNameError,
            "PolicyName must be 1 to 128 letters, digits or +=,.@_-",
        ));
    }
    Ok(())
}

fn read_tags(q: &mut Params) -> R<String> {
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Tag {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Value", default)]
        value: String,
    }
    let Some(v) = q.opt_value("Tags") else {
        return Ok("[]".into());
    };
    let tags: Vec<Tag> = serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            Code::InvalidParameterTagParamError,
            format!("Tags is malformed: {e}"),
        )
    })?;
    if tags.len() > 50 {
        return Err(ApiError::new(
            Code::InvalidParameterTagLimitExceeded,
            "at most 50 Tags are allowed",
        ));
    }
    if tags.iter().any(|t| t.key.is_empty()) {
        return Err(ApiError::new(
            Code::InvalidParameterTagParamError,
            "a tag key must not be empty",
        ));
    }
    serde_json::to_string(&tags).map_err(|_| ApiError::internal())
}

fn tags_value(tags: &str) -> Value {
    serde_json::from_str(tags).unwrap_or_else(|_| json!([]))
}

/// 1 for policies made from a document, as CAM reports syntax-made ones.
fn create_mode(p: &Policy) -> i64 {
    if p.is_preset() {
        1
    } else {
        2
    }
}

pub async fn create(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let name = q.str("PolicyName")?;
    let document = q.str("PolicyDocument")?;
    let description = q.opt_str("Description")?.unwrap_or_default();
    let tags = read_tags(&mut q)?;
    q.finish()?;
    check_policy_name(&name)?;
    check_description(&description)?;
    check_document(&document)?;
    let id = api
        .store
        .write(move |c| policies::insert(c, &name, &description, &document, &tags, now_ms()))
        .await?;
    Ok(json!({ "PolicyId": id }))
}

pub async fn get(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let id = a.cam()?.first()?.require_int(Entity::Policy)?;
    let p = api.store.read(move |c| policies::require(c, id)).await?;
    Ok(json!({
        "PolicyName": p.name,
        "Description": p.description,
        "Type": p.policy_type,
        "AddTime": cam_time(p.created_ms),
        "UpdateTime": cam_time(p.updated_ms),
        "PolicyDocument": p.document,
        "PresetAlias": if p.is_preset() { json!(p.description) } else { Value::Null },
        "IsServiceLinkedRolePolicy": 0,
        "Tags": tags_value(&p.tags),
    }))
}

pub async fn update(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let description = q.opt_str("Description")?;
    let document = q.opt_str("PolicyDocument")?;
    if q.opt_str("Alias")?.is_some() {
        return Err(param_error(
            "Alias (a preset policy's remark) cannot be changed on this appliance",
        ));
    }
    q.finish()?;
    if let Some(d) = &description {
        check_description(d)?;
    }
    if let Some(d) = &document {
        check_document(d)?;
    }
    // By PolicyId, or the policy the gate found by PolicyName (whose id
    // the answer then carries).
    let target = a.cam()?.first()?;
    let by_name = matches!(target.target, ScopeTarget::PolicyName(_));
    let id = target.require_int(Entity::Policy)?;
    api.store
        .write(move |c| {
            policies::update(c, id, description.as_deref(), document.as_deref(), now_ms())
        })
        .await?;
    Ok(if by_name {
        json!({ "PolicyId": id })
    } else {
        json!({})
    })
}

pub async fn delete(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    // One decided group per policy id (at most 100, checked by the gate).
    let ids = a
        .cam()?
        .groups
        .iter()
        .map(|g| match g.as_slice() {
            [policy] => Ok(policy.require_int(Entity::Policy)?),
            _ => Err(ApiError::internal()),
        })
        .collect::<R<Vec<i64>>>()?;
    api.store.write(move |c| policies::delete(c, &ids)).await?;
    Ok(json!({}))
}

fn strategy_info(l: &Listed) -> Value {
    let p = &l.policy;
    json!({
        "PolicyId": p.policy_id,
        "PolicyName": p.name,
        "AddTime": cam_time(p.created_ms),
        "UpdateTime": cam_time(p.updated_ms),
        "Type": p.policy_type,
        "Description": p.description,
        "CreateMode": create_mode(p),
        "Attachments": l.attachments,
        "AttachEntityCount": l.attachments,
        "ServiceType": if p.is_preset() { "tat" } else { "" },
        "IsServiceLinkedPolicy": 0,
        "Deactived": 0,
        "DeactivedDetail": [],
        "Tags": tags_value(&p.tags),
    })
}

/// ListPolicies and ListAttachedUserAllPolicies page at most 200 pages deep.
fn page_200(q: &mut Params) -> R<crate::store::query::Page> {
    let page = page_rp(q, 200)?;
    if page.offset / page.limit >= 200 {
        return Err(param_error("Page must be at most 200"));
    }
    Ok(page)
}

pub async fn list(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let page = page_200(&mut q)?;
    let scope = match q.opt_str("Scope")?.as_deref().unwrap_or("All") {
        "All" => Scope::All,
        "QCS" => Scope::Qcs,
        "Local" => Scope::Local,
        other => {
            return Err(ApiError::new(
                Code::InvalidParameterScopeError,
                format!("Scope must be All, QCS or Local, got {other:?}"),
            ))
        }
    };
    let keyword = q.opt_str("Keyword")?.unwrap_or_default();
    q.finish()?;
    check_len("Keyword", &keyword, 128)?;
    let (n, list) = api
        .store
        .read(move |c| policies::list(c, scope, &keyword, page))
        .await?;
    Ok(json!({
        "TotalNum": n,
        "List": list.iter().map(strategy_info).collect::<Vec<_>>(),
        "ServiceTypeList": [],
    }))
}

async fn attach_or_detach(api: &Api, attach: bool, who: Who, id: i64) -> R<Value> {
    api.store
        .write(move |c| {
            let target = match &who {
                Who::User(uin) => Target::User(uin),
                Who::Group(g) => Target::Group(*g),
            };
            if attach {
                policies::attach(c, target, id, now_ms())
            } else {
                policies::detach(c, target, id)
            }
        })
        .await?;
    Ok(json!({}))
}

/// An owned attachment target (the store's `Target` borrows).
enum Who {
    User(String),
    Group(i64),
}

/// An attachment as the gate decided it: the policy and the user or
/// group (NotFound for a group that does not exist).
fn attachment(a: &Authorized<Request>, group: bool) -> R<(i64, Who)> {
    let scope = a.cam()?;
    let id = scope.first()?.require_int(Entity::Policy)?;
    let side = scope.nth(1)?;
    let who = if group {
        Who::Group(side.require_int(Entity::Group)?)
    } else {
        Who::User(side.require(Entity::User)?)
    };
    Ok((id, who))
}

pub async fn attach_user(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let (id, who) = attachment(&a, false)?;
    attach_or_detach(api, true, who, id).await
}

pub async fn detach_user(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let (id, who) = attachment(&a, false)?;
    attach_or_detach(api, false, who, id).await
}

pub async fn attach_group(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let (id, who) = attachment(&a, true)?;
    attach_or_detach(api, true, who, id).await
}

pub async fn detach_group(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    q.finish()?;
    let (id, who) = attachment(&a, true)?;
    attach_or_detach(api, false, who, id).await
}

fn attach_policy_info(a: &Attached) -> Value {
    let p = &a.policy;
    json!({
        "PolicyId": p.policy_id,
        "PolicyName": p.name,
        "AddTime": cam_time(a.attached_ms),
        "CreateMode": create_mode(p),
        "PolicyType": if p.is_preset() { "QCS" } else { "User" },
        "Remark": p.description,
        "Deactived": 0,
        "DeactivedDetail": [],
    })
}

pub async fn attached_user(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let uin = a.cam()?.first()?.require(Entity::User)?;
    let page = page_rp(&mut q, 200)?;
    q.finish()?;
    let (n, list) = api
        .store
        .read(move |c| policies::attached(c, Target::User(&uin), "", page))
        .await?;
    Ok(json!({
        "TotalNum": n,
        "List": list.iter().map(attach_policy_info).collect::<Vec<_>>(),
    }))
}

pub async fn attached_group(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let g = a.cam()?.first()?.require_int(Entity::Group)?;
    let page = page_rp(&mut q, 200)?;
    let keyword = q.opt_str("Keyword")?.unwrap_or_default();
    q.finish()?;
    check_len("Keyword", &keyword, 128)?;
    let (n, list) = api
        .store
        .read(move |c| policies::attached(c, Target::Group(g), &keyword, page))
        .await?;
    Ok(json!({
        "TotalNum": n,
        "List": list.iter().map(attach_policy_info).collect::<Vec<_>>(),
    }))
}

fn attached_user_policy(e: &Effective) -> Value {
    let p = &e.policy;
    json!({
        "PolicyId": p.policy_id.to_string(),
        "PolicyName": p.name,
        "Description": p.description,
        "AddTime": cam_time(e.attached_ms),
        "StrategyType": p.policy_type.to_string(),
        "CreateMode": create_mode(p).to_string(),
        "Groups": e.groups.iter().map(|(id, name)| json!({"GroupId": id, "GroupName": name})).collect::<Vec<_>>(),
        "Deactived": 0,
        "DeactivedDetail": [],
    })
}

pub async fn attached_user_all(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let uin = a.cam()?.first()?.require(Entity::User)?;
    let page = page_200(&mut q)?;
    let attach_type = q.opt_i64("AttachType")?.unwrap_or(0);
    let strategy_type = q.opt_i64("StrategyType")?;
    let keyword = q.opt_str("Keyword")?.unwrap_or_default();
    q.finish()?;
    if !(0..=2).contains(&attach_type) {
        return Err(param_error(format!(
            "AttachType must be 0, 1 or 2, got {attach_type}"
        )));
    }
    if let Some(t) = strategy_type {
        if t != policies::TYPE_CUSTOM && t != policies::TYPE_PRESET {
            return Err(param_error(format!("StrategyType must be 1 or 2, got {t}")));
        }
    }
    check_len("Keyword", &keyword, 128)?;
    let (n, list) = api
        .store
        .read(move |c| {
            policies::effective_for_user(c, &uin, attach_type, strategy_type, &keyword, page)
        })
        .await?;
    Ok(json!({
        "PolicyList": list.iter().map(attached_user_policy).collect::<Vec<_>>(),
        "TotalNum": n,
    }))
}
