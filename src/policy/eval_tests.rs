//! Edge cases of validation and evaluation.

use super::test_util::*;
use super::*;

fn doc(statements: Vec<Statement>) -> Document {
    Document {
        version: "2.0".into(),
        statements,
    }
}

fn stmt(
    effect: Effect,
    actions: &[&str],
    resources: &[&str],
    conds: &[(&str, &str, &[&str])],
) -> Statement {
    Statement {
        effect,
        actions: actions.iter().map(|s| s.to_string()).collect(),
        resources: resources.iter().map(|s| s.to_string()).collect(),
        conditions: conds
            .iter()
            .map(|(o, k, v)| ConditionClause {
                operator: o.to_string(),
                key: k.to_string(),
                values: v.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
    }
}

fn allow_all_with(conds: &[(&str, &str, &[&str])]) -> CompiledPolicy {
    CompiledPolicy::compile(
        "c",
        "c",
        &doc(vec![stmt(Effect::Allow, &["tat:*"], &["*"], conds)]),
    )
}

#[test]
fn empty_statement_list_is_rejected_and_denies() {
    assert_eq!(
        rejects(r#"{"version":"2.0","statement":[]}"#),
        "statement: must hold at least one statement"
    );
    let p = CompiledPolicy::compile("e", "e", &doc(vec![]));
    let d = decide(&[&p], "tat:DescribeCommands", &[]);
    assert_eq!((d.allowed, d.reason), (false, Reason::ImplicitDeny));
    assert_eq!(
        decide(&[], "tat:CreateCommand", &[]).reason,
        Reason::ImplicitDeny
    );
}

#[test]
fn malformed_resources_are_rejected_and_deny() {
    let e = rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*"},
        {"effect":"allow","action":"tat:*","resource":["qcs::tat:command/cmd-1"]}]}"#,
    );
    assert!(e.starts_with("statement[1].resource[0]: "), "{e}");
    assert!(e.contains("not a six-segment qcs resource"), "{e}");
    assert!(rejects(r#"{"version":"2.0","statement":{"effect":"allow","action":"tat:*","resource":"qcs::tat:ap-guangzhou:$oops:command/*"}}"#)
        .contains("uin/<OwnerUin>"));
    assert!(rejects(r#"{"version":"2.0","statement":{"effect":"allow","action":"tat:*","resource":"qcs::cvms:::instance/*"}}"#)
        .contains("unknown service"));
    assert!(rejects(r#"{"version":"2.0","statement":{"effect":"allow","action":"tat:*","resource":"qcs::tat:::cmd-1"}}"#)
        .contains("type/id"));

    // A bad pattern in a document built in code never grants, always denies.
    let bad_allow = CompiledPolicy::compile(
        "b",
        "b",
        &doc(vec![stmt(Effect::Allow, &["tat:*"], &["cmd-1"], &[])]),
    );
    assert_eq!(bad_allow.problems().len(), 1);
    assert!(!allows(
        &[&bad_allow],
        "tat:DescribeCommands",
        &[cmd("cmd-1")]
    ));
    let bad_deny = CompiledPolicy::compile(
        "d",
        "d",
        &doc(vec![stmt(Effect::Deny, &["tat:*"], &["cmd-1"], &[])]),
    );
    assert!(!allows(
        &[&full(), &bad_deny],
        "tat:DescribeCommands",
        &[cmd("cmd-2")]
    ));

    // Malformed names in the request deny, naming the resource.
    for bad in [
        "ins-1",
        "qcs::tat:ap-guangzhou:uin/1:command",
        "qcs::tat:r:uin/1:command/*",
        "cvm::x:y:z:instance/ins-1",
    ] {
        let d = decide(&[&full()], "tat:DescribeCommands", &[Resource::new(bad)]);
        assert_eq!(
            (d.allowed, d.reason),
            (false, Reason::MalformedResource),
            "{bad}"
        );
        assert_eq!(d.denied_resource.as_deref(), Some(bad));
    }
}

#[test]
fn action_names_compare_case_insensitively() {
    let p = pol(
        "p",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"TAT:describecommands","resource":"*"}]}"#,
    );
    assert!(allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-1")]));
    assert!(allows(&[&p], "Tat:DESCRIBECOMMANDS", &[cmd("cmd-1")]));
    assert!(!allows(&[&p], "tat:DescribeInvocations", &[cmd("cmd-1")]));
    // Resource ids do not fold case.
    let q = pol(
        "q",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"qcs::TAT:AP-Guangzhou::command/cmd-abc"}]}"#,
    );
    assert!(allows(&[&q], "tat:DescribeCommands", &[cmd("cmd-abc")]));
    assert!(!allows(&[&q], "tat:DescribeCommands", &[cmd("cmd-ABC")]));
}

