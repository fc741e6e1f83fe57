//! Task and invocation states, named exactly as TAT names them, plus the
//! drover extension SUSPENDED (job control).
//!
//! SUSPENDED is a task whose agent confirmed it stopped the process group;
//! it is neither final nor undelivered, and the sweep never times it out.
//! An invocation is SUSPENDED when every task that has not ended is
//! suspended; a mix of suspended and running (or not yet delivered) tasks
//! is still RUNNING, since work is still going on or about to.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Pending,
    Delivering,
    DeliverDelayed,
    DeliverFailed,
    StartFailed,
    Running,
    Success,
    Failed,
    Timeout,
    TaskTimeout,
    Cancelling,
    Cancelled,
    Terminated,
    /// drover extension: the agent stopped the task's process group.
    Suspended,
}

use TaskStatus::*;

const ALL: [TaskStatus; 14] = [
    Pending,
    Delivering,
    DeliverDelayed,
    DeliverFailed,
    StartFailed,
    Running,
    Success,
    Failed,
    Timeout,
    TaskTimeout,
    Cancelling,
    Cancelled,
    Terminated,
    Suspended,
];

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Pending => "PENDING",
            Delivering => "DELIVERING",
            DeliverDelayed => "DELIVER_DELAYED",
            DeliverFailed => "DELIVER_FAILED",
            StartFailed => "START_FAILED",
            Running => "RUNNING",
            Success => "SUCCESS",
            Failed => "FAILED",
            Timeout => "TIMEOUT",
            TaskTimeout => "TASK_TIMEOUT",
            Cancelling => "CANCELLING",
            Cancelled => "CANCELLED",
            Terminated => "TERMINATED",
            Suspended => "SUSPENDED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// No further transition happens from a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliverFailed
                | StartFailed
                | Success
                | Failed
                | Timeout
                | TaskTimeout
                | Cancelled
                | Terminated
        )
    }

    /// Not yet handed to an agent that acknowledged it.
    pub fn is_undelivered(self) -> bool {
        matches!(self, Pending | DeliverDelayed | Delivering)
    }
}

/// The invocation's state, derived from its tasks' states.
pub fn invocation_status(tasks: &[TaskStatus]) -> &'static str {
    if tasks.is_empty() {
        return "PENDING";
    }
    if tasks.iter().any(|t| !t.is_final()) {
        if tasks.contains(&Cancelling) {
            return "CANCELLING";
        }
        if tasks.iter().all(|t| t.is_final() || *t == Suspended) {
            return "SUSPENDED";
        }
        let started = tasks
            .iter()
            .any(|t| matches!(t, Running | Suspended) || t.is_final());
        return if started { "RUNNING" } else { "PENDING" };
    }
    let n = tasks.len();
    let count = |f: &dyn Fn(&TaskStatus) -> bool| tasks.iter().filter(|t| f(t)).count();
    let success = count(&|t| *t == Success);
    let cancelled = count(&|t| matches!(t, Cancelled | Terminated));
    let timeout = count(&|t| *t == Timeout);
    if success == n {
        "SUCCESS"
    } else if cancelled == n {
        "CANCELLED"
    } else if cancelled > 0 {
        "PARTIAL_CANCELLED"
    } else if timeout == n {
        "TIMEOUT"
    } else if success == 0 {
        "FAILED"
    } else {
        "PARTIAL_FAILED"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("running"), None);
    }

    #[test]
    fn invocation_status_from_tasks() {
        assert_eq!(invocation_status(&[Pending, DeliverDelayed]), "PENDING");
        assert_eq!(invocation_status(&[Running, Pending]), "RUNNING");
        assert_eq!(invocation_status(&[Success, Pending]), "RUNNING");
        assert_eq!(invocation_status(&[Cancelling, Running]), "CANCELLING");
        assert_eq!(invocation_status(&[Suspended, Success]), "SUSPENDED");
        assert_eq!(invocation_status(&[Suspended, Running]), "RUNNING");
        assert_eq!(invocation_status(&[Suspended, Pending]), "RUNNING");
        assert_eq!(invocation_status(&[Suspended, Cancelling]), "CANCELLING");
        assert_eq!(invocation_status(&[Success, Success]), "SUCCESS");
        assert_eq!(invocation_status(&[Success, Failed]), "PARTIAL_FAILED");
        assert_eq!(invocation_status(&[Failed, DeliverFailed]), "FAILED");
        assert_eq!(invocation_status(&[Timeout, Timeout]), "TIMEOUT");
        assert_eq!(invocation_status(&[Cancelled, Terminated]), "CANCELLED");
        assert_eq!(
            invocation_status(&[Cancelled, Success]),
            "PARTIAL_CANCELLED"
        );
    }
}
