//! Authorization: one decision point in front of every action. A request's
//! principal gets its `Grants` (compiled policies and role assignments,
//! compiled once per document and cached); the action's resources are
//! resolved from the request; the policy engine decides. List actions that
//! name no ids are filtered item by item instead, so a caller only ever sees
//! what it may read. The account (root) is never restricted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::policy::{
    self, AzureRole, CompiledPolicy, Context, Decision, Reason, Resource, ResourceKind,
};
use crate::store::{commands, instances, invocations};

use super::error::ApiError;
use super::request::Params;
use super::targets::{self, Selector};
use super::Api;

/// What applies to one caller for one request.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    root: bool,
    policies: Vec<Arc<CompiledPolicy>>,
    context: Context,
}

impl Grants {
    pub fn root() -> Grants {
        Grants {
            root: true,
            ..Default::default()
        }
    }

    pub fn decide(&self, action: &str, resources: &[Resource]) -> Decision {
        if self.root {
            return Decision {
                allowed: true,
                reason: Reason::Allowed,
                deciding: Vec::new(),
                denied_resource: None,
            };
        }
        let refs: Vec<&CompiledPolicy> = self.policies.iter().map(|p| p.as_ref()).collect();
        policy::evaluate(
            &policy::Request {
                action,
                resources,
                context: &self.context,
            },
            &refs,
        )
    }

    pub fn allows(&self, action: &str, resources: &[Resource]) -> bool {
        self.root || self.decide(action, resources).allowed
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The tags the request sets on what it creates (`qcs:request_tag`).
    pub fn set_request_tags(&mut self, tags: Vec<(String, String)>) {
        self.context.request_tags = tags;
    }
}

/// Compiled documents by policy id, recompiled only when the text changes.
#[derive(Default)]
pub struct PolicyCache {
    compiled: Mutex<HashMap<String, (String, Arc<CompiledPolicy>)>>,
}

impl PolicyCache {
    fn get(
        &self,
        id: &str,
        text: &str,
        compile: impl FnOnce() -> CompiledPolicy,
    ) -> Arc<CompiledPolicy> {
        if let Ok(m) = self.compiled.lock() {
            if let Some((t, c)) = m.get(id) {
                if t == text {
                    return c.clone();
                }
            }
        }
        let c = Arc::new(compile());
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(id.to_string(), (text.to_string(), c.clone()));
        }
        c
    }
}

impl Api {
    fn qcs(&self, kind: ResourceKind, id: &str) -> String {
        kind.qcs(&self.region, &self.account_uin, id)
    }

    /// Loads and compiles what applies to `p`.
    pub(crate) async fn grants(
        &self,
        p: &super::Principal,
        ip: Option<IpAddr>,
    ) -> Result<Grants, ApiError> {
        if p.is_root() {
            return Ok(Grants::root());
        }
        let who = p.clone();
        let (docs, roles) = self
            .store
            .read(move |c| super::load_policy_inputs(c, &who))
            .await?;
        let mut policies = Vec::with_capacity(docs.len() + roles.len());
        for (id, name, text) in docs {
            // A document with policy variables is compiled per caller.
            let (key, text) = match policy::variables::for_caller(&text, &p.uin, &self.account_uin)
            {
                Some(filled) => (format!("policy/{id}/{}", p.uin), filled),
                None => (format!("policy/{id}"), text),
            };
            policies.push(self.policy_cache.get(&key, &text, || {
                let empty = || policy::Document {
                    version: "2.0".into(),
                    statements: Vec::new(),
                };
                // A stored document that no longer parses grants nothing.
                let doc = policy::parse_document(&text).unwrap_or_else(|_| empty());
                CompiledPolicy::compile(id.to_string(), name.clone(), &doc)
            }));
        }
        for r in roles {
            let Some(role) = AzureRole::from_name(&r.role_name) else {
                continue;
            };
            let scope = if r.scope == "account" {
                policy::Scope::Account
            } else {
                policy::Scope::Command(self.qcs(ResourceKind::Command, &r.scope))
            };
            let key = format!("role/{}/{}", role.name(), scope);
            policies.push(
                self.policy_cache
                    .get(&key, &key, || policy::compile_role(role, &scope)),
            );
        }
        Ok(Grants {
            root: false,
            policies,
            context: Context {
                source_ip: ip,
                request_tags: Vec::new(),
            },
        })
    }

