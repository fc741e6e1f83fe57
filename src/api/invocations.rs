//! Running commands: RunCommand, InvokeCommand, DescribeInvocations,
//! DescribeInvocationTasks, CancelInvocation, and the drover extension
//! DescribeInvocationTaskOutput (a task's whole output, byte-exact).
//! Suspend/ResumeInvocation (`jobctl.rs`) share CancelInvocation's request
//! reading (`chosen_tasks`).

use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde_json::{json, Value};

use super::commands::{self as cmds, check_cos, check_timeout, check_username, check_workdir};
use super::error::ApiError;
use super::params;
use super::request::{check_ids, check_unique, IdList, Params, R};
use super::targets::{self, RateControl, Selector};
use super::webhooks::{decorate, read_new_webhook, status_line};
use super::{views, Api, Principal};
use crate::dispatch::rollout;
use crate::store::commands::{self, Command};
use crate::store::instances;
use crate::store::invocations::{self as invs, Invocation, InvocationQuery, Task, TaskQuery};
use crate::store::status::TaskStatus;
use crate::timefmt::now_ms;

const MAX_INSTANCES: usize = 200;
/// Largest slice DescribeInvocationTaskOutput returns at once.
const MAX_OUTPUT_SLICE: i64 = 1 << 20;

pub(crate) fn instance_ids(q: &mut Params, max: usize) -> R<Vec<String>> {
    let ids = q
        .opt_str_list("InstanceIds")?
        .ok_or_else(|| ApiError::missing("InstanceIds"))?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceIds"));
    }
    check_ids(
        "InstanceIds",
        &ids,
        "mi",
        max,
        "InvalidParameterValue.InvalidInstanceId",
    )?;
    check_unique("InstanceIds", &ids)?;
    Ok(ids)
}

/// Per-call settings that override the command's.
#[derive(Default, Clone)]
pub(crate) struct Overrides {
    pub username: Option<String>,
    pub working_directory: Option<String>,
    pub timeout: Option<i64>,
    pub cos_bucket_url: Option<String>,
    pub cos_key_prefix: Option<String>,
    /// The selector the instances were resolved from, recorded as given.
    pub targets: Option<Selector>,
    pub rate: RateControl,
    /// Notified when the invocation ends (drover extension).
    pub webhook: Option<crate::notify::Webhook>,
    /// The invoker whose webhook `webhook` is, named in the notification.
    pub invoker_id: Option<String>,
}

/// Where an invocation came from (TAT's InvocationSource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    User,
    Invoker,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::User => "USER",
            Source::Invoker => "INVOKER",
        }
    }
}

/// Extra work done in the same store transaction as the invocation's
/// insert (the scheduler records its trigger there, so a trigger is never
/// fired twice nor lost).
pub(crate) type AlsoWrite =
    Box<dyn FnOnce(&rusqlite::Connection, &str) -> crate::store::Result<()> + Send>;

