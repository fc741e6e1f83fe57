//! The action table: every action drover authorizes and the resource kinds it
//! is authorized against. Rows marked `Seed` are exactly the TAT access
//! management table (resource-level: the resources listed; operation-level:
//! `*`); rows marked `Drover` are TAT actions the seed does not list and
//! drover's extensions, placed by analogy.
//!
//! How the named resources combine (`Combine`):
//! * `All`: every resource the request names must be allowed (RunCommand and
//!   InvokeCommand: the command and every instance).
//! * `AnyNoneDenied`: reading results that belong to a command *and* an
//!   instance (DescribeInvocationTasks, task output): allowed when some named
//!   resource is allowed and none is explicitly denied. This is what makes the
//!   seed's "allow viewing cmd-xxxxxxxx's results" (command only) and "deny
//!   viewing ins-xxxxxxxx's task results" (instance only) both hold.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::resource::ResourceKind::{self, *};

/// How an action's named resources combine into one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    All,
    AnyNoneDenied,
}

/// Where a row of the table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in the TAT seed's authorization table.
    Seed,
    /// Not in the seed: a drover decision.
    Drover,
}

/// One authorizable action.
#[derive(Debug)]
pub struct ActionInfo {
    /// Qualified name as policies write it, e.g. `tat:RunCommand`.
    pub name: &'static str,
    pub kinds: &'static [ResourceKind],
    pub combine: Combine,
    pub origin: Origin,
}

const OP: &[ResourceKind] = &[Any];
const CMD: &[ResourceKind] = &[Command];
const INS: &[ResourceKind] = &[CvmInstance, LighthouseInstance, ManagedInstance];
const MI: &[ResourceKind] = &[ManagedInstance];
const CMD_INS: &[ResourceKind] = &[Command, CvmInstance, LighthouseInstance, ManagedInstance];
const IVK: &[ResourceKind] = &[Invoker];
const SEC: &[ResourceKind] = &[Secret];
const SEC_INS: &[ResourceKind] = &[Secret, CvmInstance, LighthouseInstance, ManagedInstance];
const CMD_IVK: &[ResourceKind] = &[Command, Invoker];
// CAM's resources: a user (by uin), a group, a policy.
const USR: &[ResourceKind] = &[CamUser];
const GRP: &[ResourceKind] = &[CamGroup];
const POL: &[ResourceKind] = &[CamPolicy];
const USR_GRP: &[ResourceKind] = &[CamUser, CamGroup];
const POL_USR: &[ResourceKind] = &[CamPolicy, CamUser];
const POL_GRP: &[ResourceKind] = &[CamPolicy, CamGroup];
const IVK_CMD_INS: &[ResourceKind] = &[
    Invoker,
    Command,
    CvmInstance,
    LighthouseInstance,
    ManagedInstance,
];

macro_rules! row {
    ($name:literal, $kinds:expr, $combine:ident, $origin:ident) => {
        ActionInfo {
            name: $name,
            kinds: $kinds,
            combine: Combine::$combine,
            origin: Origin::$origin,
        }
    };
}