    /// A secret, named as `qcs::tat:REGION:uin/UIN:secret/NAME` (secrets
    /// carry no tags).
    pub(crate) fn secret(&self, name: &str) -> Resource {
        Resource {
            name: self.qcs(ResourceKind::Secret, name),
            tags: Vec::new(),
        }
    }

    pub(crate) async fn command_resource(&self, id: &str) -> Result<Resource, ApiError> {
        let lookup = id.to_string();
        let tags = self
            .store
            .read(move |c| {
                Ok(commands::get(c, &lookup)
                    .map(|cmd| cmd.tags)
                    .unwrap_or_else(|_| "[]".into()))
            })
            .await?;
        Ok(Resource {
            name: self.qcs(ResourceKind::Command, id),
            tags: parse_tags(&tags),
        })
    }

    pub(crate) async fn invoker_resource(&self, id: &str) -> Result<Resource, ApiError> {
        let lookup = id.to_string();
        let tags = self
            .store
            .read(move |c| {
                Ok(crate::store::invokers::get(c, &lookup)
                    .map(|i| i.tags)
                    .unwrap_or_else(|_| "[]".into()))
            })
            .await?;
        Ok(Resource {
            name: self.qcs(ResourceKind::Invoker, id),
            tags: parse_tags(&tags),
        })
    }

