//! The gate against a real server, driven by real sub-users (issue 8):
//! every dispatchable action is refused to a user without policy and
//! changes nothing, and CAM handlers act on exactly the targets the gate
//! decided (a user re-created under the same name is not the one changed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// A sub-user with API keys and one policy of these statements; returns
/// (policy id, client).
async fn sub_user(h: &Harness, name: &str, statements: Value) -> (Value, Client) {
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
    (pid, client)
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
    let (pid, sub) = sub_user(
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
        json!({"SecretName": "walk", "SecretValue": "walk-value"}),
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
        "Values": ["x"], "Key": "env", "Value": "prod", "SessionId": "ses-zzzzzzzz",
        "PublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRyb3Zlci1nYXRlLXdhbGstdGVzdC1rZXktMDAwMA walk",
        "KeyId": "sshkey-00000000",
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
        "PublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRyb3Zlci1nYXRlLXdhbGstdGVzdC1rZXktMDAwMA walk",
        "KeyId": "sshkey-00000000",
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