/// Every action, TAT first (seed rows, then drover's), then CAM.
pub static ACTIONS: &[ActionInfo] = &[
    // The seed's table. DescribeAutomationAgents in the seed's table is the
    // API action DescribeAutomationAgentStatus (its own examples use that name).
    row!("tat:CreateCommand", OP, All, Seed),
    row!("tat:DeleteCommand", CMD, All, Seed),
    row!("tat:DescribeAutomationAgentStatus", INS, All, Seed),
    row!("tat:DescribeCommands", CMD, All, Seed),
    row!("tat:DescribeInvocations", CMD, All, Seed),
    row!("tat:DescribeInvocationTasks", CMD_INS, AnyNoneDenied, Seed),
    row!("tat:InvokeCommand", CMD_INS, All, Seed),
    row!("tat:ModifyCommand", CMD, All, Seed),
    row!("tat:PreviewReplacedCommandContent", CMD, All, Seed),
    row!("tat:RunCommand", CMD_INS, All, Seed),
    // TAT actions the seed does not list.
    row!("tat:DeleteCommands", CMD, All, Drover),
    row!("tat:CancelInvocation", CMD_INS, All, Drover),
    row!("tat:CreateRegisterCode", OP, All, Drover),
    row!("tat:DescribeRegisterCodes", OP, All, Drover),
    row!("tat:DisableRegisterCodes", OP, All, Drover),
    row!("tat:DeleteRegisterCodes", OP, All, Drover),
    row!("tat:DescribeRegisterInstances", MI, All, Drover),
    row!("tat:ModifyRegisterInstance", MI, All, Drover),
    row!("tat:DeleteRegisterInstance", MI, All, Drover),
    row!("tat:DescribeRegions", OP, All, Drover),
    row!("tat:DescribeQuotas", OP, All, Drover),
    row!("tat:DescribeScenes", OP, All, Drover),
    row!("tat:CreateInvoker", CMD_INS, All, Drover),
    row!("tat:ModifyInvoker", IVK_CMD_INS, All, Drover),
    row!("tat:DeleteInvoker", IVK, All, Drover),
    row!("tat:EnableInvoker", IVK, All, Drover),
    row!("tat:DisableInvoker", IVK, All, Drover),
    row!("tat:DescribeInvokers", IVK, All, Drover),
    row!("tat:DescribeInvokerRecords", IVK, All, Drover),
    // drover extensions on the TAT endpoint.
    // Retagging is apart from ModifyRegisterInstance: tags decide policy
    // conditions and target selectors.
    row!("tat:ModifyInstanceTags", MI, All, Drover),
    // Job control: named like CancelInvocation, the resources it names.
    row!("tat:SuspendInvocation", CMD_INS, All, Drover),
    row!("tat:ResumeInvocation", CMD_INS, All, Drover),
    row!(
        "tat:DescribeInvocationTaskOutput",
        CMD_INS,
        AnyNoneDenied,
        Drover
    ),
    // Secrets (drover): managed by name; values are never returned.
    row!("tat:CreateSecret", SEC, All, Drover),
    row!("tat:ModifySecret", SEC, All, Drover),
    row!("tat:DeleteSecret", SEC, All, Drover),
    row!("tat:DescribeSecrets", SEC, All, Drover),
    // Pseudo-action: may a run put this secret into its script on these
    // instances? Checked by RunCommand, InvokeCommand, CreateInvoker and
    // ModifyInvoker for each `{{secret:NAME}}` of the command's content.
    row!("tat:UseSecret", SEC_INS, All, Drover),
    // Pseudo-action: may the caller see a command's Content? Checked by
    // DescribeCommands (and anything else that returns Content) per command.
    row!("tat:DescribeCommandContent", CMD, All, Drover),
    // Webhook deliveries of an invocation (its command) or an invoker.
    row!("tat:DescribeWebhookDeliveries", CMD_IVK, All, Drover),
    // Access management lives under cam: so that tat:* (QcloudTATFullAccess)
    // never lets anyone grant themselves more access.
    // Role assignments and the simulator act on a principal: the user (or
    // group) they bind or explain is their resource.
    row!("cam:CreateRoleAssignment", USR_GRP, All, Drover),
    row!("cam:DeleteRoleAssignment", USR_GRP, All, Drover),
    row!("cam:ListRoleAssignments", OP, All, Drover),
    row!("cam:SimulatePrincipalPolicy", USR, All, Drover),
    row!("cam:DescribeAuditEvents", OP, All, Drover),
    // CAM 2019-01-16 actions drover serves, resource-scoped as CAM scopes
    // them: an action on a user names `qcs::cam::uin/<OwnerUin>:uin/<Uin>`,
    // on a group `...:group/<GroupId>`, on a policy `...:policyid/<PolicyId>`;
    // an attachment or membership names both sides. Creating and listing
    // name no existing resource and stay operation-level.
    row!("cam:AddUser", OP, All, Drover),
    row!("cam:GetUser", USR, All, Drover),
    row!("cam:ListUsers", OP, All, Drover),
    row!("cam:UpdateUser", USR, All, Drover),
    row!("cam:DeleteUser", USR, All, Drover),
    row!("cam:CreateGroup", OP, All, Drover),
    row!("cam:GetGroup", GRP, All, Drover),
    row!("cam:ListGroups", OP, All, Drover),
    row!("cam:DeleteGroup", GRP, All, Drover),
    row!("cam:AddUserToGroup", USR_GRP, All, Drover),
    row!("cam:RemoveUserFromGroup", USR_GRP, All, Drover),
    row!("cam:ListUsersForGroup", GRP, All, Drover),
    row!("cam:ListGroupsForUser", USR, All, Drover),
    row!("cam:CreatePolicy", OP, All, Drover),
    row!("cam:GetPolicy", POL, All, Drover),
    row!("cam:UpdatePolicy", POL, All, Drover),
    row!("cam:DeletePolicy", POL, All, Drover),
    row!("cam:ListPolicies", OP, All, Drover),
    row!("cam:AttachUserPolicy", POL_USR, All, Drover),
    row!("cam:DetachUserPolicy", POL_USR, All, Drover),
    row!("cam:AttachGroupPolicy", POL_GRP, All, Drover),
    row!("cam:DetachGroupPolicy", POL_GRP, All, Drover),
    row!("cam:ListAttachedUserPolicies", USR, All, Drover),
    row!("cam:ListAttachedGroupPolicies", GRP, All, Drover),
    row!("cam:ListAttachedUserAllPolicies", USR, All, Drover),
    // Access keys belong to a user: the caller itself without TargetUin.
    row!("cam:CreateAccessKey", USR, All, Drover),
    row!("cam:ListAccessKeys", USR, All, Drover),
    row!("cam:UpdateAccessKey", USR, All, Drover),
    row!("cam:DeleteAccessKey", USR, All, Drover),
    row!("cam:GetUserAppId", OP, All, Drover),
];

