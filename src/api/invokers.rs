//! Invoker actions (TAT's scheduled execution): CreateInvoker,
//! ModifyInvoker, DeleteInvoker, DescribeInvokers, EnableInvoker,
//! DisableInvoker, DescribeInvokerRecords. The scheduler fires them; every
//! change here wakes it so it plans again.

use super::decided::{Named, Request};
use crate::gate::Authorized;
use std::collections::HashMap;

use serde_json::{json, Value};

use super::client_token;
use super::commands::check_username;
use super::error::{ApiError, Code};
use super::request::{check_ids, IdList, Params, R};
use super::targets::{self, Selector};
use super::webhooks::{decorate, read_new_webhook, read_webhook, WebhookParam};
use super::{views, Api};
use crate::run::params;
use crate::scheduler::parse_cron;
use crate::store::commands;
use crate::store::invocations as invs;
use crate::store::invokers::{self, Invoker, InvokerQuery};
use crate::store::status::invocation_status;
use crate::store::webhooks as hooks;
use crate::timefmt::{iso, now_ms};

const BAD_ID: Code = Code::InvalidParameterValueInvalidInvokerId;
const MAX_NAME: usize = 120;

fn check_name(name: &str) -> R<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::new(
            Code::InvalidParameterValueTooLong,
            format!("Name must be 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(())
}

fn check_type(t: &str) -> R<()> {
    if t != "SCHEDULE" {
        return Err(ApiError::value(format!("Type must be SCHEDULE, got {t:?}")));
    }
    Ok(())
}

/// The schedule fields (policy, recurrence, invoke time) of a
/// ScheduleSettings object, validated against `now`.
fn read_schedule(v: Value, now: i64) -> R<(String, String, i64)> {
    let Value::Object(mut m) = v else {
        return Err(ApiError::wrong_type(
            "ScheduleSettings",
            "a ScheduleSettings object",
        ));
    };
    let mut text = |name: &str| -> R<Option<String>> {
        match m.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::wrong_type(
                &format!("ScheduleSettings.{name}"),
                "a string",
            )),
        }
    };
    let policy = text("Policy")?.ok_or_else(|| ApiError::missing("ScheduleSettings.Policy"))?;
    let recurrence = text("Recurrence")?;
    let invoke_time = text("InvokeTime")?;
    if let Some(k) = m.keys().next() {
        return Err(ApiError::unknown_param(&format!("ScheduleSettings.{k}")));
    }
    match policy.as_str() {
        "ONCE" => {
            let t = invoke_time.ok_or_else(|| ApiError::missing("ScheduleSettings.InvokeTime"))?;
            let ms = parse_invoke_time(&t)?;
            if ms <= now {
                return Err(ApiError::new(
                    Code::InvalidParameterValueInvokeTimeExpired,
                    format!("InvokeTime {t} is in the past"),
                ));
            }
            Ok((policy, String::new(), ms))
        }
        "RECURRENCE" => {
            let r = recurrence.ok_or_else(|| ApiError::missing("ScheduleSettings.Recurrence"))?;
            parse_cron(&r)
                .map_err(|e| ApiError::new(Code::InvalidParameterValueInvalidCronExpression, e))?;
            Ok((policy, r.trim().to_string(), 0))
        }
        other => Err(ApiError::value(format!(
            "ScheduleSettings.Policy must be ONCE or RECURRENCE, got {other:?}"
        ))),
    }
}

/// TAT's `YYYY-MM-DDThh:mm:ssZ`.
fn parse_invoke_time(t: &str) -> R<i64> {
    let shaped = t.len() == 20 && t.ends_with('Z') && t.as_bytes().get(10) == Some(&b'T');
    match crate::timefmt::parse_iso(t) {
        Some(ms) if shaped => Ok(ms),
        _ => Err(ApiError::new(
            Code::InvalidParameterValueInvalidTimeFormat,
            format!("InvokeTime {t:?} is not in the form YYYY-MM-DDThh:mm:ssZ"),
        )),
    }
}

/// Checks that the command exists and that Parameters suit it.
async fn check_command(api: &Api, command_id: &str, parameters: &Option<String>) -> R<()> {
    check_ids(
        "CommandId",
        &[command_id.to_string()],
        "cmd",
        1,
        Code::InvalidParameterValueInvalidCommandId,
    )?;
    let id = command_id.to_string();
    let cmd = api.store.read(move |c| commands::get(c, &id)).await?;
    if let Some(p) = parameters {
        if !cmd.enable_parameter {
            return Err(ApiError::new(
                Code::InvalidParameterValueParameterDisabled,
                "Parameters require a command with EnableParameter set",
            ));
        }
        params::parse_map("Parameters", p)?;
    }
    Ok(())
}

