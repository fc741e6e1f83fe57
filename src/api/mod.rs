//! The HTTP API: Tencent Cloud TAT 2020-10-28 and, on the same endpoint, CAM
//! 2019-01-16 for access management, spoken exactly as the official SDKs
//! speak them. A request is read, its TC3 signature checked, resolved to a
//! `Principal`, and handed to one action handler of the service its
//! credential scope names; the handler's result or `ApiError` is wrapped in
//! the response envelope here and nowhere else.

mod abuse;
mod access;
mod audit;
mod auth;
pub mod authz;
mod cam;
mod client_token;
mod commands;
pub mod console;
pub mod console_push;
mod console_root;
pub mod console_session;
mod console_views;
pub mod decided;
pub mod error;
mod form;
pub mod gate;
mod hidden;
mod instances;
mod invocations;
mod invokers;
mod jobctl;
mod misc;
pub mod recordings;
mod replay;
mod request;
mod scenes;
mod secrets;
mod session_admin;
pub mod ssh_auth;
mod targets;
mod views;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub use auth::{Principal, Service};
pub use cam::load_policy_inputs;
use error::{ApiError, Code};
pub use replay::ConnId;
use request::Params;

use crate::crypto::SecretBox;
use crate::dispatch::Dispatcher;
use crate::gate::{Authorized, Gate};
use crate::policy::Action;
use crate::run::Runner;
use crate::store::Store;

pub const TAT_VERSION: &str = "2020-10-28";
pub const CAM_VERSION: &str = "2019-01-16";
/// Largest request body accepted: 64 KB of content plus generous room.
const MAX_BODY: usize = 1 << 20;

/// Everything an action handler may use.
pub struct Api {
    /// Live interactive sessions (the console's terminal, the ssh gateway).
    pub sessions: crate::session::Sessions,
    pub store: Store,
    pub secrets: Arc<SecretBox>,
    pub dispatch: Arc<Dispatcher>,
    /// The account this appliance is (CAM's OwnerUin).
    pub account_uin: String,
    /// The region name reported by DescribeRegions.
    pub region: String,
    /// SHA-256 of the server certificate, put into register code values.
    pub fingerprint: String,
    /// Grants, resources with their tags, decisions.
    pub gate: Arc<Gate>,
    /// Starts runs (shared with the scheduler).
    pub runner: Arc<Runner>,
    /// Woken whenever an invoker changes, so the scheduler plans again.
    pub schedule_changed: Arc<tokio::sync::Notify>,
    /// Webhook destinations allowed in spite of the SSRF rules.
    pub webhook_allow: crate::notify::Destinations,
    /// Sign-in throttle and the aggregation of pre-authentication failures.
    pub abuse: abuse::Abuse,
    /// Signatures seen within the timestamp window, and what for.
    pub replay: replay::ReplayGuard,
    /// Accept TC3 requests whose body the signature does not cover
    /// (`X-TC-Content-SHA256: UNSIGNED-PAYLOAD`); refused unless configured.
    pub allow_unsigned_payload: bool,
    /// The ssh gateway's address and host key, once it has started.
    pub ssh_info: std::sync::OnceLock<ssh_auth::SshInfo>,
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

/// Reads a request body of at most `MAX_BODY` bytes. A larger one is read
/// on (up to `DRAIN_MAX`) and discarded, so the client, still sending, gets
/// the JSON error instead of a reset connection.
async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    const DRAIN_MAX: usize = 8 << 20;
    let mut body = body;
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::new(
                Code::InvalidParameter,
                "the request body could not be read",
            ));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if total > DRAIN_MAX {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::new(
            Code::RequestSizeLimitExceeded,
            format!("the request body exceeds {MAX_BODY} bytes"),
        ));
    }
    Ok(Bytes::from(buf))
}