    pub(crate) async fn instance_resources(
        &self,
        ids: &[String],
    ) -> Result<Vec<Resource>, ApiError> {
        let lookup = ids.to_vec();
        let tags = self
            .store
            .read(move |c| {
                Ok(lookup
                    .iter()
                    .map(|i| {
                        instances::get_instance(c, i)
                            .map(|x| x.tags)
                            .unwrap_or_else(|_| "[]".into())
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(ids
            .iter()
            .zip(tags)
            .map(|(id, t)| Resource {
                name: self.qcs(ResourceKind::ManagedInstance, id),
                tags: parse_tags(&t),
            })
            .collect())
    }

    /// The resource groups a request names; each group is decided on its
    /// own and all must be allowed. None: a list to filter item by item.
    pub(crate) async fn named_resources(
        &self,
        action: &str,
        q: &Params,
    ) -> Result<Option<Vec<Vec<Resource>>>, ApiError> {
        let ids = |name: &str| q.peek_list(name);
        let one = |name: &str| q.peek_str(name);
        let mut group = Vec::new();
        match action {
            "DescribeCommands" | "DeleteCommands" => {
                let list = ids("CommandIds");
                if list.is_empty() && action == "DescribeCommands" {
                    return Ok(None);
                }
                let mut groups = Vec::new();
                for id in list {
                    groups.push(vec![self.command_resource(&id).await?]);
                }
                return Ok(Some(groups));
            }
            "DescribeInvocations" => {
                let list = ids("InvocationIds");
                if list.is_empty() {
                    return Ok(None);
                }
                let cmds = self
                    .store
                    .read(move |c| {
                        Ok(list
                            .iter()
                            .filter_map(|i| invocations::get(c, i).ok())
                            .map(|i| i.command_id)
                            .collect::<Vec<_>>())
                    })
                    .await?;
                let mut groups = Vec::new();
                for id in cmds {
                    groups.push(vec![self.command_resource(&id).await?]);
                }
                return Ok(Some(groups));
            }
            "DescribeInvocationTasks" => {
                let list = ids("InvocationTaskIds");
                if list.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.task_groups(list).await?));
            }
            "DescribeInvocationTaskOutput" => {
                return Ok(Some(
                    self.task_groups(one("InvocationTaskId").into_iter().collect())
                        .await?,
                ));
            }
            "DescribeAutomationAgentStatus" | "DescribeRegisterInstances" => {
                let list = ids("InstanceIds");
                if list.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(
                    self.instance_resources(&list)
                        .await?
                        .into_iter()
                        .map(|r| vec![r])
                        .collect(),
                ));
            }
            "RunCommand" => {
                // The command RunCommand creates has no id yet; a fresh one
                // stands for it, which only a wildcard resource can match.
                group.push(Resource {
                    name: self.qcs(ResourceKind::Command, &crate::ids::new_id("cmd")),
                    tags: q.peek_tags(),
                });
                let insts = self.reached_instances(q).await?;
                group.extend(self.instance_resources(&insts).await?);
            }
            "InvokeCommand" => {
                if let Some(id) = one("CommandId") {
                    group.push(self.command_resource(&id).await?);
                }
                let insts = self.reached_instances(q).await?;
                group.extend(self.instance_resources(&insts).await?);
            }
            "CancelInvocation" | "SuspendInvocation" | "ResumeInvocation" => {
                if let Some(inv) = one("InvocationId") {
                    let (cmd, mut insts) = self
                        .store
                        .read(move |c| {
                            let i = invocations::get(c, &inv)?;
                            let t = invocations::tasks_of(c, std::slice::from_ref(&i.id))?;
                            Ok((
                                i.command_id,
                                t.into_iter().map(|t| t.instance_id).collect::<Vec<_>>(),
                            ))
                        })
                        .await
                        .unwrap_or_default();
                    let only = ids("InstanceIds");
                    if !only.is_empty() {
                        insts.retain(|i| only.contains(i));
                    }
                    if !cmd.is_empty() {
                        group.push(self.command_resource(&cmd).await?);
                    }
                    group.extend(self.instance_resources(&insts).await?);
                }
            }
            "DescribeInvokers" | "DescribeInvokerRecords" => {
                let list = ids("InvokerIds");
                if list.is_empty() {
                    return Ok(None);
                }
                let mut groups = Vec::new();
                for id in list {
                    groups.push(vec![self.invoker_resource(&id).await?]);
                }
                return Ok(Some(groups));
            }
            "CreateInvoker" => {
                if let Some(id) = one("CommandId") {
                    group.push(self.command_resource(&id).await?);
                }
                let insts = self.reached_instances(q).await?;
                group.extend(self.instance_resources(&insts).await?);
            }
            "ModifyInvoker" => {
                if let Some(id) = one("InvokerId") {
                    group.push(self.invoker_resource(&id).await?);
                    // The command and instances it will run: the new ones
                    // when the request changes them, else the stored ones.
                    let stored = self
                        .store
                        .read(move |c| Ok(crate::store::invokers::get(c, &id).ok()))
                        .await?;
                    let cmd = one("CommandId").or(stored.as_ref().map(|i| i.command_id.clone()));
                    if let Some(cmd) = cmd {
                        group.push(self.command_resource(&cmd).await?);
                    }
                    let mut insts = self.reached_instances(q).await?;
                    let given = q.peek_value("Targets").is_some() || !ids("InstanceIds").is_empty();
                    if !given {
                        if let Some(i) = stored {
                            insts = self.invoker_instances(i).await?;
                        }
                    }
                    group.extend(self.instance_resources(&insts).await?);
                }
            }
            "DescribeWebhookDeliveries" => {
                // An invocation's deliveries are read as the invocation is
                // (by its command); an invoker's as the invoker.
                if let Some(inv) = one("InvocationId") {
                    let cmd = self
                        .store
                        .read(move |c| Ok(invocations::get(c, &inv).ok().map(|i| i.command_id)))
                        .await?;
                    if let Some(cmd) = cmd {
                        group.push(self.command_resource(&cmd).await?);
                    }
                } else if let Some(id) = one("InvokerId") {
                    group.push(self.invoker_resource(&id).await?);
                }
            }
            "DeleteInvoker" | "EnableInvoker" | "DisableInvoker" => {
                if let Some(id) = one("InvokerId") {
                    group.push(self.invoker_resource(&id).await?);
                }
            }
            "DeleteCommand" | "ModifyCommand" | "PreviewReplacedCommandContent" => {
                if let Some(id) = one("CommandId") {
                    group.push(self.command_resource(&id).await?);
                }
            }
            "DescribeSecrets" => {
                let list = ids("SecretNames");
                if list.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(list.iter().map(|n| vec![self.secret(n)]).collect()));
            }
            "CreateSecret" | "ModifySecret" | "DeleteSecret" => {
                if let Some(n) = one("SecretName") {
                    group.push(self.secret(&n));
                }
            }
            "ModifyRegisterInstance" | "DeleteRegisterInstance" | "ModifyInstanceTags" => {
                if let Some(id) = one("InstanceId") {
                    group.extend(self.instance_resources(&[id]).await?);
                }
            }
            _ => {}
        }
        Ok(Some(vec![group]))
    }

    /// The instances a run request reaches: its InstanceIds, or every
    /// instance its Targets match now. A selector must not be a way around
    /// an instance the caller is denied on, so all matches are named (also
    /// those that the command type would skip).
    pub(crate) async fn reached_instances(&self, q: &Params) -> Result<Vec<String>, ApiError> {
        match targets::peek_selector(q) {
            Some(sel) => targets::matching_ids(self, &sel).await,
            None => Ok(q.peek_list("InstanceIds")),
        }
    }

    /// The instances a stored invoker reaches now: those its Targets
    /// match, or its listed ones.
    pub(crate) async fn invoker_instances(
        &self,
        i: crate::store::invokers::Invoker,
    ) -> Result<Vec<String>, ApiError> {
        match i.targets.as_deref().map(Selector::from_json) {
            Some(Ok(sel)) => targets::matching_ids(self, &sel).await,
            _ => Ok(i.instance_ids),
        }
    }

    async fn task_groups(&self, task_ids: Vec<String>) -> Result<Vec<Vec<Resource>>, ApiError> {
        let pairs = self
            .store
            .read(move |c| {
                Ok(task_ids
                    .iter()
                    .filter_map(|t| invocations::get_task(c, t).ok())
                    .map(|t| (t.command_id, t.instance_id))
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut groups = Vec::new();
        for (cmd, inst) in pairs {
            let mut g = vec![self.command_resource(&cmd).await?];
            g.extend(self.instance_resources(&[inst]).await?);
            groups.push(g);
        }
        Ok(groups)
    }
}

pub fn parse_tags(json: &str) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Tag {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Value", default)]
        value: String,
    }
    serde_json::from_str::<Vec<Tag>>(json)
        .map(|v| v.into_iter().map(|t| (t.key, t.value)).collect())
        .unwrap_or_default()
}

/// The error a denied caller gets: it names the action and the resource
/// denied, and nothing about anyone else's data.
pub fn denied(action: &str, d: &Decision) -> ApiError {
    let what = d.denied_resource.as_deref().unwrap_or("*");
    ApiError::new(
        "AuthFailure.UnauthorizedOperation",
        format!("you are not authorized to perform {action} on {what}"),
    )
}

/// Largest number of rows a filtered list considers for one caller.
pub const FILTER_SCAN: i64 = 100_000;

/// Decides item visibility for list actions, usable inside store closures.
#[derive(Clone)]
pub struct Visibility {
    grants: Arc<Grants>,
    region: String,
    uin: String,
}

impl Visibility {
    pub fn all(&self) -> bool {
        self.grants.is_root()
    }

    /// The page to read from the store: everything when rows will be filtered.
    pub fn fetch(&self, page: crate::store::query::Page) -> crate::store::query::Page {
        if self.all() {
            page
        } else {
            crate::store::query::Page {
                offset: 0,
                limit: FILTER_SCAN,
            }
        }
    }

    pub fn command(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::Command.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    pub fn invoker(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::Invoker.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    pub fn secret(&self, name: &str) -> Resource {
        Resource {
            name: ResourceKind::Secret.qcs(&self.region, &self.uin, name),
            tags: Vec::new(),
        }
    }

    pub fn instance(&self, id: &str, tags_json: &str) -> Resource {
        Resource {
            name: ResourceKind::ManagedInstance.qcs(&self.region, &self.uin, id),
            tags: parse_tags(tags_json),
        }
    }

    /// Whether the caller may read the script of `command_id` (looked up
    /// for its tags only when the caller is restricted).
    pub fn sees_content(&self, conn: &rusqlite::Connection, command_id: &str) -> bool {
        if self.all() {
            return true;
        }
        let tags = commands::get(conn, command_id)
            .map(|c| c.tags)
            .unwrap_or_default();
        self.sees(
            policy::DESCRIBE_COMMAND_CONTENT,
            &[self.command(command_id, &tags)],
        )
    }

    pub fn sees(&self, action: &str, resources: &[Resource]) -> bool {
        self.grants.allows(action, resources)
    }

    /// Keeps the visible rows and cuts the requested page from them; the
    /// total counts only what the caller may see.
    pub fn page<T>(
        &self,
        total: i64,
        rows: Vec<T>,
        page: crate::store::query::Page,
        keep: impl Fn(&T) -> bool,
    ) -> (i64, Vec<T>) {
        if self.all() {
            return (total, rows);
        }
        let visible: Vec<T> = rows.into_iter().filter(|r| keep(r)).collect();
        let total = visible.len() as i64;
        let rows = visible
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .collect();
        (total, rows)
    }
}

impl Api {
    pub(crate) fn visibility(&self, p: &super::Principal) -> Visibility {
        Visibility {
            grants: p.grants.clone(),
            region: self.region.clone(),
            uin: self.account_uin.clone(),
        }
    }
}
