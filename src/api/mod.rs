//! The HTTP API: Tencent Cloud TAT 2020-10-28 and, on the same endpoint, CAM
//! 2019-01-16 for access management, spoken exactly as the official SDKs
//! speak them. A request is read, its TC3 signature checked, resolved to a
//! `Principal`, and handed to one action handler of the service its
//! credential scope names; the handler's result or `ApiError` is wrapped in
//! the response envelope here and nowhere else.

mod access;
mod audit;
mod auth;
pub mod authz;
mod cam;
mod commands;
pub mod console;
pub mod error;
mod instances;
pub(crate) mod invocations;
mod invokers;
mod jobctl;
mod misc;
pub mod params;
mod request;
mod scenes;
mod secrets;
mod start;
mod targets;
mod views;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub use auth::{Principal, Service};
pub use cam::load_policy_inputs;
use error::ApiError;
use request::Params;

use crate::crypto::SecretBox;
use crate::dispatch::Dispatcher;
use crate::store::Store;

pub const TAT_VERSION: &str = "2020-10-28";
pub const CAM_VERSION: &str = "2019-01-16";
/// Largest request body accepted: 64 KB of content plus generous room.
const MAX_BODY: usize = 1 << 20;

/// Everything an action handler may use.
pub struct Api {
    pub store: Store,
    pub secrets: Arc<SecretBox>,
    pub dispatch: Arc<Dispatcher>,
    /// The account this appliance is (CAM's OwnerUin).
    pub account_uin: String,
    /// The region name reported by DescribeRegions.
    pub region: String,
    /// SHA-256 of the server certificate, put into register code values.
    pub fingerprint: String,
    /// Compiled policy documents, reused across requests.
    pub policy_cache: authz::PolicyCache,
    /// Woken whenever an invoker changes, so the scheduler plans again.
    pub schedule_changed: Arc<tokio::sync::Notify>,
}

pub type Reply = Response<Full<Bytes>>;

pub fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn envelope(request_id: &str, result: Result<Value, ApiError>) -> Value {
    match result {
        Ok(Value::Object(mut m)) => {
            m.insert("RequestId".into(), Value::String(request_id.into()));
            json!({ "Response": m })
        }
        Ok(_) => json!({ "Response": { "RequestId": request_id } }),
        Err(e) => json!({
            "Response": {
                "Error": { "Code": e.code, "Message": e.message },
                "RequestId": request_id,
            }
        }),
    }
}

