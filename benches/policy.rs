//! Evaluator benchmark: a user with 20 attached policies of 20 statements
//! each (allows and denies, wildcards, tag and ip conditions), deciding a
//! single-resource read and a RunCommand over one command and ten instances.
//!
//! Run: CARGO_TARGET_DIR=... cargo bench --bench policy

// Benchmark code fails loudly on a broken fixture, as tests do.
#![allow(clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use drover::policy::{evaluate, CompiledPolicy, Context, Request, Resource, ResourceKind};

const OWNER: &str = "100000000001";
const REGION: &str = "ap-guangzhou";

fn statement(p: usize, s: usize) -> String {
    let effect = if s % 7 == 6 { "deny" } else { "allow" };
    let actions = match s % 5 {
        0 => r#"["tat:Describe*","tat:Preview*"]"#.to_string(),
        1 => r#"["tat:InvokeCommand","tat:RunCommand"]"#.to_string(),
        2 => r#"["tat:ModifyCommand","tat:DeleteCommand","tat:CancelInvocation"]"#.to_string(),
        3 => r#"["tat:RunCommand"]"#.to_string(),
        _ => r#"["tat:DescribeInvocationTasks","tat:DescribeInvocations"]"#.to_string(),
    };
    let resources = format!(
        r#"["qcs::tat:{REGION}:uin/{OWNER}:command/cmd-p{p}s{s}*","qcs::tat::uin/{OWNER}:instance/mi-{p}{s}*","qcs::cvm:::instance/ins-{p}-{s}"]"#
    );
    let condition = match s % 4 {
        0 => r#","condition":{"string_equal":{"qcs:resource_tag":["team&ops","env&prod"]}}"#,
        1 => r#","condition":{"ip_equal":{"qcs:ip":["10.0.0.0/8","192.168.0.0/16"]}}"#,
        2 => r#","condition":{"string_like":{"qcs:resource_tag":"owner&ann*"}}"#,
        _ => "",
    };
    format!(r#"{{"effect":"{effect}","action":{actions},"resource":{resources}{condition}}}"#)
}

fn policies() -> Vec<CompiledPolicy> {
    (0..20)
        .map(|p| {
            let mut stmts: Vec<String> = (0..19).map(|s| statement(p, s)).collect();
            if p == 19 {
                // The statement that finally allows the requests below.
                stmts.push(format!(
                    r#"{{"effect":"allow","action":["tat:RunCommand","tat:DescribeCommands"],"resource":["qcs::tat:{REGION}:uin/{OWNER}:command/cmd-target","qcs::tat:::instance/mi-fleet-*"],"condition":{{"string_equal":{{"qcs:resource_tag":"team&ops"}}}}}}"#
                ));
            } else {
                stmts.push(statement(p, 19));
            }
            let text = format!(r#"{{"version":"2.0","statement":[{}]}}"#, stmts.join(","));
            match CompiledPolicy::from_text(format!("{p}"), format!("policy-{p}"), &text) {
                Ok(c) => c,
                Err(e) => panic!("benchmark policy {p} does not parse: {e}"),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let compiled = policies();
    let refs: Vec<&CompiledPolicy> = compiled.iter().collect();
    assert_eq!(refs.iter().map(|p| p.statement_count()).sum::<usize>(), 400);
    let tags = [("team", "ops"), ("env", "prod")];
    let command = Resource::with_tags(
        ResourceKind::Command.qcs(REGION, OWNER, "cmd-target"),
        &tags,
    );
    let mut run = vec![command.clone()];
    run.extend((0..10).map(|i| {
        Resource::with_tags(
            ResourceKind::ManagedInstance.qcs(REGION, OWNER, &format!("mi-fleet-{i:02}")),
            &tags,
        )
    }));
    let ctx = Context {
        source_ip: "10.1.2.3".parse().ok(),
        request_tags: Vec::new(),
        ..Context::default()
    };
    let one = [command];

    let describe = Request {
        action: "tat:DescribeCommands",
        resources: &one,
        context: &ctx,
    };
    assert!(evaluate(&describe, &refs).allowed);
    c.bench_function(
        "evaluate DescribeCommands, 20x20 statements, 1 resource",
        |b| b.iter(|| evaluate(black_box(&describe), black_box(&refs))),
    );

    let runcmd = Request {
        action: "tat:RunCommand",
        resources: &run,
        context: &ctx,
    };
    assert!(evaluate(&runcmd, &refs).allowed);
    c.bench_function(
        "evaluate RunCommand, 20x20 statements, 1 command + 10 instances",
        |b| b.iter(|| evaluate(black_box(&runcmd), black_box(&refs))),
    );

    let denied = Request {
        action: "tat:DeleteCommand",
        resources: &one,
        context: &ctx,
    };
    assert!(!evaluate(&denied, &refs).allowed);
    c.bench_function(
        "evaluate DeleteCommand (implicit deny), 20x20 statements",
        |b| b.iter(|| evaluate(black_box(&denied), black_box(&refs))),
    );

    c.bench_function("compile 20 policies of 20 statements", |b| b.iter(policies));
}

criterion_group!(benches, bench);
criterion_main!(benches);