#[test]
fn unknown_and_malformed_actions() {
    assert!(rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:Fly*","resource":"*"}]}"#
    )
    .contains("matches no action"));
    assert!(rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"RunCommand","resource":"*"}]}"#
    )
    .starts_with("statement[0].action[0]:"));
    let d = decide(&[&full()], "tat:Fly", &[]);
    assert_eq!((d.allowed, d.reason), (false, Reason::UnknownAction));
    // A malformed action in a code-built deny fails closed.
    let bad_deny = CompiledPolicy::compile(
        "d",
        "d",
        &doc(vec![stmt(
            Effect::Deny,
            &["tat>DeleteCommand"],
            &["*"],
            &[],
        )]),
    );
    assert!(!allows(
        &[&full(), &bad_deny],
        "tat:DescribeCommands",
        &[cmd("cmd-1")]
    ));
}

#[test]
fn wildcards_in_actions() {
    let p = pol(
        "p",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:Describe*","resource":"*"}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
    assert!(!allows(&[&p], "tat:DeleteCommand", &[cmd("cmd-1")]));
    let star = pol(
        "s",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}"#,
    );
    assert!(allows(&[&star], "cam:AddUser", &[]));
    let mid = pol(
        "m",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*Invocation*","resource":"*"}]}"#,
    );
    assert!(allows(
        &[&mid],
        "tat:CancelInvocation",
        &[cmd("cmd-1"), mi("mi-1")]
    ));
    assert!(!allows(
        &[&mid],
        "tat:RunCommand",
        &[cmd("cmd-1"), mi("mi-1")]
    ));
}

#[test]
fn wildcards_in_resources() {
    let p = pol(
        "p",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:DescribeCommands",
        "resource":["qcs::tat:*:$account:command/cmd-prod-*"]}]}"#,
    );
    assert!(allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-prod-1")]));
    assert!(!allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-dev-1")]));
    let any_svc = pol(
        "a",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:RunCommand",
        "resource":["qcs::*:*:*:*"]}]}"#,
    );
    assert!(allows(
        &[&any_svc],
        "tat:RunCommand",
        &[cmd("c-1"), ins("ins-1"), lh("lhins-1"), mi("mi-1")]
    ));
    // Only `*` alone covers an operation-level action.
    let create = pol(
        "c",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:CreateCommand",
        "resource":["qcs::tat:::command/*"]}]}"#,
    );
    assert!(!allows(&[&create], "tat:CreateCommand", &[]));
}

#[test]
fn empty_region_and_account_segments_match_any() {
    let p = pol(
        "p",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:DescribeCommands",
        "resource":["qcs::tat:::command/cmd-1"]}]}"#,
    );
    assert!(allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-1")]));
    let other = Resource::new(qcs_name("tat", "ap-shanghai", "999", "command", "cmd-1"));
    assert!(allows(
        &[&p],
        "tat:DescribeCommands",
        std::slice::from_ref(&other)
    ));
    // A written account must match.
    let q = pol(
        "q",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:DescribeCommands",
        "resource":["qcs::tat::$account:command/cmd-1"]}]}"#,
    );
    assert!(allows(&[&q], "tat:DescribeCommands", &[cmd("cmd-1")]));
    assert!(!allows(&[&q], "tat:DescribeCommands", &[other]));
}

#[test]
fn deny_overrides_allow_across_policies() {
    let deny = pol(
        "deny",
        r#"{"version":"2.0","statement":[{"effect":"deny","action":"tat:Delete*","resource":"*"}]}"#,
    );
    let f = full();
    for order in [[&f, &deny], [&deny, &f]] {
        let d = decide(&order, "tat:DeleteCommand", &[cmd("cmd-1")]);
        assert_eq!((d.allowed, d.reason), (false, Reason::ExplicitDeny));
        assert_eq!(
            d.deciding,
            vec![StatementRef {
                policy_id: "deny".into(),
                policy_name: "deny".into(),
                statement_index: 0
            }]
        );
    }
    // Within one policy too.
    let both = pol(
        "b",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*"},
        {"effect":"deny","action":"tat:RunCommand","resource":"qcs::tat:::instance/*"}]}"#,
    );
    let d = decide(&[&both], "tat:RunCommand", &[cmd("cmd-1"), mi("mi-1")]);
    assert_eq!(
        (d.reason, d.deciding[0].statement_index),
        (Reason::ExplicitDeny, 1)
    );
    assert!(allows(
        &[&both],
        "tat:RunCommand",
        &[cmd("cmd-1"), ins("ins-1")]
    ));
}