async fn check_instances(api: &Api, ids: &[String]) -> R<()> {
    let want = ids.to_vec();
    let found = api
        .store
        .read(move |c| crate::store::instances::existing_ids(c, &want))
        .await?;
    if let Some(missing) = ids.iter().find(|i| !found.contains(i)) {
        return Err(ApiError::new(
            Code::ResourceNotFoundInstanceNotFound,
            format!("the instance `{missing}` does not exist"),
        ));
    }
    Ok(())
}

fn not_found(id: &str) -> impl FnOnce(crate::store::StoreError) -> ApiError + '_ {
    move |e| match e {
        crate::store::StoreError::NotFound { .. } => ApiError::new(
            Code::ResourceNotFound,
            format!("the invoker `{id}` does not exist"),
        ),
        other => other.into(),
    }
}

pub async fn create(
    api: &Api,
    a: Authorized<Request>,
    mut q: Params,
    claim: Option<client_token::Claim>,
) -> R<Value> {
    let created_by = a.who().user_id.clone();
    let tags = a.tags();
    // The command and instances the gate decided on; a selector (drover)
    // is resolved at each trigger.
    let Named::NewInvoker {
        command_id,
        ids: instance_ids,
        selector,
    } = a.into_inner().named
    else {
        return Err(ApiError::internal());
    };
    let name = q.str("Name")?;
    let kind = q.str("Type")?;
    let rate = targets::read_rate_control(&mut q)?;
    let username = q.opt_str("Username")?.unwrap_or_default();
    let parameters = q.opt_str("Parameters")?;
    let settings = q
        .opt_value("ScheduleSettings")
        .ok_or_else(|| ApiError::missing("ScheduleSettings"))?;
    let webhook = read_new_webhook(api, &mut q)?;
    q.finish()?;
    check_name(&name)?;
    check_type(&kind)?;
    if !username.is_empty() {
        check_username(&username)?;
    }
    let now = now_ms();
    let (policy, recurrence, invoke_time_ms) = read_schedule(settings, now)?;
    check_command(api, &command_id, &parameters).await?;
    check_instances(api, &instance_ids).await?;
    // A selector that matches nothing yet is allowed: instances may be
    // tagged later; a trigger that finds none is recorded as failed.
    let inv = Invoker {
        id: crate::ids::new_id("ivk"),
        name,
        kind,
        command_id,
        username,
        parameters,
        instance_ids,
        enable: true,
        policy,
        recurrence,
        invoke_time_ms,
        tags,
        last_fired_ms: now,
        created_ms: now,
        updated_ms: now,
        targets: selector.as_ref().map(Selector::to_json),
        max_concurrency: rate.max_concurrency,
        max_errors: rate.max_errors,
        created_by,
    };
    let id = inv.id.clone();
    let hook_row = webhook.map(|w| w.seal(&api.secrets, &id, None, now));
    let answer = json!({ "InvokerId": id });
    let recorded = (claim.clone(), answer.clone());
    let written = api
        .store
        .write(move |c| {
            invokers::insert(c, &inv)?;
            if let Some(h) = &hook_row {
                hooks::put(c, h)?;
            }
            match &recorded.0 {
                Some(claim) => client_token::record(c, claim, &recorded.1),
                None => Ok(()),
            }
        })
        .await;
    if let Err(e) = written {
        return client_token::or_winner(api, &claim, e.into()).await;
    }
    api.schedule_changed.notify_one();
    Ok(answer)
}

