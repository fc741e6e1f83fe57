//! Managed instances and how they join: CreateRegisterCode,
//! DescribeRegisterCodes, DisableRegisterCodes, DeleteRegisterCodes,
//! DescribeRegisterInstances, ModifyRegisterInstance, DeleteRegisterInstance,
//! DescribeAutomationAgentStatus; and drover's ModifyInstanceTags (tags
//! drive policy conditions and target selectors, so retagging is its own
//! privilege, apart from renaming).

use super::decided::Request;
use crate::gate::Authorized;
use base64::Engine;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::request::{check_ids, check_unique, IdList, Params, R};
use super::{views, Api};
use crate::store::instances::{self, InstanceQuery, RegisterCode};
use crate::timefmt::{iso, now_ms};

/// EffectiveTime above this many hours means "never expires".
const FOREVER_HOURS: i64 = 99_999;

fn code_ids(q: &mut Params, name: &str, required: bool) -> R<Option<Vec<String>>> {
    let ids = q.opt_str_list(name)?;
    match &ids {
        None if required => return Err(ApiError::missing(name)),
        Some(v) if required && v.is_empty() => return Err(ApiError::missing(name)),
        Some(v) => {
            check_ids(
                name,
                v,
                "rgstr",
                100,
                Code::InvalidParameterValueInvalidRegisterCodeId,
            )?;
            check_unique(name, v)?;
        }
        None => {}
    }
    Ok(ids)
}

/// `AllowedAgentTagKeys` (drover): the tag keys an agent registering with
/// the code may set with `--tag`. Absent or empty: none, so every tag an
/// instance gets comes from the code's Tags or from ModifyInstanceTags.
fn read_allowed_agent_tag_keys(q: &mut Params) -> R<String> {
    let keys = q.opt_str_list("AllowedAgentTagKeys")?.unwrap_or_default();
    if let Some(why) = crate::protocol::tag_keys_problem(keys.iter().map(String::as_str)) {
        return Err(ApiError::value(format!("AllowedAgentTagKeys: {why}")));
    }
    check_unique("AllowedAgentTagKeys", &keys)?;
    Ok(serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into()))
}

pub async fn create_code(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let description = q.opt_str("Description")?.unwrap_or_default();
    let prefix = q.opt_str("InstanceNamePrefix")?.unwrap_or_default();
    let limit = q.opt_i64("RegisterLimit")?.unwrap_or(10);
    let hours = q.opt_i64("EffectiveTime")?.unwrap_or(4);
    let ip_range = q.opt_str("IpAddressRange")?.unwrap_or_default();
    // drover extensions: tags every instance registered with the code gets
    // (read by the gate), and the only tag keys its agents may propose.
    let tags = _a.tags();
    let allowed_agent_tag_keys = read_allowed_agent_tag_keys(&mut q)?;
    q.finish()?;
    if description.chars().count() > 128 {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            "Description is longer than 128 characters",
        ));
    }
    if prefix.chars().count() > 32 {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            "InstanceNamePrefix is longer than 32 characters",
        ));
    }
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidParameterValueRange,
            "RegisterLimit must be between 1 and 10000",
        ));
    }
    if hours < 1 {
        return Err(ApiError::new(
            Code::InvalidParameterValueRange,
            "EffectiveTime must be at least 1 hour",
        ));
    }
    if !ip_range.is_empty() && crate::iprange::parse(&ip_range).is_none() {
        return Err(ApiError::value(format!(
            "IpAddressRange {ip_range:?} is not an IPv4 address or CIDR"
        )));
    }
    let now = now_ms();
    let secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::ids::random_bytes::<24>());
    let code = RegisterCode {
        id: crate::ids::new_id("rgstr"),
        secret_hash: crate::sign::sha256_hex(secret.as_bytes()),
        description,
        instance_name_prefix: prefix,
        register_limit: limit,
        // Past FOREVER_HOURS TAT calls a code long-term; the date still
        // shown (over eleven years ahead) keeps clients that parse it happy.
        expired_ms: now + hours.min(FOREVER_HOURS + 1) * 3_600_000,
        ip_range,
        enabled: true,
        registered_count: 0,
        created_ms: now,
        updated_ms: now,
        tags,
        allowed_agent_tag_keys,
    };
    let id = code.id.clone();
    api.store
        .write(move |c| {
            if instances::count_codes(c)? >= instances::REGISTER_CODE_QUOTA {
                return Err(crate::store::StoreError::Conflict("quota".into()));
            }
            instances::insert_code(c, &code)
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => ApiError::new(
                Code::ResourceUnavailableUserHasNoQuotaCode,
                format!(
                    "at most {} register codes may exist",
                    instances::REGISTER_CODE_QUOTA
                ),
            ),
            other => other.into(),
        })?;
    Ok(json!({
        "RegisterCodeId": id,
        "RegisterCodeValue": crate::protocol::format_register_code(&api.fingerprint, &secret),
    }))
}

pub async fn describe_codes(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let ids = code_ids(&mut q, "RegisterCodeIds", false)?.unwrap_or_default();
    let page = q.page()?;
    q.finish()?;
    let (total, rows) = api
        .store
        .read(move |c| instances::list_codes(c, &ids, page))
        .await?;
    Ok(json!({
        "TotalCount": total,
        "RegisterCodeSet": rows.iter().map(views::register_code).collect::<Vec<_>>(),
    }))
}

