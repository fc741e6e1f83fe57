//! The API's side of the gate: a request is read into its action's typed
//! value (`Request`) once, strictly, by the action's resource rule (from
//! the one action table, `policy::Action::rule`); the resources it names
//! are looked up with their tags; the engine decides; and the handler gets
//! `Authorized<Request>`, the only way it can be called. Handlers take the
//! ids the gate decided on from it and never read those fields again.
//!
//! Runs (RunCommand, InvokeCommand) are read whole here: the command row,
//! the resolved instances and the secrets its content names form a
//! `run::Plan`, decided and handed to `run::start` as is. ModifyCommand of
//! a command that invokers fire needs the right to run it on their
//! instances (tat:InvokeCommand), because those invokers will run the new
//! text. List actions without ids are filtered item by item in their
//! handlers; a caller that no statement could ever allow the action is
//! refused outright.

use std::net::IpAddr;
use std::sync::Arc;

use crate::gate::{self, Authorized, Check, Denied};
use crate::policy::{Action, Endpoint, Resource, ResourceKind, Rule, USE_SECRET};
use crate::run::{self, Overrides, Plan, Source, Want};
use crate::store::{commands, invocations, invokers};

use super::commands as cmds;
use super::decided::{Named, Request};
use super::error::{ApiError, Code};
use super::request::{check_ids, check_unique, Params, R};
use super::targets::{self, Selector};
use super::{Api, Principal};

/// Most instances one RunCommand or InvokeCommand reaches.
pub const MAX_RUN_INSTANCES: usize = 200;
/// Most ids a list action takes (TAT's limit), checked before any lookup.
const MAX_LIST: usize = 100;

fn one_id(q: &mut Params, field: &str, prefix: &str, code: Code) -> R<Option<String>> {
    let id = q.opt_str(field)?;
    if let Some(id) = &id {
        check_ids(field, std::slice::from_ref(id), prefix, 1, code)?;
    }
    Ok(id)
}

fn id_list(q: &mut Params, field: &str, prefix: &str, code: Code) -> R<Option<Vec<String>>> {
    let ids = q.opt_str_list(field)?;
    if let Some(ids) = &ids {
        check_ids(field, ids, prefix, MAX_LIST, code)?;
    }
    Ok(ids)
}

fn secret_name(q: &mut Params) -> R<Option<String>> {
    let n = q.opt_str("SecretName")?;
    if let Some(n) = &n {
        super::secrets::check_name("SecretName", n)?;
    }
    Ok(n)
}

fn secret_names(q: &mut Params) -> R<Option<Vec<String>>> {
    let names = q.opt_str_list("SecretNames")?;
    if let Some(names) = &names {
        if names.len() > MAX_LIST {
            return Err(ApiError::new(
                Code::InvalidParameterValueLimitExceeded,
                format!("`SecretNames` allows at most {MAX_LIST} entries"),
            ));
        }
        for n in names {
            super::secrets::check_name("SecretNames", n)?;
        }
    }
    Ok(names)
}

const BAD_CMD: Code = Code::InvalidParameterValueInvalidCommandId;
const BAD_INV: Code = Code::InvalidParameterValueInvalidInvocationId;
const BAD_TASK: Code = Code::InvalidParameterValueInvalidInvocationTaskId;
const BAD_INS: Code = Code::InvalidParameterValueInvalidInstanceId;
const BAD_IVK: Code = Code::InvalidParameterValueInvalidInvokerId;
const BAD_SES: Code = Code::InvalidParameterValueInvalidSessionId;

impl Api {
    /// Decides one request: reads what its action names, decides, and
    /// returns the proof the handler needs, or the denial.
    pub(crate) async fn decide(
        &self,
        principal: &Principal,
        action: Action,
        q: &mut Params,
        ip: Option<IpAddr>,
        trail: &mut super::audit::Trail,
    ) -> R<Authorized<Request>> {
        let mut grants = self
            .gate
            .grants_for(&principal.user_id, &principal.group_ids, ip)
            .await?;
        // Tags of what the request creates (qcs:request_tag), read once.
        let tags = match action.endpoint() {
            Endpoint::Cam => {
                grants.set_request_tags(q.peek_tags());
                None
            }
            // Only the actions that set tags take `Tags`; elsewhere it stays
            // in the request and is an UnknownParameter.
            _ if takes_tags(action) && q.peek_value("Tags").is_some() => Some(cmds::read_tags(q)?),
            _ => None,
        };
        if let Some(t) = &tags {
            grants.set_request_tags(gate::parse_tags(t));
        }
        let mut p = principal.clone();
        p.grants = Arc::new(grants);
        let named = self.read_named(&p, action, q, tags.as_deref()).await?;
        let checks = if p.is_root() {
            Vec::new()
        } else {
            self.checks(&p, action, &named).await?
        };
        let request = Request {
            principal: p.clone(),
            action,
            named,
            tags,
        };
        match gate::authorize(&p.grants, &checks, request) {
            Ok(a) => {
                trail.decision = "allow".into();
                trail.deciding_statement = a.why().to_string();
                Ok(a)
            }
            Err(d) => {
                trail.decision = "deny".into();
                trail.deciding_statement = d.decision.clone();
                Err(d.into())
            }
        }
    }

