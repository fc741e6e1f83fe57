//! Starting an invocation: the one path by which RunCommand, InvokeCommand
//! and the scheduler's triggers create an invocation and its tasks (content
//! and parameters resolved, secrets put in for the agent only, settings
//! checked, rows written in one transaction) and hand them to dispatch.

use super::commands::{self as cmds, check_cos, check_timeout, check_username, check_workdir};
use super::error::ApiError;
use super::params;
use super::request::{check_ids, check_unique, Params, R};
use super::targets::{self, RateControl, Selector};
use super::Api;
use crate::dispatch::rollout;
use crate::store::commands::{self, Command};
use crate::store::instances;
use crate::store::invocations::{self as invs, Invocation, Task};
use crate::store::status::TaskStatus;
use crate::timefmt::now_ms;

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
    let stages = &crate::metrics::METRICS.stages;
    let began = std::time::Instant::now();
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
    stages.store.observe_duration(began.elapsed());
    let began = std::time::Instant::now();
    api.dispatch.submit(&inv, &tasks).await?;
    stages.push.observe_duration(began.elapsed());
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
