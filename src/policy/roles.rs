//! Azure Automation's built-in roles as preset roles, and role assignments
//! compiled into ordinary policies so one evaluator decides for both models.
//!
//! Each role keeps its Azure Actions / NotActions; `azure_map` turns them into
//! drover actions. A role is assigned at the account scope (everything) or at
//! one command's scope (Azure's runbook scope): there it covers that command,
//! and instances only for actions that run that command on them (the command
//! must still be covered, so instance access alone grants nothing).

use std::fmt;

use super::actions::{action_info, Combine, ACTIONS};
use super::azure_map::AZURE_MAP;
use super::compile::CompiledPolicy;
use super::document::{Document, Effect, Statement};
use super::glob::Glob;
use super::resource::ResourceKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AzureRole {
    Owner,
    Contributor,
    Reader,
    AutomationOperator,
    AutomationJobOperator,
    AutomationRunbookOperator,
    UserAccessAdministrator,
    MonitoringReader,
}

/// A role's definition in Azure's terms.
#[derive(Debug)]
pub struct RoleDefinition {
    pub role: AzureRole,
    pub name: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
    pub not_actions: &'static [&'static str],
}

const AUTH_READ: &str = "Microsoft.Authorization/*/read";
const RG_READ: &str = "Microsoft.Resources/subscriptions/resourceGroups/read";
const DEPLOY: &str = "Microsoft.Resources/deployments/*";
const ALERTS: &str = "Microsoft.Insights/alertRules/*";
const SUPPORT: &str = "Microsoft.Support/*";

/// The built-in roles. Owner, Contributor and Reader use Azure's definitions
/// (`*`, `*`, `*/read`): the seed's tables print them truncated to
/// `Microsoft.Automation/automationAccounts/` and `.../read` while describing
/// "all resources". The others are copied from the seed's tables.
pub static ROLES: &[RoleDefinition] = &[
    RoleDefinition {
        role: AzureRole::Owner,
        name: "Owner",
        description: "Manage everything, including access",
        actions: &["*"],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::Contributor,
        name: "Contributor",
        description: "Manage everything except access",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
        ],
    },
    RoleDefinition {
        role: AzureRole::Reader,
        name: "Reader",
        description: "View all resources, change nothing",
        actions: &["*/read"],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::AutomationOperator,
        name: "Automation Operator",
        description: "Start, stop, suspend and resume jobs; read runbook names and properties",
        actions: &[
            AUTH_READ,
            "Microsoft.Automation/automationAccounts/hybridRunbookWorkerGroups/read",
            "Microsoft.Automation/automationAccounts/jobs/read",
            "Microsoft.Automation/automationAccounts/jobs/resume/action",
            "Microsoft.Automation/automationAccounts/jobs/stop/action",
            "Microsoft.Automation/automationAccounts/jobs/streams/read",
            "Microsoft.Automation/automationAccounts/jobs/output/read",
            "Microsoft.Automation/automationAccounts/jobs/suspend/action",
            "Microsoft.Automation/automationAccounts/jobs/write",
            "Microsoft.Automation/automationAccounts/jobSchedules/read",
            "Microsoft.Automation/automationAccounts/jobSchedules/write",
            "Microsoft.Automation/automationAccounts/linkedWorkspace/read",
            "Microsoft.Automation/automationAccounts/read",
            "Microsoft.Automation/automationAccounts/runbooks/read",
            "Microsoft.Automation/automationAccounts/schedules/read",
            "Microsoft.Automation/automationAccounts/schedules/write",
            RG_READ,
            DEPLOY,
            ALERTS,
            SUPPORT,
        ],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::AutomationJobOperator,
        name: "Automation Job Operator",
        description: "Create and manage jobs for all runbooks",
        actions: &[
            AUTH_READ,
            "Microsoft.Automation/automationAccounts/jobs/read",
            "Microsoft.Automation/automationAccounts/jobs/resume/action",
            "Microsoft.Automation/automationAccounts/jobs/stop/action",
            "Microsoft.Automation/automationAccounts/jobs/streams/read",
            "Microsoft.Automation/automationAccounts/jobs/suspend/action",
            "Microsoft.Automation/automationAccounts/jobs/write",
            RG_READ,
            DEPLOY,
            ALERTS,
            SUPPORT,
        ],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::AutomationRunbookOperator,
        name: "Automation Runbook Operator",
        description: "View a runbook's name and properties",
        actions: &[
            "Microsoft.Automation/automationAccounts/runbooks/read",
            AUTH_READ,
            RG_READ,
            DEPLOY,
            ALERTS,
            SUPPORT,
        ],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::UserAccessAdministrator,
        name: "User Access Administrator",
        description: "Manage user access",
        actions: &["*/read", "Microsoft.Authorization/*", SUPPORT],
        not_actions: &[],
    },
    RoleDefinition {
        role: AzureRole::MonitoringReader,
        name: "Monitoring Reader",
        description: "Read all monitoring data (audit events included)",
        actions: &[
            "*/read",
            "Microsoft.OperationalInsights/workspaces/search/action",
            SUPPORT,
        ],
        not_actions: &[],
    },
];

