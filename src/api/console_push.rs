//! The console's own endpoints beside `/console/api`, all behind the same
//! signed-in session and the same gate as every API call:
//!
//! - `GET /console/push` (WebSocket): server push for the live views. The
//!   browser says what it watches (`{"Watch":"inv-…"}` or `{"Watch":"*"}`);
//!   whenever the dispatcher reports task activity the server re-reads
//!   that view *as the signed-in user* through `Api::call` and sends it, so
//!   the browser never polls and never sees what the gate would refuse.
//! - `POST /console/can`: "may I do these actions?" for a batch, answered
//!   by the policy engine (the simulator's logic), so buttons are disabled
//!   with the engine's reason and no policy logic lives in the browser.
//! - `POST /console/validate-policy`: the policy engine's verdict on a
//!   draft document, with the path of the bad part, for the editor.
//! - `POST /console/groups`: an invocation's tasks grouped by identical
//!   exit code and full output (SHA-256 over the stored output, read in
//!   slices), so "97 hosts said A, 3 said B" stays fast at 1,000 hosts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use ring::digest;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::audit::Trail;
use super::error::ApiError;
use super::request::Params;
use super::{json_reply, Api, Principal, Reply, Service};
use crate::store::invocations as invs;

/// Bursts of agent reports (output chunks of many hosts) collapse into one
/// re-read per this interval.
const SETTLE: Duration = Duration::from_millis(250);
/// How often a push channel re-checks that its session still stands.
const RECHECK: Duration = Duration::from_secs(20);
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

async fn gate(
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
async fn tasks_of(
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

/// One live view, read as the user: the invocation and its tasks (compact).
async fn invocation_view(
    api: &Api,
    p: &Principal,
    ip: std::net::IpAddr,
    inv: &str,
) -> Result<Value, ApiError> {
    let r = gate(
        api,
        p,
        ip,
        Service::Tat,
        "DescribeInvocations",
        json!({ "InvocationIds": [inv] }),
    )
    .await?;
    let invocation = r["InvocationSet"].get(0).cloned().ok_or_else(|| {
        ApiError::new(
            "ResourceNotFound.InvocationNotFound",
            format!("invocation {inv} does not exist"),
        )
    })?;
    let ids = task_ids(api, inv).await?;
    let tasks: Vec<Value> = tasks_of(api, p, ip, inv)
        .await?
        .into_iter()
        .map(|t| {
            let len = ids
                .get(t["InvocationTaskId"].as_str().unwrap_or(""))
                .copied();
            json!({
                "InvocationTaskId": t["InvocationTaskId"],
                "InstanceId": t["InstanceId"],
                "TaskStatus": t["TaskStatus"],
                "ExitCode": t["TaskResult"]["ExitCode"],
                "ExecStartTime": t["TaskResult"]["ExecStartTime"],
                "ExecEndTime": t["TaskResult"]["ExecEndTime"],
                "ErrorInfo": t["ErrorInfo"],
                "OutputLen": len.unwrap_or(0),
            })
        })
        .collect();
    Ok(json!({ "Type": "invocation", "Invocation": invocation, "Tasks": tasks }))
}

/// Stored output length of every task of `inv`, so the browser knows how
/// far each output has grown and fetches only the new slice.
async fn task_ids(api: &Api, inv: &str) -> Result<HashMap<String, i64>, ApiError> {
    let inv = inv.to_string();
    Ok(api
        .store
        .read(move |c| invs::tasks_of(c, std::slice::from_ref(&inv)))
        .await?
        .into_iter()
        .map(|t| (t.id, t.output_len))
        .collect())
}

/// Upgrades `GET /console/push` to a WebSocket for a signed-in user.
/// Browsers send Origin on every WebSocket handshake, and it must be this
/// host: a cross-site page cannot ride the session cookie into a socket.
pub async fn upgrade(
    api: Arc<Api>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Reply {
    let (parts, _) = Request::new(()).into_parts();
    let mut head = parts;
    head.headers = req.headers().clone();
    head.uri = req.uri().clone();
    let origin_ok = head.headers.contains_key("origin") && super::console::same_origin(&head);
    let deny = |code: &str, msg: &str| {
        json_reply(
            StatusCode::FORBIDDEN,
            &json!({"Response": {"Error": {"Code": code, "Message": msg}}}),
        )
    };
    if !origin_ok {
        return deny(
            "UnauthorizedOperation",
            "cross-origin console requests are refused",
        );
    }
    let principal = match super::console::session(&api, &head).await {
        Ok((_, _, p)) => p,
        Err(e) => return deny(e.code, &e.message),
    };
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let Some(accept) = key else {
        return deny("InvalidParameter", "websocket upgrade required");
    };
    tokio::spawn(async move {
        if let Ok(up) = hyper::upgrade::on(&mut req).await {
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
            tokio::select! {
                _ = serve_push(api, head, principal, peer, ws) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    });
    let mut r = json_reply(StatusCode::SWITCHING_PROTOCOLS, &Value::Null);
    *r.body_mut() = Default::default();
    let h = r.headers_mut();
    h.remove(hyper::header::CONTENT_TYPE);
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        hyper::header::UPGRADE,
        hyper::header::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}

async fn serve_push<S>(
    api: Arc<Api>,
    head: Parts,
    p: Principal,
    peer: SocketAddr,
    mut ws: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut activity = api.dispatch.activity.subscribe();
    let mut watch: Option<String> = None;
    let mut dirty = false;
    let mut last_check = tokio::time::Instant::now();
    let ip = peer.ip();
    loop {
        let settle = tokio::time::sleep(SETTLE);
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    watch = v["Watch"].as_str().map(str::to_string);
                    dirty = watch.is_some();
                }
                Some(Ok(Message::Ping(d))) => { let _ = ws.send(Message::Pong(d)).await; }
                Some(Ok(_)) => {}
                _ => return,
            },
            r = activity.changed() => {
                if r.is_err() { return; }
                dirty = watch.is_some();
                continue;
            }
            _ = settle, if dirty => {}
        }
        if !dirty {
            continue;
        }
        dirty = false;
        if last_check.elapsed() > RECHECK {
            if super::console::session(&api, &head).await.is_err() {
                let _ = ws
                    .send(Message::Text(
                        json!({"Type": "error", "Code": "AuthFailure.SessionExpired",
                               "Message": "the session has ended"})
                        .to_string(),
                    ))
                    .await;
                return;
            }
            last_check = tokio::time::Instant::now();
        }
        let msg = match watch.as_deref() {
            Some("*") => Ok(json!({"Type": "activity"})),
            Some(inv) => invocation_view(&api, &p, ip, inv).await,
            None => continue,
        };
        let text = match msg {
            Ok(v) => v.to_string(),
            Err(e) => json!({"Type": "error", "Code": e.code, "Message": e.message}).to_string(),
        };
        if ws.send(Message::Text(text)).await.is_err() {
            return;
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
