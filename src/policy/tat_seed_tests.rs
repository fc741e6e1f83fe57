//! The fifteen worked examples of the TAT access-management seed
//! (授权方案示例), in the seed's order. Each asserts a request the example
//! allows (deny examples: alongside QcloudTATFullAccess) and one it denies.
//! `$account` is replaced by `uin/<OwnerUin>` as the seed's note says.

use super::test_util::*;
use super::*;

/// 允许修改和删除命令 cmd-xxxxxxxx.
#[test]
fn seed_example_01_allow_modify_and_delete_command() {
    // The seed prints `tat>DeleteCommand`, a typesetting slip: validation
    // rejects it, pointing at it, rather than silently granting nothing.
    let printed = r#"{"version":"2.0","statement":[{"effect":"allow",
        "resource":["qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx"],
        "action":["tat:ModifyCommand","tat>DeleteCommand"]}]}"#;
    assert!(
        rejects(printed).starts_with("statement[0].action[1]:"),
        "{}",
        rejects(printed)
    );

    let p = pol(
        "1",
        &printed.replace("tat>DeleteCommand", "tat:DeleteCommand"),
    );
    assert!(allows(&[&p], "tat:ModifyCommand", &[cmd("cmd-xxxxxxxx")]));
    assert!(allows(&[&p], "tat:DeleteCommand", &[cmd("cmd-xxxxxxxx")]));
    assert!(!allows(&[&p], "tat:DeleteCommand", &[cmd("cmd-yyyyyyyy")]));
    assert!(!allows(
        &[&p],
        "tat:RunCommand",
        &[cmd("cmd-xxxxxxxx"), ins("ins-1")]
    ));
}

/// 允许查看命令 cmd-xxxxxxxx 的详情.
#[test]
fn seed_example_02_allow_describe_command() {
    let p = pol(
        "2",
        r#"{"version":"2.0","statement":[{"effect":"allow",
        "resource":["qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx"],
        "action":["tat:DescribeCommands"]}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:DescribeCommands",
        &[cmd("cmd-xxxxxxxx")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeCommands",
        &[cmd("cmd-yyyyyyyy")]
    ));
    assert!(!allows(&[&p], "tat:ModifyCommand", &[cmd("cmd-xxxxxxxx")]));
}

/// 允许查看命令 cmd-xxxxxxxx 的执行结果.
#[test]
fn seed_example_03_allow_describe_command_results() {
    let p = pol(
        "3",
        r#"{"version":"2.0","statement":[{"effect":"allow",
        "resource":["qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx"],
        "action":["tat:DescribeInvocations","tat:DescribeInvocationTasks"]}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:DescribeInvocations",
        &[cmd("cmd-xxxxxxxx")]
    ));
    // A task belongs to the command and an instance: the command suffices.
    assert!(allows(
        &[&p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-xxxxxxxx"), ins("ins-1")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-yyyyyyyy"), ins("ins-1")]
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeInvocations",
        &[cmd("cmd-yyyyyyyy")]
    ));
}

/// 禁止用户执行命令 cmd-xxxxxxxx.
#[test]
fn seed_example_04_deny_invoking_a_command() {
    // The seed's page break splits this example: the first block has no
    // action, the second names `tat:InvokeCommands`, which is no action.
    // Both are rejected with the bad part named.
    let first = r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx"]}]}"#;
    assert_eq!(rejects(first), "statement[0].action: missing");
    let printed = r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx"],
        "action":["tat:InvokeCommands"]}]}"#;
    assert_eq!(
        rejects(printed),
        "statement[0].action[0]: unknown action \"tat:InvokeCommands\""
    );
    // What the example means: no running cmd-xxxxxxxx, by either action.
    let p = pol(
        "4",
        &printed.replace(
            r#""tat:InvokeCommands""#,
            r#""tat:InvokeCommand","tat:RunCommand""#,
        ),
    );
    let f = full();
    let d = decide(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-xxxxxxxx"), ins("ins-1")],
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::ExplicitDeny);
    assert_eq!(
        d.denied_resource.as_deref(),
        Some(cmd("cmd-xxxxxxxx").name.as_str())
    );
    assert_eq!(d.deciding[0].policy_id, "4");
    assert!(allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-yyyyyyyy"), ins("ins-1")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeCommands",
        &[cmd("cmd-xxxxxxxx")]
    ));
}