#[test]
fn every_named_resource_must_be_allowed() {
    let p = pol(
        "p",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:RunCommand",
        "resource":["qcs::tat:::command/*","qcs::tat:::instance/mi-a*"]}]}"#,
    );
    assert!(allows(
        &[&p],
        "tat:RunCommand",
        &[cmd("cmd-1"), mi("mi-a1"), mi("mi-a2")]
    ));
    let d = decide(
        &[&p],
        "tat:RunCommand",
        &[cmd("cmd-1"), mi("mi-a1"), mi("mi-b1"), mi("mi-b2")],
    );
    assert_eq!(d.reason, Reason::ImplicitDeny);
    assert_eq!(d.denied_resource, Some(mi("mi-b1").name));
    // Allowed decisions name the statements that allowed.
    let d = decide(&[&p], "tat:RunCommand", &[cmd("cmd-1"), mi("mi-a1")]);
    assert_eq!(d.deciding.len(), 1);
    assert!(d.to_string().starts_with("allowed; policy \"p\""), "{d}");
}

#[test]
fn resources_must_fit_the_action() {
    let f = full();
    let d = decide(&[&f], "tat:DescribeCommands", &[ins("ins-1")]);
    assert_eq!(d.reason, Reason::ResourceNotApplicable);
    let d = decide(&[&f], "tat:CreateCommand", &[cmd("cmd-1")]);
    assert_eq!(d.reason, Reason::ResourceNotApplicable);
    assert!(allows(&[&f], "tat:CreateCommand", &[Resource::new("*")]));
    assert_eq!(resources_for("tat:RunCommand").len(), 4);
}

#[test]
fn unknown_condition_operators_and_keys() {
    let e = rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"string_equal_ignore_case":{"qcs:resource_tag":["env&prod"]}}}]}"#,
    );
    assert!(e.starts_with("statement[0].condition.string_equal_ignore_case.qcs:resource_tag: unknown condition operator"), "{e}");
    let e = rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"string_equal":{"qcs:weather":["sunny"]}}}]}"#,
    );
    assert!(e.contains("unknown condition key"), "{e}");
    let e = rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"ip_equal":{"qcs:resource_tag":["env&prod"]}}}]}"#,
    );
    assert!(e.contains("does not apply"), "{e}");
    // Reaching evaluation anyway: an allow never applies, a deny always does.
    let c = [(
        "string_equal_ignore_case",
        "qcs:resource_tag",
        &["env&prod"][..],
    )];
    let allow = allow_all_with(&c);
    let prod = Resource::with_tags(cmd("cmd-1").name, &[("env", "prod")]);
    assert!(!allows(
        &[&allow],
        "tat:DescribeCommands",
        std::slice::from_ref(&prod)
    ));
    let deny =
        CompiledPolicy::compile("d", "d", &doc(vec![stmt(Effect::Deny, &["*"], &["*"], &c)]));
    assert!(!allows(
        &[&full(), &deny],
        "tat:DescribeCommands",
        &[cmd("cmd-2")]
    ));
}

#[test]
fn ip_conditions() {
    let p = pol(
        "ip",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"ip_equal":{"qcs:ip":["10.0.0.0/8","192.168.1.7"]}}}]}"#,
    );
    let at = |ip: &str| Context {
        source_ip: Some(ip.parse().unwrap()),
        ..Context::default()
    };
    assert!(decide_in(&[&p], "tat:CreateCommand", &[], &at("10.1.2.3")).allowed);
    assert!(decide_in(&[&p], "tat:CreateCommand", &[], &at("192.168.1.7")).allowed);
    assert!(!decide_in(&[&p], "tat:CreateCommand", &[], &at("192.168.1.8")).allowed);
    assert!(
        !decide(&[&p], "tat:CreateCommand", &[]).allowed,
        "unknown source never allows"
    );
    let outside = pol(
        "out",
        r#"{"version":"2.0","statement":[{"effect":"deny","action":"*","resource":"*",
        "condition":{"ip_not_equal":{"qcs:ip":"10.0.0.0/8"}}}]}"#,
    );
    let f = full();
    assert!(decide_in(&[&f, &outside], "tat:CreateCommand", &[], &at("10.9.9.9")).allowed);
    assert!(!decide_in(&[&f, &outside], "tat:CreateCommand", &[], &at("8.8.8.8")).allowed);
    assert!(
        !decide(&[&f, &outside], "tat:CreateCommand", &[]).allowed,
        "unknown source: deny applies"
    );
    assert!(rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"ip_equal":{"qcs:ip":"10.0.0.0/40"}}}]}"#
    )
    .contains("CIDR"));
}

