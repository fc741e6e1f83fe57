//! The console's read-only views beside `/console/api`, each read as the
//! signed-in user through the same gate as every API call:
//!
//! - `POST /console/can`: "may I do these actions?" for a batch, answered
//!   by the policy engine (the simulator's logic), so buttons are disabled
//!   with the engine's reason and no policy logic lives in the browser.
//! - `POST /console/validate-policy`: the policy engine's verdict on a
//!   draft document, with the path of the bad part, for the editor.
//! - `POST /console/groups`: an invocation's tasks grouped by identical
//!   exit code and full output (SHA-256 over the stored output, read in
//!   slices), so "97 hosts said A, 3 said B" stays fast at 1,000 hosts.
//!
//! The push socket (`console_push.rs`) reads its views with `gate` and
//! `tasks_of` from here; this file imports neither it nor `console.rs`, so
//! the console's files import each other in one direction only.

use std::collections::HashMap;

use ring::digest;
use serde_json::{json, Value};

use super::audit::Trail;
use super::error::ApiError;
use super::request::Params;
use super::{Api, Principal, Service};
use crate::store::invocations as invs;

/// Most tasks a live view carries (the list pages past that).
const MAX_LIVE_TASKS: i64 = 2000;
/// Most output bytes a group's sample carries.
const SAMPLE: i64 = 4096;
/// Slice size when hashing a task's whole output.
const HASH_SLICE: i64 = 1 << 20;
/// Most actions one `/console/can` asks about.
const MAX_CAN: usize = 64;
/// Most resources one question names (a Run page selection).
const MAX_CAN_RESOURCES: usize = 1000;

fn call_params(v: Value) -> Result<Params, ApiError> {
    Params::parse(v.to_string().as_bytes())
}

pub(super) async fn gate(
    api: &Api,
    p: &Principal,
    ip: std::net::IpAddr,
    service: Service,
    action: &str,
    params: Value,
) -> Result<Value, ApiError> {
    let mut trail = Trail::default();
    api.call(
        p,
        service,
        action,
        call_params(params)?,
        Some(ip),
        &mut trail,
    )
    .await
}

/// All tasks of an invocation the user may see, outputs hidden.
pub(super) async fn tasks_of(
    api: &Api,
    p: &Principal,
    ip: std::net::IpAddr,
    inv: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let r = gate(
            api,
            p,
            ip,
            Service::Tat,
            "DescribeInvocationTasks",
            json!({
                "Filters": [{"Name": "invocation-id", "Values": [inv]}],
                "Limit": 100, "Offset": offset, "HideOutput": true,
            }),
        )
        .await?;
        let set = r["InvocationTaskSet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let n = set.len() as i64;
        all.extend(set);
        offset += n;
        let total = r["TotalCount"].as_i64().unwrap_or(0);
        if n == 0 || offset >= total || offset >= MAX_LIVE_TASKS {
            return Ok(all);
        }
    }
}

/// `POST /console/can`: `{"Actions":[{"Action":"RunCommand",
/// "Resources":["mi-…"]}, …]}` → `{"Results":[{"Action","Allowed","Reason"}]}`,
/// decided by the engine for the signed-in user as the gate would decide
/// that action on those instances / commands (on `*` when none are named).
pub async fn can(
    api: &Api,
    p: &Principal,
    body: &[u8],
    ip: std::net::IpAddr,
) -> Result<Value, ApiError> {
    let mut q = Params::parse(body)?;
    let asked = q.opt_value("Actions").unwrap_or(Value::Null);
    q.finish()?;
    let asked = asked
        .as_array()
        .ok_or_else(|| ApiError::value("Actions must be a list"))?;
    if asked.len() > MAX_CAN {
        return Err(ApiError::value(format!(
            "at most {MAX_CAN} actions per request"
        )));
    }
    let grants = api.grants(p, Some(ip)).await?;
    let mut out = Vec::new();
    for a in asked {
        let name = a["Action"].as_str().unwrap_or("");
        let cam = a["Service"].as_str() == Some("cam");
        let Some(qualified) = crate::policy::policy_action(name, cam) else {
            out.push(json!({"Action": name, "Allowed": false, "Reason": "unknown action"}));
            continue;
        };
        let named = resources_of(api, &a["Resources"]).await?;
        let d = grants.decide(qualified, &named);
        out.push(json!({
            "Action": name,
            "Allowed": d.allowed,
            "Reason": if d.allowed { String::new() } else { format!("{qualified}: {d}") },
        }));
    }
    Ok(json!({ "Results": out }))
}

/// Instance and command ids as the gate names them (qcs names with tags).
async fn resources_of(api: &Api, v: &Value) -> Result<Vec<crate::policy::Resource>, ApiError> {
    let ids: Vec<String> = v
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if ids.len() > MAX_CAN_RESOURCES {
        return Err(ApiError::value(format!(
            "at most {MAX_CAN_RESOURCES} Resources per action"
        )));
    }
    let (instances, others): (Vec<String>, Vec<String>) =
        ids.into_iter().partition(|i| crate::ids::is_valid(i, "mi"));
    let mut out = if instances.is_empty() {
        Vec::new()
    } else {
        api.gate.instance_resources(&instances).await?
    };
    for id in others {
        if crate::ids::is_valid(&id, "cmd") {
            out.push(api.gate.command_resource(&id).await?);
        } else {
            return Err(ApiError::value(format!(
                "{id:?} is neither an instance nor a command id"
            )));
        }
    }
    Ok(out)
}

