//! Running commands: RunCommand, InvokeCommand, DescribeInvocations,
//! DescribeInvocationTasks, CancelInvocation, and the drover extension
//! DescribeInvocationTaskOutput (a task's whole output, byte-exact).
//! Suspend/ResumeInvocation (`jobctl.rs`) share CancelInvocation's request
//! reading (`chosen_tasks`).

use super::decided::{Named, Request};
use crate::gate::Authorized;
use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde_json::{json, Value};

use super::audit::Trail;
use super::client_token;
use super::error::{ApiError, Code};
use super::request::{check_ids, IdList, Params, R};
use super::webhooks::{decorate, status_line};
use super::{views, Api};
use crate::run;
use crate::store::audit::AuditEvent;
use crate::store::commands;
use crate::store::instances;
use crate::store::invocations::{self as invs, InvocationQuery, Task, TaskQuery};

/// Largest slice DescribeInvocationTaskOutput returns at once.
const MAX_OUTPUT_SLICE: i64 = 1 << 20;

/// `claim`: the request's ClientToken (`client_token.rs`), recorded with
/// the answer in the start's transaction.
pub async fn run(
    api: &Api,
    a: Authorized<Request>,
    q: Params,
    claim: Option<client_token::Claim>,
    trail: &mut Trail,
) -> R<Value> {
    q.finish()?;
    let Named::Run(plan) = a.into_inner().named else {
        return Err(ApiError::internal());
    };
    let command_id = plan.value().cmd.id.clone();
    let answer = move |inv: &str| json!({ "CommandId": command_id, "InvocationId": inv });
    let event = trail.success_event("RunCommand");
    let also = also_write(&claim, answer.clone(), event);
    match run::start(&api.runner, *plan, Some(also)).await {
        Ok(inv) => {
            trail.written = trail.context.is_some();
            Ok(answer(&inv))
        }
        Err(e) => client_token::or_winner(api, &claim, e.into()).await,
    }
}

pub async fn invoke(
    api: &Api,
    a: Authorized<Request>,
    q: Params,
    claim: Option<client_token::Claim>,
    trail: &mut Trail,
) -> R<Value> {
    q.finish()?;
    let Named::Run(plan) = a.into_inner().named else {
        return Err(ApiError::internal());
    };
    let answer = |inv: &str| json!({ "InvocationId": inv });
    let event = trail.success_event("InvokeCommand");
    let also = also_write(&claim, answer, event);
    match run::start(&api.runner, *plan, Some(also)).await {
        Ok(inv) => {
            trail.written = trail.context.is_some();
            Ok(answer(&inv))
        }
        Err(e) => client_token::or_winner(api, &claim, e.into()).await,
    }
}

/// What a start writes in its own transaction besides the invocation: a
/// ClientToken's answer, and the call's audit event (so the call costs one
/// write job; if the start fails, nothing of it is written and the door
/// writes the failure's event).
fn also_write(
    claim: &Option<client_token::Claim>,
    answer: impl Fn(&str) -> Value + Send + 'static,
    event: Option<AuditEvent>,
) -> run::AlsoWrite {
    let claim = claim.clone();
    Box::new(move |c, inv_id| {
        if let Some(claim) = &claim {
            client_token::record(c, claim, &answer(inv_id))?;
        }
        match &event {
            Some(e) => crate::store::audit::append(c, e),
            None => Ok(()),
        }
    })
}