pub async fn modify(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    // Whoever changes an invoker answers for what it runs from now on:
    // its triggers are decided against this caller's policy.
    let created_by = a.who().user_id.clone();
    let Named::ChangeInvoker {
        id,
        command_id,
        ids,
        selector,
    } = a.into_inner().named
    else {
        return Err(ApiError::internal());
    };
    let name = q.opt_str("Name")?;
    let kind = q.opt_str("Type")?;
    let username = q.opt_str("Username")?;
    let parameters = q.opt_str("Parameters")?;
    let (max_concurrency, max_errors) = targets::read_rate_change(&mut q)?;
    let settings = q.opt_value("ScheduleSettings");
    let webhook = read_webhook(api, &mut q, true)?;
    q.finish()?;
    let lookup = id.clone();
    let mut inv = api
        .store
        .read(move |c| invokers::get(c, &lookup))
        .await
        .map_err(not_found(&id))?;
    let now = now_ms();
    if let Some(n) = name {
        check_name(&n)?;
        inv.name = n;
    }
    if let Some(t) = kind {
        check_type(&t)?;
        inv.kind = t;
    }
    if let Some(u) = username {
        if !u.is_empty() {
            check_username(&u)?;
        }
        inv.username = u;
    }
    if let Some(s) = settings {
        let (policy, recurrence, at) = read_schedule(s, now)?;
        inv.policy = policy;
        inv.recurrence = recurrence;
        inv.invoke_time_ms = at;
        // A new schedule starts from now.
        inv.last_fired_ms = now;
    }
    let command_changed = command_id.is_some() || parameters.is_some();
    if let Some(c) = command_id {
        inv.command_id = c;
    }
    if let Some(given) = parameters {
        // `******` read back from DescribeInvokers keeps the hidden value.
        let cmd = inv.command_id.clone();
        let content = api
            .store
            .read(move |c| Ok(crate::store::commands::get(c, &cmd).ok().map(|c| c.content)))
            .await?;
        let hidden = super::hidden::hidden_keys_b64(content.as_deref().unwrap_or(""));
        inv.parameters = Some(super::hidden::restore_masked_values(
            &given,
            inv.parameters.as_deref(),
            &hidden,
        ));
    }
    if command_changed {
        check_command(api, &inv.command_id, &inv.parameters).await?;
    }
    // InstanceIds and Targets replace each other.
    if let Some(ids) = ids {
        check_instances(api, &ids).await?;
        inv.instance_ids = ids;
        inv.targets = None;
    }
    if let Some(s) = selector {
        inv.instance_ids = Vec::new();
        inv.targets = Some(s.to_json());
    }
    if let Some(v) = max_concurrency {
        inv.max_concurrency = v;
    }
    if let Some(v) = max_errors {
        inv.max_errors = v;
    }
    inv.updated_ms = now;
    inv.created_by = created_by;
    let hook = webhook.map(|w| match w {
        WebhookParam::Set(w) => Some(w.seal(&api.secrets, &id, None, now)),
        WebhookParam::Clear => None,
    });
    let owner = id.clone();
    api.store
        .write(move |c| {
            invokers::update(c, &inv)?;
            match &hook {
                Some(Some(h)) => hooks::put(c, h),
                Some(None) => hooks::delete(c, &owner),
                None => Ok(()),
            }
        })
        .await
        .map_err(not_found(&id))?;
    api.schedule_changed.notify_one();
    Ok(json!({}))
}

pub async fn delete(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    let id = _a.one("InvokerId")?;
    q.finish()?;
    let del = id.clone();
    api.store
        .write(move |c| {
            invokers::delete(c, &del)?;
            hooks::delete(c, &del)
        })
        .await
        .map_err(not_found(&id))?;
    api.schedule_changed.notify_one();
    Ok(json!({}))
}

async fn set_enable(api: &Api, a: Authorized<Request>, q: Params, enable: bool) -> R<Value> {
    let id = a.one("InvokerId")?;
    q.finish()?;
    let target = id.clone();
    api.store
        .write(move |c| invokers::set_enable(c, &target, enable, now_ms()))
        .await
        .map_err(not_found(&id))?;
    api.schedule_changed.notify_one();
    Ok(json!({}))
}

pub async fn enable(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    set_enable(api, _a, q, true).await
}

pub async fn disable(api: &Api, _a: Authorized<Request>, q: Params) -> R<Value> {
    set_enable(api, _a, q, false).await
}

fn view(i: &Invoker) -> Value {
    // Both fields are output-required in TAT's ScheduleSettings model: the
    // one a policy does not use is the empty string, never absent.
    let schedule = if i.policy == "RECURRENCE" {
        json!({ "Policy": i.policy, "Recurrence": i.recurrence, "InvokeTime": "" })
    } else {
        json!({ "Policy": i.policy, "Recurrence": "", "InvokeTime": iso(i.invoke_time_ms) })
    };
    let tags: Value = serde_json::from_str(&i.tags).unwrap_or_else(|_| json!([]));
    let mut v = json!({
        "InvokerId": i.id,
        "Name": i.name,
        "Type": i.kind,
        "CommandId": i.command_id,
        "Username": i.username,
        "Parameters": i.parameters.clone().unwrap_or_default(),
        "InstanceIds": i.instance_ids,
        "Enable": i.enable,
        "ScheduleSettings": schedule,
        "CreatedTime": iso(i.created_ms),
        "UpdatedTime": iso(i.updated_ms),
        "Tags": tags,
    });
    views::fleet_fields(
        &mut v,
        i.targets.as_deref(),
        i.max_concurrency.as_deref(),
        i.max_errors.as_deref(),
    );
    v
}