impl Api {
    /// Serves the API (`POST /`, or `GET /` with the parameters in the query
    /// string). Every call, whatever its outcome, leaves one audit event.
    pub async fn serve(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let began = std::time::Instant::now();
        let request_id = crate::ids::request_id();
        // The header's action until the signature says otherwise (the v1
        // signature carries it as a parameter).
        let mut action = req
            .headers()
            .get("x-tc-action")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut trail = audit::Trail {
            context: Some((request_id.clone(), peer)),
            ..Default::default()
        };
        let fut =
            std::panic::AssertUnwindSafe(self.serve_inner(req, peer, &mut action, &mut trail));
        let result = match fut.catch_unwind().await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(%action, %request_id, "handler panicked");
                Err(ApiError::internal())
            }
        };
        if let Err(e) = &result {
            tracing::debug!(%action, %request_id, code = e.code.as_str(), "request failed");
        }
        let outcome = match &result {
            Ok(_) => "Success".to_string(),
            Err(e) => e.code.to_string(),
        };
        let m = &crate::metrics::METRICS;
        if !trail.written {
            let audit_began = std::time::Instant::now();
            audit::record(&self, trail.into_event(&request_id, peer, &action, outcome)).await;
            m.stages.audit.observe_duration(audit_began.elapsed());
        }
        // A request that failed authentication names whatever action it
        // liked: it gets no label of its own.
        let unauthenticated = matches!(&result, Err(e) if e.code.is_auth_failure());
        m.api_call(
            if unauthenticated {
                "unauthenticated"
            } else {
                &action
            },
            began.elapsed(),
        );
        json_reply(StatusCode::OK, &envelope(&request_id, result))
    }

    async fn serve_inner(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        action: &mut String,
        trail: &mut audit::Trail,
    ) -> Result<Value, ApiError> {
        let (parts, body) = req.into_parts();
        trail.note_credential(&parts);
        let body = read_body(body).await?;
        let signed = auth::authenticate(self, &parts, &body).await?;
        trail.principal = signed.principal.user_id.clone();
        trail.secret_id = signed.principal.secret_id.clone();
        *action = signed.action;
        if action.is_empty() {
            return Err(ApiError::missing("X-TC-Action"));
        }
        // The version, not the credential scope, names the API: a CAM action
        // is a CAM action whatever service the client signed for.
        let Some(service) = Service::from_version(&signed.version) else {
            return Err(ApiError::new(
                Code::NoSuchVersion,
                format!(
                    "the API version {:?} does not exist; use {TAT_VERSION} (TAT) or {CAM_VERSION} (CAM)",
                    signed.version
                ),
            ));
        };
        trail.service = service.name().to_string();
        // An appliance is one region; CAM is global. DescribeRegions answers
        // from anywhere so a client can find the region to use.
        if let Some(region) = signed.region.as_deref().filter(|r| !r.is_empty()) {
            if service == Service::Tat && region != self.region && action != "DescribeRegions" {
                return Err(ApiError::new(
                    Code::UnsupportedRegion,
                    format!(
                        "the region {region:?} is not served here; this appliance is region {:?}",
                        self.region
                    ),
                ));
            }
        }
        self.call(
            &signed.principal,
            service,
            action,
            signed.params,
            Some(peer.ip()),
            trail,
        )
        .await
    }

    /// Runs one action for an authenticated principal, whichever door it
    /// came through (a signed request or a console session): the gate reads
    /// and decides the request, then its handler runs with the proof.
    pub(crate) async fn call(
        &self,
        principal: &Principal,
        service: Service,
        action: &str,
        mut params: Params,
        ip: Option<std::net::IpAddr>,
        trail: &mut audit::Trail,
    ) -> Result<Value, ApiError> {
        trail.resources = params.named_ids();
        let Some(action) = Action::from_api(action, service == Service::Cam) else {
            let (api, version) = match service {
                Service::Tat => ("TAT", TAT_VERSION),
                Service::Cam => ("CAM", CAM_VERSION),
            };
            return Err(ApiError::new(
                Code::InvalidAction,
                format!("the action {action:?} does not exist in {api} {version}"),
            ));
        };
        // ClientToken is not part of what the gate reads: taken first, its
        // fingerprint covers every other parameter. A repeated start is
        // decided again (the caller may still do it) and then answered
        // with the first result.
        let claim = client_token::take(&mut params, principal, action)?;
        let a = self
            .decide(principal, action, &mut params, ip, trail)
            .await?;
        if let Some(first) = client_token::replay(self, &claim).await? {
            return Ok(first);
        }
        self.dispatch_action(a, params, claim, trail).await
    }

    /// The handler of each action: one arm per action of the table, so the
    /// compiler finds an action without one.
    async fn dispatch_action(
        &self,
        a: Authorized<decided::Request>,
        q: Params,
        claim: Option<client_token::Claim>,
        trail: &mut audit::Trail,
    ) -> Result<Value, ApiError> {
        use Action as A;
        let action = a.value().action;
        match action {
            A::CreateCommand => commands::create(self, a, q).await,
            A::ModifyCommand => commands::modify(self, a, q).await,
            A::DeleteCommand => commands::delete_one(self, a, q).await,
            A::DeleteCommands => commands::delete_many(self, a, q).await,
            A::DescribeCommands => commands::describe(self, a, q).await,
            A::PreviewReplacedCommandContent => commands::preview(self, a, q).await,
            A::RunCommand => invocations::run(self, a, q, claim, trail).await,
            A::InvokeCommand => invocations::invoke(self, a, q, claim, trail).await,
            A::DescribeInvocations => invocations::describe(self, a, q).await,
            A::DescribeInvocationTasks => invocations::describe_tasks(self, a, q).await,
            A::CancelInvocation => invocations::cancel(self, a, q).await,
            A::SuspendInvocation => jobctl::suspend(self, a, q).await,
            A::ResumeInvocation => jobctl::resume(self, a, q).await,
            A::DescribeInvocationTaskOutput => invocations::output(self, a, q).await,
            A::CreateInvoker => invokers::create(self, a, q, claim).await,
            A::ModifyInvoker => invokers::modify(self, a, q).await,
            A::DeleteInvoker => invokers::delete(self, a, q).await,
            A::DescribeInvokers => invokers::describe(self, a, q).await,
            A::EnableInvoker => invokers::enable(self, a, q).await,
            A::DisableInvoker => invokers::disable(self, a, q).await,
            A::DescribeInvokerRecords => invokers::describe_records(self, a, q).await,
            A::DescribeWebhookDeliveries => webhooks::describe_deliveries(self, a, q).await,
            A::CreateRegisterCode => instances::create_code(self, a, q).await,
            A::DescribeRegisterCodes => instances::describe_codes(self, a, q).await,
            A::DisableRegisterCodes => instances::disable_codes(self, a, q).await,
            A::DeleteRegisterCodes => instances::delete_codes(self, a, q).await,
            A::DescribeRegisterInstances => instances::describe_instances(self, a, q).await,
            A::ModifyRegisterInstance => instances::modify_instance(self, a, q).await,
            A::ModifyInstanceTags => instances::modify_tags(self, a, q).await,
            A::TerminateSession => session_admin::terminate(self, a, q).await,
            A::DeleteRegisterInstance => instances::delete_instance(self, a, q).await,
            A::DescribeAutomationAgentStatus => instances::agent_status(self, a, q).await,
            A::DescribeRegions => misc::regions(self, a, q).await,
            A::DescribeQuotas => misc::quotas(self, a, q).await,
            A::DescribeScenes => scenes::describe(self, a, q).await,
            A::DescribeAuditEvents => audit::describe(self, a, q).await,
            A::CreateSecret => secrets::create(self, a, q).await,
            A::ModifySecret => secrets::modify(self, a, q).await,
            A::DeleteSecret => secrets::delete(self, a, q).await,
            A::DescribeSecrets => secrets::describe(self, a, q).await,
            A::DescribeSessions => recordings::describe(self, a, q).await,
            A::DescribeSessionRecording => recordings::recording(self, a, q).await,
            A::CreateRoleAssignment => access::create(self, a, q).await,
            A::DeleteRoleAssignment => access::delete(self, a, q).await,
            A::ListRoleAssignments => access::list(self, a, q).await,
            A::SimulatePrincipalPolicy => access::simulate(self, a, q).await,
            A::AddUser => cam::users::add(self, a, q).await,
            A::GetUser => cam::users::get(self, a, q).await,
            A::ListUsers => cam::users::list(self, a, q).await,
            A::UpdateUser => cam::users::update(self, a, q).await,
            A::DeleteUser => cam::users::delete(self, a, q).await,
            A::CreateGroup => cam::groups::create(self, a, q).await,
            A::GetGroup => cam::groups::get(self, a, q).await,
            A::ListGroups => cam::groups::list(self, a, q).await,
            A::DeleteGroup => cam::groups::delete(self, a, q).await,
            A::AddUserToGroup => cam::groups::add_users(self, a, q).await,
            A::RemoveUserFromGroup => cam::groups::remove_users(self, a, q).await,
            A::ListUsersForGroup => cam::groups::users_for_group(self, a, q).await,
            A::ListGroupsForUser => cam::groups::groups_for_user(self, a, q).await,
            A::CreatePolicy => cam::policies::create(self, a, q).await,
            A::GetPolicy => cam::policies::get(self, a, q).await,
            A::UpdatePolicy => cam::policies::update(self, a, q).await,
            A::DeletePolicy => cam::policies::delete(self, a, q).await,
            A::ListPolicies => cam::policies::list(self, a, q).await,
            A::AttachUserPolicy => cam::policies::attach_user(self, a, q).await,
            A::DetachUserPolicy => cam::policies::detach_user(self, a, q).await,
            A::AttachGroupPolicy => cam::policies::attach_group(self, a, q).await,
            A::DetachGroupPolicy => cam::policies::detach_group(self, a, q).await,
            A::ListAttachedUserPolicies => cam::policies::attached_user(self, a, q).await,
            A::ListAttachedGroupPolicies => cam::policies::attached_group(self, a, q).await,
            A::ListAttachedUserAllPolicies => cam::policies::attached_user_all(self, a, q).await,
            A::CreateAccessKey => cam::keys::create(self, a, q).await,
            A::ListAccessKeys => cam::keys::list(self, a, q).await,
            A::UpdateAccessKey => cam::keys::update(self, a, q).await,
            A::DeleteAccessKey => cam::keys::delete(self, a, q).await,
            A::GetUserAppId => cam::keys::app_id(self, a, q).await,
            A::ImportSshPublicKey => cam::ssh_keys::import(self, a, q).await,
            A::DescribeSshPublicKeys => cam::ssh_keys::describe(self, a, q).await,
            A::DeleteSshPublicKey => cam::ssh_keys::delete(self, a, q).await,
            // Pseudo-actions are decisions inside other actions; no request
            // names one (`Action::from_api` never returns them).
            A::UseSecret
            | A::DescribeCommandContent
            | A::RecordSessionInput
            | A::StartSession
            | A::ForwardPort
            | A::ForwardAgent => Err(ApiError::new(
                Code::InvalidAction,
                format!("the action {:?} is not an API action", action.api_name()),
            )),
        }
    }
}
