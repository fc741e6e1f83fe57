//! A run's plan and its start: the one path by which RunCommand,
//! InvokeCommand and invoker triggers create an invocation and its tasks
//! (content and parameters resolved, secrets put in for the agent only, as
//! data; settings checked; rows written in one transaction) and hand them
//! to dispatch.

use super::error::{Problem, RunError, R};
use super::params;
use super::settings::{check_cos, check_timeout, check_username, check_workdir, default_workdir};
use super::targets::{RateControl, Selector};
use super::Runner;
use crate::dispatch::rollout;
use crate::gate::{Authorized, Check, Gate};
use crate::policy::USE_SECRET;
use crate::store::commands::{self, Command};
use crate::store::instances::{self, Instance};
use crate::store::invocations::{self as invs, Invocation, Task};
use crate::store::status::TaskStatus;
use crate::store::StoreError;
use crate::timefmt::now_ms;

/// Per-call settings that override the command's.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
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
pub enum Source {
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
pub type AlsoWrite =
    Box<dyn FnOnce(&rusqlite::Connection, &str) -> crate::store::Result<()> + Send>;

/// The instances a run asks for: listed ids, or a selector (at most `max`
/// runnable matches).
#[derive(Debug, Clone)]
pub struct Want {
    pub ids: Vec<String>,
    pub selector: Option<Selector>,
    pub max: usize,
}

/// One run, resolved once: what is decided is what is written and
/// delivered.
#[derive(Debug)]
pub struct Plan {
    /// The policy action that decides it (tat:RunCommand, tat:InvokeCommand,
    /// tat:CreateInvoker for an invoker's trigger).
    pub action: &'static str,
    /// The command row as read (RunCommand: as given); its content runs.
    pub cmd: Command,
    /// RunCommand: the command is new and is stored with the run.
    pub save_command: bool,
    pub overrides: Overrides,
    pub parameters: Option<String>,
    /// The secrets the content refers to, sorted.
    pub secrets: Vec<String>,
    /// The instances the run goes to, with their tags as read.
    pub instances: Vec<(String, String)>,
    /// Every instance named (a selector: all it matched, also those the
    /// command type skips), decided on.
    pub named: Vec<(String, String)>,
    pub source: Source,
}

/// Resolves what a run of `cmd` on `want` is. A selector is resolved over
/// the registered instances of now; listed ids are taken as given (their
/// existence is checked in the write, after the decision, so a caller
/// learns nothing of ids it may not use).
#[allow(clippy::too_many_arguments)]
pub async fn plan(
    run: &Runner,
    action: &'static str,
    cmd: Command,
    save_command: bool,
    want: Want,
    mut overrides: Overrides,
    parameters: Option<String>,
    source: Source,
) -> R<Plan> {
    let content = params::decode_content(&cmd.content)?;
    let secrets = params::secret_refs(&content);
    let (named, instances) = match &want.selector {
        Some(sel) => {
            let all = run.store.read(instances::all_instances).await?;
            let matched: Vec<&Instance> = sel.select(&all);
            let runnable: Vec<(String, String)> = matched
                .iter()
                .filter(|i| can_run(i, &cmd.command_type))
                .map(|i| (i.id.clone(), i.tags.clone()))
                .collect();
            let named = matched
                .iter()
                .map(|i| (i.id.clone(), i.tags.clone()))
                .collect::<Vec<_>>();
            if runnable.len() > want.max {
                return Err(RunError::new(
                    Problem::LimitExceeded,
                    format!(
                        "Targets match more than {} instances; at most {} may run one invocation",
                        want.max, want.max
                    ),
                ));
            }
            (named, runnable)
        }
        None => {
            let ids = want.ids.clone();
            let tags = run
                .store
                .read(move |c| {
                    Ok(ids
                        .iter()
                        .map(|i| {
                            let t = instances::get_instance(c, i)
                                .map(|x| x.tags)
                                .unwrap_or_else(|_| "[]".into());
                            (i.clone(), t)
                        })
                        .collect::<Vec<_>>())
                })
                .await?;
            (tags.clone(), tags)
        }
    };
    overrides.targets = want.selector;
    Ok(Plan {
        action,
        cmd,
        save_command,
        overrides,
        parameters,
        secrets,
        instances,
        named,
        source,
    })
}

fn can_run(i: &Instance, command_type: &str) -> bool {
    serde_json::from_str::<Vec<String>>(&i.command_types)
        .unwrap_or_default()
        .iter()
        .any(|t| t == command_type)
}

impl Plan {
    /// The decisions this plan needs: its action on the command and every
    /// named instance, and tat:UseSecret on each secret the content names
    /// with those instances.
    pub fn checks(&self, gate: &Gate) -> Vec<Check> {
        let hide = self.overrides.targets.is_some();
        let cmd = gate.command_res(&self.cmd.id, &self.cmd.tags);
        let insts: Vec<_> = self
            .named
            .iter()
            .map(|(id, tags)| gate.instance_res(id, tags))
            .collect();
        let mut main = vec![cmd.clone()];
        main.extend(insts.iter().cloned());
        let mut checks = vec![Check {
            action: self.action,
            resources: main,
            hide_resource: hide,
            // Starting a stored command needs reading it (Azure's
            // individual-runbook control); a new one is the caller's own.
            start_of: (!self.save_command).then_some(cmd),
        }];
        for name in &self.secrets {
            let mut g = vec![gate.secret(name)];
            g.extend(insts.iter().cloned());
            checks.push(Check {
                action: USE_SECRET,
                resources: g,
                hide_resource: hide,
                start_of: None,
            });
        }
        checks
    }

