//! Job control on the server side: asks agents to suspend or resume tasks
//! and applies their confirmations.
//!
//! A request is asynchronous, like a cancel: the API answers once the
//! request is on its way, and a task becomes SUSPENDED (or RUNNING again)
//! only when its agent confirms that it signalled the process group. Only
//! RUNNING tasks are suspended and only SUSPENDED ones resumed; tasks not yet
//! delivered (or already ended) are left alone. Agents that did not announce
//! `protocol::FEATURE_JOB_CONTROL` are never sent a request: an older agent
//! would drop its connection on a message type it does not know.

use super::Dispatcher;
use crate::protocol::{AgentMsg, ServerMsg};
use crate::store::invocations::{self, Task};
use crate::store::jobctl;
use crate::store::status::TaskStatus;
use crate::store::StoreError;
use crate::timefmt::now_ms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    Suspend,
    Resume,
}

impl ControlRequest {
    /// The state a task must be in for the request to act on it.
    fn acts_on(self) -> TaskStatus {
        match self {
            ControlRequest::Suspend => TaskStatus::Running,
            ControlRequest::Resume => TaskStatus::Suspended,
        }
    }

    fn message(self, task_id: String) -> ServerMsg {
        match self {
            ControlRequest::Suspend => ServerMsg::SuspendTask { task_id },
            ControlRequest::Resume => ServerMsg::ResumeTask { task_id },
        }
    }
}

/// Why a request reached no task.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// None of the chosen tasks is in the state the request acts on.
    #[error("no chosen task is {}", .0.acts_on().as_str())]
    NoTaskInState(ControlRequest),
    /// Some tasks are in that state, but no agent of theirs is connected.
    #[error("the agents running the chosen tasks are offline")]
    AgentsOffline,
    /// Connected, but the agents predate job control.
    #[error("the agents running the chosen tasks do not support job control")]
    AgentsTooOld,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Dispatcher {
    /// Sends `req` for every task of `tasks` it applies to. Fails when it
    /// applies to none, or no agent concerned can take it; otherwise returns
    /// how many requests went out.
    pub async fn control(
        &self,
        req: ControlRequest,
        tasks: &[Task],
    ) -> Result<usize, ControlError> {
        let (mut sent, mut offline, mut too_old) = (0, 0, 0);
        for t in tasks.iter().filter(|t| t.status == req.acts_on()) {
            let conn = self
                .agents
                .lock()
                .ok()
                .and_then(|m| m.get(&t.instance_id).map(|c| (c.tx.clone(), c.job_control)));
            match conn {
                None => offline += 1,
                Some((_, false)) => too_old += 1,
                // A full or closed queue means the agent is going away.
                Some((tx, true)) => match tx.try_send(req.message(t.id.clone())) {
                    Ok(()) => sent += 1,
                    Err(_) => offline += 1,
                },
            }
        }
        match (sent, offline, too_old) {
            (0, 0, 0) => Err(ControlError::NoTaskInState(req)),
            (0, 0, _) => Err(ControlError::AgentsTooOld),
            (0, _, _) => Err(ControlError::AgentsOffline),
            (n, _, _) => Ok(n),
        }
    }
}

/// Applies an agent's job-control answer to the task it names, if the task
/// belongs to that agent.
pub(super) async fn apply_report(
    d: &Dispatcher,
    instance_id: &str,
    msg: AgentMsg,
) -> crate::store::Result<()> {
    let now = now_ms();
    let (task_id, suspend) = match msg {
        AgentMsg::TaskSuspended { task_id, .. } => (task_id, true),
        AgentMsg::TaskResumed { task_id, .. } => (task_id, false),
        AgentMsg::TaskControlFailed { task_id, reason } => {
            tracing::info!(
                instance = %instance_id,
                task = %task_id,
                "the agent could not suspend or resume the task: {reason}"
            );
            return Ok(());
        }
        _ => return Ok(()),
    };
    let owner = instance_id.to_string();
    d.store
        .write(move |c| {
            let t = match invocations::get_task(c, &task_id) {
                Ok(t) => t,
                // A task deleted meanwhile: nothing to record.
                Err(StoreError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            if t.instance_id != owner {
                return Ok(());
            }
            if suspend {
                jobctl::mark_suspended(c, &task_id, now)?;
            } else {
                jobctl::mark_resumed(c, &task_id, now)?;
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;
    use crate::crypto::SecretBox;
    use crate::dispatch::Settings;
    use crate::store::Store;

    fn task(id: &str, instance: &str, status: TaskStatus) -> Task {
        Task {
            deadline_ms: 0,
            ..crate::store::invocations::fixtures::task(id, "inv-1", instance, status)
        }
    }

    #[tokio::test]
    async fn requests_go_only_to_connected_agents_that_announced_job_control() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dispatcher::new(
            Store::open(dir.path()).unwrap(),
            Arc::new(SecretBox::from_key(&[7; 32]).unwrap()),
            Settings::default(),
        );
        let (old_tx, mut old_rx) = mpsc::channel(8);
        let (new_tx, mut new_rx) = mpsc::channel(8);
        d.attach("mi-old", old_tx, false, None, None, Default::default());
        d.attach("mi-new", new_tx, true, None, None, Default::default());
        use ControlRequest::*;
        use TaskStatus::*;

        let pending = [task("invt-1", "mi-new", Pending)];
        assert!(matches!(
            d.control(Suspend, &pending).await,
            Err(ControlError::NoTaskInState(Suspend))
        ));
        let old = [task("invt-2", "mi-old", Running)];
        assert!(matches!(
            d.control(Suspend, &old).await,
            Err(ControlError::AgentsTooOld)
        ));
        let gone = [task("invt-3", "mi-gone", Suspended), old[0].clone()];
        assert!(matches!(
            d.control(Resume, &gone).await,
            Err(ControlError::AgentsOffline)
        ));
        assert!(old_rx.try_recv().is_err(), "an old agent is never sent one");

        let mixed = [
            task("invt-4", "mi-new", Running),
            task("invt-5", "mi-new", Suspended),
            old[0].clone(),
        ];
        assert_eq!(d.control(Suspend, &mixed).await.unwrap(), 1);
        assert_eq!(
            new_rx.try_recv().unwrap(),
            ServerMsg::SuspendTask {
                task_id: "invt-4".into()
            }
        );
        assert_eq!(d.control(Resume, &mixed).await.unwrap(), 1);
        assert_eq!(
            new_rx.try_recv().unwrap(),
            ServerMsg::ResumeTask {
                task_id: "invt-5".into()
            }
        );
        assert!(new_rx.try_recv().is_err() && old_rx.try_recv().is_err());
    }
}