    /// Reads the fields the action's rule names, strictly, with their
    /// sizes checked before anything is looked up.
    async fn read_named(
        &self,
        p: &Principal,
        action: Action,
        q: &mut Params,
        tags: Option<&str>,
    ) -> R<Named> {
        Ok(match action.rule() {
            Rule::Account | Rule::Pseudo => Named::Nothing,
            Rule::Command => Named::One(one_id(q, "CommandId", "cmd", BAD_CMD)?),
            Rule::Commands => {
                let ids = q
                    .opt_str_list("CommandIds")?
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| ApiError::missing("CommandIds"))?;
                check_ids("CommandIds", &ids, "cmd", MAX_LIST, BAD_CMD)?;
                check_unique("CommandIds", &ids)?;
                Named::List(Some(ids))
            }
            Rule::CommandList => Named::List(id_list(q, "CommandIds", "cmd", BAD_CMD)?),
            Rule::InvocationList => Named::List(id_list(q, "InvocationIds", "inv", BAD_INV)?),
            Rule::TaskList => Named::List(id_list(q, "InvocationTaskIds", "invt", BAD_TASK)?),
            Rule::InstanceList => Named::List(id_list(q, "InstanceIds", "mi", BAD_INS)?),
            Rule::InvokerList => Named::List(id_list(q, "InvokerIds", "ivk", BAD_IVK)?),
            Rule::SecretList => Named::List(secret_names(q)?),
            // Sessions are listed by filters, each row filtered by its instance.
            Rule::SessionList => Named::List(None),
            Rule::Session => Named::One(Some(
                one_id(
                    q,
                    "SessionId",
                    crate::session::record::SESSION_ID_PREFIX,
                    BAD_SES,
                )?
                .ok_or_else(|| ApiError::missing("SessionId"))?,
            )),
            Rule::Task => Named::One(one_id(q, "InvocationTaskId", "invt", BAD_TASK)?),
            Rule::Instance => Named::One(one_id(
                q,
                "InstanceId",
                "mi",
                Code::InvalidParameterValueInvalidRegisterInstanceId,
            )?),
            Rule::Invoker => Named::One(one_id(q, "InvokerId", "ivk", BAD_IVK)?),
            Rule::Secret => Named::One(secret_name(q)?),
            Rule::Invocation => {
                let id = one_id(q, "InvocationId", "inv", BAD_INV)?
                    .ok_or_else(|| ApiError::missing("InvocationId"))?;
                let instances = q.opt_str_list("InstanceIds")?;
                if let Some(ids) = &instances {
                    check_ids("InstanceIds", ids, "mi", MAX_LIST, BAD_INS)?;
                }
                Named::Invocation { id, instances }
            }
            Rule::Deliveries => Named::Deliveries {
                invocation: one_id(q, "InvocationId", "inv", BAD_INV)?,
                invoker: one_id(q, "InvokerId", "ivk", BAD_IVK)?,
            },
            Rule::ModifyCommand => Named::ModifyCommand {
                id: one_id(q, "CommandId", "cmd", BAD_CMD)?
                    .ok_or_else(|| ApiError::missing("CommandId"))?,
                content: q.opt_str("Content")?,
            },
            Rule::NewInvoker => {
                let command_id = q.str("CommandId")?;
                check_ids(
                    "CommandId",
                    std::slice::from_ref(&command_id),
                    "cmd",
                    1,
                    BAD_CMD,
                )?;
                let selector = targets::read_selector(q)?;
                targets::one_of(q.peek_value("InstanceIds").is_some(), selector.is_some())?;
                let ids = match selector {
                    Some(_) => Vec::new(),
                    None => targets::instance_ids(q, run::MAX_INVOKER_INSTANCES)?,
                };
                Named::NewInvoker {
                    command_id,
                    ids,
                    selector,
                }
            }
            Rule::ChangeInvoker => {
                let id = one_id(q, "InvokerId", "ivk", BAD_IVK)?
                    .ok_or_else(|| ApiError::missing("InvokerId"))?;
                let command_id = one_id(q, "CommandId", "cmd", BAD_CMD)?;
                let ids = match q.opt_str_list("InstanceIds")? {
                    None => None,
                    Some(ids) if ids.is_empty() => return Err(ApiError::missing("InstanceIds")),
                    Some(ids) => {
                        check_ids("InstanceIds", &ids, "mi", MAX_LIST, BAD_INS)?;
                        check_unique("InstanceIds", &ids)?;
                        Some(ids)
                    }
                };
                let selector = targets::read_selector(q)?;
                if ids.is_some() && selector.is_some() {
                    targets::one_of(true, true)?;
                }
                Named::ChangeInvoker {
                    id,
                    command_id,
                    ids,
                    selector,
                }
            }
            // Every CAM-scoped action names its targets (a test walks
            // them); one that did not would be a bug, refused, never `*`.
            Rule::Cam => Named::Cam(
                super::cam::scope::named(self, p, action.api_name(), q)
                    .await?
                    .ok_or_else(ApiError::internal)?,
            ),
            Rule::Run | Rule::Invoke => {
                Named::Run(Box::new(self.read_run(p, action, q, tags).await?))
            }
        })
    }

    /// RunCommand and InvokeCommand, read whole: the plan of the run,
    /// decided. Nothing of it is read again before it starts.
    async fn read_run(
        &self,
        p: &Principal,
        action: Action,
        q: &mut Params,
        tags: Option<&str>,
    ) -> R<Authorized<Plan>> {
        let new = action == Action::RunCommand;
        let command_id = if new {
            None
        } else {
            Some(cmds::command_id(q)?)
        };
        let (ids, selector, rate) = targets::read_fleet(q, MAX_RUN_INSTANCES)?;
        let parameters = q.opt_str("Parameters")?;
        let webhook = super::webhooks::read_new_webhook(self, q)?;
        let mut o = Overrides {
            rate,
            webhook,
            ..Overrides::default()
        };
        let cmd = match command_id {
            None => {
                let save = q.opt_bool("SaveCommand")?.unwrap_or(false);
                let mut cmd = cmds::read_new_command(q, false, tags.unwrap_or("[]"))?;
                if save && cmd.name.is_empty() {
                    cmd.name = format!("command-{}", &cmd.id[4..]);
                }
                cmd.saved = save;
                cmd
            }
            Some(id) => {
                o.username = q.opt_str("Username")?;
                o.working_directory = q.opt_str("WorkingDirectory")?;
                o.timeout = q.opt_i64("Timeout")?;
                o.cos_bucket_url = q.opt_str("OutputCOSBucketUrl")?;
                o.cos_key_prefix = q.opt_str("OutputCOSKeyPrefix")?;
                q.finish_ref()?;
                let denied_or_missing = self.command_or_denied(p, action, &id).await?;
                denied_or_missing
            }
        };
        if new {
            q.finish_ref()?;
        }
        let want = Want {
            ids,
            selector,
            max: MAX_RUN_INSTANCES,
        };
        let plan = run::plan(
            &self.runner,
            action.policy_name(),
            cmd,
            new,
            want,
            o,
            parameters,
            Source::User,
        )
        .await?;
        let checks = if p.is_root() {
            Vec::new()
        } else {
            plan.checks(&self.gate)
        };
        Ok(gate::authorize(&p.grants, &checks, plan)?)
    }

    /// The stored command a run names. A restricted caller that may not
    /// run it learns nothing of whether it exists: a missing command is
    /// decided as one with no tags first.
    async fn command_or_denied(
        &self,
        p: &Principal,
        action: Action,
        id: &str,
    ) -> R<commands::Command> {
        let lookup = id.to_string();
        let found = self
            .store
            .read(move |c| Ok(commands::get(c, &lookup).ok()))
            .await?;
        match found {
            Some(c) => Ok(c),
            None => {
                if !p.is_root() {
                    let check =
                        Check::new(action.policy_name(), vec![self.gate.command_res(id, "[]")]);
                    gate::authorize(&p.grants, &[check], ())?.into_inner();
                }
                Err(crate::store::StoreError::missing(crate::store::Entity::Command, id).into())
            }
        }
    }

    /// The decisions a request needs, from what the gate read.
    async fn checks(&self, p: &Principal, action: Action, named: &Named) -> R<Vec<Check>> {
        let act = action.policy_name();
        let one = |resources: Vec<Resource>| vec![Check::new(act, resources)];
        Ok(match named {
            Named::Nothing => one(Vec::new()),
            Named::List(None) => {
                // A filtered list: allowed items only, but a caller that
                // nothing could ever allow gets told so.
                if !p.grants.may_ever(act) {
                    return Err(gate::Denied {
                        action: act,
                        resource: "*".into(),
                        decision: format!("no statement allows {act}"),
                    }
                    .into());
                }
                Vec::new()
            }
            Named::One(None) => one(Vec::new()),
            Named::One(Some(id)) | Named::ModifyCommand { id, .. }
                if matches!(action.rule(), Rule::Command | Rule::ModifyCommand) =>
            {
                let cmd = self.gate.command_resource(id).await?;
                let mut checks = one(vec![cmd.clone()]);
                // A preview of a stored command shows its content.
                if action == Action::PreviewReplacedCommandContent {
                    checks.push(Check::new(
                        crate::policy::DESCRIBE_COMMAND_CONTENT,
                        vec![cmd],
                    ));
                }
                if let Named::ModifyCommand { id, content } = named {
                    checks.extend(self.modify_command_checks(id, content.as_deref()).await?);
                }
                checks
            }
            Named::ModifyCommand { .. } => Vec::new(),
            Named::One(Some(id)) => match action.rule() {
                Rule::Task => self
                    .task_groups(std::slice::from_ref(id))
                    .await?
                    .into_iter()
                    .map(|g| Check::new(act, g))
                    .collect(),
                Rule::Instance => one(self
                    .gate
                    .instance_resources(std::slice::from_ref(id))
                    .await?),
                Rule::Invoker => one(vec![self.gate.invoker_resource(id).await?]),
                Rule::Secret => one(vec![self.gate.secret(id)]),
                // The denial names no instance: it would tell a caller
                // where a session it may not see took place.
                Rule::Session => vec![Check {
                    action: act,
                    resources: self.session_instance(id).await?,
                    hide_resource: true,
                    start_of: None,
                }],
                _ => one(Vec::new()),
            },
            Named::List(Some(ids)) => {
                let groups = match action.rule() {
                    Rule::Commands | Rule::CommandList => {
                        let mut g = Vec::new();
                        for id in ids {
                            g.push(vec![self.gate.command_resource(id).await?]);
                        }
                        g
                    }
                    Rule::InvocationList => self.invocation_groups(ids).await?,
                    Rule::TaskList => self.task_groups(ids).await?,
                    Rule::InstanceList => self
                        .gate
                        .instance_resources(ids)
                        .await?
                        .into_iter()
                        .map(|r| vec![r])
                        .collect(),
                    Rule::InvokerList => {
                        let mut g = Vec::new();
                        for id in ids {
                            g.push(vec![self.gate.invoker_resource(id).await?]);
                        }
                        g
                    }
                    Rule::SecretList => ids.iter().map(|n| vec![self.gate.secret(n)]).collect(),
                    _ => Vec::new(),
                };
                groups.into_iter().map(|g| Check::new(act, g)).collect()
            }
            Named::Invocation { id, instances } => {
                let inv = id.clone();
                let found = self
                    .store
                    .read(move |c| {
                        let Ok(i) = invocations::get(c, &inv) else {
                            return Ok(None);
                        };
                        let t = invocations::tasks_of(c, std::slice::from_ref(&i.id))?;
                        Ok(Some((
                            i.command_id,
                            t.into_iter().map(|t| t.instance_id).collect::<Vec<_>>(),
                        )))
                    })
                    .await?;
                let (cmd, mut insts) = found.unwrap_or_else(|| (unknown_id("cmd"), Vec::new()));
                if let Some(only) = instances {
                    insts.retain(|i| only.contains(i));
                }
                let mut g = vec![self.gate.command_resource(&cmd).await?];
                g.extend(self.gate.instance_resources(&insts).await?);
                one(g)
            }
            Named::Deliveries {
                invocation,
                invoker,
            } => {
                // An invocation's deliveries are read as the invocation is
                // (by its command); an invoker's as the invoker.
                if let Some(inv) = invocation.clone() {
                    let cmd = self
                        .store
                        .read(move |c| Ok(invocations::get(c, &inv).ok().map(|i| i.command_id)))
                        .await?
                        .unwrap_or_else(|| unknown_id("cmd"));
                    one(vec![self.gate.command_resource(&cmd).await?])
                } else if let Some(id) = invoker {
                    one(vec![self.gate.invoker_resource(id).await?])
                } else {
                    one(Vec::new())
                }
            }
            // Decided while it was read (read_run).
            Named::Run(_) => Vec::new(),
            Named::Cam(scope) => scope
                .resources()
                .into_iter()
                .map(|g| Check::new(act, g))
                .collect(),
            Named::NewInvoker {
                command_id,
                ids,
                selector,
            } => {
                let cmd = self.stored_command(command_id).await?;
                self.run_checks(act, command_id, cmd, ids.clone(), selector.as_ref())
                    .await?
            }
            Named::ChangeInvoker {
                id,
                command_id,
                ids,
                selector,
            } => {
                let mut checks = one(vec![self.gate.invoker_resource(id).await?]);
                let lookup = id.clone();
                let stored = self
                    .store
                    .read(move |c| Ok(invokers::get(c, &lookup).ok()))
                    .await?;
                // The command and instances it will run: the new ones
                // when the request changes them, else the stored ones.
                let cmd_id = command_id
                    .clone()
                    .or_else(|| stored.as_ref().map(|i| i.command_id.clone()));
                let (ids, selector) = match (ids, selector, &stored) {
                    (None, None, Some(s)) => (
                        s.instance_ids.clone(),
                        s.targets
                            .as_deref()
                            .and_then(|t| Selector::from_json(t).ok()),
                    ),
                    (ids, sel, _) => (ids.clone().unwrap_or_default(), sel.clone()),
                };
                if let Some(cmd_id) = cmd_id {
                    let cmd = self.stored_command(&cmd_id).await?;
                    let run = self
                        .run_checks(act, &cmd_id, cmd, ids, selector.as_ref())
                        .await?;
                    checks.extend(run);
                }
                checks
            }
        })
    }

    async fn stored_command(&self, id: &str) -> R<Option<commands::Command>> {
        let lookup = id.to_string();
        Ok(self
            .store
            .read(move |c| Ok(commands::get(c, &lookup).ok()))
            .await?)
    }

    /// `act` on a command and the instances it will run on (a selector:
    /// every instance it matches now), and tat:UseSecret on each secret
    /// its content names with those instances.
    async fn run_checks(
        &self,
        act: &'static str,
        command_id: &str,
        cmd: Option<commands::Command>,
        ids: Vec<String>,
        selector: Option<&Selector>,
    ) -> R<Vec<Check>> {
        let (insts, hide) = match selector {
            Some(s) => (self.matching_instances(s).await?, true),
            None => (self.gate.instance_resources(&ids).await?, false),
        };
        let cmd_res = match &cmd {
            Some(c) => self.gate.command_res(&c.id, &c.tags),
            None => self.gate.command_res(command_id, "[]"),
        };
        let mut main = vec![cmd_res];
        main.extend(insts.iter().cloned());
        let mut checks = vec![Check {
            action: act,
            resources: main,
            hide_resource: hide,
            start_of: None,
        }];
        let refs = cmd
            .and_then(|c| run::params::decode_content(&c.content).ok())
            .map(|c| run::params::secret_refs(&c))
            .unwrap_or_default();
        for name in refs {
            let mut g = vec![self.gate.secret(&name)];
            g.extend(insts.iter().cloned());
            checks.push(Check {
                action: USE_SECRET,
                resources: g,
                hide_resource: hide,
                start_of: None,
            });
        }
        Ok(checks)
    }

    /// ModifyCommand of a command that invokers fire: the editor decides
    /// what those invokers will run, so it needs the right to run the
    /// command on their instances (tat:InvokeCommand), and tat:UseSecret
    /// there for each secret the new content names.
    async fn modify_command_checks(&self, id: &str, content: Option<&str>) -> R<Vec<Check>> {
        let query = invokers::InvokerQuery {
            command_ids: vec![id.to_string()],
            ..Default::default()
        };
        let all = crate::store::query::Page {
            offset: 0,
            limit: super::authz::FILTER_SCAN,
        };
        let firing = self
            .store
            .read(move |c| invokers::list(c, &query, all))
            .await?
            .1;
        if firing.is_empty() {
            return Ok(Vec::new());
        }
        let mut insts: Vec<Resource> = Vec::new();
        for i in firing {
            let found = match i.targets.as_deref().map(Selector::from_json) {
                Some(Ok(sel)) => self.matching_instances(&sel).await?,
                _ => self.gate.instance_resources(&i.instance_ids).await?,
            };
            for r in found {
                if !insts.iter().any(|x| x.name == r.name) {
                    insts.push(r);
                }
            }
        }
        let mut main = vec![self.gate.command_resource(id).await?];
        main.extend(insts.iter().cloned());
        let mut checks = vec![Check {
            action: Action::InvokeCommand.policy_name(),
            resources: main,
            hide_resource: true,
            start_of: None,
        }];
        let refs = content
            .and_then(|c| run::params::decode_content(c).ok())
            .map(|c| run::params::secret_refs(&c))
            .unwrap_or_default();
        for name in refs {
            let mut g = vec![self.gate.secret(&name)];
            g.extend(insts.iter().cloned());
            checks.push(Check {
                action: USE_SECRET,
                resources: g,
                hide_resource: true,
                start_of: None,
            });
        }
        Ok(checks)
    }

    /// Every instance a selector matches now, whatever it can run.
    async fn matching_instances(&self, selector: &Selector) -> R<Vec<Resource>> {
        let all = self
            .store
            .read(crate::store::instances::all_instances)
            .await?;
        Ok(selector
            .select(&all)
            .into_iter()
            .map(|i| self.gate.instance_res(&i.id, &i.tags))
            .collect())
    }

    /// The instance a session was on, with its tags. An unknown session
    /// is decided as an unknown instance, so a restricted caller cannot
    /// tell it from one it may not read.
    async fn session_instance(&self, id: &str) -> R<Vec<Resource>> {
        let lookup = id.to_string();
        let inst = self
            .store
            .read(move |c| Ok(crate::store::recordings::get(c, &lookup)?.map(|s| s.instance_id)))
            .await?
            .unwrap_or_else(|| unknown_id("mi"));
        Ok(self.gate.instance_resources(&[inst]).await?)
    }

    /// One group per invocation: its command. An id that does not exist
    /// is decided as an unknown command, so a restricted caller cannot
    /// tell it from one it may not read.
    async fn invocation_groups(&self, ids: &[String]) -> R<Vec<Vec<Resource>>> {
        let list = ids.to_vec();
        let cmds = self
            .store
            .read(move |c| {
                Ok(list
                    .iter()
                    .map(|i| invocations::get(c, i).ok().map(|i| i.command_id))
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut groups = Vec::new();
        for id in cmds {
            let id = id.unwrap_or_else(|| unknown_id("cmd"));
            groups.push(vec![self.gate.command_resource(&id).await?]);
        }
        Ok(groups)
    }

    /// One group per task: its command and instance (unknown ones as above).
    async fn task_groups(&self, task_ids: &[String]) -> R<Vec<Vec<Resource>>> {
        let list = task_ids.to_vec();
        let pairs = self
            .store
            .read(move |c| {
                Ok(list
                    .iter()
                    .map(|t| {
                        invocations::get_task(c, t)
                            .ok()
                            .map(|t| (t.command_id, t.instance_id))
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut groups = Vec::new();
        for pair in pairs {
            let g = match pair {
                Some((cmd, inst)) => {
                    let mut g = vec![self.gate.command_resource(&cmd).await?];
                    g.extend(self.gate.instance_resources(&[inst]).await?);
                    g
                }
                None => vec![Resource {
                    name: self.gate.qcs(ResourceKind::Command, &unknown_id("cmd")),
                    tags: Vec::new(),
                }],
            };
            groups.push(g);
        }
        Ok(groups)
    }
}

/// The TAT actions whose `Tags` tag what they create or change.
fn takes_tags(action: Action) -> bool {
    matches!(
        action,
        Action::CreateCommand
            | Action::RunCommand
            | Action::CreateInvoker
            | Action::CreateRegisterCode
            | Action::ModifyInstanceTags
    )
}

/// A fresh id that names nothing: what a missing resource is decided as,
/// so only a policy that allows every such resource lets the caller learn
/// that it is missing.
fn unknown_id(prefix: &str) -> String {
    crate::ids::new_id(prefix)
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        ApiError::new(
            Code::AuthFailureUnauthorizedOperation,
            format!(
                "you are not authorized to perform {} on {}",
                d.action, d.resource
            ),
        )
    }
}