    /// Fails when the selector left nothing to run on (after the decision,
    /// so a denied caller learns nothing from it).
    fn require_instances(&self) -> R<()> {
        if !self.instances.is_empty() {
            return Ok(());
        }
        let why = if self.named.is_empty() {
            "no registered instance matches Targets".to_string()
        } else {
            format!(
                "the instances Targets match cannot run {} commands",
                self.cmd.command_type
            )
        };
        Err(RunError::new(Problem::NoInstanceMatched, why))
    }
}

/// Creates the decided invocation and its tasks, then hands the tasks to
/// dispatch. Returns the invocation id.
pub async fn start(run: &Runner, decided: Authorized<Plan>, also: Option<AlsoWrite>) -> R<String> {
    let plan = decided.into_inner();
    plan.require_instances()?;
    let Plan {
        cmd,
        save_command,
        overrides: o,
        parameters,
        secrets,
        instances: reached,
        source,
        ..
    } = plan;
    if !cmd.enable_parameter && parameters.is_some() {
        return Err(RunError::new(
            Problem::ParameterDisabled,
            "Parameters require a command with EnableParameter set",
        ));
    }
    let content = params::decode_content(&cmd.content)?;
    let given = parameters
        .map(|p| params::parse_map("Parameters", &p))
        .transpose()?;
    // Secrets go in here only, on the way to the agent, and as data: the
    // records below keep the command's `{{secret:NAME}}` text.
    let secret_values = super::secrets::resolve(run, &secrets).await?;
    let as_data = params::secret_refs_for(&cmd.command_type, &secret_values)?;
    let (script, recorded_params, recorded_defaults) = if cmd.enable_parameter {
        let r = params::replace(
            &content,
            &cmd.default_parameters,
            given.as_ref(),
            Some(&as_data.refs),
        )?;
        (r.content, r.recorded_parameters, r.recorded_defaults)
    } else {
        (
            params::replace_secrets(content, &as_data.refs)?,
            "{}".to_string(),
            "{}".to_string(),
        )
    };
    let delivery = params::with_header(script, &as_data.header);
    let mask = super::secrets::mask_values(&secret_values);
    let user_overridden = o.username.is_some();
    let username = o.username.unwrap_or_else(|| cmd.username.clone());
    check_username(&username)?;
    // The command's default /root suits root only: a call that switches to
    // another user without naming a directory starts in that user's home.
    let working_directory = match o.working_directory {
        Some(d) => d,
        None if user_overridden && cmd.working_directory == "/root" => {
            default_workdir(&username).to_string()
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

    let instance_ids: Vec<String> = reached.into_iter().map(|(id, _)| id).collect();
    let now = now_ms();
    let inv_id = crate::ids::new_id("inv");
    let inv = Invocation {
        id: inv_id.clone(),
        command_id: cmd.id.clone(),
        command_name: cmd.name.clone(),
        description: cmd.description.clone(),
        content: cmd.content.clone(),
        delivery_enc: if mask.is_empty() {
            run.dispatch.seal_delivery(&inv_id, &delivery)
        } else {
            run.dispatch.seal_delivery_masked(&inv_id, &delivery, &mask)
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
        .map(|w| w.seal(&run.secrets, &inv_id, o.invoker_id, now));
    let deadline = now + run.dispatch.settings.deliver_timeout_ms;
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
            reported_len: 0,
        })
        .collect();
    let command_type = cmd.command_type.clone();
    let save = save_command.then(|| cmd.clone());
    // Marking the first wave DELIVERING (or DELIVER_DELAYED) is part of the
    // insert's transaction: one write job per call, so the call does not
    // queue a second time behind the agents' reports, and the tasks are
    // pushed as soon as they are committed.
    let handout = run.dispatch.handout_for(&tasks);
    let handout_w = handout.write_part();
    let (inv_w, tasks_w) = (inv.clone(), tasks.clone());
    // What the write found wrong with an instance, kept apart from store
    // errors so no message has to be parsed.
    let problem = std::sync::Arc::new(std::sync::Mutex::new(None::<RunError>));
    let found_problem = problem.clone();
    let stages = &crate::metrics::METRICS.stages;
    let began = std::time::Instant::now();
    let written = run
        .store
        .write(move |c| {
            let flag = |e: RunError| {
                if let Ok(mut p) = found_problem.lock() {
                    *p = Some(e);
                }
                StoreError::Refused(crate::store::Rule::RunInstance, String::new())
            };
            let found = instances::existing_ids(c, &instance_ids)?;
            if let Some(missing) = instance_ids.iter().find(|i| !found.contains(i)) {
                return Err(flag(RunError::InstanceNotFound(missing.clone())));
            }
            for iid in &instance_ids {
                let inst = instances::get_instance(c, iid)?;
                if !can_run(&inst, &command_type) {
                    return Err(flag(RunError::UnsupportedType {
                        instance: iid.clone(),
                        command_type: command_type.clone(),
                    }));
                }
            }
            if let Some(sc) = &save {
                commands::insert(c, sc)?;
            }
            invs::insert(c, &inv_w, &tasks_w)?;
            if let Some(h) = &hook_row {
                crate::store::webhooks::put(c, h)?;
            }
            if let Some(f) = also {
                f(c, &inv_w.id)?;
            }
            handout_w.write(c)
        })
        .await;
    let taken = match written {
        Ok(t) => t,
        Err(e) => {
            let flagged = problem.lock().ok().and_then(|mut p| p.take());
            return Err(flagged.unwrap_or_else(|| e.into()));
        }
    };
    stages.store.observe_duration(began.elapsed());
    let began = std::time::Instant::now();
    run.dispatch.deliver(handout, taken).await;
    stages.push.observe_duration(began.elapsed());
    Ok(inv_id)
}