#[test]
fn tag_conditions() {
    let p = pol(
        "tag",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":["tat:DescribeCommands","tat:RunCommand"],"resource":"*",
        "condition":{"string_equal":{"qcs:resource_tag":["team&ops","team&sre"]}}}]}"#,
    );
    let ops = Resource::with_tags(cmd("cmd-1").name, &[("env", "prod"), ("team", "ops")]);
    let dev = Resource::with_tags(cmd("cmd-2").name, &[("team", "dev")]);
    let host = Resource::with_tags(mi("mi-1").name, &[("team", "sre")]);
    assert!(allows(
        &[&p],
        "tat:DescribeCommands",
        std::slice::from_ref(&ops)
    ));
    assert!(!allows(
        &[&p],
        "tat:DescribeCommands",
        std::slice::from_ref(&dev)
    ));
    assert!(
        !allows(&[&p], "tat:DescribeCommands", &[cmd("cmd-3")]),
        "untagged"
    );
    assert!(allows(
        &[&p],
        "tat:RunCommand",
        &[ops.clone(), host.clone()]
    ));
    assert!(!allows(&[&p], "tat:RunCommand", &[ops.clone(), mi("mi-2")]));

    let like = pol(
        "like",
        r#"{"version":"2.0","statement":[{"effect":"deny","action":"tat:*","resource":"*",
        "condition":{"string_like":{"qcs:resource_tag":"env&prod*"}}}]}"#,
    );
    let f = full();
    assert!(!allows(
        &[&f, &like],
        "tat:DescribeCommands",
        std::slice::from_ref(&ops)
    ));
    assert!(allows(
        &[&f, &like],
        "tat:DescribeCommands",
        std::slice::from_ref(&dev)
    ));

    let not = pol(
        "not",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:DescribeCommands","resource":"*",
        "condition":{"string_not_equal":{"qcs:resource_tag":"team&dev"}}}]}"#,
    );
    assert!(allows(&[&not], "tat:DescribeCommands", &[ops]));
    assert!(!allows(&[&not], "tat:DescribeCommands", &[dev]));

    let req = pol(
        "req",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:CreateCommand","resource":"*",
        "condition":{"string_equal":{"qcs:request_tag":"team&ops"}}}]}"#,
    );
    let tagged = Context {
        request_tags: vec![("team".into(), "ops".into())],
        ..Context::default()
    };
    assert!(decide_in(&[&req], "tat:CreateCommand", &[], &tagged).allowed);
    assert!(!decide(&[&req], "tat:CreateCommand", &[]).allowed);
    assert!(rejects(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":"*",
        "condition":{"string_equal":{"qcs:resource_tag":"team"}}}]}"#
    )
    .contains("key&value"));
}

#[test]
fn task_results_need_one_allowed_resource_and_no_deny() {
    let by_instance = pol(
        "i",
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:DescribeInvocationTasks",
        "resource":"qcs::tat:::instance/mi-1"}]}"#,
    );
    assert!(allows(
        &[&by_instance],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-9"), mi("mi-1")]
    ));
    assert!(!allows(
        &[&by_instance],
        "tat:DescribeInvocationTasks",
        &[cmd("cmd-9"), mi("mi-2")]
    ));
}

#[test]
fn document_validation_points_at_the_bad_part() {
    let cases = [
        (r#"[1]"#, "document: must be a JSON object"),
        (r#"{"statement":[]}"#, "version: missing; write \"version\": \"2.0\""),
        (r#"{"version":"1.0","statement":[{"effect":"allow","action":"*","resource":"*"}]}"#, "version: \"1.0\" is not a supported version; write \"2.0\""),
        (r#"{"version":"2.0","statement":[{"effect":"permit","action":"*","resource":"*"}]}"#, "statement[0].effect: \"permit\" is neither allow nor deny"),
        (r#"{"version":"2.0","statement":[{"effect":"allow","action":"*"}]}"#, "statement[0].resource: missing"),
        (r#"{"version":"2.0","statement":[{"effect":"allow","action":[],"resource":"*"}]}"#, "statement[0].action: must name at least one action"),
        (r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","principal":{"qcs":["*"]}}]}"#, "statement[0].principal: principal is not allowed in a policy attached to users and groups"),
        (r#"{"version":"2.0","statement":[{"effect":"allow","action":"*","resource":"*","Sid":"x"}]}"#, "statement[0].Sid: unknown field"),
    ];
    for (text, want) in cases {
        assert_eq!(rejects(text), want);
    }
    assert_eq!(parse_document("{").unwrap_err().part(), Part::Document);
    let e = parse_document(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:Nope","resource":"*"}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.part(), Part::Action);
}

#[test]
fn documents_round_trip_through_json() {
    let text = seed(
        r#"{"version":"2.0","statement":[{"effect":"allow","action":"tat:*","resource":["*"],
        "condition":{"string_equal":{"qcs:resource_tag":["a&b"]},"ip_equal":{"qcs:ip":["10.0.0.0/8"]}}}]}"#,
    );
    let d = parse_document(&text).unwrap();
    assert_eq!(parse_document(&d.to_json().to_string()).unwrap(), d);
}