pub async fn describe(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "InvocationIds",
            prefix: "inv",
            code: Code::InvalidParameterValueInvalidInvocationId,
        },
        &[
            "invocation-id",
            "command-id",
            "command-created-by",
            "instance-kind",
        ],
        false,
    )?;
    let page = q.page()?;
    q.finish()?;
    let mut query = InvocationQuery {
        ids,
        ..Default::default()
    };
    let f_ids = filters.get("invocation-id");
    check_ids(
        "invocation-id",
        &f_ids,
        "inv",
        5,
        Code::InvalidParameterValueInvalidInvocationId,
    )?;
    query.ids.extend(f_ids);
    let c_ids = filters.get("command-id");
    check_ids(
        "command-id",
        &c_ids,
        "cmd",
        5,
        Code::InvalidParameterValueInvalidCommandId,
    )?;
    query.command_ids = c_ids;
    query.created_by = filters.get("command-created-by");
    // drover's instances are neither CVM nor Lighthouse.
    query.match_nothing = !filters.get("instance-kind").is_empty();
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let v = vis.clone();
    let (total, rows, tasks, readable, (hook_urls, hook_states)) = api
        .store
        .read(move |c| {
            let (total, rows) = invs::list(c, &query, fetch)?;
            let (total, rows) = v.page(total, rows, page, |i| {
                let tags = commands::get(c, &i.command_id)
                    .map(|x| x.tags)
                    .unwrap_or_default();
                v.sees(
                    crate::policy::Action::DescribeInvocations.policy_name(),
                    &[v.command(&i.command_id, &tags)],
                )
            });
            let ids: Vec<String> = rows.iter().map(|i| i.id.clone()).collect();
            let tasks = invs::tasks_of(c, &ids)?;
            let readable: HashSet<String> = rows
                .iter()
                .filter(|i| v.sees_content(c, &i.command_id))
                .map(|i| i.id.clone())
                .collect();
            let hooks = (
                crate::store::webhooks::urls(c, &ids)?,
                crate::store::webhooks::statuses(c, &ids)?,
            );
            Ok((total, rows, tasks, readable, hooks))
        })
        .await?;
    let mut by_inv: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in &tasks {
        by_inv.entry(t.invocation_id.as_str()).or_default().push(t);
    }
    let set: Vec<Value> = rows
        .iter()
        .map(|i| {
            let mut view = views::invocation(
                i,
                by_inv
                    .get(i.id.as_str())
                    .map(|v| v.as_slice())
                    .unwrap_or(&[]),
                readable.contains(&i.id),
            );
            let state = status_line(hook_states.get(&i.id));
            decorate(&mut view, hook_urls.get(&i.id), Some(state));
            view
        })
        .collect();
    Ok(json!({ "TotalCount": total, "InvocationSet": set }))
}

pub async fn describe_tasks(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let p = a.who();
    let (ids, filters) = q.given_ids_or_filters(
        a.ids(),
        IdList {
            name: "InvocationTaskIds",
            prefix: "invt",
            code: Code::InvalidParameterValueInvalidInvocationTaskId,
        },
        &[
            "invocation-task-id",
            "invocation-id",
            "instance-id",
            "command-id",
        ],
        false,
    )?;
    let page = q.page()?;
    let hide_output = q.opt_bool("HideOutput")?.unwrap_or(true);
    q.finish()?;
    let mut query = TaskQuery {
        ids,
        ..Default::default()
    };
    let checks: [(&str, &str, Code); 4] = [
        (
            "invocation-task-id",
            "invt",
            Code::InvalidParameterValueInvalidInvocationTaskId,
        ),
        (
            "invocation-id",
            "inv",
            Code::InvalidParameterValueInvalidInvocationId,
        ),
        (
            "instance-id",
            "mi",
            Code::InvalidParameterValueInvalidInstanceId,
        ),
        (
            "command-id",
            "cmd",
            Code::InvalidParameterValueInvalidCommandId,
        ),
    ];
    for (name, prefix, code) in checks {
        check_ids(name, &filters.get(name), prefix, 5, code)?;
    }
    query.ids.extend(filters.get("invocation-task-id"));
    query.invocation_ids = filters.get("invocation-id");
    query.instance_ids = filters.get("instance-id");
    query.command_ids = filters.get("command-id");
    let vis = api.visibility(p);
    let fetch = vis.fetch(page);
    let (total, rows, invs_by_id, heads, readable) = api
        .store
        .read(move |c| {
            let (total, rows) = invs::list_tasks(c, &query, fetch)?;
            let (total, rows) = vis.page(total, rows, page, |t| {
                let ctags = commands::get(c, &t.command_id)
                    .map(|x| x.tags)
                    .unwrap_or_default();
                let itags = instances::get_instance(c, &t.instance_id)
                    .map(|x| x.tags)
                    .unwrap_or_default();
                vis.sees(
                    crate::policy::Action::DescribeInvocationTasks.policy_name(),
                    &[
                        vis.command(&t.command_id, &ctags),
                        vis.instance(&t.instance_id, &itags),
                    ],
                )
            });
            let mut by_id = HashMap::new();
            let mut heads = HashMap::new();
            for t in &rows {
                if !by_id.contains_key(&t.invocation_id) {
                    by_id.insert(t.invocation_id.clone(), invs::get(c, &t.invocation_id)?);
                }
                if !hide_output {
                    let head = invs::read_output(c, &t.id, 0, views::OUTPUT_INLINE as i64 + 4)?;
                    heads.insert(t.id.clone(), head);
                }
            }
            let readable: HashSet<String> = rows
                .iter()
                .filter(|t| vis.sees_content(c, &t.command_id))
                .map(|t| t.id.clone())
                .collect();
            Ok((total, rows, by_id, heads, readable))
        })
        .await?;
    let set: Vec<Value> = rows
        .iter()
        .map(|t| {
            views::task(
                t,
                invs_by_id.get(&t.invocation_id),
                heads.get(&t.id).map(|h| h.as_slice()),
                readable.contains(&t.id),
            )
        })
        .collect();
    Ok(json!({ "TotalCount": total, "InvocationTaskSet": set }))
}