/// Creates the invocation and its tasks for `cmd` on `instance_ids`, then
/// hands the tasks to dispatch. InvokeCommand, RunCommand and the scheduler
/// all start invocations here.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    api: &Api,
    cmd: Command,
    save_command: Option<Command>,
    o: Overrides,
    instance_ids: Vec<String>,
    parameters: Option<String>,
    source: Source,
    also: Option<AlsoWrite>,
) -> R<String> {
    if !cmd.enable_parameter && parameters.is_some() {
        return Err(ApiError::new(
            "InvalidParameterValue.ParameterDisabled",
            "Parameters require a command with EnableParameter set",
        ));
    }
    let content = params::decode_content(&cmd.content)?;
    let given = parameters
        .map(|p| params::parse_map("Parameters", &p))
        .transpose()?;
    // Secrets are filled in here only, on the way to the agent: the records
    // below keep the command's `{{secret:NAME}}` text.
    let secret_values = super::secrets::resolve(api, &params::secret_refs(&content)).await?;
    let (delivery, recorded_params, recorded_defaults) = if cmd.enable_parameter {
        let r = params::replace(
            &content,
            &cmd.default_parameters,
            given.as_ref(),
            Some(&secret_values),
        )?;
        (r.content, r.recorded_parameters, r.recorded_defaults)
    } else {
        (
            params::replace_secrets(content, &secret_values)?,
            "{}".to_string(),
            "{}".to_string(),
        )
    };
    let mask = super::secrets::mask_values(&secret_values);
    let user_overridden = o.username.is_some();
    let username = o.username.unwrap_or_else(|| cmd.username.clone());
    check_username(&username)?;
    // The command's default /root suits root only: a call that switches to
    // another user without naming a directory starts in that user's home.
    let working_directory = match o.working_directory {
        Some(d) => d,
        None if user_overridden && cmd.working_directory == "/root" => {
            cmds::default_workdir(&username).to_string()
        }
        None => cmd.working_directory.clone(),
    };
    check_workdir(&working_directory, &cmd.command_type)?;
    let timeout = o.timeout.unwrap_or(cmd.timeout);
    check_timeout(timeout)?;
    let cos_bucket_url = o
        .cos_bucket_url
        .unwrap_or_else(|| cmd.cos_bucket_url.clone());
    let cos_key_prefix = o
        .cos_key_prefix
        .unwrap_or_else(|| cmd.cos_key_prefix.clone());
    check_cos(&cos_bucket_url, &cos_key_prefix)?;

    let now = now_ms();
    let inv_id = crate::ids::new_id("inv");
    let inv = Invocation {
        id: inv_id.clone(),
        command_id: cmd.id.clone(),
        command_name: cmd.name.clone(),
        description: cmd.description.clone(),
        content: cmd.content.clone(),
        delivery_enc: if mask.is_empty() {
            api.dispatch.seal_delivery(&inv_id, &delivery)
        } else {
            api.dispatch.seal_delivery_masked(&inv_id, &delivery, &mask)
        },
        command_type: cmd.command_type.clone(),
        timeout,
        working_directory,
        username,
        parameters: recorded_params,
        default_parameters: recorded_defaults,
        cos_bucket_url,
        cos_key_prefix,
        source: source.as_str().into(),
        created_by: cmd.created_by.clone(),
        created_ms: now,
        updated_ms: now,
        targets: o.targets.as_ref().map(Selector::to_json),
        max_concurrency: o.rate.max_concurrency.clone(),
        max_errors: o.rate.max_errors.clone(),
    };
    let hook_row = o
        .webhook
        .map(|w| w.seal(&api.secrets, &inv_id, o.invoker_id, now));
    let deadline = now + api.dispatch.settings.deliver_timeout_ms;
    // The first wave goes out now; the rest wait, held, for the roll-out.
    let wave = rollout::concurrency(o.rate.max_concurrency.as_deref(), instance_ids.len());
    let tasks: Vec<Task> = instance_ids
        .iter()
        .enumerate()
        .map(|(n, iid)| Task {
            id: crate::ids::new_id("invt"),
            invocation_id: inv_id.clone(),
            instance_id: iid.clone(),
            command_id: cmd.id.clone(),
            status: TaskStatus::Pending,
            exit_code: None,
            error_info: String::new(),
            output_len: 0,
            deadline_ms: if n < wave { deadline } else { i64::MAX },
            created_ms: now,
            updated_ms: now,
            start_ms: 0,
            end_ms: 0,
            exec_start_ms: 0,
            exec_end_ms: 0,
            held: n >= wave,
        })
        .collect();
    let command_type = cmd.command_type.clone();
    let (inv_w, tasks_w) = (inv.clone(), tasks.clone());
    api.store
        .write(move |c| {
            let found = instances::existing_ids(c, &instance_ids)?;
            if let Some(missing) = instance_ids.iter().find(|i| !found.contains(i)) {
                return Err(crate::store::StoreError::NotFound(missing.clone()));
            }
            for iid in &instance_ids {
                let inst = instances::get_instance(c, iid)?;
                let types: Vec<String> =
                    serde_json::from_str(&inst.command_types).unwrap_or_default();
                if !types.contains(&command_type) {
                    return Err(crate::store::StoreError::Conflict(format!(
                        "unsupported:{iid}"
                    )));
                }
            }
            if let Some(sc) = &save_command {
                commands::insert(c, sc)?;
            }
            invs::insert(c, &inv_w, &tasks_w)?;
            if let Some(h) = &hook_row {
                crate::store::webhooks::put(c, h)?;
            }
            match also {
                Some(f) => f(c, &inv_w.id),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(id) => ApiError::new(
                "ResourceNotFound.InstanceNotFound",
                format!("the instance `{id}` does not exist"),
            ),
            crate::store::StoreError::Conflict(m) if m.starts_with("unsupported:") => {
                ApiError::new(
                    "InvalidParameterValue.AgentUnsupportedCommandType",
                    format!(
                        "the agent of `{}` cannot run {} commands",
                        &m["unsupported:".len()..],
                        cmd.command_type
                    ),
                )
            }
            other => ApiError::from(other),
        })?;
    api.dispatch.submit(&inv, &tasks).await?;
    Ok(inv_id)
}

/// Starts the invocation of one trigger of `inv` scheduled at `at`, and
/// records the trigger in the same transaction.
pub(crate) async fn start_for_invoker(
    api: &Api,
    inv: &crate::store::invokers::Invoker,
    at: i64,
    reason: String,
) -> R<String> {
    let command_id = inv.command_id.clone();
    let cmd = api
        .store
        .read(move |c| commands::get(c, &command_id))
        .await?;
    let targets = inv
        .targets
        .as_deref()
        .map(Selector::from_json)
        .transpose()?;
    // A selector is resolved at each trigger, over the instances of now.
    let instance_ids = match &targets {
        Some(s) => {
            targets::resolve(
                api,
                s,
                &cmd.command_type,
                super::invokers::MAX_INVOKER_INSTANCES,
            )
            .await?
        }
        None => inv.instance_ids.clone(),
    };
    let o = Overrides {
        username: (!inv.username.is_empty()).then(|| inv.username.clone()),
        targets,
        rate: RateControl {
            max_concurrency: inv.max_concurrency.clone(),
            max_errors: inv.max_errors.clone(),
        },
        webhook: invoker_webhook(api, &inv.id).await?,
        invoker_id: Some(inv.id.clone()),
        ..Overrides::default()
    };
    let (ivk_id, when) = (inv.id.clone(), now_ms());
    let also: AlsoWrite = Box::new(move |c, inv_id| {
        let rec = crate::store::invokers::Record {
            invoker_id: ivk_id.clone(),
            invoke_ms: when,
            reason,
            invocation_id: inv_id.to_string(),
            result: String::new(),
        };
        crate::store::invokers::claim(c, &ivk_id, at, &rec)
    });
    start(
        api,
        cmd,
        None,
        o,
        instance_ids,
        inv.parameters.clone(),
        Source::Invoker,
        Some(also),
    )
    .await
}

/// An invoker's webhook, which every invocation it starts gets a copy of.
async fn invoker_webhook(api: &Api, invoker_id: &str) -> R<Option<crate::notify::Webhook>> {
    let id = invoker_id.to_string();
    let Some(row) = api
        .store
        .read(move |c| crate::store::webhooks::get(c, &id))
        .await?
    else {
        return Ok(None);
    };
    match crate::notify::Webhook::open(&api.secrets, &row) {
        Ok(w) => Ok(Some(w)),
        // A key that does not decrypt must not stop the schedule: the run
        // goes ahead, unnotified, and the log says why.
        Err(e) => {
            tracing::error!(invoker = %invoker_id, "invoker webhook: {e}");
            Ok(None)
        }
    }
}

pub async fn run(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let (ids, selector, rate) = targets::read_fleet(&mut q, MAX_INSTANCES)?;
    let save = q.opt_bool("SaveCommand")?.unwrap_or(false);
    let parameters = q.opt_str("Parameters")?;
    let webhook = read_new_webhook(&mut q)?;
    let mut cmd = cmds::read_new_command(&mut q, false)?;
    q.finish()?;
    if save && cmd.name.is_empty() {
        cmd.name = format!("command-{}", &cmd.id[4..]);
    }
    cmd.saved = save;
    let command_id = cmd.id.clone();
    let to_save = Some(cmd.clone());
    let instance_ids = targets::reach(
        api,
        p,
        "tat:RunCommand",
        ids,
        &selector,
        &cmd.command_type,
        MAX_INSTANCES,
    )
    .await?;
    let o = Overrides {
        targets: selector,
        rate,
        webhook,
        ..Overrides::default()
    };
    let inv = start(
        api,
        cmd,
        to_save,
        o,
        instance_ids,
        parameters,
        Source::User,
        None,
    )
    .await?;
    Ok(json!({ "CommandId": command_id, "InvocationId": inv }))
}

pub async fn invoke(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let command_id = cmds::command_id(&mut q)?;
    let (ids, selector, rate) = targets::read_fleet(&mut q, MAX_INSTANCES)?;
    let parameters = q.opt_str("Parameters")?;
    let mut o = Overrides {
        username: q.opt_str("Username")?,
        working_directory: q.opt_str("WorkingDirectory")?,
        timeout: q.opt_i64("Timeout")?,
        cos_bucket_url: q.opt_str("OutputCOSBucketUrl")?,
        cos_key_prefix: q.opt_str("OutputCOSKeyPrefix")?,
        rate,
        webhook: read_new_webhook(&mut q)?,
        ..Overrides::default()
    };
    q.finish()?;
    let cmd = api
        .store
        .read(move |c| commands::get(c, &command_id))
        .await?;
    let instance_ids = targets::reach(
        api,
        p,
        "tat:InvokeCommand",
        ids,
        &selector,
        &cmd.command_type,
        MAX_INSTANCES,
    )
    .await?;
    o.targets = selector;
    let inv = start(
        api,
        cmd,
        None,
        o,
        instance_ids,
        parameters,
        Source::User,
        None,
    )
    .await?;
    Ok(json!({ "InvocationId": inv }))
}

pub async fn describe(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let (ids, filters) = q.ids_or_filters(
        IdList {
            name: "InvocationIds",
            prefix: "inv",
            code: "InvalidParameterValue.InvalidInvocationId",
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
        "InvalidParameterValue.InvalidInvocationId",
    )?;
    query.ids.extend(f_ids);
    let c_ids = filters.get("command-id");
    check_ids(
        "command-id",
        &c_ids,
        "cmd",
        5,
        "InvalidParameterValue.InvalidCommandId",
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
                    "tat:DescribeInvocations",
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

pub async fn describe_tasks(api: &Api, p: &Principal, mut q: Params) -> R<Value> {
    let (ids, filters) = q.ids_or_filters(
        IdList {
            name: "InvocationTaskIds",
            prefix: "invt",
            code: "InvalidParameterValue.InvalidInvocationTaskId",
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
    let checks: [(&str, &str, &'static str); 4] = [
        (
            "invocation-task-id",
            "invt",
            "InvalidParameterValue.InvalidInvocationTaskId",
        ),
        (
            "invocation-id",
            "inv",
            "InvalidParameterValue.InvalidInvocationId",
        ),
        (
            "instance-id",
            "mi",
            "InvalidParameterValue.InvalidInstanceId",
        ),
        (
            "command-id",
            "cmd",
            "InvalidParameterValue.InvalidCommandId",
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
                    "tat:DescribeInvocationTasks",
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

pub async fn cancel(api: &Api, _p: &Principal, q: Params) -> R<Value> {
    let chosen = chosen_tasks(api, q).await?;
    api.dispatch.cancel(chosen).await?;
    Ok(json!({}))
}

/// The tasks a CancelInvocation-shaped request names: InvocationId, and
/// optionally InstanceIds to pick some of its tasks. Job control
/// (Suspend/ResumeInvocation) reads its requests here too.
pub(crate) async fn chosen_tasks(api: &Api, mut q: Params) -> R<Vec<Task>> {
    let inv_id = q.str("InvocationId")?;
    check_ids(
        "InvocationId",
        std::slice::from_ref(&inv_id),
        "inv",
        1,
        "InvalidParameterValue.InvalidInvocationId",
    )?;
    let only = q.opt_str_list("InstanceIds")?;
    q.finish()?;
    if let Some(ids) = &only {
        check_ids(
            "InstanceIds",
            ids,
            "mi",
            100,
            "InvalidParameterValue.InvalidInstanceId",
        )?;
    }
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
                    "InvalidParameterValue.InstanceIsNotRelatedToInvocation",
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

pub async fn output(api: &Api, _p: &Principal, mut q: Params) -> R<Value> {
    let task_id = q.str("InvocationTaskId")?;
    check_ids(
        "InvocationTaskId",
        std::slice::from_ref(&task_id),
        "invt",
        1,
        "InvalidParameterValue.InvalidInvocationTaskId",
    )?;
    let offset = q.opt_i64("Offset")?.unwrap_or(0);
    let limit = q.opt_i64("Limit")?.unwrap_or(MAX_OUTPUT_SLICE);
    q.finish()?;
    if offset < 0 {
        return Err(ApiError::new(
            "InvalidParameterValue.Range",
            "Offset must not be negative",
        ));
    }
    if !(1..=MAX_OUTPUT_SLICE).contains(&limit) {
        return Err(ApiError::new(
            "InvalidParameterValue.Range",
            format!("Limit must be between 1 and {MAX_OUTPUT_SLICE} bytes"),
        ));
    }
    let (task, data) = api
        .store
        .read(move |c| {
            let t = invs::get_task(c, &task_id).map_err(|_| {
                crate::store::StoreError::NotFound(format!("invocation task {task_id}"))
            })?;
            let d = invs::read_output(c, &t.id, offset, limit)?;
            Ok((t, d))
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(m) => {
                ApiError::new("ResourceNotFound", format!("{m} does not exist"))
            }
            other => other.into(),
        })?;
    Ok(json!({
        "InvocationTaskId": task.id,
        "Output": base64::engine::general_purpose::STANDARD.encode(&data),
        "Offset": offset,
        "Length": data.len(),
        "TotalSize": task.output_len,
        "TaskStatus": task.status.as_str(),
        "Complete": task.status.is_final(),
    }))
}
