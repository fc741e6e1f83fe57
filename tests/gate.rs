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

/// CAM handlers act on the target the gate decided, never on a re-read of
/// the request: a sub-user allowed cam:UpdateUser on one uin keeps
/// updating `bob` by name (remark and password) while the owner deletes
/// bob and creates a new `bob` (a fresh uin the sub-user is not granted)
/// over and over. A new bob is never changed before the owner grants it;
/// the sub-user's updates of the old one either land on it or find it
/// gone. (Before the handlers took the gate's targets, an update decided
/// on the old bob could write the new one's password.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cam_handlers_act_on_the_user_the_gate_decided() {
    let h = Harness::start().await;
    let owner = owner(&h).await;
    let cam_user = |uin: &str| format!("qcs::cam::uin/{owner}:uin/{uin}");
    let grant = |uin: &str| {
        json!({"version": "2.0", "statement": [
            {"effect": "allow", "action": ["cam:UpdateUser"], "resource": [cam_user(uin)]}
        ]})
        .to_string()
    };
    let mut bob = cam(&h, "AddUser", json!({"Name": "bob"})).await["Uin"].to_string();
    let (_, _, pid, sub) = sub_user(
        &h,
        "renamer",
        json!([{"effect": "allow", "action": ["cam:UpdateUser"], "resource": [cam_user(&bob)]}]),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut refused, mut n) = (0u32, 0u32, 0u64);
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = sub
                    .call_as(
                        "cam",
                        "2019-01-16",
                        "UpdateUser",
                        // A new password is hashed (slowly) between the
                        // decision and the write: the widest window there is.
                        &json!({"Name": "bob", "Remark": format!("pwned{n}"),
                                "Password": "Pwned-pass1!"}),
                    )
                    .await;
                match r {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        let c = code(&e).to_string();
                        assert!(
                            c == "AuthFailure.UnauthorizedOperation"
                                || c == "ResourceNotFound.UserNotExist",
                            "{e}"
                        );
                        refused += 1;
                    }
                }
            }
            (ok, refused, sub)
        })
    };
    for i in 0..100 {
        cam(&h, "DeleteUser", json!({"Name": "bob", "Force": i % 2})).await;
        let fresh = cam(
            &h,
            "AddUser",
            json!({"Name": "bob", "Remark": format!("fresh{i}")}),
        )
        .await;
        // Not granted yet: whatever the sub-user sent meanwhile, the new
        // bob keeps its own remark.
        let got = cam(&h, "GetUser", json!({"Name": "bob"})).await;
        assert_eq!(got["Uin"], fresh["Uin"]);
        assert_eq!(
            got["Remark"],
            format!("fresh{i}"),
            "a user the sub-user was never granted was changed"
        );
        bob = fresh["Uin"].to_string();
        cam(
            &h,
            "UpdatePolicy",
            json!({"PolicyId": pid, "PolicyDocument": grant(&bob)}),
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, refused, sub) = writer.await.unwrap();
    assert!(
        ok + refused > 5,
        "the sub-user kept trying: ok {ok} refused {refused}"
    );
    // The granted bob of the end is the sub-user's to change.
    sub.call_as(
        "cam",
        "2019-01-16",
        "UpdateUser",
        &json!({"Name": "bob", "Remark": "granted"}),
    )
    .await
    .unwrap();
    let got = cam(&h, "GetUser", json!({"Name": "bob"})).await;
    assert_eq!(got["Uin"].to_string(), bob);
    assert_eq!(got["Remark"], "granted");
}