pub async fn describe(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "InvokerIds",
            prefix: "ivk",
            code: BAD_ID,
        },
        &["invoker-id", "command-id", "type", "invoker-type"],
        false,
    )?;
    let page = q.page()?;
    q.finish()?;
    let f_ids = filters.get("invoker-id");
    check_ids("invoker-id", &f_ids, "ivk", 5, BAD_ID)?;
    let c_ids = filters.get("command-id");
    check_ids(
        "command-id",
        &c_ids,
        "cmd",
        5,
        Code::InvalidParameterValueInvalidCommandId,
    )?;
    let mut kinds = filters.get("type");
    kinds.extend(filters.get("invoker-type"));
    let mut query = InvokerQuery {
        ids,
        command_ids: c_ids,
        kinds,
    };
    query.ids.extend(f_ids);
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows, urls) = api
        .store
        .read(move |c| {
            let (total, rows) = invokers::list(c, &query, fetch)?;
            let (total, rows) = vis.page(total, rows, page, |i| {
                vis.sees(
                    crate::policy::Action::DescribeInvokers.policy_name(),
                    &[vis.invoker(&i.id, &i.tags)],
                )
            });
            let ids: Vec<String> = rows.iter().map(|i| i.id.clone()).collect();
            // Hidden parameter values are never shown (api::hidden): mask
            // each invoker's Parameters by its command's hidden keys.
            let rows: Vec<Invoker> = rows
                .into_iter()
                .map(|mut i| {
                    let content = crate::store::commands::get(c, &i.command_id)
                        .ok()
                        .map(|cmd| cmd.content);
                    i.parameters = i
                        .parameters
                        .map(|p| super::hidden::mask_parameters(&p, content.as_deref()));
                    i
                })
                .collect();
            Ok((total, rows, hooks::urls(c, &ids)?))
        })
        .await?;
    let set: Vec<Value> = rows
        .iter()
        .map(|i| {
            let mut v = view(i);
            decorate(&mut v, urls.get(&i.id), None);
            v
        })
        .collect();
    Ok(json!({ "TotalCount": total, "InvokerSet": set }))
}

pub async fn describe_records(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let ids = a.ids().unwrap_or_default();
    let page = q.page()?;
    q.finish()?;
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows, results) = api
        .store
        .read(move |c| {
            let (total, rows) = invokers::records(c, &ids, fetch)?;
            let mut tags: HashMap<String, String> = HashMap::new();
            if !vis.all() {
                for r in &rows {
                    if !tags.contains_key(&r.invoker_id) {
                        let t = invokers::get(c, &r.invoker_id)
                            .map(|i| i.tags)
                            .unwrap_or_default();
                        tags.insert(r.invoker_id.clone(), t);
                    }
                }
            }
            let (total, rows) = vis.page(total, rows, page, |r| {
                let t = tags.get(&r.invoker_id).map(String::as_str).unwrap_or("[]");
                vis.sees(
                    crate::policy::Action::DescribeInvokerRecords.policy_name(),
                    &[vis.invoker(&r.invoker_id, t)],
                )
            });
            let inv_ids: Vec<String> = rows
                .iter()
                .filter(|r| !r.invocation_id.is_empty())
                .map(|r| r.invocation_id.clone())
                .collect();
            let mut by_inv: HashMap<String, Vec<_>> = HashMap::new();
            for t in invs::tasks_of(c, &inv_ids)? {
                by_inv
                    .entry(t.invocation_id.clone())
                    .or_default()
                    .push(t.status);
            }
            let results: HashMap<String, &'static str> = by_inv
                .iter()
                .map(|(k, v)| (k.clone(), invocation_status(v)))
                .collect();
            Ok((total, rows, results))
        })
        .await?;
    let set: Vec<Value> = rows
        .iter()
        .map(|r| {
            let result = match results.get(&r.invocation_id) {
                Some(s) => s.to_string(),
                None => r.result.clone(),
            };
            json!({
                "InvokerId": r.invoker_id,
                "InvokeTime": iso(r.invoke_ms),
                "Reason": r.reason,
                "InvocationId": r.invocation_id,
                "Result": result,
            })
        })
        .collect();
    Ok(json!({ "TotalCount": total, "InvokerRecordSet": set }))
}