fn index() -> &'static HashMap<String, usize> {
    static INDEX: OnceLock<HashMap<String, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        ACTIONS
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.to_ascii_lowercase(), i))
            .collect()
    })
}

/// The position of an action in `ACTIONS` (compiled statements keep a
/// bitmask over it, so matching an action is one AND).
pub(crate) fn action_index(action: &str) -> Option<usize> {
    if action.bytes().any(|b| b.is_ascii_uppercase()) {
        index().get(&action.to_ascii_lowercase()).copied()
    } else {
        index().get(action).copied()
    }
}

/// The row of a qualified action (`tat:RunCommand`), any letter case.
pub fn action_info(action: &str) -> Option<&'static ActionInfo> {
    action_index(action).and_then(|i| ACTIONS.get(i))
}

/// The resource kinds `action` is authorized against; empty if unknown.
pub fn resources_for(action: &str) -> &'static [ResourceKind] {
    action_info(action).map_or(&[], |a| a.kinds)
}

/// The policy action for an API action: `RunCommand` on the TAT endpoint is
/// `tat:RunCommand`; CAM's API (`cam == true`) and drover's access-management
/// extensions are `cam:`. `None` if drover does not know the action.
pub fn policy_action(api_action: &str, cam: bool) -> Option<&'static str> {
    let find = |svc: &str| {
        ACTIONS.iter().find(|a| {
            a.name
                .split_once(':')
                .is_some_and(|(s, n)| s == svc && n == api_action)
        })
    };
    let hit = if cam {
        find("cam")
    } else {
        find("tat").or_else(|| find("cam"))
    };
    hit.map(|a| a.name)
}

/// The TAT pseudo-action that guards a command's Content.
pub const DESCRIBE_COMMAND_CONTENT: &str = "tat:DescribeCommandContent";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_rejects_unknown() {
        assert_eq!(resources_for("TAT:runcommand"), CMD_INS);
        assert_eq!(resources_for("tat:CreateCommand"), OP);
        assert!(resources_for("tat:InvokeCommands").is_empty());
        assert_eq!(policy_action("RunCommand", false), Some("tat:RunCommand"));
        assert_eq!(
            policy_action("CreateRoleAssignment", false),
            Some("cam:CreateRoleAssignment")
        );
        assert_eq!(
            policy_action("DescribeCommandContent", false),
            Some(DESCRIBE_COMMAND_CONTENT)
        );
        assert_eq!(policy_action("AddUser", true), Some("cam:AddUser"));
        assert_eq!(policy_action("RunCommand", true), None);
    }

    #[test]
    fn names_are_unique_and_fit_the_bitmask() {
        assert_eq!(index().len(), ACTIONS.len());
        assert!(ACTIONS.len() <= 128);
    }
}
