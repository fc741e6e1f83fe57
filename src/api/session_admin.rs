//! TerminateSession (a drover extension): an administrator ends a live
//! interactive session. The request names the instance (the gate decides
//! `tat:TerminateSession` on it, with its tags) and the session; a session
//! that is not live on that instance is `ResourceNotFound.SessionNotFound`,
//! so a caller learns nothing about sessions elsewhere.

use serde_json::{json, Value};

use super::decided::Request;
use super::error::{ApiError, Code};
use super::request::{Params, R};
use super::Api;
use crate::gate::Authorized;

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
