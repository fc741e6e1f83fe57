//! One test per role row of the Azure Automation seed, plus the seed's
//! runbook-scope assignments and the Automation Operator's user experience.

use super::test_util::*;
use super::*;

fn role(r: AzureRole) -> CompiledPolicy {
    compile_role(r, &Scope::Account)
}

fn at_command(r: AzureRole, id: &str) -> CompiledPolicy {
    compile_role(r, &Scope::Command(cmd(id).name))
}

/// Operation-level and one-command requests, for terse role tables.
fn can(p: &[&CompiledPolicy], action: &str) -> bool {
    let res: Vec<Resource> = match resources_for(action) {
        [ResourceKind::Any] => vec![],
        kinds if kinds.contains(&ResourceKind::Invoker) => vec![Resource::new(
            ResourceKind::Invoker.qcs(REGION, OWNER, "ivk-1"),
        )],
        kinds if kinds.contains(&ResourceKind::Secret) => {
            let mut v = vec![Resource::new(
                ResourceKind::Secret.qcs(REGION, OWNER, "db.pw"),
            )];
            if kinds.len() > 1 {
                v.push(mi("mi-1"));
            }
            v
        }
        kinds if kinds.contains(&ResourceKind::Command) && kinds.len() > 1 => {
            vec![cmd("cmd-1"), mi("mi-1")]
        }
        kinds if kinds.contains(&ResourceKind::Command) => vec![cmd("cmd-1")],
        // CAM's resource-scoped actions: one user, group or policy of each
        // kind the action takes.
        kinds
            if kinds.iter().any(|k| {
                matches!(
                    k,
                    ResourceKind::CamUser | ResourceKind::CamGroup | ResourceKind::CamPolicy
                )
            }) =>
        {
            kinds
                .iter()
                .map(|k| Resource::new(k.qcs(REGION, OWNER, "100000000001")))
                .collect()
        }
        _ => vec![mi("mi-1")],
    };
    allows(p, action, &res)
}

#[test]
fn role_owner_manages_everything_including_access() {
    let p = role(AzureRole::Owner);
    for a in ACTIONS {
        assert!(can(&[&p], a.name), "{}", a.name);
    }
}