impl Api {
    /// Serves `POST /`: every API action. Every call, whatever its outcome,
    /// leaves one audit event.
    pub async fn serve(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let began = std::time::Instant::now();
        let request_id = crate::ids::request_id();
        let action = req
            .headers()
            .get("x-tc-action")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut trail = audit::Trail::default();
        let fut = std::panic::AssertUnwindSafe(self.serve_inner(req, peer, &action, &mut trail));
        let result = match fut.catch_unwind().await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(%action, %request_id, "handler panicked");
                Err(ApiError::internal())
            }
        };
        if let Err(e) = &result {
            tracing::debug!(%action, %request_id, code = e.code, "request failed");
        }
        let outcome = match &result {
            Ok(_) => "Success".to_string(),
            Err(e) => e.code.to_string(),
        };
        let audit_began = std::time::Instant::now();
        audit::record(&self, trail.into_event(&request_id, peer, &action, outcome)).await;
        let m = &crate::metrics::METRICS;
        m.stages.audit.observe_duration(audit_began.elapsed());
        m.api_call(&action, began.elapsed());
        json_reply(StatusCode::OK, &envelope(&request_id, result))
    }

    async fn serve_inner(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        action: &str,
        trail: &mut audit::Trail,
    ) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        trail.note_credential(&parts);
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err(ApiError::new(
                    "RequestSizeLimitExceeded",
                    format!("the request body exceeds {MAX_BODY} bytes"),
                ))
            }
        };
        let (principal, service) = auth::authenticate(self, &parts, &body).await?;
        trail.principal = principal.user_id.clone();
        if action.is_empty() {
            return Err(ApiError::missing("X-TC-Action"));
        }
        let version = parts
            .headers
            .get("x-tc-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let expected = match service {
            Service::Tat => TAT_VERSION,
            Service::Cam => CAM_VERSION,
        };
        if version != expected {
            return Err(ApiError::new(
                "NoSuchVersion",
                format!("the API version {version:?} does not exist; use {expected}"),
            ));
        }
        let params = Params::parse(&body)?;
        self.call(&principal, service, action, params, Some(peer.ip()), trail)
            .await
    }

    /// Runs one action for an authenticated principal, whichever door it
    /// came through (a signed request or a console session): authorize, then
    /// hand it to its handler.
    pub(crate) async fn call(
        &self,
        principal: &Principal,
        service: Service,
        action: &str,
        params: Params,
        ip: Option<std::net::IpAddr>,
        trail: &mut audit::Trail,
    ) -> Result<Value, ApiError> {
        trail.resources = params.named_ids();
        let mut p = principal.clone();
        if let Some(policy_action) = crate::policy::policy_action(action, service == Service::Cam) {
            let mut grants = self.grants(principal, ip).await?;
            grants.set_request_tags(params.peek_tags());
            p.grants = Arc::new(grants);
            if let Some(groups) = self.named_resources(action, &params).await? {
                let mut why = Vec::new();
                for g in &groups {
                    let d = p.grants.decide(policy_action, g);
                    why.push(d.to_string());
                    if !d.allowed {
                        trail.decision = "deny".into();
                        trail.deciding_statement = d.to_string();
                        return Err(authz::denied(policy_action, &d));
                    }
                }
                // A run that puts secrets into its script needs
                // tat:UseSecret on each of them with its target instances.
                if !p.grants.is_root() {
                    for g in self.secret_use_groups(action, &params).await? {
                        let d = p.grants.decide(secrets::USE_SECRET, &g);
                        why.push(d.to_string());
                        if !d.allowed {
                            trail.decision = "deny".into();
                            trail.deciding_statement = d.to_string();
                            return Err(authz::denied(secrets::USE_SECRET, &d));
                        }
                    }
                }
                trail.deciding_statement = why.join(" | ");
            }
            trail.decision = "allow".into();
        }
        if access::handles(action) {
            return access::dispatch(self, &p, action, params).await;
        }
        match service {
            Service::Tat => self.dispatch_action(&p, action, params).await,
            Service::Cam => cam::dispatch(self, &p, action, params).await,
        }
    }

    async fn dispatch_action(
        &self,
        p: &Principal,
        action: &str,
        q: Params,
    ) -> Result<Value, ApiError> {
        match action {
            "CreateCommand" => commands::create(self, p, q).await,
            "ModifyCommand" => commands::modify(self, p, q).await,
            "DeleteCommand" => commands::delete_one(self, p, q).await,
            "DeleteCommands" => commands::delete_many(self, p, q).await,
            "DescribeCommands" => commands::describe(self, p, q).await,
            "PreviewReplacedCommandContent" => commands::preview(self, p, q).await,
            "RunCommand" => invocations::run(self, p, q).await,
            "InvokeCommand" => invocations::invoke(self, p, q).await,
            "DescribeInvocations" => invocations::describe(self, p, q).await,
            "DescribeInvocationTasks" => invocations::describe_tasks(self, p, q).await,
            "CancelInvocation" => invocations::cancel(self, p, q).await,
            "SuspendInvocation" => jobctl::suspend(self, p, q).await,
            "ResumeInvocation" => jobctl::resume(self, p, q).await,
            "DescribeInvocationTaskOutput" => invocations::output(self, p, q).await,
            "CreateInvoker" => invokers::create(self, p, q).await,
            "ModifyInvoker" => invokers::modify(self, p, q).await,
            "DeleteInvoker" => invokers::delete(self, p, q).await,
            "DescribeInvokers" => invokers::describe(self, p, q).await,
            "EnableInvoker" => invokers::enable(self, p, q).await,
            "DisableInvoker" => invokers::disable(self, p, q).await,
            "DescribeInvokerRecords" => invokers::describe_records(self, p, q).await,
            "DescribeWebhookDeliveries" => webhooks::describe_deliveries(self, p, q).await,
            "CreateRegisterCode" => instances::create_code(self, p, q).await,
            "DescribeRegisterCodes" => instances::describe_codes(self, p, q).await,
            "DisableRegisterCodes" => instances::disable_codes(self, p, q).await,
            "DeleteRegisterCodes" => instances::delete_codes(self, p, q).await,
            "DescribeRegisterInstances" => instances::describe_instances(self, p, q).await,
            "ModifyRegisterInstance" => instances::modify_instance(self, p, q).await,
            "ModifyInstanceTags" => instances::modify_tags(self, p, q).await,
            "DeleteRegisterInstance" => instances::delete_instance(self, p, q).await,
            "DescribeAutomationAgentStatus" => instances::agent_status(self, p, q).await,
            "DescribeRegions" => misc::regions(self, p, q).await,
            "DescribeQuotas" => misc::quotas(self, p, q).await,
            "DescribeScenes" => scenes::describe(self, p, q).await,
            "DescribeAuditEvents" => audit::describe(self, p, q).await,
            "CreateSecret" => secrets::create(self, p, q).await,
            "ModifySecret" => secrets::modify(self, p, q).await,
            "DeleteSecret" => secrets::delete(self, p, q).await,
            "DescribeSecrets" => secrets::describe(self, p, q).await,
            other => Err(ApiError::new(
                "InvalidAction",
                format!("the action {other:?} does not exist in TAT {TAT_VERSION}"),
            )),
        }
    }
}