/// `POST /console/groups`: `{"InvocationId":"inv-…"}` → the invocation's
/// visible tasks grouped by (status, exit code, SHA-256 of the whole
/// output), largest group first, each with a short sample of its output.
pub async fn groups(
    api: &Api,
    p: &Principal,
    body: &[u8],
    ip: std::net::IpAddr,
) -> Result<Value, ApiError> {
    let mut q = Params::parse(body)?;
    let inv = q.str("InvocationId")?;
    q.finish()?;
    // The gate decides which tasks this user sees; only those are read.
    let visible = tasks_of(api, p, ip, &inv).await?;
    let ids: Vec<(String, String)> = visible
        .iter()
        .map(|t| {
            (
                t["InvocationTaskId"].as_str().unwrap_or("").to_string(),
                t["InstanceId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let groups = api.store.read(move |c| group_outputs(c, &ids)).await?;
    Ok(json!({ "InvocationId": inv, "GroupSet": groups, "TotalCount": groups.len() }))
}

/// Groups tasks `(task id, instance id)` by (status, exit code, SHA-256 of
/// the whole stored output, read in `HASH_SLICE` pieces), largest first.
fn group_outputs(
    c: &rusqlite::Connection,
    ids: &[(String, String)],
) -> crate::store::Result<Vec<Value>> {
    let mut by_key: HashMap<String, (Value, Vec<String>, Vec<String>)> = HashMap::new();
    let mut order = Vec::new();
    for (tid, iid) in ids {
        let t = invs::get_task(c, tid)?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut off = 0;
        let mut sample = Vec::new();
        loop {
            let chunk = invs::read_output(c, tid, off, HASH_SLICE)?;
            if chunk.is_empty() {
                break;
            }
            if off == 0 {
                sample = chunk[..chunk.len().min(SAMPLE as usize)].to_vec();
            }
            ctx.update(&chunk);
            off += chunk.len() as i64;
        }
        let hash = hex::encode(ctx.finish().as_ref());
        let key = format!("{}|{:?}|{hash}", t.status.as_str(), t.exit_code);
        let e = by_key.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            (
                json!({
                    "TaskStatus": t.status.as_str(),
                    "ExitCode": t.exit_code,
                    "OutputSha256": hash,
                    "OutputLen": off,
                    "Sample": String::from_utf8_lossy(&sample),
                    "SampleTaskId": tid,
                }),
                Vec::new(),
                Vec::new(),
            )
        });
        e.1.push(iid.clone());
        e.2.push(tid.clone());
    }
    let mut out: Vec<Value> = order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .map(|(mut v, inst, tasks)| {
            v["Count"] = json!(inst.len());
            v["InstanceIds"] = json!(inst);
            v["InvocationTaskIds"] = json!(tasks);
            v
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g["Count"].as_u64().unwrap_or(0)));
    Ok(out)
}

/// `POST /console/validate-policy`: `{"PolicyDocument":"…"}` → `{"Valid",
/// "Problem", "Path"}` from the same parser CreatePolicy uses (not "Error",
/// which the envelope reserves for a failed call).
pub fn validate_policy(body: &[u8]) -> Result<Value, ApiError> {
    let mut q = Params::parse(body)?;
    let doc = q.str("PolicyDocument")?;
    q.finish()?;
    Ok(match crate::policy::parse_document(&doc) {
        Ok(_) => json!({ "Valid": true }),
        Err(e) => {
            let path = match &e {
                crate::policy::PolicyError::Invalid { path, .. } => path.clone(),
                crate::policy::PolicyError::Json(_) => String::new(),
            };
            json!({ "Valid": false, "Problem": e.to_string(), "Path": path })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::invocations::{fixtures, Finish};
    use crate::store::status::TaskStatus;

    /// 1,000 hosts, 970 printing A and exiting 0, 30 printing B and
    /// exiting 1: two groups, largest first, in well under a second.
    #[test]
    fn groups_a_thousand_tasks_by_output_and_exit_code() {
        let c = crate::store::test_conn();
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                fixtures::task(
                    &format!("invt-{i:04}"),
                    "inv-1",
                    &format!("mi-{i:04}"),
                    TaskStatus::Pending,
                )
            })
            .collect();
        invs::insert(&c, &fixtures::invocation("inv-1"), &tasks).unwrap();
        for (i, t) in tasks.iter().enumerate() {
            let (out, code) = if i % 100 < 3 {
                (format!("disk full on /var\n{}", "x".repeat(5000)), 1)
            } else {
                (format!("ok\n{}", "y".repeat(5000)), 0)
            };
            invs::append_output(&c, &t.id, 0, out.as_bytes()).unwrap();
            let f = Finish {
                status: if code == 0 {
                    TaskStatus::Success
                } else {
                    TaskStatus::Failed
                },
                exit_code: Some(code),
                exec_start_ms: 1,
                exec_end_ms: 2,
                reported_len: out.len() as i64,
                error_info: "",
            };
            invs::finish(&c, &t.id, &f, 2).unwrap();
        }
        let ids: Vec<_> = tasks
            .iter()
            .map(|t| (t.id.clone(), t.instance_id.clone()))
            .collect();
        let started = std::time::Instant::now();
        let g = group_outputs(&c, &ids).unwrap();
        let took = started.elapsed();
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[0]["Count"], 970);
        assert_eq!(g[0]["ExitCode"], 0);
        assert!(g[0]["Sample"].as_str().unwrap().starts_with("ok\n"));
        assert_eq!(g[0]["Sample"].as_str().unwrap().len(), SAMPLE as usize);
        assert_eq!(g[1]["Count"], 30);
        assert_eq!(g[1]["ExitCode"], 1);
        assert_eq!(g[1]["TaskStatus"], "FAILED");
        assert_eq!(g[1]["InstanceIds"].as_array().unwrap().len(), 30);
        assert!(
            took < std::time::Duration::from_secs(5),
            "grouping took {took:?}"
        );
    }
}
