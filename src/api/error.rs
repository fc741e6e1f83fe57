//! The one place where failures become TAT and CAM error codes.
//!
//! Handlers return `ApiError`; the router renders it as
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`. Messages name
//! the offending parameter or resource and never echo secrets.

use crate::dispatch::{ControlError, ControlRequest};
use crate::store::{Entity, Rule, StoreError};

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
            StoreError::NotFound { entity, id } => {
                let code = match entity {
                    Entity::Command => "ResourceNotFound.CommandNotFound",
                    Entity::Invocation => "ResourceNotFound.InvocationNotFound",
                    Entity::Instance => "ResourceNotFound.RegisterInstanceNotFoundCode",
                    Entity::RegisterCode => "ResourceNotFound.RegisterCodesNotFoundCode",
                    Entity::Task | Entity::Invoker => "ResourceNotFound",
                    Entity::User | Entity::Uin => "ResourceNotFound.UserNotExist",
                    Entity::Group => "ResourceNotFound.GroupNotExist",
                    Entity::Policy => "ResourceNotFound.PolicyIdNotFound",
                    Entity::AccessKey => "ResourceNotFound.SecretNotExist",
                    Entity::RoleAssignment => "ResourceNotFound.RoleAssignmentNotFound",
                    Entity::Secret => "ResourceNotFound.SecretNotFound",
                };
                ApiError::new(code, format!("the {entity} `{id}` does not exist"))
            }
            StoreError::Conflict(msg) => {
                ApiError::new("InvalidParameterValue.CommandNameDuplicated", msg)
            }
            StoreError::Refused(rule, msg) => {
                let code = match rule {
                    Rule::UserNameTaken => "InvalidParameter.SubUserNameInUse",
                    Rule::GroupNameTaken => "InvalidParameter.GroupNameInUse",
                    Rule::PolicyNameTaken => "FailedOperation.PolicyNameInUse",
                    Rule::PresetPolicy => "InvalidParameter.PolicyIdError",
                    Rule::KeyLimit => "OperationDenied.AccessKeyOverLimit",
                    Rule::UserHasKeys => "OperationDenied.HaveKeys",
                    Rule::UserGroupFull => "InvalidParameter.UserGroupFull",
                    Rule::AttachmentFull => "InvalidParameter.AttachmentFull",
                    // TAT's public commands belong to no account: changing
                    // or deleting one is not an operation it supports.
                    Rule::LibraryCommand => "UnsupportedOperation",
                    Rule::InvokerTriggerHandled => TRIGGER_HANDLED,
                    Rule::CommandInInvoker => "ResourceUnavailable.CommandInInvoker",
                    Rule::SecretNameTaken => "InvalidParameterValue.SecretNameDuplicated",
                    Rule::SecretLimit => "LimitExceeded.SecretQuota",
                    Rule::RunInstance => "FailedOperation",
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
            E::Invalid { problem, message } => ApiError::new(problem_code(problem), message),
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

/// The TAT code of each check a run's request can fail.
pub fn problem_code(p: crate::run::error::Problem) -> &'static str {
    use crate::run::error::Problem as P;
    match p {
        P::InvalidParameter => "InvalidParameter",
        P::ConflictParameter => "InvalidParameter.ConflictParameter",
        P::InvalidContent => "InvalidParameterValue.InvalidContent",
        P::InvalidCosBucketUrl => "InvalidParameterValue.InvalidOutputCOSBucketUrl",
        P::InvalidCosKeyPrefix => "InvalidParameterValue.InvalidOutputCOSKeyPrefix",
        P::InvalidUsername => "InvalidParameterValue.InvalidUsername",
        P::InvalidWorkingDirectory => "InvalidParameterValue.InvalidWorkingDirectory",
        P::LackOfParameterInfo => "InvalidParameterValue.LackOfParameterInfo",
        P::LimitExceeded => "InvalidParameterValue.LimitExceeded",
        P::NoInstanceMatched => "InvalidParameterValue.NoInstanceMatched",
        P::ParameterDisabled => "InvalidParameterValue.ParameterDisabled",
        P::ParameterInvalidJsonFormat => "InvalidParameterValue.ParameterInvalidJsonFormat",
        P::ParameterKeyContainsInvalidChar => {
            "InvalidParameterValue.ParameterKeyContainsInvalidChar"
        }
        P::ParameterKeyDuplicated => "InvalidParameterValue.ParameterKeyDuplicated",
        P::ParameterKeyLenExceeded => "InvalidParameterValue.ParameterKeyLenExceeded",
        P::ParameterNumberExceeded => "InvalidParameterValue.ParameterNumberExceeded",
        P::ParameterValueNotString => "InvalidParameterValue.ParameterValueNotString",
        P::Range => "InvalidParameterValue.Range",
        P::SupportParametersOnlyIfEnableParameter => {
            "InvalidParameterValue.SupportParametersOnlyIfEnableParameter"
        }
        P::TooLong => "InvalidParameterValue.TooLong",
        P::StoredData => "InternalError",
        P::Value => "InvalidParameterValue",
        P::Missing => "MissingParameter",
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

/// Why an interactive session was refused or ended.
impl From<crate::session::SessionError> for ApiError {
    fn from(e: crate::session::SessionError) -> ApiError {
        use crate::session::SessionError as E;
        let code = match &e {
            E::Invalid(_) => "InvalidParameterValue",
            E::Denied { .. } => "AuthFailure.UnauthorizedOperation",
            E::NoInstance(_) => "ResourceNotFound.InstanceNotFound",
            E::Offline => "ResourceUnavailable.AgentStatusNotOnline",
            E::Unsupported => "UnsupportedOperation.AgentSessionUnsupported",
            E::Limit(_) => "LimitExceeded.Session",
            E::StartFailed(_) => "FailedOperation.SessionStartFailed",
            E::Ended => "FailedOperation.SessionClosed",
            E::Store(_) => {
                let E::Store(s) = e else {
                    return ApiError::internal();
                };
                return s.into();
            }
        };
        ApiError::new(code, e.to_string())
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
        let missing = |e: Entity| code(StoreError::missing(e, "x"));
        assert_eq!(missing(Entity::User), "ResourceNotFound.UserNotExist");
        assert_eq!(missing(Entity::Uin), "ResourceNotFound.UserNotExist");
        assert_eq!(missing(Entity::Group), "ResourceNotFound.GroupNotExist");
        assert_eq!(missing(Entity::Policy), "ResourceNotFound.PolicyIdNotFound");
        assert_eq!(
            missing(Entity::AccessKey),
            "ResourceNotFound.SecretNotExist"
        );
        assert_eq!(missing(Entity::Command), "ResourceNotFound.CommandNotFound");
        assert_eq!(missing(Entity::Secret), "ResourceNotFound.SecretNotFound");
        assert_eq!(
            code(StoreError::Refused(Rule::UserNameTaken, String::new())),
            "InvalidParameter.SubUserNameInUse"
        );
        assert_eq!(
            code(StoreError::Refused(Rule::KeyLimit, String::new())),
            "OperationDenied.AccessKeyOverLimit"
        );
        assert_eq!(
            code(StoreError::Refused(Rule::SecretNameTaken, String::new())),
            "InvalidParameterValue.SecretNameDuplicated"
        );
        let m = ApiError::from(StoreError::missing(Entity::Uin, "100")).message;
        assert_eq!(m, "the user with uin `100` does not exist");
    }
}
