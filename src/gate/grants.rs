//! What applies to one caller: the CAM policies attached to it (directly
//! and through its groups) and its Azure role assignments, each compiled
//! once per document text and cached.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::policy::{
    self, AzureRole, CompiledPolicy, Context, Decision, Reason, Resource, ResourceKind,
};
use crate::store::policies::{PolicyInput, RoleAssignment};

/// What applies to one caller for one request.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    root: bool,
    /// CAM policies (documents and presets).
    policies: Vec<Arc<CompiledPolicy>>,
    /// Azure role assignments, compiled into policies.
    roles: Vec<Arc<CompiledPolicy>>,
    context: Context,
}

fn allow_all() -> Decision {
    Decision {
        allowed: true,
        reason: Reason::Allowed,
        deciding: Vec::new(),
        denied_resource: None,
    }
}

impl Grants {
    pub fn root() -> Grants {
        Grants {
            root: true,
            ..Default::default()
        }
    }

    fn eval<'a>(
        &self,
        sets: impl Iterator<Item = &'a Arc<CompiledPolicy>>,
        action: &str,
        resources: &[Resource],
    ) -> Decision {
        let refs: Vec<&CompiledPolicy> = sets.map(|p| p.as_ref()).collect();
        policy::evaluate(
            &policy::Request {
                action,
                resources,
                context: &self.context,
            },
            &refs,
        )
    }

    pub fn decide(&self, action: &str, resources: &[Resource]) -> Decision {
        if self.root {
            return allow_all();
        }
        self.eval(
            self.policies.iter().chain(self.roles.iter()),
            action,
            resources,
        )
    }

    /// Starting a stored command. Azure controls individual runbooks by
    /// combining Automation Job Operator (start any job) at account scope
    /// with Automation Runbook Operator (read one runbook) at the runbook's
    /// scope: what roles grant, they grant only on commands the roles also
    /// let the caller read (`tat:DescribeCommands`, runbooks/read). CAM
    /// policies keep TAT's model, where `tat:InvokeCommand` suffices.
    pub fn decide_start(
        &self,
        action: &str,
        resources: &[Resource],
        command: &Resource,
    ) -> Decision {
        let all = self.decide(action, resources);
        if self.root || !all.allowed || self.roles.is_empty() {
            return all;
        }
        let by_policies = self.eval(self.policies.iter(), action, resources);
        if by_policies.allowed {
            return by_policies;
        }
        let read = self.eval(
            self.roles.iter(),
            crate::policy::Action::DescribeCommands.policy_name(),
            std::slice::from_ref(command),
        );
        if read.allowed {
            all
        } else {
            Decision {
                allowed: false,
                reason: read.reason,
                deciding: read.deciding,
                denied_resource: Some(command.name.clone()),
            }
        }
    }

    pub fn allows(&self, action: &str, resources: &[Resource]) -> bool {
        self.root || self.decide(action, resources).allowed
    }

    /// Whether anything at all could allow `action` (on some resource):
    /// a list action with nothing that could allow it is refused outright.
    pub fn may_ever(&self, action: &str) -> bool {
        if self.root {
            return true;
        }
        self.policies
            .iter()
            .chain(self.roles.iter())
            .any(|p| p.may_allow(action))
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The account a session would log in as (`tat:login_user`).
    pub fn set_login_user(&mut self, user: &str) {
        self.context.login_user = Some(user.to_string());
    }

    /// Where a port forward would connect (`tat:forward_host`,
    /// `tat:forward_port`).
    pub fn set_forward(&mut self, host: &str, port: u16) {
        self.context.forward_host = Some(host.to_string());
        self.context.forward_port = Some(port.to_string());
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

    /// The grants of a sub-user whose policy inputs are these.
    pub(super) fn compile(
        &self,
        gate: &super::Gate,
        uin: &str,
        docs: Vec<PolicyInput>,
        roles: Vec<RoleAssignment>,
        ip: Option<IpAddr>,
    ) -> Grants {
        let mut policies = Vec::with_capacity(docs.len());
        for (id, name, text) in docs {
            // A document with policy variables (${uin}) is compiled per caller.
            let (key, text) = match policy::variables::for_caller(&text, uin, &gate.account_uin) {
                Some(filled) => (format!("policy/{id}/{uin}"), filled),
                None => (format!("policy/{id}"), text),
            };
            policies.push(self.get(&key, &text, || {
                let empty = || policy::Document {
                    version: "2.0".into(),
                    statements: Vec::new(),
                };
                // A stored document that no longer parses grants nothing.
                let doc = policy::parse_document(&text).unwrap_or_else(|_| empty());
                CompiledPolicy::compile(id.to_string(), name.clone(), &doc)
            }));
        }
        let mut compiled_roles = Vec::with_capacity(roles.len());
        for r in roles {
            let Some(role) = AzureRole::from_name(&r.role_name) else {
                continue;
            };
            let scope = if r.scope == "account" {
                policy::Scope::Account
            } else {
                policy::Scope::Command(gate.qcs(ResourceKind::Command, &r.scope))
            };
            let key = format!("role/{}/{}", role.name(), scope);
            compiled_roles.push(self.get(&key, &key, || policy::compile_role(role, &scope)));
        }
        Grants {
            root: false,
            policies,
            roles: compiled_roles,
            context: Context {
                source_ip: ip,
                request_tags: Vec::new(),
                login_user: None,
                forward_host: None,
                forward_port: None,
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{compile_role, Scope};

    const R: &str = "ap-guangzhou";
    const U: &str = "100000000001";

    fn res(kind: ResourceKind, id: &str) -> Resource {
        Resource {
            name: kind.qcs(R, U, id),
            tags: Vec::new(),
        }
    }

    fn with_roles(roles: &[(AzureRole, Option<&str>)]) -> Grants {
        Grants {
            root: false,
            policies: Vec::new(),
            roles: roles
                .iter()
                .map(|(r, at)| {
                    let scope = match at {
                        None => Scope::Account,
                        Some(c) => Scope::Command(ResourceKind::Command.qcs(R, U, c)),
                    };
                    Arc::new(compile_role(*r, &scope))
                })
                .collect(),
            context: Context::default(),
        }
    }

    fn starts(g: &Grants, cmd: &str) -> bool {
        let c = res(ResourceKind::Command, cmd);
        let all = [c.clone(), res(ResourceKind::ManagedInstance, "mi-1")];
        g.decide_start("tat:InvokeCommand", &all, &c).allowed
    }

    /// The seed's individual-runbook control: Job Operator at the account
    /// plus Runbook Operator on one runbook starts that runbook only; Job
    /// Operator alone starts none; the account-wide Automation Operator
    /// starts all.
    #[test]
    fn starting_a_command_by_role_needs_reading_it() {
        use AzureRole::*;
        let combo = with_roles(&[
            (AutomationJobOperator, None),
            (AutomationRunbookOperator, Some("cmd-x")),
        ]);
        assert!(starts(&combo, "cmd-x"));
        assert!(!starts(&combo, "cmd-y"));
        let job_only = with_roles(&[(AutomationJobOperator, None)]);
        assert!(!starts(&job_only, "cmd-x"));
        let operator = with_roles(&[(AutomationOperator, None)]);
        assert!(starts(&operator, "cmd-x") && starts(&operator, "cmd-y"));
        let at_x = with_roles(&[(AutomationOperator, Some("cmd-x"))]);
        assert!(starts(&at_x, "cmd-x") && !starts(&at_x, "cmd-y"));
        let runbook_only = with_roles(&[(AutomationRunbookOperator, Some("cmd-x"))]);
        assert!(!starts(&runbook_only, "cmd-x"));
        // The denial names the command whose read was missing.
        let c = res(ResourceKind::Command, "cmd-y");
        let d = combo.decide_start("tat:InvokeCommand", std::slice::from_ref(&c), &c);
        assert_eq!(d.denied_resource.as_deref(), Some(c.name.as_str()));
    }
}
