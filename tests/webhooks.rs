//! Webhook notifications on a real server with a real agent, received by a
//! small HTTP server in the test: one signed POST per finished invocation,
//! retries on failure with every attempt recorded, FAILED after the last
//! attempt, invokers' webhooks, and refusal of bad Webhook parameters. The
//! key is never in an API reply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{b64, code, test_settings, test_webhook_settings, wait_for, Harness};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const T30: Duration = Duration::from_secs(30);
const KEY: &str = "test-webhook-key-7f3a9c";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A local HTTP receiver that records every request and answers with the
/// scripted statuses in order, then 200. A scripted 0 never answers.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let h = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (h, script) = (h.clone(), script.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (h, script) = (h.clone(), script.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap().to_string())
                                })
                                .collect();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            h.lock().unwrap().push(Hit {
                                path,
                                headers,
                                body: body.to_vec(),
                            });
                            let status = script.lock().unwrap().next().unwrap_or(200);
                            if status == 0 {
                                std::future::pending::<()>().await;
                            }
                            let mut r = hyper::Response::new(Full::new(Bytes::from("ok")));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/hook?x=1"),
            hits,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Checks `X-Drover-Signature: t=<secs>,v1=<hex>` against the body with
/// ring's constant-time HMAC verification.
fn signature_ok(hit: &Hit, key: &str) -> bool {
    let Some(sig) = hit.headers.get("x-drover-signature") else {
        return false;
    };
    let Some((t, v1)) = sig
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let Ok(tag) = hex::decode(v1) else {
        return false;
    };
    let now = drover::timefmt::now_ms() / 1000;
    let fresh = t.parse::<i64>().is_ok_and(|t| (now - t).abs() < 300);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&hit.body);
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    fresh && ring::hmac::verify(&k, &signed, &tag).is_ok()
}

/// A server that may deliver to this test's receivers on 127.0.0.1 (as
/// `drover server --webhook-allow 127.0.0.1/32`).
async fn start() -> Harness {
    let mut hooks = test_webhook_settings();
    hooks.allow = "127.0.0.1/32".parse().unwrap();
    Harness::start_full(test_settings(), hooks).await
}

fn hook(url: &str) -> Value {
    json!({"Webhook": {"Url": url, "Secret": KEY}})
}

async fn deliveries(h: &Harness, by: Value) -> Vec<Value> {
    let r = h.call("DescribeWebhookDeliveries", by).await;
    r["WebhookDeliverySet"].as_array().unwrap().clone()
}

