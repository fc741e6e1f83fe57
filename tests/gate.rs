//! The gate against a real server and real agents, driven by real
//! sub-users (issue 8): a run is decided on exactly what runs, invokers
//! keep their creator's authority at every trigger, a secret's value is
//! data and never code, and denials reveal nothing (list sizes checked
//! first, a missing id looks like a forbidden one, a list with no possible
//! permission is refused).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

async fn cam(h: &Harness, action: &str, p: Value) -> Value {
    h.client
        .call_as("cam", "2019-01-16", action, &p)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

async fn owner(h: &Harness) -> String {
    cam(h, "GetUserAppId", json!({})).await["OwnerUin"]
        .as_str()
        .unwrap()
        .to_string()
}

fn qcs(owner: &str, kind: &str, id: &str) -> String {
    format!("qcs::tat:ap-guangzhou:uin/{owner}:{kind}/{id}")
}

/// A sub-user with API keys and one policy of these statements; returns
/// (uin, name, policy id, client).
async fn sub_user(h: &Harness, name: &str, statements: Value) -> (String, String, Value, Client) {
    let u = cam(h, "AddUser", json!({"Name": name, "UseApi": 1})).await;
    let doc = json!({"version": "2.0", "statement": statements});
    let pid = cam(
        h,
        "CreatePolicy",
        json!({"PolicyName": format!("p_{name}"), "PolicyDocument": doc.to_string()}),
    )
    .await["PolicyId"]
        .clone();
    cam(
        h,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": u["Uin"]}),
    )
    .await;
    let client = h.client_as(
        u["SecretId"].as_str().unwrap(),
        u["SecretKey"].as_str().unwrap(),
    );
    (u["Uin"].to_string(), name.to_string(), pid, client)
}

fn random_value() -> String {
    format!("v{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

/// Item 2: the owner flips a command between a harmless and a secret-using
/// text while a sub-user denied tat:UseSecret invokes it over and over.
/// Whatever interleaving happens, a run is decided on the content it
/// delivers: no delivered output ever holds the secret (reversed, so the
/// agent's mask cannot hide a leak).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_flipped_while_invoking_never_delivers_a_denied_secret() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let value = random_value();
    h.call(
        "CreateSecret",
        json!({"SecretName": "flip", "SecretValue": value}),
    )
    .await;
    let harmless = b64("echo harmless");
    let leaky = b64("echo \"{{secret:flip}}\" | rev");
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "flip", "Content": harmless}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, _, sub) = sub_user(
        &h,
        "flipper",
        json!([
            {"effect": "allow", "action": ["tat:InvokeCommand", "tat:Describe*"], "resource": ["*"]},
            {"effect": "deny", "action": ["tat:UseSecret"], "resource": ["*"]}
        ]),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let client = h.client_as(&h.secret_id, &h.secret_key);
        let (stop, cmd) = (stop.clone(), cmd.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let content = if n.is_multiple_of(2) {
                    &leaky
                } else {
                    &harmless
                };
                let _ = client
                    .call(
                        "ModifyCommand",
                        &json!({"CommandId": cmd, "Content": content}),
                    )
                    .await;
                n += 1;
            }
            n
        })
    };
    let (mut ran, mut denied) = (Vec::new(), 0);
    for _ in 0..60 {
        match sub
            .call(
                "InvokeCommand",
                &json!({"CommandId": cmd, "InstanceIds": [id]}),
            )
            .await
        {
            Ok(r) => ran.push(r["InvocationId"].as_str().unwrap().to_string()),
            Err(e) => {
                assert_eq!(code(&e), "AuthFailure.UnauthorizedOperation", "{e}");
                denied += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.await.unwrap();
    assert!(flips > 2, "the content flipped ({flips} times)");
    assert!(
        !ran.is_empty() && denied > 0,
        "ran {} denied {denied}",
        ran.len()
    );
    let reversed: String = value.chars().rev().collect();
    for inv in &ran {
        for t in h.wait_final(inv, T).await {
            let out = output_of(&t);
            assert!(
                !out.contains(&reversed) && !out.contains("******"),
                "a run by a user denied tat:UseSecret delivered the secret: {out:?}"
            );
            assert_eq!(out, "harmless\n");
        }
    }
}

/// A secret's value is data: quotes, command substitutions and backticks
/// in it never run, whether the placeholder stands bare or in double quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_are_data_not_code() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let dir = tempfile::tempdir().unwrap();
    let mark = |n: &str| dir.path().join(format!("pwned-{n}"));
    let values = [
        ("q1", format!("'; touch {}; '", mark("q1").display())),
        ("q2", format!("\"; touch {}; \"", mark("q2").display())),
        ("sub", format!("$(touch {})", mark("sub").display())),
        ("tick", format!("`touch {}`", mark("tick").display())),
        ("nl", format!("x\ntouch {}\n", mark("nl").display())),
    ];
    let mut script = String::new();
    for (name, v) in &values {
        h.call(
            "CreateSecret",
            json!({"SecretName": name, "SecretValue": v}),
        )
        .await;
        script.push_str(&format!(
            "printf '%s|' \"{{{{secret:{name}}}}}\" | rev\necho\n"
        ));
        script.push_str(&format!("echo {{{{secret:{name}}}}} >/dev/null\n"));
    }
    let out = h.run_one(&script, &id, json!({})).await;
    assert_eq!(out["TaskStatus"], "SUCCESS", "{out}");
    let text = output_of(&out);
    // `rev` reverses each line; `echo` ends the last one.
    let want: String = values
        .iter()
        .map(|(_, v)| {
            let lines: Vec<String> = format!("{v}|")
                .split('\n')
                .map(|l| l.chars().rev().collect())
                .collect();
            format!("{}\n", lines.join("\n"))
        })
        .collect();
    assert_eq!(text, want);
    for (name, _) in &values {
        assert!(
            !mark(name).exists(),
            "the value of secret {name} ran as code"
        );
    }
}

/// Records of an invoker, newest first.
async fn records(h: &Harness, ivk: &str) -> Vec<Value> {
    h.call(
        "DescribeInvokerRecords",
        json!({"InvokerIds": [ivk], "Limit": 100}),
    )
    .await["InvokerRecordSet"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until two FAILED records newer than `since` (ISO time) exist,
/// checks that none of the records since then started an invocation, and
/// returns the reason of the newest.
async fn denied_triggers(h: &Harness, ivk: &str, since: &str) -> String {
    let recs = wait_for("two denied triggers", T, || async {
        let recent: Vec<Value> = records(h, ivk)
            .await
            .into_iter()
            .filter(|r| r["InvokeTime"].as_str().unwrap_or("") > since)
            .collect();
        (recent.iter().filter(|r| r["Result"] == "FAILED").count() >= 2).then_some(recent)
    })
    .await;
    for r in &recs {
        assert_eq!(r["Result"], "FAILED", "{r}");
        assert!(r["InvocationId"].as_str().unwrap_or("").is_empty(), "{r}");
    }
    recs[0]["Reason"].as_str().unwrap_or("").to_string()
}

fn now_iso(h_offset_s: i64) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + h_offset_s * 1000;
    drover::timefmt::iso(ms)
}

/// An invoker runs with its creator's authority of the moment: a selector
/// that comes to match an instance the creator may not use, a creator who
/// loses the right, and a deleted creator each give FAILED records with
/// the reason, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokers_keep_their_creators_authority_at_every_trigger() {
    let mut h = Harness::start().await;
    h.add_agents(2).await;
    let ids = h.agent_ids();
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let owner = owner(&h).await;
    h.call(
        "ModifyInstanceTags",
        json!({"InstanceId": a, "Tags": [{"Key": "role", "Value": "web"}]}),
    )
    .await;
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "tick", "Content": b64("echo tick")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, name, pid, sub) = sub_user(
        &h,
        "scheduler1",
        json!([
            {"effect": "allow", "action": ["tat:CreateInvoker"],
             "resource": [qcs(&owner, "command", "*"), qcs(&owner, "instance", &a)]},
            {"effect": "allow", "action": ["tat:Describe*"], "resource": ["*"]}
        ]),
    )
    .await;
    // The creator may not use B: a selector naming it now is refused.
    let e = sub
        .call(
            "CreateInvoker",
            &json!({"Name": "x", "Type": "SCHEDULE", "CommandId": cmd, "InstanceIds": [b],
                    "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "0 0 1 1 *"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AuthFailure.UnauthorizedOperation");
    let ivk = sub
        .call(
            "CreateInvoker",
            &json!({"Name": "web", "Type": "SCHEDULE", "CommandId": cmd,
                    "Targets": [{"Key": "tag:role", "Values": ["web"]}],
                    "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "*/1 * * * * *"}}),
        )
        .await
        .unwrap()["InvokerId"]
        .as_str()
        .unwrap()
        .to_string();
    // Allowed: it runs on A.
    let fired = wait_for("a trigger that ran", T, || async {
        records(&h, &ivk)
            .await
            .into_iter()
            .find(|r| !r["InvocationId"].as_str().unwrap_or("").is_empty())
    })
    .await;
    let inv = fired["InvocationId"].as_str().unwrap();
    let tasks = h.wait_final(inv, T).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["InstanceId"], a.as_str());

    // B gets the tag: the creator may not use it, so nothing runs at all.
    let since = now_iso(0);
    h.call(
        "ModifyInstanceTags",
        json!({"InstanceId": b, "Tags": [{"Key": "role", "Value": "web"}]}),
    )
    .await;
    let why = denied_triggers(&h, &ivk, &since).await;
    assert!(why.contains("tat:CreateInvoker"), "{why}");
    assert!(!why.contains(&b), "the reason names no instance: {why}");
    let on_b = h
        .call(
            "DescribeInvocationTasks",
            json!({"Filters": [{"Name": "instance-id", "Values": [b]}]}),
        )
        .await;
    assert_eq!(on_b["TotalCount"], 0, "{on_b}");
    h.call("ModifyInstanceTags", json!({"InstanceId": b, "Tags": []}))
        .await;

    // The creator loses the right: denied.
    cam(
        &h,
        "DetachUserPolicy",
        json!({"PolicyId": pid, "DetachUin": sub_uin(&h, &name).await}),
    )
    .await;
    let since = now_iso(0);
    let why = denied_triggers(&h, &ivk, &since).await;
    assert!(why.contains("not authorized"), "{why}");

    // The creator is deleted: orphaned.
    cam(&h, "DeleteUser", json!({"Name": name, "Force": 1})).await;
    let since = now_iso(0);
    let why = denied_triggers(&h, &ivk, &since).await;
    assert!(why.contains("no longer exists"), "{why}");
    h.call("DeleteInvoker", json!({"InvokerId": ivk})).await;
}

async fn sub_uin(h: &Harness, name: &str) -> Value {
    cam(h, "GetUser", json!({"Name": name})).await["Uin"].clone()
}

/// Smaller leaks: list sizes are checked before anything is resolved; a
/// missing id looks like a forbidden one; a list the caller has no
/// permission for at all is refused, while an allowed one is filtered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_reveal_nothing_and_cost_little() {
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let owner = owner(&h).await;
    let mine = h
        .call(
            "CreateCommand",
            json!({"CommandName": "mine", "Content": b64("echo mine")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let other = h
        .call(
            "CreateCommand",
            json!({"CommandName": "other", "Content": b64("echo other")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let inv = h
        .call(
            "InvokeCommand",
            json!({"CommandId": other, "InstanceIds": [id]}),
        )
        .await["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    let tasks = h.wait_final(&inv, T).await;
    let task = tasks[0]["InvocationTaskId"].as_str().unwrap().to_string();
    let (_, _, _, sub) = sub_user(
        &h,
        "reader1",
        json!([{"effect": "allow",
                "action": ["tat:DescribeCommands", "tat:DescribeInvocations",
                           "tat:DescribeInvocationTasks", "tat:DescribeInvocationTaskOutput",
                           "tat:CancelInvocation"],
                "resource": [qcs(&owner, "command", &mine)]}]),
    )
    .await;

    // 60,000 ids: refused at once with the limit error.
    let many: Vec<String> = (0..60_000).map(|i| format!("cmd-{i:08}")).collect();
    let started = Instant::now();
    let e = sub
        .call("DescribeCommands", &json!({"CommandIds": many}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterValue.LimitExceeded", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // Existing but forbidden, and missing: the same answer.
    for (action, present, missing) in [
        (
            "DescribeInvocationTasks",
            json!({"InvocationTaskIds": [task]}),
            json!({"InvocationTaskIds": ["invt-zzzzzzzz"]}),
        ),
        (
            "DescribeInvocationTaskOutput",
            json!({"InvocationTaskId": task}),
            json!({"InvocationTaskId": "invt-zzzzzzzz"}),
        ),
        (
            "DescribeInvocations",
            json!({"InvocationIds": [inv]}),
            json!({"InvocationIds": ["inv-zzzzzzzz"]}),
        ),
        (
            "CancelInvocation",
            json!({"InvocationId": inv}),
            json!({"InvocationId": "inv-zzzzzzzz"}),
        ),
    ] {
        let a = sub.call(action, &present).await.unwrap_err();
        let b = sub.call(action, &missing).await.unwrap_err();
        assert_eq!(
            code(&a),
            "AuthFailure.UnauthorizedOperation",
            "{action}: {a}"
        );
        assert_eq!(code(&b), code(&a), "{action}: {b}");
        assert!(!b.to_string().contains("zzzzzzzz"), "{action}: {b}");
    }

    // A list it may read some of: filtered. One it may not read at all:
    // refused, not an empty success.
    let listed = sub
        .call("DescribeCommands", &json!({"Limit": 100}))
        .await
        .unwrap();
    assert_eq!(listed["TotalCount"], 1, "{listed}");
    assert_eq!(listed["CommandSet"][0]["CommandId"], mine.as_str());
    for action in [
        "DescribeInvokers",
        "DescribeSecrets",
        "DescribeRegisterInstances",
    ] {
        let e = sub.call(action, &json!({})).await.unwrap_err();
        assert_eq!(
            code(&e),
            "AuthFailure.UnauthorizedOperation",
            "{action}: {e}"
        );
    }
}