impl AzureRole {
    pub fn definition(self) -> &'static RoleDefinition {
        // ROLES holds every variant (a test checks), so the fallback is unused.
        ROLES.iter().find(|d| d.role == self).unwrap_or(&ROLES[0])
    }

    pub fn name(self) -> &'static str {
        self.definition().name
    }

    /// Looks a role up by name, ignoring case (`'Automation operator'`).
    pub fn from_name(name: &str) -> Option<AzureRole> {
        ROLES
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name.trim()))
            .map(|d| d.role)
    }

    /// The drover actions the role grants, in action-table order.
    pub fn actions(self) -> Vec<&'static str> {
        let def = self.definition();
        let allow: Vec<Glob> = def.actions.iter().map(|a| Glob::new(a, true)).collect();
        let deny: Vec<Glob> = def.not_actions.iter().map(|a| Glob::new(a, true)).collect();
        let granted =
            |op: &&str| allow.iter().any(|g| g.matches(op)) && !deny.iter().any(|g| g.matches(op));
        ACTIONS
            .iter()
            .filter(|a| {
                AZURE_MAP
                    .iter()
                    .find(|(d, _)| *d == a.name)
                    .is_some_and(|(_, ops)| ops.iter().all(&granted))
            })
            .map(|a| a.name)
            .collect()
    }
}

/// Where a role assignment applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole account (Azure: the Automation account).
    Account,
    /// One command, by qcs name (Azure: one runbook).
    Command(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Account => f.write_str("account"),
            Scope::Command(c) => f.write_str(c),
        }
    }
}

const INSTANCE_PATTERNS: [&str; 3] = [
    "qcs::cvm:::instance/*",
    "qcs::lighthouse:::instance/*",
    "qcs::tat:::instance/*",
];

/// The policy document equivalent to assigning `role` at `scope`.
pub fn role_document(role: AzureRole, scope: &Scope) -> Document {
    let actions: Vec<String> = role.actions().into_iter().map(str::to_string).collect();
    let allow = |actions: Vec<String>, resources: Vec<String>| Statement {
        effect: Effect::Allow,
        actions,
        resources,
        conditions: Vec::new(),
    };
    let statements = match scope {
        Scope::Account => vec![allow(actions, vec!["*".into()])],
        Scope::Command(cmd) => {
            let runs: Vec<String> = actions
                .iter()
                .filter(|a| {
                    action_info(a).is_some_and(|i| {
                        i.combine == Combine::All
                            && i.kinds.contains(&ResourceKind::Command)
                            && i.kinds.contains(&ResourceKind::ManagedInstance)
                    })
                })
                .cloned()
                .collect();
            let mut v = Vec::new();
            if !actions.is_empty() {
                v.push(allow(actions, vec![cmd.clone()]));
            }
            if !runs.is_empty() {
                v.push(allow(
                    runs,
                    INSTANCE_PATTERNS.iter().map(|s| s.to_string()).collect(),
                ));
            }
            v
        }
    };
    Document {
        version: "2.0".into(),
        statements,
    }
}

/// Compiles a role assignment into a policy for `evaluate`; its id is
/// `role/<Role Name>` and its name `<Role Name> @ <scope>`.
pub fn compile_role(role: AzureRole, scope: &Scope) -> CompiledPolicy {
    CompiledPolicy::compile(
        format!("role/{}", role.name()),
        format!("{} @ {scope}", role.name()),
        &role_document(role, scope),
    )
}
