//! The one place where failures become TAT and CAM error codes.
//!
//! Handlers return `ApiError`; the router renders it as
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`. Messages name
//! the offending parameter or resource and never echo secrets.

use crate::dispatch::{ControlError, ControlRequest};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn missing(name: &str) -> ApiError {
        Self::new(
            "MissingParameter",
            format!("the request is missing required parameter `{name}`"),
        )
    }

    pub fn unknown_param(name: &str) -> ApiError {
        Self::new(
            "UnknownParameter",
            format!("the parameter `{name}` is not recognized"),
        )
    }

    pub fn wrong_type(name: &str, want: &str) -> ApiError {
        Self::new(
            "InvalidParameter",
            format!("the parameter `{name}` must be {want}"),
        )
    }

    pub fn value(message: impl Into<String>) -> ApiError {
        Self::new("InvalidParameterValue", message)
    }

    pub fn internal() -> ApiError {
        Self::new(
            "InternalError",
            "an internal error occurred; the request changed nothing",
        )
    }
}

/// An invoker's trigger was already handled (by an earlier fire, or the
/// invoker was disabled or deleted meanwhile): the scheduler ignores it.
pub const TRIGGER_HANDLED: &str = "FailedOperation.InvokerTriggerHandled";

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) if what.contains(':') => {
                // CAM's resources: "user:NAME", "uin:UIN", "group:ID", ...
                let code = match what.split(':').next().unwrap_or("") {
                    "user" | "uin" => "ResourceNotFound.UserNotExist",
                    "group" => "ResourceNotFound.GroupNotExist",
                    "policy" => "ResourceNotFound.PolicyIdNotFound",
                    "key" => "ResourceNotFound.SecretNotExist",
                    "role-assignment" => "ResourceNotFound.RoleAssignmentNotFound",
                    "secret" => "ResourceNotFound.SecretNotFound",
                    _ => "ResourceNotFound.NotFound",
                };
                let (kind, id) = what.split_once(':').unwrap_or(("resource", &what));
                let kind = match kind {
                    "uin" => "user with uin",
                    "key" => "access key",
                    other => other,
                };
                ApiError::new(code, format!("the {kind} `{id}` does not exist"))
            }
            StoreError::NotFound(what) => {
                let code = match what.split('-').next().unwrap_or("") {
                    "cmd" => "ResourceNotFound.CommandNotFound",
                    "inv" => "ResourceNotFound.InvocationNotFound",
                    "mi" => "ResourceNotFound.RegisterInstanceNotFoundCode",
                    "rgstr" => "ResourceNotFound.RegisterCodesNotFoundCode",
                    _ => "ResourceNotFound",
                };
                ApiError::new(code, format!("the resource `{what}` does not exist"))
            }
            StoreError::Conflict(msg) => {
                ApiError::new("InvalidParameterValue.CommandNameDuplicated", msg)
            }
            StoreError::Refused(rule, msg) => {
                let code = match rule {
                    "user-name-taken" => "InvalidParameter.SubUserNameInUse",
                    "group-name-taken" => "InvalidParameter.GroupNameInUse",
                    "policy-name-taken" => "FailedOperation.PolicyNameInUse",
                    "preset-policy" => "InvalidParameter.PolicyIdError",
                    "key-limit" => "OperationDenied.AccessKeyOverLimit",
                    "user-has-keys" => "OperationDenied.HaveKeys",
                    "user-group-full" => "InvalidParameter.UserGroupFull",
                    "attachment-full" => "InvalidParameter.AttachmentFull",
                    // TAT's public commands belong to no account: changing
                    // or deleting one is not an operation it supports.
                    "library-command" => "UnsupportedOperation",
                    "invoker-trigger-handled" => TRIGGER_HANDLED,
                    "command-in-invoker" => "ResourceUnavailable.CommandInInvoker",
                    "secret-name-taken" => "InvalidParameterValue.SecretNameDuplicated",
                    "secret-limit" => "LimitExceeded.SecretQuota",
                    _ => "FailedOperation",
                };
                ApiError::new(code, msg)
            }
            other => {
                tracing::error!("store error: {other}");
                ApiError::internal()
            }
        }
    }
}

/// What stopped a run, as its TAT code.
impl From<crate::run::RunError> for ApiError {
    fn from(e: crate::run::RunError) -> ApiError {
        use crate::run::RunError as E;
        match e {
            E::Invalid { code, message } => ApiError::new(code, message),
            E::InstanceNotFound(_) => {
                ApiError::new("ResourceNotFound.InstanceNotFound", e.to_string())
            }
            E::SecretNotFound(_) => ApiError::new("ResourceNotFound.SecretNotFound", e.to_string()),
            E::SecretsUnsupported(_) => ApiError::new(
                "InvalidParameterValue.SecretUnsupportedCommandType",
                e.to_string(),
            ),
            E::UnsupportedType { .. } => ApiError::new(
                "InvalidParameterValue.AgentUnsupportedCommandType",
                e.to_string(),
            ),
            E::Denied(d) => d.into(),
            E::Orphaned(m) => ApiError::new("FailedOperation", m),
            E::TriggerHandled => ApiError::new(TRIGGER_HANDLED, e.to_string()),
            E::Store(s) => s.into(),
            E::Internal => ApiError::internal(),
        }
    }
}

/// Job control (Suspend/ResumeInvocation) that reached no task.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NoTaskInState(ControlRequest::Suspend) => ApiError::new(
                "UnsupportedOperation.TaskNotRunning",
                "no chosen task is RUNNING: only running tasks can be suspended \
                 (tasks not yet delivered or already ended are left alone)",
            ),
            ControlError::NoTaskInState(ControlRequest::Resume) => ApiError::new(
                "UnsupportedOperation.TaskNotSuspended",
                "no chosen task is SUSPENDED: only suspended tasks can be resumed",
            ),
            ControlError::AgentsOffline => ApiError::new(
                "ResourceUnavailable.AgentStatusNotOnline",
                "the agents running the chosen tasks are offline; try again when they are Online",
            ),
            ControlError::AgentsTooOld => ApiError::new(
                "UnsupportedOperation.AgentJobControlUnsupported",
                "the agents running the chosen tasks are too old for job control; upgrade them",
            ),
            ControlError::Store(e) => e.into(),
        }
    }
}

impl From<crate::notify::WebhookError> for ApiError {
    fn from(e: crate::notify::WebhookError) -> ApiError {
        use crate::notify::WebhookError::*;
        let code = match e {
            BadUrl(_) | Forbidden => "InvalidParameterValue.InvalidWebhookUrl",
            BadSecret => "InvalidParameterValue.InvalidWebhookSecret",
        };
        ApiError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cam_store_errors_get_cam_codes() {
        let code = |e: StoreError| ApiError::from(e).code;
        assert_eq!(
            code(StoreError::NotFound("user:ann".into())),
            "ResourceNotFound.UserNotExist"
        );
        assert_eq!(
            code(StoreError::NotFound("group:7".into())),
            "ResourceNotFound.GroupNotExist"
        );
        assert_eq!(
            code(StoreError::NotFound("policy:7".into())),
            "ResourceNotFound.PolicyIdNotFound"
        );
        assert_eq!(
            code(StoreError::NotFound("key:AKID1".into())),
            "ResourceNotFound.SecretNotExist"
        );
        assert_eq!(
            code(StoreError::NotFound("cmd-12345678".into())),
            "ResourceNotFound.CommandNotFound"
        );
        assert_eq!(
            code(StoreError::Refused("user-name-taken", String::new())),
            "InvalidParameter.SubUserNameInUse"
        );
        assert_eq!(
            code(StoreError::Refused("key-limit", String::new())),
            "OperationDenied.AccessKeyOverLimit"
        );
        assert_eq!(
            code(StoreError::NotFound("secret:db.pw".into())),
            "ResourceNotFound.SecretNotFound"
        );
        assert_eq!(
            code(StoreError::Refused("secret-name-taken", String::new())),
            "InvalidParameterValue.SecretNameDuplicated"
        );
        assert_eq!(
            code(StoreError::Refused("no-such-rule", String::new())),
            "FailedOperation"
        );
    }
}