/// Every table's rows (audit_events aside: a denial is recorded there),
/// as text, so a denied call can be shown to have changed nothing.
fn snapshot(h: &Harness) -> std::collections::BTreeMap<String, Vec<String>> {
    let path = h.data_dir().join("drover.db");
    let c =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for t in tables.into_iter().filter(|t| t != "audit_events") {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

/// The name of a missing parameter, from MissingParameter's message.
fn missing_name(e: &drover::client::ClientError) -> Option<String> {
    let m = e.to_string();
    let start = m.find('`')? + 1;
    let end = start + m[start..].find('`')?;
    Some(m[start..end].to_string())
}

/// Every dispatchable action (the action table, walked), called by a
/// sub-user without any policy with parameters that name real resources
/// (filled in until nothing required is missing): each is refused with
/// AuthFailure.UnauthorizedOperation, nothing in the database changes,
/// and no task runs. The table walk of `policy::actions`
/// (`every_action_has_its_rows`) checks the rows; this checks the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dispatchable_action_is_refused_to_a_user_without_policy() {
    use drover::policy::{Action, Endpoint};
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "walk", "Content": b64("echo walk")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let inv = h
        .call(
            "InvokeCommand",
            json!({"CommandId": cmd, "InstanceIds": [id]}),
        )
        .await["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    let task = h.wait_final(&inv, T).await[0]["InvocationTaskId"]
        .as_str()
        .unwrap()
        .to_string();
    let ivk = h
        .call(
            "CreateInvoker",
            json!({"Name": "walk", "Type": "SCHEDULE", "CommandId": cmd, "InstanceIds": [id],
                   "ScheduleSettings": {"Policy": "ONCE", "InvokeTime": "2099-01-01T00:00:00Z"}}),
        )
        .await["InvokerId"]
        .as_str()
        .unwrap()
        .to_string();
    let code_id = h.call("CreateRegisterCode", json!({})).await["RegisterCodeId"]
        .as_str()
        .unwrap()
        .to_string();
    h.call(
        "CreateSecret",
        json!({"SecretName": "walk", "SecretValue": random_value()}),
    )
    .await;
    let victim = cam(&h, "AddUser", json!({"Name": "victim", "UseApi": 1})).await;
    let gid = cam(&h, "CreateGroup", json!({"GroupName": "walkers"})).await["GroupId"].clone();
    let pid = cam(
        &h,
        "CreatePolicy",
        json!({"PolicyName": "walk", "PolicyDocument": json!({"version": "2.0",
            "statement": [{"effect": "allow", "action": ["tat:*"], "resource": ["*"]}]}).to_string()}),
    )
    .await["PolicyId"]
        .clone();
    let ra = h
        .client
        .call_as(
            "tat",
            "2020-10-28",
            "CreateRoleAssignment",
            &json!({"PrincipalType": "User", "PrincipalId": victim["Uin"].to_string(),
                    "RoleName": "Reader", "Scope": "account"}),
        )
        .await
        .unwrap()["RoleAssignmentId"]
        .clone();
    let webhook = h
        .client
        .call_as(
            "tat",
            "2020-10-28",
            "CreateWebhook",
            &json!({"Url": "https://example.com/hook"}),
        )
        .await
        .ok()
        .map(|r| r["WebhookId"].clone());
    // A user with keys and nothing else.
    let nobody = cam(&h, "AddUser", json!({"Name": "nobody", "UseApi": 1})).await;
    let sub = h.client_as(
        nobody["SecretId"].as_str().unwrap(),
        nobody["SecretKey"].as_str().unwrap(),
    );
    let tat_values = json!({
        "CommandId": cmd, "CommandIds": [cmd], "CommandName": "walked", "Content": b64("echo no"),
        "InstanceId": id, "InstanceIds": [id], "InvocationId": inv, "InvocationIds": [inv],
        "InvocationTaskId": task, "InvocationTaskIds": [task], "InvokerId": ivk,
        "InvokerIds": [ivk], "Name": "walked", "Type": "SCHEDULE",
        "ScheduleSettings": {"Policy": "ONCE", "InvokeTime": "2099-01-01T00:00:00Z"},
        "RegisterCodeIds": [code_id], "RegisterCodeId": code_id, "InstanceName": "walked",
        "SecretName": "walk", "SecretValue": "changed", "SecretNames": ["walk"],
        "Tags": [{"Key": "env", "Value": "prod"}], "Url": "https://example.com/other",
        "WebhookId": webhook, "PrincipalType": "User", "PrincipalId": victim["Uin"].to_string(),
        "RoleName": "Owner", "Scope": "account", "RoleAssignmentId": ra,
        "Action": "RunCommand", "Resources": ["*"], "SceneId": "scene-00000000",
        "Values": ["x"], "Key": "env", "Value": "prod",
    });
    let cam_values = json!({
        "Name": "victim", "TargetUin": victim["Uin"], "AttachUin": victim["Uin"],
        "DetachUin": victim["Uin"], "SubUin": victim["Uin"], "Uid": 1,
        "GroupId": gid, "TargetGroupId": gid, "AttachGroupId": gid, "DetachGroupId": gid,
        "GroupName": "walked", "Info": [{"GroupId": gid, "Uin": victim["Uin"]}],
        "PolicyId": pid, "PolicyName": "walked", "PolicyDocument": json!({"version": "2.0",
            "statement": [{"effect": "allow", "action": ["*"], "resource": ["*"]}]}).to_string(),
        "AccessKeyId": victim["SecretId"], "Status": "Inactive", "Password": "Walk-pass1!",
        "ConsoleLogin": 1,
    });
    // Where one action's field differs in shape from the others'.
    let overrides = json!({
        "DeletePolicy": {"PolicyId": [pid]},
    });
    let before = snapshot(&h);
    let mut walked = 0;
    for &a in Action::ALL {
        let (svc, version, values) = match a.endpoint() {
            Endpoint::Pseudo => continue,
            Endpoint::Cam => ("cam", "2019-01-16", &cam_values),
            Endpoint::Tat | Endpoint::Both => ("tat", "2020-10-28", &tat_values),
        };
        let name = a.api_name();
        let mut params = json!({});
        let answer = loop {
            let r = sub.call_as(svc, version, name, &params).await;
            let Err(e) = r else {
                panic!("{name} succeeded for a user without any policy: {r:?}")
            };
            if code(&e) != "MissingParameter" {
                break e;
            }
            let field = missing_name(&e).unwrap();
            let field = field.split('.').next().unwrap().to_string();
            assert!(
                params.get(&field).is_none(),
                "{name}: {field} given and still missing: {e}"
            );
            let v = overrides
                .get(name)
                .and_then(|o| o.get(&field))
                .or_else(|| values.get(&field))
                .unwrap_or_else(|| panic!("{name}: no value for required {field}: {e}"));
            params[&field] = v.clone();
        };
        assert_eq!(
            code(&answer),
            "AuthFailure.UnauthorizedOperation",
            "{name} {params}: {answer}"
        );
        walked += 1;
    }
    assert!(walked >= 60, "walked {walked} actions");
    eprintln!("walked {walked} actions");
    assert_eq!(snapshot(&h), before, "a refused call changed the database");
    // Nothing ran: the one invocation is still the only one.
    let n = h.call("DescribeInvocations", json!({})).await["TotalCount"].clone();
    assert_eq!(n, 1);
    // The snapshot sees a change when there is one.
    h.call(
        "ModifyCommand",
        json!({"CommandId": cmd, "Description": "changed"}),
    )
    .await;
    assert_ne!(snapshot(&h), before);
}