pub async fn disable_codes(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let ids = code_ids(&mut q, "RegisterCodeIds", true)?.unwrap_or_default();
    q.finish()?;
    api.store
        .write(move |c| instances::disable_codes(c, &ids, now_ms()))
        .await?;
    Ok(json!({}))
}

pub async fn delete_codes(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let ids = code_ids(&mut q, "RegisterCodeIds", true)?.unwrap_or_default();
    q.finish()?;
    api.store
        .write(move |c| instances::delete_codes(c, &ids))
        .await?;
    Ok(json!({}))
}

/// Narrows `query` to the instances whose agent is Online or Offline, as
/// the status filter's values ask; none of either matches nothing.
fn by_presence(
    query: &mut InstanceQuery,
    online: &std::collections::HashSet<String>,
    wanted: &[String],
) {
    if wanted.is_empty() {
        return;
    }
    let ids: Vec<String> = online.iter().cloned().collect();
    match (
        wanted.iter().any(|s| s == "Online"),
        wanted.iter().any(|s| s == "Offline"),
    ) {
        (true, false) => query.only = Some(ids),
        (false, true) => query.exclude = ids,
        (false, false) => query.only = Some(Vec::new()),
        (true, true) => {}
    }
}

pub async fn describe_instances(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "InstanceIds",
            prefix: "mi",
            code: Code::InvalidParameterValueInvalidRegisterInstanceId,
        },
        &[
            "instance-name",
            "instance-id",
            "register-status",
            "local-ip",
            "register-code-id",
            "sys-name",
        ],
        true,
    )?;
    let page = q.page()?;
    q.finish()?;
    let mut query = InstanceQuery {
        ids,
        ..Default::default()
    };
    query.ids.extend(filters.get("instance-id"));
    query.names = filters.get("instance-name");
    query.local_ips = filters.get("local-ip");
    query.register_code_ids = filters.get("register-code-id");
    query.system_names = filters.get("sys-name");
    query.tags = filters.tags();
    let online = api.dispatch.online_ids();
    by_presence(&mut query, &online, &filters.get("register-status"));
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows) = api
        .store
        .read(move |c| instances::list_instances(c, &query, fetch))
        .await?;
    let (total, rows) = vis.page(total, rows, page, |i| {
        vis.sees(
            crate::policy::Action::DescribeRegisterInstances.policy_name(),
            &[vis.instance(&i.id, &i.tags)],
        )
    });
    Ok(json!({
        "TotalCount": total,
        "RegisterInstanceSet": rows.iter().map(|i| views::instance(i, online.contains(&i.id))).collect::<Vec<_>>(),
    }))
}

pub async fn modify_instance(api: &Api, _a: Authorized<Request>, mut q: Params) -> R<Value> {
    let id = _a.one("InstanceId")?;
    let name = q.str("InstanceName")?;
    q.finish()?;
    if !(1..=60).contains(&name.chars().count()) {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            "InstanceName must be 1 to 60 characters",
        ));
    }
    api.store
        .write(move |c| instances::rename(c, &id, &name, now_ms()))
        .await?;
    Ok(json!({}))
}

pub async fn modify_tags(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    let id = _a.one("InstanceId")?;
    // The full new list (read by the gate): an empty one clears the tags.
    let tags = _a
        .value()
        .tags
        .clone()
        .ok_or_else(|| ApiError::missing("Tags"))?;
    q.finish()?;
    let target = id.clone();
    api.store
        .write(move |c| instances::set_tags(c, &target, &tags, now_ms()))
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound { .. } => ApiError::new(
                Code::ResourceNotFoundInstanceNotFound,
                format!("the instance `{id}` does not exist"),
            ),
            other => other.into(),
        })?;
    Ok(json!({}))
}

pub async fn delete_instance(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    let id = _a.one("InstanceId")?;
    q.finish()?;
    let del = id.clone();
    api.store
        .write(move |c| instances::delete_instance(c, &del))
        .await?;
    api.dispatch.kick(&id);
    Ok(json!({}))
}

pub async fn agent_status(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "InstanceIds",
            prefix: "mi",
            code: Code::InvalidParameterValueInvalidInstanceId,
        },
        &["agent-status", "environment", "instance-id"],
        false,
    )?;
    let page = q.page()?;
    q.finish()?;
    let mut query = InstanceQuery {
        ids,
        ..Default::default()
    };
    query.ids.extend(filters.get("instance-id"));
    query.system_names = filters.get("environment");
    let online = api.dispatch.online_ids();
    by_presence(&mut query, &online, &filters.get("agent-status"));
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows) = api
        .store
        .read(move |c| instances::list_instances(c, &query, fetch))
        .await?;
    let (total, rows) = vis.page(total, rows, page, |i| {
        vis.sees(
            crate::policy::Action::DescribeAutomationAgentStatus.policy_name(),
            &[vis.instance(&i.id, &i.tags)],
        )
    });
    let set: Vec<Value> = rows
        .iter()
        .map(|i| {
            let presence = api.dispatch.presence(&i.id, i.last_seen_ms);
            let types: Vec<String> = serde_json::from_str(&i.command_types).unwrap_or_default();
            json!({
                "InstanceId": i.id,
                "Version": i.agent_version,
                "LastHeartbeatTime": iso(presence.last_heartbeat_ms),
                "AgentStatus": if presence.online { "Online" } else { "Offline" },
                "Environment": i.system_name,
                "SupportFeatures": types,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "AutomationAgentSet": set }))
}