/// Waits until the invocation's delivery is in state `want`; returns it.
async fn wait_delivery(h: &Harness, inv: &str, want: &str) -> Value {
    wait_for(&format!("{inv}'s webhook to be {want}"), T30, || async {
        deliveries(h, json!({"InvocationId": inv}))
            .await
            .into_iter()
            .find(|d| d["Status"] == want)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_invocation_posts_one_signed_notification() {
    let mut h = start().await;
    let id = h.add_agent().await;
    let rx = Receiver::start(vec![]).await;
    let inv = h
        .run("echo hello", std::slice::from_ref(&id), hook(&rx.url))
        .await;
    let d = wait_delivery(&h, &inv, "DELIVERED").await;

    let hits = rx.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let hit = &hits[0];
    assert_eq!(hit.path, "/hook");
    assert!(signature_ok(hit, KEY), "{hit:?}");
    assert!(!signature_ok(hit, "some-other-key-123"));
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(hit.headers["x-drover-event"], "invocation.finished");
    assert_eq!(
        hit.headers["x-drover-delivery"],
        d["DeliveryId"].as_str().unwrap()
    );
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["Event"], "invocation.finished");
    assert_eq!(body["DeliveryId"], d["DeliveryId"]);
    assert_eq!(body["InvocationId"], inv.as_str());
    assert_eq!(body["InvokerId"], Value::Null);
    assert_eq!(body["InvocationStatus"], "SUCCESS");
    assert_eq!(body["Tasks"][0]["InstanceId"], id.as_str());
    assert_eq!(body["Tasks"][0]["TaskStatus"], "SUCCESS");
    assert_eq!(body["Tasks"][0]["ExitCode"], 0);
    assert!(
        body["FinishedTime"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );

    assert_eq!(d["Attempts"], 1);
    assert_eq!(d["AttemptSet"][0]["HttpStatus"], 200);
    let shown = h.invocation(&inv).await;
    assert_eq!(shown["Webhook"], json!({"Url": rx.url}));
    assert_eq!(shown["WebhookStatus"], "DELIVERED");
    // The key is in no reply, nor in the audit trail.
    for (action, p) in [
        ("DescribeInvocations", json!({"InvocationIds": [inv]})),
        ("DescribeWebhookDeliveries", json!({"InvocationId": inv})),
        ("DescribeAuditEvents", json!({"Limit": 100})),
    ] {
        let raw = h.call_raw(action, p).await;
        assert!(!raw.contains(KEY), "{action} shows the key: {raw}");
    }
    // InvokeCommand takes a Webhook too.
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "c", "Content": b64("echo again")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut p = json!({"CommandId": cmd, "InstanceIds": [id]});
    p["Webhook"] = hook(&rx.url)["Webhook"].clone();
    let invoked = h.call("InvokeCommand", p).await["InvocationId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_delivery(&h, &invoked, "DELIVERED").await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    let body: Value = serde_json::from_slice(&hits[1].body).unwrap();
    assert_eq!(
        (&body["InvocationId"], &body["CommandId"]),
        (&json!(invoked), &json!(cmd))
    );
    assert!(signature_ok(&hits[1], KEY));

    // An invocation without a webhook looks as TAT's does.
    let plain = h.run("true", &[id], json!({})).await;
    h.wait_final(&plain, T30).await;
    let shown = h.invocation(&plain).await;
    assert!(shown.get("Webhook").is_none() && shown.get("WebhookStatus").is_none());
    assert!(deliveries(&h, json!({"InvocationId": plain}))
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_is_retried_until_it_accepts() {
    let mut h = start().await;
    let id = h.add_agent().await;
    let rx = Receiver::start(vec![500, 500]).await;
    let inv = h.run("exit 3", &[id], hook(&rx.url)).await;
    let d = wait_delivery(&h, &inv, "DELIVERED").await;
    assert_eq!(d["Attempts"], 3, "{d}");
    let statuses: Vec<&Value> = d["AttemptSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["HttpStatus"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)], "{d}");
    assert_eq!(d["AttemptSet"][0]["Error"], "HTTP 500");
    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    // Every attempt carries the same delivery, each freshly signed.
    for hit in &hits {
        assert!(signature_ok(hit, KEY));
        assert_eq!(hit.body, hits[0].body);
    }
    let body: Value = serde_json::from_slice(&hits[0].body).unwrap();
    assert_eq!(body["InvocationStatus"], "FAILED");
    assert_eq!(body["Tasks"][0]["ExitCode"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_receiver_fails_after_the_last_attempt() {
    let mut h = start().await;
    let id = h.add_agent().await;
    // A port that was just free: connections to it are refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let inv = h.run("true", &[id], hook(&url)).await;
    let d = wait_delivery(&h, &inv, "FAILED").await;
    let max = h.webhooks.max_attempts as usize;
    let attempts = d["AttemptSet"].as_array().unwrap();
    assert_eq!(
        (d["Attempts"].as_u64().unwrap() as usize, attempts.len()),
        (max, max)
    );
    for a in attempts {
        assert_eq!(a["HttpStatus"], Value::Null, "{a}");
        // The caller learns that there was no reply, not why (refused,
        // reset, timed out all read the same).
        assert_eq!(a["Error"], "delivery failed: no HTTP reply", "{a}");
    }
    assert_eq!(d["NextAttemptTime"], "");
    assert_eq!(h.invocation(&inv).await["WebhookStatus"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoker_webhook_notifies_for_its_triggers() {
    let mut h = start().await;
    let id = h.add_agent().await;
    let rx = Receiver::start(vec![]).await;
    let cmd = h
        .call(
            "CreateCommand",
            json!({"CommandName": "tick", "Content": b64("echo tick")}),
        )
        .await["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut p = json!({
        "Name": "every-second", "Type": "SCHEDULE", "CommandId": cmd, "InstanceIds": [id],
        "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "* * * * * *"},
    });
    p["Webhook"] = hook(&rx.url)["Webhook"].clone();
    let ivk = h.call("CreateInvoker", p).await["InvokerId"]
        .as_str()
        .unwrap()
        .to_string();
    let hit = wait_for("a notification from the invoker", T30, || async {
        rx.hits().into_iter().next()
    })
    .await;
    h.call("DisableInvoker", json!({"InvokerId": ivk})).await;
    assert!(signature_ok(&hit, KEY));
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(body["InvokerId"], ivk.as_str());
    assert_eq!(body["InvocationStatus"], "SUCCESS");
    let inv = body["InvocationId"].as_str().unwrap();
    let shown = h.invocation(inv).await;
    assert_eq!(shown["InvocationSource"], "INVOKER");
    assert_eq!(shown["Webhook"]["Url"], rx.url.as_str());
    let by_invoker = deliveries(&h, json!({"InvokerId": ivk})).await;
    assert!(
        by_invoker.iter().any(|d| d["InvocationId"] == inv),
        "{by_invoker:?}"
    );

    let raw = h
        .call_raw("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert!(!raw.contains(KEY), "{raw}");
    let listed = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert_eq!(listed["InvokerSet"][0]["Webhook"], json!({"Url": rx.url}));
    let other = "http://127.0.0.1:9/elsewhere";
    h.call(
        "ModifyInvoker",
        json!({"InvokerId": ivk, "Webhook": {"Url": other, "Secret": KEY}}),
    )
    .await;
    let listed = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert_eq!(listed["InvokerSet"][0]["Webhook"], json!({"Url": other}));
    let e = h
        .call_err(
            "ModifyInvoker",
            json!({"InvokerId": ivk, "Webhook": {"Url": "gopher://x/", "Secret": KEY}}),
        )
        .await;
    assert_eq!(code(&e), "InvalidParameterValue.InvalidWebhookUrl");
    // `{}` removes the invoker's webhook.
    h.call("ModifyInvoker", json!({"InvokerId": ivk, "Webhook": {}}))
        .await;
    let listed = h
        .call("DescribeInvokers", json!({"InvokerIds": [ivk]}))
        .await;
    assert!(listed["InvokerSet"][0].get("Webhook").is_none(), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_parameters_are_refused_and_change_nothing() {
    let mut h = start().await;
    let id = h.add_agent().await;
    let cases = [
        (json!("http://x/"), "InvalidParameter"),
        (json!({"Url": "http://x/"}), "MissingParameter"),
        (json!({"Secret": KEY}), "MissingParameter"),
        (json!({"Url": 5, "Secret": KEY}), "InvalidParameter"),
        (
            json!({"Url": "http://x/", "Secret": KEY, "Method": "GET"}),
            "UnknownParameter",
        ),
        (
            json!({"Url": "ftp://x/", "Secret": KEY}),
            "InvalidParameterValue.InvalidWebhookUrl",
        ),
        (
            json!({"Url": "http:///nohost", "Secret": KEY}),
            "InvalidParameterValue.InvalidWebhookUrl",
        ),
        (
            json!({"Url": "https://u:p@example.com/", "Secret": KEY}),
            "InvalidParameterValue.InvalidWebhookUrl",
        ),
        (
            json!({"Url": format!("https://example.com/{}", "a".repeat(2048)), "Secret": KEY}),
            "InvalidParameterValue.InvalidWebhookUrl",
        ),
        (
            json!({"Url": "https://example.com/", "Secret": "short"}),
            "InvalidParameterValue.InvalidWebhookSecret",
        ),
        (json!({}), "MissingParameter"),
    ];
    for (webhook, want) in &cases {
        let p = json!({"Content": b64("true"), "InstanceIds": [id], "Webhook": webhook});
        let e = h.call_err("RunCommand", p).await;
        assert_eq!(code(&e), *want, "RunCommand {webhook}: {e}");
        let e = h
            .call_err(
                "CreateInvoker",
                json!({
                    "Name": "n", "Type": "SCHEDULE", "CommandId": "cmd-aaaaaaaa",
                    "InstanceIds": [id], "Webhook": webhook,
                    "ScheduleSettings": {"Policy": "RECURRENCE", "Recurrence": "0 0 * * *"},
                }),
            )
            .await;
        assert_eq!(code(&e), *want, "CreateInvoker {webhook}: {e}");
    }
    let invs = h.call("DescribeInvocations", json!({})).await;
    assert_eq!(invs["TotalCount"], 0, "{invs}");
    let cmds = h
        .call(
            "DescribeCommands",
            json!({"Filters": [{"Name": "created-by", "Values": ["USER"]}]}),
        )
        .await;
    assert_eq!(cmds["TotalCount"], 0, "{cmds}");
    assert_eq!(h.call("DescribeInvokers", json!({})).await["TotalCount"], 0);

    for (p, want) in [
        (json!({}), "MissingParameter"),
        (
            json!({"InvocationId": "inv-aaaaaaaa", "InvokerId": "ivk-aaaaaaaa"}),
            "InvalidParameter",
        ),
        (
            json!({"InvocationId": "nope"}),
            "InvalidParameterValue.InvalidInvocationId",
        ),
        (
            json!({"InvocationId": "inv-aaaaaaaa"}),
            "ResourceNotFound.InvocationNotFound",
        ),
    ] {
        let e = h.call_err("DescribeWebhookDeliveries", p.clone()).await;
        assert_eq!(code(&e), want, "{p}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_short_by_shutdown_is_sent_after_restart() {
    let mut h = start().await;
    let id = h.add_agent().await;
    // The receiver holds the first POST open past the server's shutdown.
    let rx = Receiver::start(vec![0]).await;
    h.webhooks.attempt_timeout_ms = 3_000;
    h.stop_server().await;
    h.start_server().await;
    h.wait_online(std::slice::from_ref(&id)).await;
    let inv = h.run("true", &[id], hook(&rx.url)).await;
    wait_for("the first POST", T30, || async {
        rx.hits().first().cloned()
    })
    .await;
    h.stop_server().await;
    h.start_server().await;
    let d = wait_delivery(&h, &inv, "DELIVERED").await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].body, hits[1].body);
    assert!(signature_ok(&hits[1], KEY));
    // The attempt the shutdown cut short left no record; the retry is the first.
    assert_eq!(d["Attempts"], 1, "{d}");
    assert_eq!(d["AttemptSet"][0]["HttpStatus"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_destinations_are_refused_unless_allowed() {
    // No --webhook-allow: loopback and friends are out of bounds.
    let mut h = Harness::start().await;
    let id = h.add_agent().await;
    let rx = Receiver::start(vec![]).await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for host in [
        "127.0.0.1".to_string(),
        "[::ffff:127.0.0.1]".into(),
        "[::ffff:7f00:1]".into(),
        "0.0.0.0".into(),
        "[::]".into(),
        "[::1]".into(),
        "10.1.2.3".into(),
        "169.254.169.254".into(),
        "[fd00:ec2::254]".into(),
        "[::ffff:169.254.169.254]".into(),
        "100.64.0.1".into(),
        "224.0.0.1".into(),
    ] {
        let url = format!("http://{host}:{port}/hook");
        let e = h
            .call_err(
                "RunCommand",
                json!({"Content": b64("true"), "InstanceIds": [id], "Webhook": {"Url": url, "Secret": KEY}}),
            )
            .await;
        assert_eq!(
            code(&e),
            "InvalidParameterValue.InvalidWebhookUrl",
            "{url}: {e}"
        );
    }
    assert_eq!(
        h.call("DescribeInvocations", json!({})).await["TotalCount"],
        0
    );

    // A name is judged after resolution: `localhost` resolves inside, so the
    // delivery is refused once (no retries) and the receiver sees nothing.
    let url = format!("http://localhost:{port}/hook");
    let inv = h.run("true", std::slice::from_ref(&id), hook(&url)).await;
    let d = wait_delivery(&h, &inv, "FAILED").await;
    assert_eq!(d["Attempts"], 1, "{d}");
    let err = d["AttemptSet"][0]["Error"].as_str().unwrap();
    assert!(err.contains("not a permitted address"), "{d}");
    assert!(rx.hits().is_empty(), "{:?}", rx.hits());

    // With the range allowed, the same receiver gets the notification.
    h.stop_server().await;
    h.webhooks.allow = "127.0.0.0/8,::1/128".parse().unwrap();
    h.start_server().await;
    h.wait_online(std::slice::from_ref(&id)).await;
    let inv = h.run("true", &[id], hook(&url)).await;
    wait_delivery(&h, &inv, "DELIVERED").await;
    assert_eq!(rx.hits().len(), 1);
}