pub async fn cancel(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    let chosen = chosen_tasks(api, a, q).await?;
    api.dispatch.cancel(chosen).await?;
    Ok(json!({}))
}

/// The tasks a CancelInvocation-shaped request names: InvocationId, and
/// optionally InstanceIds to pick some of its tasks. Job control
/// (Suspend/ResumeInvocation) reads its requests here too.
pub(crate) async fn chosen_tasks(api: &Api, a: Authorized<Request>, q: Params) -> R<Vec<Task>> {
    // The gate read InvocationId and InstanceIds (well formed, at most 100).
    let Named::Invocation {
        id: inv_id,
        instances: only,
    } = a.into_inner().named
    else {
        return Err(ApiError::internal());
    };
    q.finish()?;
    let lookup = inv_id.clone();
    let tasks = api
        .store
        .read(move |c| {
            invs::get(c, &lookup)?;
            invs::tasks_of(c, std::slice::from_ref(&lookup))
        })
        .await?;
    let chosen: Vec<Task> = match &only {
        None => tasks,
        Some(ids) => {
            if let Some(stray) = ids
                .iter()
                .find(|i| !tasks.iter().any(|t| &t.instance_id == *i))
            {
                return Err(ApiError::new(
                    Code::InvalidParameterValueInstanceIsNotRelatedToInvocation,
                    format!("the instance `{stray}` is not part of invocation `{inv_id}`"),
                ));
            }
            tasks
                .into_iter()
                .filter(|t| ids.contains(&t.instance_id))
                .collect()
        }
    };
    Ok(chosen)
}

pub async fn output(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let task_id = a.one("InvocationTaskId")?;
    let offset = q.opt_i64("Offset")?.unwrap_or(0);
    let limit = q.opt_i64("Limit")?.unwrap_or(MAX_OUTPUT_SLICE);
    q.finish()?;
    if offset < 0 {
        return Err(ApiError::new(
            Code::InvalidParameterValueRange,
            "Offset must not be negative",
        ));
    }
    if !(1..=MAX_OUTPUT_SLICE).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidParameterValueRange,
            format!("Limit must be between 1 and {MAX_OUTPUT_SLICE} bytes"),
        ));
    }
    let (task, data, capped) = api
        .store
        .read(move |c| {
            let t = invs::get_task(c, &task_id)?;
            let d = invs::read_output(c, &t.id, offset, limit)?;
            let capped = invs::output_capped(c, &t.id)?;
            Ok((t, d, capped))
        })
        .await?;
    Ok(json!({
        "InvocationTaskId": task.id,
        "Output": base64::engine::general_purpose::STANDARD.encode(&data),
        "Offset": offset,
        "Length": data.len(),
        // What is stored and readable; bytes past --max-output-bytes are
        // counted in Dropped, and such an output is never Complete.
        "TotalSize": task.output_len - capped,
        "Dropped": capped,
        "TaskStatus": task.status.as_str(),
        // Final, holding every byte the agent reported, and none past the cap.
        "Complete": task.status.is_final() && capped == 0 && task.missing_output() == 0,
        "Missing": task.missing_output(),
    }))
}
