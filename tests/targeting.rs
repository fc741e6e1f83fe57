//! Fleet operations against a real server and real agents: instance tags
//! (agent flags, register codes, ModifyInstanceTags), target selectors on
//! RunCommand / InvokeCommand / invokers, and rate control (MaxConcurrency
//! waves, MaxErrors stopping a roll-out).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// Starts an agent with `--tag` flags and the given register code value,
/// and waits until it is registered and online.
async fn tagged_agent(h: &mut Harness, code: &str, tags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.arg("agent")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--server")
        .arg(h.url())
        .arg("--register-code")
        .arg(code);
    for t in tags {
        cmd.arg("--tag").arg(t);
    }
    let child = cmd
        .env_remove("DROVER_SERVER")
        .env_remove("DROVER_REGISTER_CODE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = dir.path().to_path_buf();
    let id = wait_for("agent registration", T, || {
        let d = d.clone();
        async move { saved_instance_id(&d) }
    })
    .await;
    h.agents.push(Agent {
        dir,
        child: Some(child),
        instance_id: id.clone(),
    });
    h.wait_online(std::slice::from_ref(&id)).await;
    id
}

async fn tags_of(h: &Harness, id: &str) -> Value {
    let r = h
        .call("DescribeRegisterInstances", json!({"InstanceIds": [id]}))
        .await;
    r["RegisterInstanceSet"][0]["Tags"].clone()
}

async fn set_tags(h: &Harness, id: &str, tags: Value) {
    h.call(
        "ModifyInstanceTags",
        json!({"InstanceId": id, "Tags": tags}),
    )
    .await;
}

fn task_instances(inv: &Value) -> Vec<String> {
    let mut v: Vec<String> = inv["InvocationTaskBasicInfoSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["InstanceId"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_from_agent_flags_and_register_codes_and_the_api() {
    let mut h = Harness::start().await;
    let code = h
        .call(
            "CreateRegisterCode",
            json!({
                "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ops"}],
                "AllowedAgentTagKeys": ["env", "rack"],
            }),
        )
        .await;
    let shown = h
        .call(
            "DescribeRegisterCodes",
            json!({"RegisterCodeIds": [code["RegisterCodeId"]]}),
        )
        .await;
    assert_eq!(
        shown["RegisterCodeSet"][0]["Tags"],
        json!([{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ops"}])
    );
    assert_eq!(
        shown["RegisterCodeSet"][0]["AllowedAgentTagKeys"],
        json!(["env", "rack"])
    );
    let value = code["RegisterCodeValue"].as_str().unwrap().to_string();
    // On a clash the register code's value wins over the agent's flag.
    let a = tagged_agent(&mut h, &value, &["env=dev", "rack=r1"]).await;
    assert_eq!(
        tags_of(&h, &a).await,
        json!([
            {"Key": "rack", "Value": "r1"},
            {"Key": "env", "Value": "prod"},
            {"Key": "team", "Value": "ops"}
        ])
    );
    let env_only = h
        .call(
            "CreateRegisterCode",
            json!({"AllowedAgentTagKeys": ["env"]}),
        )
        .await;
    let env_only = env_only["RegisterCodeValue"].as_str().unwrap().to_string();
    let b = tagged_agent(&mut h, &env_only, &["env=dev"]).await;
    assert_eq!(
        tags_of(&h, &b).await,
        json!([{"Key": "env", "Value": "dev"}])
    );

    // Retagging through the API replaces the list; a reconnect keeps it.
    set_tags(&h, &b, json!([{"Key": "env", "Value": "stage"}])).await;
    let i = h.agents.iter().position(|x| x.instance_id == b).unwrap();
    h.agents[i].kill();
    h.wait_status(std::slice::from_ref(&b), "Offline").await;
    h.agents[i].restart();
    h.wait_online(std::slice::from_ref(&b)).await;
    assert_eq!(
        tags_of(&h, &b).await,
        json!([{"Key": "env", "Value": "stage"}])
    );
    let filtered = h
        .call(
            "DescribeRegisterInstances",
            json!({"Filters": [{"Name": "tag:env", "Values": ["stage"]}]}),
        )
        .await;
    assert_eq!(filtered["TotalCount"], 1);
    set_tags(&h, &b, json!([])).await;
    assert_eq!(tags_of(&h, &b).await, json!([]));

    // Bad input is refused and changes nothing.
    let e = h
        .call_err(
            "ModifyInstanceTags",
            json!({"InstanceId": "mi-00000000", "Tags": []}),
        )
        .await;
    assert_eq!(code_of(&e), "ResourceNotFound.InstanceNotFound");
    let e = h
        .call_err("ModifyInstanceTags", json!({"InstanceId": a}))
        .await;
    assert_eq!(code_of(&e), "MissingParameter");
    let many: Vec<Value> = (0..11)
        .map(|n| json!({"Key": format!("k{n}"), "Value": "v"}))
        .collect();
    let e = h
        .call_err("ModifyInstanceTags", json!({"InstanceId": a, "Tags": many}))
        .await;
    assert_eq!(code_of(&e), "InvalidParameterValue.LimitExceeded");
    let e = h
        .call_err(
            "CreateRegisterCode",
            json!({"Tags": [{"Key": "", "Value": "x"}]}),
        )
        .await;
    assert_eq!(code_of(&e), "InvalidParameterValue");
    assert_eq!(tags_of(&h, &a).await.as_array().unwrap().len(), 3);
}

fn code_of(e: &ClientError) -> String {
    common::code(e).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_reach_exactly_the_selected_instances() {
    let mut h = Harness::start().await;
    h.add_agents(3).await;
    let ids = h.agent_ids();
    set_tags(&h, &ids[0], json!([{"Key": "env", "Value": "prod"}])).await;
    set_tags(
        &h,
        &ids[1],
        json!([{"Key": "env", "Value": "prod"}, {"Key": "role", "Value": "db"}]),
    )
    .await;
    set_tags(&h, &ids[2], json!([{"Key": "env", "Value": "dev"}])).await;

    let sel = json!([{"Key": "tag:env", "Values": ["prod"]}]);
    let r = h
        .call(
            "RunCommand",
            json!({"Content": b64("echo hi"), "Targets": sel}),
        )
        .await;
    let inv = r["InvocationId"].as_str().unwrap();
    let tasks = h.wait_final(inv, T).await;
    assert!(tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"));
    let shown = h.invocation(inv).await;
    let mut want = vec![ids[0].clone(), ids[1].clone()];
    want.sort();
    assert_eq!(task_instances(&shown), want);
    assert_eq!(shown["Targets"], sel);
    assert!(shown.get("MaxConcurrency").is_none());

    // ANDed entries, and InvokeCommand with tag-key.
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "t", "Content": b64("echo x")}),
        )
        .await;
    let r = h
        .call(
            "InvokeCommand",
            json!({"CommandId": cmd["CommandId"], "Targets": [
                {"Key": "tag-key", "Values": ["role"]},
                {"Key": "tag:env", "Values": ["prod", "dev"]}
            ]}),
        )
        .await;
    let shown = h.invocation(r["InvocationId"].as_str().unwrap()).await;
    assert_eq!(task_instances(&shown), vec![ids[1].clone()]);
    let r = h
        .call(
            "InvokeCommand",
            json!({"CommandId": cmd["CommandId"], "Targets": [{"Key": "all"}]}),
        )
        .await;
    let shown = h.invocation(r["InvocationId"].as_str().unwrap()).await;
    assert_eq!(task_instances(&shown).len(), 3);

    // `drover run --target` sends the same selector, with rate control.
    let cli = Command::new(env!("CARGO_BIN_EXE_drover"))
        .args(["run", "--server", &h.url(), "--ca-file"])
        .arg(h.data_dir().join("tls").join("cert.pem"))
        .args(["--target", "tag:env=prod", "--max-concurrency", "1"])
        .args(["--max-errors", "0", "--", "echo", "via-cli"])
        .env("TENCENTCLOUD_SECRET_ID", &h.secret_id)
        .env("TENCENTCLOUD_SECRET_KEY", &h.secret_key)
        .env_remove("DROVER_PROFILE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.status.success(), "{text}");
    assert_eq!(text.matches("via-cli").count(), 2, "{text}");

    // Id-list invocations keep TAT's shape.
    let plain = h.run("true", &ids[..1], json!({})).await;
    assert!(h.invocation(&plain).await.get("Targets").is_none());

    // Errors change nothing.
    let before = h.counts().await;
    let cases = [
        (
            json!({"Content": b64("true"), "Targets": [{"Key": "tag:env", "Values": ["none"]}]}),
            "InvalidParameterValue.NoInstanceMatched",
        ),
        (
            json!({"Content": b64("true"), "Targets": sel, "InstanceIds": [ids[0]]}),
            "InvalidParameter",
        ),
        (json!({"Content": b64("true")}), "MissingParameter"),
        (
            json!({"Content": b64("true"), "Targets": [{"Key": "name", "Values": ["x"]}]}),
            "InvalidParameterValue",
        ),
        (
            json!({"Content": b64("true"), "Targets": sel, "MaxConcurrency": "0"}),
            "InvalidParameterValue",
        ),
        (
            json!({"Content": b64("true"), "Targets": sel, "MaxErrors": "101%"}),
            "InvalidParameterValue",
        ),
    ];
    for (params, want) in cases {
        let e = h.call_err("RunCommand", params.clone()).await;
        assert_eq!(code_of(&e), want, "{params}");
    }
    assert_eq!(h.counts().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_is_no_way_around_a_denied_instance() {
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    for id in &ids {
        set_tags(&h, id, json!([{"Key": "env", "Value": "prod"}])).await;
    }
    let cam = |action: &'static str, p: Value| {
        let c = &h.client;
        async move {
            c.call_as("cam", "2019-01-16", action, &p)
                .await
                .unwrap_or_else(|e| panic!("{action}: {e}"))
        }
    };
    let owner = cam("GetUserAppId", json!({})).await["OwnerUin"]
        .as_str()
        .map(String::from)
        .unwrap_or_default();
    let user = cam("AddUser", json!({"Name": "operator1", "UseApi": 1})).await;
    let denied = format!("qcs::tat:ap-guangzhou:uin/{owner}:instance/{}", ids[1]);
    let doc = json!({"version": "2.0", "statement": [
        {"effect": "allow", "action": ["tat:*"], "resource": ["*"]},
        {"effect": "deny", "action": ["tat:RunCommand", "tat:InvokeCommand"], "resource": [denied]}
    ]});
    let pid = cam(
        "CreatePolicy",
        json!({"PolicyName": "ops_no_db", "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": user["Uin"]}),
    )
    .await;
    let sub = h.client_as(
        user["SecretId"].as_str().unwrap(),
        user["SecretKey"].as_str().unwrap(),
    );
    let before = h.counts().await;
    let e = sub
        .call(
            "RunCommand",
            &json!({"Content": b64("true"), "Targets": [{"Key": "tag:env", "Values": ["prod"]}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AuthFailure.UnauthorizedOperation");
    // The denial does not say which instance carries the tag.
    assert!(!e.to_string().contains(&ids[1]), "{e}");
    assert_eq!(h.counts().await, before);
    // The allowed instance alone is fine, by id or by a selector.
    set_tags(&h, &ids[1], json!([])).await;
    let r = sub
        .call(
            "RunCommand",
            &json!({"Content": b64("true"), "Targets": [{"Key": "tag:env", "Values": ["prod"]}]}),
        )
        .await
        .unwrap();
    let shown = h.invocation(r["InvocationId"].as_str().unwrap()).await;
    assert_eq!(task_instances(&shown), vec![ids[0].clone()]);
}

/// (start, end) nanoseconds a task's script printed.
fn span(task: &Value) -> (u128, u128) {
    let out = output_of(task);
    let mut it = out.split_whitespace().map(|n| n.parse::<u128>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_one_runs_one_task_at_a_time() {
    // Waiting tasks must outlast the delivery deadline without being swept.
    let mut h = Harness::start_with(drover::dispatch::Settings {
        deliver_timeout_ms: 2_000,
        ..test_settings()
    })
    .await;
    h.add_agents(3).await;
    let ids = h.agent_ids();
    let script = "s=$(date +%s%N); sleep 1.2; echo $s $(date +%s%N)";
    let inv = h.run(script, &ids, json!({"MaxConcurrency": 1})).await;
    let shown = h.invocation(&inv).await;
    assert_eq!(shown["MaxConcurrency"], "1");
    let held = h.tasks(&inv, true).await;
    assert_eq!(
        held.iter().filter(|t| t["TaskStatus"] == "PENDING").count(),
        2,
        "two tasks wait while one runs"
    );
    let tasks = h.wait_final(&inv, T).await;
    assert!(
        tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"),
        "{tasks:?}"
    );
    let mut spans: Vec<(u128, u128)> = tasks.iter().map(span).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "tasks overlapped: {spans:?}");
    }

    // A percentage rounds up: 50% of 3 is 2 at a time.
    let inv = h
        .run("sleep 1", &ids, json!({"MaxConcurrency": "50%"}))
        .await;
    let waiting = h.tasks(&inv, true).await;
    assert_eq!(
        waiting
            .iter()
            .filter(|t| t["TaskStatus"] == "PENDING")
            .count(),
        1
    );
    h.wait_final(&inv, T).await;

    // CancelInvocation also ends the tasks still waiting.
    let inv = h.run("sleep 30", &ids, json!({"MaxConcurrency": 1})).await;
    h.wait_task_status(&inv, "RUNNING", T).await;
    h.call("CancelInvocation", json!({"InvocationId": inv}))
        .await;
    let tasks = h.wait_final(&inv, T).await;
    let count = |s: &str| tasks.iter().filter(|t| t["TaskStatus"] == s).count();
    assert_eq!((count("TERMINATED"), count("CANCELLED")), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_errors_stops_the_wave_and_cancels_the_rest() {
    let mut h = Harness::start().await;
    h.add_agents(4).await;
    let ids = h.agent_ids();
    let inv = h
        .run(
            "echo failing; exit 3",
            &ids,
            json!({"MaxConcurrency": "1", "MaxErrors": 1}),
        )
        .await;
    let tasks = h.wait_final(&inv, T).await;
    let failed: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["TaskStatus"] == "FAILED")
        .collect();
    let cancelled: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["TaskStatus"] == "CANCELLED")
        .collect();
    assert_eq!((failed.len(), cancelled.len()), (2, 2), "{tasks:?}");
    for t in cancelled {
        assert_eq!(
            t["ErrorInfo"],
            "not started: 2 tasks failed, more than MaxErrors 1"
        );
    }
    let shown = h.invocation(&inv).await;
    assert_eq!(shown["MaxErrors"], "1");
    // Some tasks failed, the rest were cancelled: TAT names that state so.
    assert_eq!(shown["InvocationStatus"], "PARTIAL_CANCELLED");

    // MaxErrors without a limit on concurrency: everything runs at once,
    // and successes never stop anything.
    let inv = h.run("true", &ids, json!({"MaxErrors": "0"})).await;
    let tasks = h.wait_final(&inv, T).await;
    assert!(tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_out_survives_a_server_restart() {
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    let inv = h.run("sleep 1", &ids, json!({"MaxConcurrency": 1})).await;
    h.wait_task_status(&inv, "RUNNING", T).await;
    // The running task may end while the server is down (the agent reports
    // it on reconnect); the waiting one lives in the database only, and must
    // still be released after the restart.
    h.stop_server().await;
    h.start_server().await;
    let tasks = h.wait_final(&inv, T).await;
    assert!(
        tasks.iter().all(|t| t["TaskStatus"] == "SUCCESS"),
        "{tasks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoker_resolves_its_targets_at_each_trigger() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "t", "Content": b64("echo tick")}),
        )
        .await;
    let sel = json!([{"Key": "tag:role", "Values": ["web"]}]);
    let ivk = h
        .call(
            "CreateInvoker",
            json!({
                "Name": "web", "Type": "SCHEDULE", "CommandId": cmd["CommandId"],
                "Targets": sel, "MaxConcurrency": "50%",
                "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "*/1 * * * * *"},
            }),
        )
        .await["InvokerId"]
        .clone();
    let shown = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert_eq!(shown["InvokerSet"][0]["Targets"], sel);
    assert_eq!(shown["InvokerSet"][0]["MaxConcurrency"], "50%");
    let records = || async {
        h.call("DescribeInvokerRecords", json!({"InvokerIds": [ivk]}))
            .await["InvokerRecordSet"]
            .as_array()
            .unwrap()
            .clone()
    };
    // Nothing tagged yet: the trigger is recorded as failed, with why.
    let failed = wait_for("a failed trigger", T, || async {
        records()
            .await
            .into_iter()
            .find(|r| r["Result"] == "FAILED")
    })
    .await;
    assert!(
        failed["Reason"]
            .as_str()
            .unwrap()
            .contains("no registered instance matches Targets"),
        "{failed}"
    );
    // Once tagged, the next trigger reaches the instance.
    set_tags(&h, &id, json!([{"Key": "role", "Value": "web"}])).await;
    let fired = wait_for("a trigger with an invocation", T, || async {
        records()
            .await
            .into_iter()
            .find(|r| r["InvocationId"].as_str().is_some_and(|s| !s.is_empty()))
    })
    .await;
    h.call("DisableInvoker", json!({"InvokerId": ivk})).await;
    let shown = h.invocation(fired["InvocationId"].as_str().unwrap()).await;
    assert_eq!(task_instances(&shown), vec![id.clone()]);
    assert_eq!(shown["Targets"], sel);
    assert_eq!(shown["MaxConcurrency"], "50%");

    // InstanceIds and Targets replace each other; both at once is refused.
    let e = h
        .call_err(
            "ModifyInvoker",
            json!({"InvokerId": ivk, "InstanceIds": [id], "Targets": sel}),
        )
        .await;
    assert_eq!(code_of(&e), "InvalidParameter");
    h.call(
        "ModifyInvoker",
        json!({"InvokerId": ivk, "InstanceIds": [id], "MaxErrors": "1"}),
    )
    .await;
    let shown = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    let i = &shown["InvokerSet"][0];
    assert!(i.get("Targets").is_none(), "{i}");
    assert_eq!(i["InstanceIds"], json!([id]));
    assert_eq!(
        (&i["MaxConcurrency"], &i["MaxErrors"]),
        (&json!("50%"), &json!("1"))
    );
    // An empty string clears one limit and leaves the other.
    h.call(
        "ModifyInvoker",
        json!({"InvokerId": ivk, "MaxConcurrency": ""}),
    )
    .await;
    let shown = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    let i = &shown["InvokerSet"][0];
    assert!(i.get("MaxConcurrency").is_none(), "{i}");
    assert_eq!(i["MaxErrors"], "1");
}

/// Runs an agent that must be refused at registration; returns its exit
/// code and what it printed on stderr.
async fn refused_agent(h: &Harness, code: &str, tags: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.arg("agent")
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--server")
        .arg(h.url())
        .arg("--register-code")
        .arg(code);
    for t in tags {
        cmd.arg("--tag").arg(t);
    }
    let out = cmd
        .env_remove("DROVER_SERVER")
        .env_remove("DROVER_REGISTER_CODE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(T, out)
        .await
        .expect("a refused agent exits")
        .unwrap();
    assert!(saved_instance_id(dir.path()).is_none(), "no identity saved");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Finding "register codes and tags": a machine holding a register code is
/// not an authority over the tags that decide targeting and policy. Only
/// keys the code allows (AllowedAgentTagKeys) may come from the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_tags_are_refused_unless_the_register_code_allows_their_key() {
    let mut h = Harness::start().await;
    let role_only = h
        .call(
            "CreateRegisterCode",
            json!({"AllowedAgentTagKeys": ["role"]}),
        )
        .await;
    let role_only_id = role_only["RegisterCodeId"].as_str().unwrap().to_string();
    let role_only = role_only["RegisterCodeValue"].as_str().unwrap().to_string();
    let tagless = h.code_value.clone();
    // (code, agent tags, refused on key)
    let cases: [(&str, &[&str], Option<&str>); 4] = [
        (&tagless, &["env=prod"], Some("env")),
        (&role_only, &["env=prod"], Some("env")),
        (&role_only, &["role=web", "env=prod"], Some("env")),
        (&role_only, &["role=web"], None),
    ];
    for (code, tags, refused) in cases {
        let before = h.instance_count().await;
        match refused {
            Some(key) => {
                let (status, stderr) = refused_agent(&h, code, tags).await;
                assert_eq!(status, Some(1), "{tags:?}: {stderr}");
                assert!(
                    stderr.contains("TagKeyNotAllowed") && stderr.contains(&format!("{key:?}")),
                    "{tags:?}: {stderr}"
                );
                assert_eq!(
                    h.instance_count().await,
                    before,
                    "{tags:?}: nothing registered"
                );
            }
            None => {
                let id = tagged_agent(&mut h, code, tags).await;
                assert_eq!(
                    tags_of(&h, &id).await,
                    json!([{"Key": "role", "Value": "web"}])
                );
                assert_eq!(h.instance_count().await, before + 1);
            }
        }
    }
    // A refused registration does not use up the code.
    let codes = h
        .call(
            "DescribeRegisterCodes",
            json!({"RegisterCodeIds": [role_only_id]}),
        )
        .await;
    assert_eq!(codes["RegisterCodeSet"][0]["RegisteredCount"], 1);
    // The prod selector reaches nothing: no secret, no script goes anywhere.
    let (_, invocations) = h.counts().await;
    let e = h
        .call_err(
            "RunCommand",
            json!({"Content": b64("echo leaked"), "Targets": [{"Key": "tag:env", "Values": ["prod"]}]}),
        )
        .await;
    assert_eq!(code_of(&e), "InvalidParameterValue.NoInstanceMatched");
    assert_eq!(h.counts().await.1, invocations, "no invocation written");
    // The allowed key works as a selector.
    let r = h
        .call(
            "RunCommand",
            json!({"Content": b64("echo web"), "Targets": [{"Key": "tag:role", "Values": ["web"]}]}),
        )
        .await;
    let tasks = h.wait_final(r["InvocationId"].as_str().unwrap(), T).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["TaskStatus"], "SUCCESS");
    // Bad allow-lists are refused.
    for bad in [json!([""]), json!(["a", "a"]), json!("role")] {
        let e = h
            .call_err("CreateRegisterCode", json!({"AllowedAgentTagKeys": bad}))
            .await;
        assert!(code_of(&e).starts_with("InvalidParameter"), "{bad}: {e}");
    }
}