/// 禁止用户执行任何命令.
#[test]
fn seed_example_05_deny_invoking_any_command() {
    let p = pol(
        "5",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::tat:ap-guangzhou:$account:command/*"],
        "action":["tat:InvokeCommand","tat:RunCommand"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-aaaaaaaa"), ins("ins-1")]
    ));
    assert!(!allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-bbbbbbbb"), lh("lhins-1")]
    ));
    assert!(allows(&[&f, &p], "tat:CreateCommand", &[]));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeInvocations",
        &[cmd("cmd-aaaaaaaa")]
    ));
}

/// 禁止用户在云服务器实例 ins-xxxxxxxx 上执行任何命令.
#[test]
fn seed_example_06_deny_running_commands_on_a_cvm_instance() {
    // Split by a page break in the seed: resource above, actions below.
    let p = pol(
        "6",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::cvm:ap-guangzhou:$account:instance/ins-xxxxxxxx"],
        "action":["tat:InvokeCommand","tat:RunCommand"]}]}"#,
    );
    let f = full();
    let d = decide(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("ins-yyyyyyyy"), ins("ins-xxxxxxxx")],
    );
    assert!(!d.allowed);
    assert_eq!(
        d.denied_resource.as_deref(),
        Some(ins("ins-xxxxxxxx").name.as_str())
    );
    assert!(allows(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("ins-yyyyyyyy")]
    ));
}

/// 禁止用户在任何云服务器实例上执行命令.
#[test]
fn seed_example_07_deny_running_commands_on_any_cvm_instance() {
    let p = pol(
        "7",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::cvm:ap-guangzhou:$account:instance/*"],
        "action":["tat:InvokeCommand","tat:RunCommand"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-1"), ins("ins-anything")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-1"), lh("lhins-1")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-1"), mi("mi-1")]
    ));
}

/// 禁止用户在轻量应用服务器实例 lhins-xxxxxxxx 上执行任何命令.
#[test]
fn seed_example_08_deny_running_commands_on_a_lighthouse_instance() {
    // The seed breaks the id across lines (`lhins-` / `xxxxxxxx`): joined.
    let p = pol(
        "8",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::lighthouse:ap-guangzhou:$account:instance/lhins-xxxxxxxx"],
        "action":["tat:InvokeCommand","tat:RunCommand"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-1"), lh("lhins-xxxxxxxx")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-1"), lh("lhins-yyyyyyyy")]
    ));
    // Same id on another service is another resource.
    assert!(allows(
        &[&f, &p],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("lhins-xxxxxxxx")]
    ));
}

/// 禁止用户在任何轻量应用服务器实例上执行命令.
#[test]
fn seed_example_09_deny_running_commands_on_any_lighthouse_instance() {
    let p = pol(
        "9",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::lighthouse:ap-guangzhou:$account:instance/*"],
        "action":["tat:InvokeCommand","tat:RunCommand"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-1"), ins("ins-1"), lh("lhins-9")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:InvokeCommand",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
}

/// 允许用户在云服务器实例 ins-xxxxxxxx 上执行命令 cmd-xxxxxxx 或 cmd-yyyyyyy.
#[test]
fn seed_example_10_allow_invoking_commands_on_a_cvm_instance() {
    let p = pol(
        "10",
        r#"{"version":"2.0","statement":[{"effect":"allow",
        "resource":["qcs::cvm:ap-guangzhou:$account:instance/ins-xxxxxxxx",
          "qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxx",
          "qcs::tat:ap-guangzhou:$account:command/cmd-yyyyyyy"],
        "action":["tat:InvokeCommand"]}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-xxxxxxx"), ins("ins-xxxxxxxx")]
    ));
    assert!(allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-yyyyyyy"), ins("ins-xxxxxxxx")]
    ));
    // Every resource must be allowed: another command, or another instance.
    let d = decide(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-zzzzzzz"), ins("ins-xxxxxxxx")],
    );
    assert_eq!((d.allowed, d.reason), (false, Reason::ImplicitDeny));
    assert_eq!(
        d.denied_resource.as_deref(),
        Some(cmd("cmd-zzzzzzz").name.as_str())
    );
    let d = decide(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-xxxxxxx"), ins("ins-xxxxxxxx"), ins("ins-other")],
    );
    assert_eq!(
        d.denied_resource.as_deref(),
        Some(ins("ins-other").name.as_str())
    );
    assert!(!allows(
        &[&p],
        "tat:RunCommand",
        &[cmd("cmd-xxxxxxx"), ins("ins-xxxxxxxx")]
    ));
}

/// 允许用户在轻量应用服务器实例 lhins-xxxxxxxx 上执行命令 cmd-xxxxxxxx 或 cmd-yyyyyyyy.
#[test]
fn seed_example_11_allow_invoking_commands_on_a_lighthouse_instance() {
    // The seed's id, joined across its line break, has nine x's.
    let p = pol(
        "11",
        r#"{"version":"2.0","statement":[{"effect":"allow",
        "resource":["qcs::lighthouse:ap-guangzhou:$account:instance/lhins-xxxxxxxxx",
          "qcs::tat:ap-guangzhou:$account:command/cmd-xxxxxxxx",
          "qcs::tat:ap-guangzhou:$account:command/cmd-yyyyyyyy"],
        "action":["tat:InvokeCommand"]}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-yyyyyyyy"), lh("lhins-xxxxxxxxx")]
    ));
    assert!(!allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-yyyyyyyy"), lh("lhins-other")]
    ));
    assert!(!allows(
        &[&p],
        "tat:InvokeCommand",
        &[cmd("cmd-yyyyyyyy"), ins("lhins-xxxxxxxxx")]
    ));
}

/// 禁止用户查看云服务器实例 ins-xxxxxxxx 的命令执行任务结果.
#[test]
fn seed_example_12_deny_describing_tasks_on_a_cvm_instance() {
    let p = pol(
        "12",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::cvm:ap-guangzhou:$account:instance/ins-xxxxxxxx"],
        "action":["tat:DescribeInvocationTasks"]}]}"#,
    );
    let f = full();
    let d = decide(
        &[&f, &p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), ins("ins-xxxxxxxx")],
    );
    assert_eq!((d.allowed, d.reason), (false, Reason::ExplicitDeny));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), ins("ins-yyyyyyyy")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeInvocations",
        &[cmd("cmd-1")]
    ));
}

/// 禁止用户查看轻量应用服务器实例 lhins-xxxxxxxx 的命令执行任务结果.
#[test]
fn seed_example_13_deny_describing_tasks_on_a_lighthouse_instance() {
    let p = pol(
        "13",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::lighthouse:ap-guangzhou:$account:instance/lhins-xxxxxxxx"],
        "action":["tat:DescribeInvocationTasks"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), lh("lhins-xxxxxxxx")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), lh("lhins-yyyyyyyy")]
    ));
}

/// 禁止用户查看云服务器实例 ins-xxxxxxxx 的 Agent 运行状态.
#[test]
fn seed_example_14_deny_describing_agent_status_of_a_cvm_instance() {
    let p = pol(
        "14",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::cvm:ap-guangzhou:$account:instance/ins-xxxxxxxx"],
        "action":["tat:DescribeAutomationAgentStatus"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:DescribeAutomationAgentStatus",
        &[ins("ins-xxxxxxxx")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeAutomationAgentStatus",
        &[ins("ins-yyyyyyyy")]
    ));
}

/// 禁止用户查看轻量应用服务器实例 lhins-xxxxxxxx 的 Agent 运行状态.
#[test]
fn seed_example_15_deny_describing_agent_status_of_a_lighthouse_instance() {
    // Joined across the seed's line break, the id has ten x's.
    let p = pol(
        "15",
        r#"{"version":"2.0","statement":[{"effect":"deny",
        "resource":["qcs::lighthouse:ap-guangzhou:$account:instance/lhins-xxxxxxxxxx"],
        "action":["tat:DescribeAutomationAgentStatus"]}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &p],
        "tat:DescribeAutomationAgentStatus",
        &[lh("lhins-xxxxxxxxxx")]
    ));
    assert!(allows(
        &[&f, &p],
        "tat:DescribeAutomationAgentStatus",
        &[lh("lhins-yyyyyyyy")]
    ));
}

/// The seed's preset policies.
#[test]
fn seed_preset_policies() {
    for p in PRESETS {
        assert!(parse_document(p.document).is_ok(), "{}", p.name);
        assert!(p.compile().problems().is_empty());
    }
    let ro = preset("QcloudTATReadOnlyAccess").unwrap().compile();
    assert!(allows(&[&ro], "tat:DescribeCommands", &[cmd("cmd-1")]));
    assert!(allows(
        &[&ro],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
    assert!(allows(
        &[&ro],
        "tat:PreviewReplacedCommandContent",
        &[cmd("cmd-1")]
    ));
    assert!(!allows(
        &[&ro],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
    assert!(!allows(&[&ro], "tat:CreateCommand", &[]));
    let f = full();
    assert!(allows(
        &[&f],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
    assert!(allows(&[&f], "tat:CreateRegisterCode", &[]));
    // TAT full access is not access management.
    assert!(!allows(&[&f], "cam:CreateRoleAssignment", &[]));
    assert!(!allows(&[&f], "cam:AttachUserPolicy", &[]));
    let admin = preset("AdministratorAccess").unwrap().compile();
    assert!(allows(&[&admin], "cam:CreateRoleAssignment", &[]));
    assert!(allows(
        &[&admin],
        "tat:RunCommand",
        &[cmd("cmd-1"), mi("mi-1")]
    ));
    let cam = preset("QcloudCamFullAccess").unwrap().compile();
    assert!(allows(&[&cam], "cam:AttachUserPolicy", &[]));
    assert!(!allows(
        &[&cam],
        "tat:RunCommand",
        &[cmd("cmd-1"), mi("mi-1")]
    ));
}
