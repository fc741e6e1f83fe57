//! The one table from Azure Automation operations to drover actions.
//!
//! Azure's concepts map onto drover's: runbooks → commands, jobs →
//! invocations and their tasks, schedules and job schedules → invokers,
//! hybrid runbook workers (and DSC nodes) → instances, agent registration
//! keys → register codes, role assignments and definitions → drover's role
//! assignments and CAM policies, the activity log → the audit log.
//! A drover action is granted by a role when the role grants *every* Azure
//! operation listed for it. Operations marked "(drover)" are not Azure's:
//! they place CAM identity management under `Microsoft.Authorization` so that
//! a Contributor's NotActions exclude it, and secrets (access keys) under a
//! `listKeys/action` as Azure does, so `*/read` does not reveal them.

const AA: &str = "Microsoft.Automation/automationAccounts";

macro_rules! aa {
    ($tail:literal) => {
        concat!("Microsoft.Automation/automationAccounts/", $tail)
    };
}

/// (drover action, Azure operations all required).
pub static AZURE_MAP: &[(&str, &[&str])] = &[
    ("tat:DescribeRegions", &[aa!("read")]),
    ("tat:DescribeQuotas", &[aa!("read")]),
    // runbooks → commands. Reading a runbook gives its name and properties;
    // its definition (Content) is runbooks/content/read.
    ("tat:DescribeCommands", &[aa!("runbooks/read")]),
    // Scenes group the public runbooks (commands): reading them is reading runbooks.
    ("tat:DescribeScenes", &[aa!("runbooks/read")]),
    (
        "tat:DescribeCommandContent",
        &[aa!("runbooks/content/read")],
    ),
    (
        "tat:PreviewReplacedCommandContent",
        &[aa!("runbooks/content/read")],
    ),
    ("tat:CreateCommand", &[aa!("runbooks/write")]),
    ("tat:ModifyCommand", &[aa!("runbooks/write")]),
    ("tat:DeleteCommand", &[aa!("runbooks/delete")]),
    ("tat:DeleteCommands", &[aa!("runbooks/delete")]),
    // jobs → invocations. RunCommand saves a new command and starts it.
    ("tat:InvokeCommand", &[aa!("jobs/write")]),
    (
        "tat:RunCommand",
        &[aa!("runbooks/write"), aa!("jobs/write")],
    ),
    ("tat:DescribeInvocations", &[aa!("jobs/read")]),
    ("tat:DescribeInvocationTasks", &[aa!("jobs/read")]),
    (
        "tat:DescribeInvocationTaskOutput",
        &[aa!("jobs/streams/read")],
    ),
    ("tat:CancelInvocation", &[aa!("jobs/stop/action")]),
    ("tat:SuspendInvocation", &[aa!("jobs/suspend/action")]),
    ("tat:ResumeInvocation", &[aa!("jobs/resume/action")]),
    // Webhook deliveries report how a job's end was notified.
    ("tat:DescribeWebhookDeliveries", &[aa!("jobs/read")]),
    // schedules + job schedules → invokers.
    (
        "tat:DescribeInvokers",
        &[aa!("schedules/read"), aa!("jobSchedules/read")],
    ),
    (
        "tat:DescribeInvokerRecords",
        &[aa!("schedules/read"), aa!("jobSchedules/read")],
    ),
    (
        "tat:CreateInvoker",
        &[aa!("schedules/write"), aa!("jobSchedules/write")],
    ),
    (
        "tat:ModifyInvoker",
        &[aa!("schedules/write"), aa!("jobSchedules/write")],
    ),
    (
        "tat:EnableInvoker",
        &[aa!("schedules/write"), aa!("jobSchedules/write")],
    ),
    (
        "tat:DisableInvoker",
        &[aa!("schedules/write"), aa!("jobSchedules/write")],
    ),
    (
        "tat:DeleteInvoker",
        &[aa!("schedules/delete"), aa!("jobSchedules/delete")],
    ),
    // hybrid runbook workers → instances; registration keys → register codes.
    (
        "tat:DescribeAutomationAgentStatus",
        &[aa!("hybridRunbookWorkerGroups/read")],
    ),
    (
        "tat:DescribeRegisterInstances",
        &[aa!("hybridRunbookWorkerGroups/read")],
    ),
    (
        "tat:ModifyRegisterInstance",
        &[aa!("hybridRunbookWorkerGroups/write")],
    ),
    // Retagging a worker changes which jobs and policies reach it: it is
    // writing the worker group, as ModifyRegisterInstance is (Contributor
    // and Owner have it; the Automation Operator roles only read workers).
    (
        "tat:ModifyInstanceTags",
        &[aa!("hybridRunbookWorkerGroups/write")],
    ),
    (
        "tat:DeleteRegisterInstance",
        &[aa!("hybridRunbookWorkerGroups/delete")],
    ),
    (
        "tat:DescribeRegisterCodes",
        &[aa!("agentRegistrationInformation/read")],
    ),
    (
        "tat:CreateRegisterCode",
        &[aa!("agentRegistrationInformation/regenerateKey/action")],
    ),
    (
        "tat:DisableRegisterCodes",
        &[aa!("agentRegistrationInformation/regenerateKey/action")],
    ),
    (
        "tat:DeleteRegisterCodes",
        &[aa!("agentRegistrationInformation/regenerateKey/action")],
    ),
    // role assignments and definitions → role assignments and CAM policies.
    (
        "cam:ListRoleAssignments",
        &["Microsoft.Authorization/roleAssignments/read"],
    ),
    (
        "cam:ListAttachedUserPolicies",
        &["Microsoft.Authorization/roleAssignments/read"],
    ),
    (
        "cam:ListAttachedGroupPolicies",
        &["Microsoft.Authorization/roleAssignments/read"],
    ),
    (
        "cam:ListAttachedUserAllPolicies",
        &["Microsoft.Authorization/roleAssignments/read"],
    ),
    (
        "cam:CreateRoleAssignment",
        &["Microsoft.Authorization/roleAssignments/write"],
    ),
    (
        "cam:AttachUserPolicy",
        &["Microsoft.Authorization/roleAssignments/write"],
    ),
    (
        "cam:AttachGroupPolicy",
        &["Microsoft.Authorization/roleAssignments/write"],
    ),
    (
        "cam:DeleteRoleAssignment",
        &["Microsoft.Authorization/roleAssignments/delete"],
    ),
    (
        "cam:DetachUserPolicy",
        &["Microsoft.Authorization/roleAssignments/delete"],
    ),
    (
        "cam:DetachGroupPolicy",
        &["Microsoft.Authorization/roleAssignments/delete"],
    ),
    (
        "cam:GetPolicy",
        &["Microsoft.Authorization/roleDefinitions/read"],
    ),
    (
        "cam:ListPolicies",
        &["Microsoft.Authorization/roleDefinitions/read"],
    ),
    (
        "cam:CreatePolicy",
        &["Microsoft.Authorization/roleDefinitions/write"],
    ),
    (
        "cam:UpdatePolicy",
        &["Microsoft.Authorization/roleDefinitions/write"],
    ),
    (
        "cam:DeletePolicy",
        &["Microsoft.Authorization/roleDefinitions/delete"],
    ),
    (
        "cam:SimulatePrincipalPolicy",
        &["Microsoft.Authorization/permissions/read"],
    ),
    // (drover) identities under Microsoft.Authorization.
    ("cam:GetUser", &["Microsoft.Authorization/users/read"]),
    ("cam:ListUsers", &["Microsoft.Authorization/users/read"]),
    ("cam:GetUserAppId", &["Microsoft.Authorization/users/read"]),
    ("cam:AddUser", &["Microsoft.Authorization/users/write"]),
    ("cam:UpdateUser", &["Microsoft.Authorization/users/write"]),
    ("cam:DeleteUser", &["Microsoft.Authorization/users/delete"]),
    ("cam:GetGroup", &["Microsoft.Authorization/groups/read"]),
    ("cam:ListGroups", &["Microsoft.Authorization/groups/read"]),
    (
        "cam:ListUsersForGroup",
        &["Microsoft.Authorization/groups/read"],
    ),
    (
        "cam:ListGroupsForUser",
        &["Microsoft.Authorization/groups/read"],
    ),
    ("cam:CreateGroup", &["Microsoft.Authorization/groups/write"]),
    (
        "cam:AddUserToGroup",
        &["Microsoft.Authorization/groups/write"],
    ),
    (
        "cam:RemoveUserFromGroup",
        &["Microsoft.Authorization/groups/write"],
    ),
    (
        "cam:DeleteGroup",
        &["Microsoft.Authorization/groups/delete"],
    ),
    (
        "cam:ListAccessKeys",
        &["Microsoft.Authorization/accessKeys/listKeys/action"],
    ),
    (
        "cam:CreateAccessKey",
        &["Microsoft.Authorization/accessKeys/write"],
    ),
    (
        "cam:UpdateAccessKey",
        &["Microsoft.Authorization/accessKeys/write"],
    ),
    (
        "cam:DeleteAccessKey",
        &["Microsoft.Authorization/accessKeys/delete"],
    ),
    // credential assets → secrets. Azure's credentials/read returns a
    // credential's metadata, never its password: so does DescribeSecrets.
    ("tat:DescribeSecrets", &[aa!("credentials/read")]),
    ("tat:CreateSecret", &[aa!("credentials/write")]),
    ("tat:ModifySecret", &[aa!("credentials/write")]),
    ("tat:DeleteSecret", &[aa!("credentials/delete")]),
    // In Azure a job reads the credentials its runbook names with the
    // account's identity: whoever may start the job (jobs/write) uses them,
    // which is why the Automation Operator and Job Operator can run runbooks
    // that use credentials. Using a secret is therefore starting a job, a
    // write: Reader's and Monitoring Reader's `*/read` never reach it.
    ("tat:UseSecret", &[aa!("jobs/write")]),
    // the activity log → the audit log.
    (
        "cam:DescribeAuditEvents",
        &["Microsoft.Insights/eventtypes/values/read"],
    ),
];

/// The Automation account's own resource path, for documentation.
pub const AUTOMATION_ACCOUNT: &str = AA;

#[cfg(test)]
mod tests {
    use super::AZURE_MAP;
    use crate::policy::actions::ACTIONS;

    #[test]
    fn every_action_is_mapped_once() {
        for a in ACTIONS {
            let n = AZURE_MAP.iter().filter(|(d, _)| *d == a.name).count();
            assert_eq!(n, 1, "{} mapped {n} times", a.name);
        }
        assert_eq!(AZURE_MAP.len(), ACTIONS.len());
    }
}
