//! The API's side of interactive sessions. `open_session` decides and
//! opens one for a person, for the console's terminal and the ssh gateway
//! alike, and audits the attempt.
//!
//! TerminateSession (a drover extension): an administrator ends a live
//! interactive session. The request names the instance (the gate decides
//! `tat:TerminateSession` on it, with its tags) and the session; a session
//! that is not live on that instance is `ResourceNotFound.SessionNotFound`,
//! so a caller learns nothing about sessions elsewhere.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::audit::{self, Trail};
use super::decided::Request;
use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::{Api, Principal};
use crate::gate::Authorized;
use crate::session::{self, SessionIo, SessionPlan};

impl Api {
    /// Decides `tat:StartSession` (a port forward: `tat:ForwardPort`) for
    /// `p` with the policies of this moment and opens the session; the
    /// attempt is audited as `StartSession` (`ForwardPort`), under
    /// `service` (console or ssh), either way, and an agent forwarding
    /// request (`tat:ForwardAgent`) with it, as the resource
    /// `agent-forward/allow` or `agent-forward/deny`. The error's message
    /// is fit to show the person.
    pub(super) async fn open_session(
        &self,
        p: &Principal,
        plan: SessionPlan,
        service: &str,
        peer: SocketAddr,
    ) -> Result<SessionIo, ApiError> {
        let (action, what) = match &plan.forward {
            Some(f) => ("ForwardPort", format!("forward/{}:{}", f.host, f.port)),
            None => ("StartSession", format!("login/{}", plan.login_user)),
        };
        let mut trail = Trail {
            principal: p.user_id.clone(),
            service: service.into(),
            resources: vec![format!("instance/{}", plan.instance_id), what],
            ..Default::default()
        };
        let asked_agent = plan.agent_forward;
        let result = async {
            let grants = self.grants(p, Some(peer.ip())).await?;
            let decided =
                session::decide(&self.gate, &grants, self.sessions.recording(), plan).await;
            let decided = match decided {
                Ok(d) => {
                    trail.decision = "allow".into();
                    trail.deciding_statement = d.why().to_string();
                    if asked_agent {
                        // tat:ForwardAgent, decided with it.
                        let granted = d.value().agent_forward;
                        trail.resources.push(
                            if granted {
                                "agent-forward/allow"
                            } else {
                                "agent-forward/deny"
                            }
                            .into(),
                        );
                    }
                    d
                }
                Err(e) => {
                    if let session::SessionError::Denied { denied, .. } = &e {
                        trail.decision = "deny".into();
                        trail.deciding_statement = denied.decision.clone();
                    }
                    return Err(ApiError::from(e));
                }
            };
            Ok(self.sessions.open(decided).await?)
        }
        .await;
        let outcome = match &result {
            Ok(io) => {
                trail.resources.push(format!("session/{}", io.id));
                "Success".to_string()
            }
            Err(e) => e.code.to_string(),
        };
        let event = trail.into_event(&crate::ids::request_id(), peer, action, outcome);
        audit::record(self, event).await;
        result
    }
}

pub async fn terminate(api: &Api, a: Authorized<Request>, mut q: Params) -> R<Value> {
    let instance = a.one("InstanceId")?;
    let id = q.str("SessionId")?;
    q.finish()?;
    let live = api.sessions.get(&id).filter(|s| s.instance_id == instance);
    if live.is_none()
        || !api
            .sessions
            .terminate(&id, &format!("terminated by {}", a.who().name))
    {
        return Err(ApiError::new(
            Code::ResourceNotFoundSessionNotFound,
            format!("no live session `{id}` on instance `{instance}`"),
        ));
    }
    Ok(json!({}))
}