#[test]
fn role_contributor_manages_everything_except_access() {
    let p = role(AzureRole::Contributor);
    for a in [
        "tat:RunCommand",
        "tat:CreateCommand",
        "tat:DeleteCommand",
        "tat:DescribeCommandContent",
        "tat:CreateRegisterCode",
        "tat:DeleteInvoker",
        "cam:ListRoleAssignments",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    for a in [
        "cam:CreateRoleAssignment",
        "cam:DeleteRoleAssignment",
        "cam:AttachUserPolicy",
        "cam:DetachUserPolicy",
        "cam:AttachGroupPolicy",
        "cam:DetachGroupPolicy",
        "cam:CreatePolicy",
        "cam:UpdatePolicy",
        "cam:DeletePolicy",
        "cam:AddUser",
        "cam:DeleteUser",
        "cam:AddUserToGroup",
        "cam:CreateAccessKey",
        "cam:UpdateAccessKey",
        "cam:DeleteAccessKey",
    ] {
        assert!(!can(&[&p], a), "{a}");
    }
}

#[test]
fn role_reader_views_everything_and_changes_nothing() {
    let p = role(AzureRole::Reader);
    for a in [
        "tat:DescribeCommands",
        "tat:DescribeCommandContent",
        "tat:DescribeInvocations",
        "tat:DescribeInvocationTasks",
        "tat:DescribeAutomationAgentStatus",
        "tat:DescribeInvokers",
        "tat:DescribeScenes",
        "cam:ListRoleAssignments",
        "cam:ListUsers",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    for a in ACTIONS.iter().map(|a| a.name).filter(|n| {
        ![":Describe", ":List", ":Get", ":Preview", ":Simulate"]
            .iter()
            .any(|v| n.contains(v))
    }) {
        assert!(!can(&[&p], a), "{a}");
    }
    assert!(
        !can(&[&p], "cam:ListAccessKeys"),
        "keys are secrets, not */read"
    );
    // Job control changes a job: Azure's jobs/suspend and jobs/resume actions.
    assert!(!can(&[&p], "tat:SuspendInvocation"));
    assert!(!can(&[&p], "tat:ResumeInvocation"));
}

#[test]
fn role_automation_operator_runs_jobs_but_never_sees_content() {
    let p = role(AzureRole::AutomationOperator);
    for a in [
        "tat:DescribeCommands",
        "tat:InvokeCommand",
        "tat:CancelInvocation",
        "tat:SuspendInvocation",
        "tat:ResumeInvocation",
        "tat:DescribeInvocations",
        "tat:DescribeInvocationTasks",
        "tat:DescribeInvocationTaskOutput",
        "tat:DescribeInvokers",
        "tat:CreateInvoker",
        "tat:DescribeAutomationAgentStatus",
        "cam:ListRoleAssignments",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    for a in [
        "tat:DescribeCommandContent",
        "tat:PreviewReplacedCommandContent",
        "tat:CreateCommand",
        "tat:ModifyCommand",
        "tat:DeleteCommand",
        "tat:RunCommand",
        "tat:DeleteInvoker",
        "tat:CreateRegisterCode",
        "tat:DeleteRegisterInstance",
        "cam:CreateRoleAssignment",
        "cam:DescribeAuditEvents",
    ] {
        assert!(!can(&[&p], a), "{a}");
    }
    let d = decide(&[&p], DESCRIBE_COMMAND_CONTENT, &[cmd("cmd-1")]);
    assert_eq!(d.reason, Reason::ImplicitDeny);
}

#[test]
fn role_automation_operator_at_runbook_scope_starts_it_and_views_its_jobs() {
    let p = at_command(AzureRole::AutomationOperator, "cmd-mine");
    assert!(allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-mine"), mi("mi-1"), ins("ins-1")]
    ));
    assert!(allows(&[&p], "tat:DescribeInvocations", &[cmd("cmd-mine")]));
    assert!(allows(
        &[&p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-mine"), mi("mi-1")]
    ));
    assert!(!allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-other"), mi("mi-1")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeInvocations",
        &[cmd("cmd-other")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-other"), mi("mi-1")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeAutomationAgentStatus",
        &[mi("mi-1")]
    ));
    assert!(!allows(&[&p], DESCRIBE_COMMAND_CONTENT, &[cmd("cmd-mine")]));
    assert!(!allows(&[&p], "tat:CreateCommand", &[]));
}

#[test]
fn role_automation_job_operator_manages_jobs_for_all_runbooks() {
    let p = role(AzureRole::AutomationJobOperator);
    for a in [
        "tat:InvokeCommand",
        "tat:CancelInvocation",
        "tat:SuspendInvocation",
        "tat:ResumeInvocation",
        "tat:DescribeInvocations",
        "tat:DescribeInvocationTasks",
        "tat:DescribeInvocationTaskOutput",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    assert!(allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-any"), ins("ins-1")]
    ));
    for a in [
        "tat:DescribeCommands",
        "tat:DescribeCommandContent",
        "tat:CreateCommand",
        "tat:ModifyCommand",
        "tat:DeleteCommand",
        "tat:RunCommand",
        "tat:CreateInvoker",
    ] {
        assert!(!can(&[&p], a), "{a}");
    }
}

#[test]
fn role_automation_runbook_operator_views_one_runbooks_name_and_properties() {
    let p = at_command(AzureRole::AutomationRunbookOperator, "cmd-mine");
    assert!(allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-mine")]));
    assert!(!allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-other")]));
    assert!(!allows(&[&p], DESCRIBE_COMMAND_CONTENT, &[cmd("cmd-mine")]));
    assert!(!allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-mine"), mi("mi-1")]
    ));
    assert!(!allows(&[&p], "tat:ModifyCommand", &[cmd("cmd-mine")]));
}

/// The seed's script: Job Operator on the account, Runbook Operator on one
/// runbook — the user sees that runbook and can start jobs for it.
#[test]
fn runbook_rbac_script_job_operator_plus_runbook_operator() {
    let job = role(AzureRole::AutomationJobOperator);
    let rb = at_command(AzureRole::AutomationRunbookOperator, "cmd-mine");
    let user = [&job, &rb];
    assert!(allows(&user, "tat:DescribeCommands", &[cmd("cmd-mine")]));
    assert!(allows(
        &user,
        "tat:InvokeCommand",
        &[cmd("cmd-mine"), mi("mi-1")]
    ));
    assert!(allows(&user, "tat:DescribeInvocations", &[cmd("cmd-mine")]));
    assert!(!allows(&user, "tat:DescribeCommands", &[cmd("cmd-other")]));
    assert!(!allows(&user, DESCRIBE_COMMAND_CONTENT, &[cmd("cmd-mine")]));
    assert!(!allows(&user, "tat:ModifyCommand", &[cmd("cmd-mine")]));
    let d = decide(&user, "tat:DescribeCommands", &[cmd("cmd-mine")]);
    assert_eq!(
        d.deciding[0].policy_name,
        format!("Automation Runbook Operator @ {}", cmd("cmd-mine").name)
    );
}

#[test]
fn role_user_access_administrator_manages_access() {
    let p = role(AzureRole::UserAccessAdministrator);
    for a in [
        "cam:CreateRoleAssignment",
        "cam:DeleteRoleAssignment",
        "cam:AttachUserPolicy",
        "cam:CreatePolicy",
        "cam:AddUser",
        "cam:CreateAccessKey",
        "cam:ListAccessKeys",
        "tat:DescribeCommands",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    for a in [
        "tat:RunCommand",
        "tat:InvokeCommand",
        "tat:ModifyCommand",
        "tat:CreateCommand",
        "tat:CreateRegisterCode",
    ] {
        assert!(!can(&[&p], a), "{a}");
    }
}

#[test]
fn role_monitoring_reader_reads_audit_and_monitoring_data() {
    let p = role(AzureRole::MonitoringReader);
    for a in [
        "cam:DescribeAuditEvents",
        "tat:DescribeInvocations",
        "tat:DescribeAutomationAgentStatus",
        "tat:DescribeQuotas",
    ] {
        assert!(can(&[&p], a), "{a}");
    }
    for a in [
        "tat:RunCommand",
        "tat:CancelInvocation",
        "tat:SuspendInvocation",
        "tat:ResumeInvocation",
        "cam:CreateRoleAssignment",
        "cam:ListAccessKeys",
    ] {
        assert!(!can(&[&p], a), "{a}");
    }
}

#[test]
fn roles_are_looked_up_by_name_and_compile_cleanly() {
    assert_eq!(
        AzureRole::from_name("Automation operator"),
        Some(AzureRole::AutomationOperator)
    );
    assert_eq!(AzureRole::from_name("owner"), Some(AzureRole::Owner));
    assert_eq!(AzureRole::from_name("Log Analytics Contributor"), None);
    for d in ROLES {
        assert_eq!(d.role.definition().name, d.name);
        assert!(compile_role(d.role, &Scope::Account).problems().is_empty());
        assert!(compile_role(d.role, &Scope::Command(cmd("cmd-1").name))
            .problems()
            .is_empty());
        validate(&role_document(d.role, &Scope::Account)).unwrap();
    }
    assert_eq!(ROLES.len(), 8);
}

#[test]
fn secrets_are_used_by_job_starters_and_never_by_readers() {
    let can_role = |r: AzureRole, a: &str| can(&[&role(r)], a);
    for r in [
        AzureRole::Owner,
        AzureRole::Contributor,
        AzureRole::AutomationOperator,
        AzureRole::AutomationJobOperator,
    ] {
        assert!(can_role(r, "tat:UseSecret"), "{r:?}");
    }
    for r in [
        AzureRole::Reader,
        AzureRole::MonitoringReader,
        AzureRole::AutomationRunbookOperator,
        AzureRole::UserAccessAdministrator,
    ] {
        assert!(!can_role(r, "tat:UseSecret"), "{r:?}");
    }
    for a in [
        "tat:CreateSecret",
        "tat:ModifySecret",
        "tat:DeleteSecret",
        "tat:DescribeSecrets",
    ] {
        assert!(can_role(AzureRole::Contributor, a), "{a}");
    }
    // Reader lists secrets' names (there is nothing else to read) only.
    assert!(can_role(AzureRole::Reader, "tat:DescribeSecrets"));
    for a in ["tat:CreateSecret", "tat:ModifySecret", "tat:DeleteSecret"] {
        assert!(!can_role(AzureRole::Reader, a), "{a}");
        assert!(!can_role(AzureRole::AutomationJobOperator, a), "{a}");
    }
}
