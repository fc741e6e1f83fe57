//! Job control (drover extension, as Azure Automation suspends and resumes
//! jobs): SuspendInvocation and ResumeInvocation, shaped exactly like TAT's
//! CancelInvocation (InvocationId, optional InstanceIds).
//!
//! Suspend stops the whole process group of each RUNNING task it names
//! (SIGSTOP on the agent) and pauses the task's timeout; Resume continues
//! each SUSPENDED one (SIGCONT) and moves its deadline back by the time it
//! spent suspended. Both reply `{}` as soon as the requests are on their way
//! (as CancelInvocation does); the task shows SUSPENDED, or RUNNING again,
//! once its agent confirms. Tasks in other states, such as tasks not yet
//! delivered, are left alone; when that leaves nothing to act on, the call
//! fails and changes nothing. CancelInvocation works on suspended tasks.

use super::decided::Request;
use crate::gate::Authorized;
use serde_json::{json, Value};

use super::invocations::chosen_tasks;
use super::request::{Params, R};
use super::Api;
use crate::dispatch::ControlRequest;

pub async fn suspend(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    control(api, ControlRequest::Suspend, a, q).await
}

pub async fn resume(api: &Api, a: Authorized<Request>, q: Params) -> R<Value> {
    control(api, ControlRequest::Resume, a, q).await
}

async fn control(api: &Api, req: ControlRequest, a: Authorized<Request>, q: Params) -> R<Value> {
    let tasks = chosen_tasks(api, a, q).await?;
    api.dispatch.control(req, &tasks).await?;
    Ok(json!({}))
}
