//! The one place where failures become TAT and CAM error codes and HTTP
//! statuses.
//!
//! Every wire code is declared once, in `codes!` below: handlers and the
//! gate name a `Code` variant, never a string, so a code cannot be
//! misspelt at one call site, and the set of codes drover answers with is
//! this list (the compat suite checks each against the official SDK's
//! errorcodes). Modules below the API return their own typed errors
//! (`StoreError`, `run::RunError`, `ControlError`, `PolicyError`,
//! `WebhookError`), mapped to codes here. Handlers return `ApiError`; the
//! router renders it as `{"Response": {"Error": {"Code", "Message"},
//! "RequestId"}}`. Messages name the offending parameter or resource and
//! never echo secrets.

use crate::dispatch::{ControlError, ControlRequest};
use crate::policy::{Part, PolicyError};
use crate::store::{Entity, Rule, StoreError};

/// Declares `Code` with each variant's wire string, once.
macro_rules! codes {
    ($($name:ident = $wire:literal,)*) => {
        /// A TAT or CAM error code, as answered on the wire (`as_str`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($name,)*
        }

        impl Code {
            /// Every code, for the tests that check the list.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as the SDKs read it (`InvalidParameterValue.Range`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $wire,)*
                }
            }
        }
    };
}

// Grouped as TAT's common codes first, then by category; a variant is its
// wire code without the dot.
codes! {
    AuthFailureInvalidAuthorization = "AuthFailure.InvalidAuthorization",
    AuthFailureLoginFailed = "AuthFailure.LoginFailed",
    AuthFailureLoginLocked = "AuthFailure.LoginLocked",
    AuthFailurePasswordResetRequired = "AuthFailure.PasswordResetRequired",
    AuthFailureSecretIdNotFound = "AuthFailure.SecretIdNotFound",
    AuthFailureSessionExpired = "AuthFailure.SessionExpired",
    AuthFailureSignatureExpire = "AuthFailure.SignatureExpire",
    AuthFailureSignatureFailure = "AuthFailure.SignatureFailure",
    AuthFailureUnauthorizedOperation = "AuthFailure.UnauthorizedOperation",
    InvalidAction = "InvalidAction",
    NoSuchVersion = "NoSuchVersion",
    UnsupportedProtocol = "UnsupportedProtocol",
    UnsupportedRegion = "UnsupportedRegion",
    RequestLimitExceeded = "RequestLimitExceeded",
    RequestSizeLimitExceeded = "RequestSizeLimitExceeded",
    UnauthorizedOperation = "UnauthorizedOperation",
    MissingParameter = "MissingParameter",
    UnknownParameter = "UnknownParameter",
    InvalidParameter = "InvalidParameter",
    InvalidParameterActionError = "InvalidParameter.ActionError",
    InvalidParameterAttachmentFull = "InvalidParameter.AttachmentFull",
    InvalidParameterConditionError = "InvalidParameter.ConditionError",
    InvalidParameterConflictParameter = "InvalidParameter.ConflictParameter",
    InvalidParameterDescriptionLengthOverlimit = "InvalidParameter.DescriptionLengthOverlimit",
    InvalidParameterEffectError = "InvalidParameter.EffectError",
    InvalidParameterGroupIdError = "InvalidParameter.GroupIdError",
    InvalidParameterGroupNameInUse = "InvalidParameter.GroupNameInUse",
    InvalidParameterIdempotentParameterMismatch = "InvalidParameter.IdempotentParameterMismatch",
    InvalidParameterOperateEntitiesOverLimit = "InvalidParameter.OperateEntitiesOverLimit",
    InvalidParameterOperatePoliciesOverLimit = "InvalidParameter.OperatePoliciesOverLimit",
    InvalidParameterParamError = "InvalidParameter.ParamError",
    InvalidParameterPasswordViolatedRules = "InvalidParameter.PasswordViolatedRules",
    InvalidParameterPolicyDocumentError = "InvalidParameter.PolicyDocumentError",
    InvalidParameterPolicyDocumentLengthOverLimit = "InvalidParameter.PolicyDocumentLengthOverLimit",
    InvalidParameterPolicyIdError = "InvalidParameter.PolicyIdError",
    InvalidParameterPolicyNameError = "InvalidParameter.PolicyNameError",
    InvalidParameterPrincipalError = "InvalidParameter.PrincipalError",
    InvalidParameterResourceError = "InvalidParameter.ResourceError",
    InvalidParameterScopeError = "InvalidParameter.ScopeError",
    InvalidParameterStatementError = "InvalidParameter.StatementError",
    InvalidParameterSubUserNameInUse = "InvalidParameter.SubUserNameInUse",
    InvalidParameterTagLimitExceeded = "InvalidParameter.TagLimitExceeded",
    InvalidParameterTagParamError = "InvalidParameter.TagParamError",
    InvalidParameterUinError = "InvalidParameter.UinError",
    InvalidParameterUserGroupFull = "InvalidParameter.UserGroupFull",
    InvalidParameterUserNameIllegal = "InvalidParameter.UserNameIllegal",
    InvalidParameterUserUinAndUinNotAllNull = "InvalidParameter.UserUinAndUinNotAllNull",
    InvalidParameterVersionError = "InvalidParameter.VersionError",
    InvalidParameterValue = "InvalidParameterValue",
    InvalidParameterValueAgentUnsupportedCommandType = "InvalidParameterValue.AgentUnsupportedCommandType",
    InvalidParameterValueCommandNameDuplicated = "InvalidParameterValue.CommandNameDuplicated",
    InvalidParameterValueInstanceIsNotRelatedToInvocation = "InvalidParameterValue.InstanceIsNotRelatedToInvocation",
    InvalidParameterValueInvalidClientToken = "InvalidParameterValue.InvalidClientToken",
    InvalidParameterValueInvalidCommandId = "InvalidParameterValue.InvalidCommandId",
    InvalidParameterValueInvalidCommandName = "InvalidParameterValue.InvalidCommandName",
    InvalidParameterValueInvalidContent = "InvalidParameterValue.InvalidContent",
    InvalidParameterValueInvalidCronExpression = "InvalidParameterValue.InvalidCronExpression",
    InvalidParameterValueInvalidInstanceId = "InvalidParameterValue.InvalidInstanceId",
    InvalidParameterValueInvalidInvocationId = "InvalidParameterValue.InvalidInvocationId",
    InvalidParameterValueInvalidInvocationTaskId = "InvalidParameterValue.InvalidInvocationTaskId",
    InvalidParameterValueInvalidInvokerId = "InvalidParameterValue.InvalidInvokerId",
    InvalidParameterValueInvalidSessionId = "InvalidParameterValue.InvalidSessionId",
    InvalidParameterValueInvalidOutputCOSBucketUrl = "InvalidParameterValue.InvalidOutputCOSBucketUrl",
    InvalidParameterValueInvalidOutputCOSKeyPrefix = "InvalidParameterValue.InvalidOutputCOSKeyPrefix",
    InvalidParameterValueInvalidRegisterCodeId = "InvalidParameterValue.InvalidRegisterCodeId",
    InvalidParameterValueInvalidRegisterInstanceId = "InvalidParameterValue.InvalidRegisterInstanceId",
    InvalidParameterValueInvalidSceneId = "InvalidParameterValue.InvalidSceneId",
    InvalidParameterValueInvalidSecretName = "InvalidParameterValue.InvalidSecretName",
    InvalidParameterValueInvalidSecretValue = "InvalidParameterValue.InvalidSecretValue",
    InvalidParameterValueInvalidTimeFormat = "InvalidParameterValue.InvalidTimeFormat",
    InvalidParameterValueInvalidUsername = "InvalidParameterValue.InvalidUsername",
    InvalidParameterValueInvalidWebhookSecret = "InvalidParameterValue.InvalidWebhookSecret",
    InvalidParameterValueInvalidWebhookUrl = "InvalidParameterValue.InvalidWebhookUrl",
    InvalidParameterValueInvalidWorkingDirectory = "InvalidParameterValue.InvalidWorkingDirectory",
    InvalidParameterValueInvokeTimeExpired = "InvalidParameterValue.InvokeTimeExpired",
    InvalidParameterValueLackOfParameterInfo = "InvalidParameterValue.LackOfParameterInfo",
    InvalidParameterValueLimitExceeded = "InvalidParameterValue.LimitExceeded",
    InvalidParameterValueNoInstanceMatched = "InvalidParameterValue.NoInstanceMatched",
    InvalidParameterValueParameterDisabled = "InvalidParameterValue.ParameterDisabled",
    InvalidParameterValueParameterInvalidJsonFormat = "InvalidParameterValue.ParameterInvalidJsonFormat",
    InvalidParameterValueParameterKeyContainsInvalidChar = "InvalidParameterValue.ParameterKeyContainsInvalidChar",
    InvalidParameterValueParameterKeyDuplicated = "InvalidParameterValue.ParameterKeyDuplicated",
    InvalidParameterValueParameterKeyLenExceeded = "InvalidParameterValue.ParameterKeyLenExceeded",
    InvalidParameterValueParameterNumberExceeded = "InvalidParameterValue.ParameterNumberExceeded",
    InvalidParameterValueParameterValueNotString = "InvalidParameterValue.ParameterValueNotString",
    InvalidParameterValueRange = "InvalidParameterValue.Range",
    InvalidParameterValueSecretNameDuplicated = "InvalidParameterValue.SecretNameDuplicated",
    InvalidParameterValueSecretUnsupportedCommandType = "InvalidParameterValue.SecretUnsupportedCommandType",
    InvalidParameterValueInvalidSshPublicKey = "InvalidParameterValue.InvalidSshPublicKey",
    InvalidParameterValueSshPublicKeyDuplicated = "InvalidParameterValue.SshPublicKeyDuplicated",
    InvalidParameterValueSupportParametersOnlyIfEnableParameter = "InvalidParameterValue.SupportParametersOnlyIfEnableParameter",
    InvalidParameterValueTooLong = "InvalidParameterValue.TooLong",
    InvalidFilter = "InvalidFilter",
    LimitExceeded = "LimitExceeded",
    LimitExceededFilterValueExceeded = "LimitExceeded.FilterValueExceeded",
    LimitExceededSecretQuota = "LimitExceeded.SecretQuota",
    LimitExceededSession = "LimitExceeded.Session",
    LimitExceededSshPublicKeyQuota = "LimitExceeded.SshPublicKeyQuota",
    ResourceNotFound = "ResourceNotFound",
    ResourceNotFoundCommandNotFound = "ResourceNotFound.CommandNotFound",
    ResourceNotFoundGroupNotExist = "ResourceNotFound.GroupNotExist",
    ResourceNotFoundInstanceNotFound = "ResourceNotFound.InstanceNotFound",
    ResourceNotFoundInvocationNotFound = "ResourceNotFound.InvocationNotFound",
    ResourceNotFoundPolicyIdNotFound = "ResourceNotFound.PolicyIdNotFound",
    ResourceNotFoundRegisterCodesNotFoundCode = "ResourceNotFound.RegisterCodesNotFoundCode",
    ResourceNotFoundRegisterInstanceNotFoundCode = "ResourceNotFound.RegisterInstanceNotFoundCode",
    ResourceNotFoundRoleAssignmentNotFound = "ResourceNotFound.RoleAssignmentNotFound",
    ResourceNotFoundRoleNotFound = "ResourceNotFound.RoleNotFound",
    ResourceNotFoundSecretNotExist = "ResourceNotFound.SecretNotExist",
    ResourceNotFoundSecretNotFound = "ResourceNotFound.SecretNotFound",
    ResourceNotFoundSessionNotFound = "ResourceNotFound.SessionNotFound",
    ResourceNotFoundSshPublicKeyNotFound = "ResourceNotFound.SshPublicKeyNotFound",
    ResourceNotFoundUserNotExist = "ResourceNotFound.UserNotExist",
    ResourceUnavailableAgentStatusNotOnline = "ResourceUnavailable.AgentStatusNotOnline",
    ResourceUnavailableCommandInInvoker = "ResourceUnavailable.CommandInInvoker",
    ResourceUnavailableRecordingTooLarge = "ResourceUnavailable.RecordingTooLarge",
    ResourceUnavailableInvalidResourceQuotaResourceCode = "ResourceUnavailable.InvalidResourceQuotaResourceCode",
    ResourceUnavailableUserHasNoQuotaCode = "ResourceUnavailable.UserHasNoQuotaCode",
    OperationDeniedAccessKeyOverLimit = "OperationDenied.AccessKeyOverLimit",
    OperationDeniedHaveKeys = "OperationDenied.HaveKeys",
    OperationDeniedSubUin = "OperationDenied.SubUin",
    UnsupportedOperation = "UnsupportedOperation",
    UnsupportedOperationAgentJobControlUnsupported = "UnsupportedOperation.AgentJobControlUnsupported",
    UnsupportedOperationAgentSessionUnsupported = "UnsupportedOperation.AgentSessionUnsupported",
    UnsupportedOperationTaskNotRunning = "UnsupportedOperation.TaskNotRunning",
    UnsupportedOperationTaskNotSuspended = "UnsupportedOperation.TaskNotSuspended",
    FailedOperation = "FailedOperation",
    FailedOperationInvokerTriggerHandled = "FailedOperation.InvokerTriggerHandled",
    FailedOperationPolicyNameInUse = "FailedOperation.PolicyNameInUse",
    FailedOperationSessionStartFailed = "FailedOperation.SessionStartFailed",
    FailedOperationSessionClosed = "FailedOperation.SessionClosed",
    InternalError = "InternalError",
}

impl Code {
    /// An authentication failure (a bad or expired signature, key, session
    /// or sign-in), including a refused decision: such answers are counted
    /// against their source (`abuse.rs`) and are 401 on the console.
    pub fn is_auth_failure(self) -> bool {
        self.as_str().starts_with("AuthFailure.")
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn missing(name: &str) -> ApiError {
        Self::new(
            Code::MissingParameter,
            format!("the request is missing required parameter `{name}`"),
        )
    }

    pub fn unknown_param(name: &str) -> ApiError {
        Self::new(
            Code::UnknownParameter,
            format!("the parameter `{name}` is not recognized"),
        )
    }

    pub fn wrong_type(name: &str, want: &str) -> ApiError {
        Self::new(
            Code::InvalidParameter,
            format!("the parameter `{name}` must be {want}"),
        )
    }

    pub fn value(message: impl Into<String>) -> ApiError {
        Self::new(Code::InvalidParameterValue, message)
    }

    /// The HTTP status of a failed console call (`/console/api`): 401 for
    /// an authentication failure, so the browser signs in again; else 200
    /// with the envelope, as the API answers every call.
    pub fn console_status(&self) -> hyper::StatusCode {
        if self.code.is_auth_failure() {
            hyper::StatusCode::UNAUTHORIZED
        } else {
            hyper::StatusCode::OK
        }
    }

    /// The HTTP status of a failed file download (a recording's `.cast`):
    /// a browser's download has no envelope to read, so the status says it.
    pub fn download_status(&self) -> hyper::StatusCode {
        let code = self.code.as_str();
        if code.starts_with("AuthFailure.Session") {
            hyper::StatusCode::UNAUTHORIZED
        } else if self.code.is_auth_failure() || self.code == Code::UnauthorizedOperation {
            hyper::StatusCode::FORBIDDEN
        } else if code.starts_with("ResourceNotFound") {
            hyper::StatusCode::NOT_FOUND
        } else if self.code == Code::InternalError {
            hyper::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            hyper::StatusCode::BAD_REQUEST
        }
    }

    pub fn internal() -> ApiError {
        Self::new(
            Code::InternalError,
            "an internal error occurred; the request changed nothing",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound { entity, id } => {
                let code = match entity {
                    Entity::Command => Code::ResourceNotFoundCommandNotFound,
                    Entity::Invocation => Code::ResourceNotFoundInvocationNotFound,
                    Entity::Instance => Code::ResourceNotFoundRegisterInstanceNotFoundCode,
                    Entity::RegisterCode => Code::ResourceNotFoundRegisterCodesNotFoundCode,
                    Entity::Task | Entity::Invoker => Code::ResourceNotFound,
                    Entity::User | Entity::Uin => Code::ResourceNotFoundUserNotExist,
                    Entity::Group => Code::ResourceNotFoundGroupNotExist,
                    Entity::Policy => Code::ResourceNotFoundPolicyIdNotFound,
                    Entity::AccessKey => Code::ResourceNotFoundSecretNotExist,
                    Entity::RoleAssignment => Code::ResourceNotFoundRoleAssignmentNotFound,
                    Entity::Secret => Code::ResourceNotFoundSecretNotFound,
                    Entity::Session => Code::ResourceNotFoundSessionNotFound,
                    Entity::SshPublicKey => Code::ResourceNotFoundSshPublicKeyNotFound,
                };
                ApiError::new(code, format!("the {entity} `{id}` does not exist"))
            }
            StoreError::Conflict(msg) => {
                ApiError::new(Code::InvalidParameterValueCommandNameDuplicated, msg)
            }
            StoreError::Refused(rule, msg) => {
                let code = match rule {
                    Rule::UserNameTaken => Code::InvalidParameterSubUserNameInUse,
                    Rule::GroupNameTaken => Code::InvalidParameterGroupNameInUse,
                    Rule::PolicyNameTaken => Code::FailedOperationPolicyNameInUse,
                    Rule::PresetPolicy => Code::InvalidParameterPolicyIdError,
                    Rule::KeyLimit => Code::OperationDeniedAccessKeyOverLimit,
                    Rule::UserHasKeys => Code::OperationDeniedHaveKeys,
                    Rule::UserGroupFull => Code::InvalidParameterUserGroupFull,
                    Rule::AttachmentFull => Code::InvalidParameterAttachmentFull,
                    // TAT's public commands belong to no account: changing
                    // or deleting one is not an operation it supports.
                    Rule::LibraryCommand => Code::UnsupportedOperation,
                    Rule::InvokerTriggerHandled => Code::FailedOperationInvokerTriggerHandled,
                    Rule::CommandInInvoker => Code::ResourceUnavailableCommandInInvoker,
                    Rule::SecretNameTaken => Code::InvalidParameterValueSecretNameDuplicated,
                    Rule::SecretLimit => Code::LimitExceededSecretQuota,
                    Rule::RunInstance => Code::FailedOperation,
                    Rule::SshKeyLimit => Code::LimitExceededSshPublicKeyQuota,
                    Rule::SshKeyTaken => Code::InvalidParameterValueSshPublicKeyDuplicated,
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
                ApiError::new(Code::ResourceNotFoundInstanceNotFound, e.to_string())
            }
            E::SecretNotFound(_) => {
                ApiError::new(Code::ResourceNotFoundSecretNotFound, e.to_string())
            }
            E::SecretsUnsupported(_) => ApiError::new(
                Code::InvalidParameterValueSecretUnsupportedCommandType,
                e.to_string(),
            ),
            E::UnsupportedType { .. } => ApiError::new(
                Code::InvalidParameterValueAgentUnsupportedCommandType,
                e.to_string(),
            ),
            E::Denied(d) => d.into(),
            E::Orphaned(m) => ApiError::new(Code::FailedOperation, m),
            E::TriggerHandled => {
                ApiError::new(Code::FailedOperationInvokerTriggerHandled, e.to_string())
            }
            E::Store(s) => s.into(),
            E::Internal => ApiError::internal(),
        }
    }
}

/// The TAT code of each check a run's request can fail.
pub fn problem_code(p: crate::run::error::Problem) -> Code {
    use crate::run::error::Problem as P;
    match p {
        P::InvalidParameter => Code::InvalidParameter,
        P::ConflictParameter => Code::InvalidParameterConflictParameter,
        P::InvalidContent => Code::InvalidParameterValueInvalidContent,
        P::InvalidCosBucketUrl => Code::InvalidParameterValueInvalidOutputCOSBucketUrl,
        P::InvalidCosKeyPrefix => Code::InvalidParameterValueInvalidOutputCOSKeyPrefix,
        P::InvalidUsername => Code::InvalidParameterValueInvalidUsername,
        P::InvalidWorkingDirectory => Code::InvalidParameterValueInvalidWorkingDirectory,
        P::LackOfParameterInfo => Code::InvalidParameterValueLackOfParameterInfo,
        P::LimitExceeded => Code::InvalidParameterValueLimitExceeded,
        P::NoInstanceMatched => Code::InvalidParameterValueNoInstanceMatched,
        P::ParameterDisabled => Code::InvalidParameterValueParameterDisabled,
        P::ParameterInvalidJsonFormat => Code::InvalidParameterValueParameterInvalidJsonFormat,
        P::ParameterKeyContainsInvalidChar => {
            Code::InvalidParameterValueParameterKeyContainsInvalidChar
        }
        P::ParameterKeyDuplicated => Code::InvalidParameterValueParameterKeyDuplicated,
        P::ParameterKeyLenExceeded => Code::InvalidParameterValueParameterKeyLenExceeded,
        P::ParameterNumberExceeded => Code::InvalidParameterValueParameterNumberExceeded,
        P::ParameterValueNotString => Code::InvalidParameterValueParameterValueNotString,
        P::Range => Code::InvalidParameterValueRange,
        P::SupportParametersOnlyIfEnableParameter => {
            Code::InvalidParameterValueSupportParametersOnlyIfEnableParameter
        }
        P::TooLong => Code::InvalidParameterValueTooLong,
        P::StoredData => Code::InternalError,
        P::Value => Code::InvalidParameterValue,
        P::Missing => Code::MissingParameter,
    }
}

/// Job control (Suspend/ResumeInvocation) that reached no task.
impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NoTaskInState(ControlRequest::Suspend) => ApiError::new(
                Code::UnsupportedOperationTaskNotRunning,
                "no chosen task is RUNNING: only running tasks can be suspended \
                 (tasks not yet delivered or already ended are left alone)",
            ),
            ControlError::NoTaskInState(ControlRequest::Resume) => ApiError::new(
                Code::UnsupportedOperationTaskNotSuspended,
                "no chosen task is SUSPENDED: only suspended tasks can be resumed",
            ),
            ControlError::AgentsOffline => ApiError::new(
                Code::ResourceUnavailableAgentStatusNotOnline,
                "the agents running the chosen tasks are offline; try again when they are Online",
            ),
            ControlError::AgentsTooOld => ApiError::new(
                Code::UnsupportedOperationAgentJobControlUnsupported,
                "the agents running the chosen tasks are too old for job control; upgrade them",
            ),
            ControlError::Store(e) => e.into(),
        }
    }
}

/// A policy document CreatePolicy or UpdatePolicy refused, by its part.
impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> ApiError {
        let code = match e.part() {
            Part::Document => Code::InvalidParameterPolicyDocumentError,
            Part::Version => Code::InvalidParameterVersionError,
            Part::Statement => Code::InvalidParameterStatementError,
            Part::Effect => Code::InvalidParameterEffectError,
            Part::Action => Code::InvalidParameterActionError,
            Part::Resource => Code::InvalidParameterResourceError,
            Part::Condition => Code::InvalidParameterConditionError,
            Part::Principal => Code::InvalidParameterPrincipalError,
        };
        ApiError::new(code, format!("PolicyDocument is invalid: {e}"))
    }
}

/// Why an interactive session was refused or ended.
impl From<crate::session::SessionError> for ApiError {
    fn from(e: crate::session::SessionError) -> ApiError {
        use crate::session::SessionError as E;
        let code = match &e {
            E::Invalid(_) => Code::InvalidParameterValue,
            E::Denied { .. } => Code::AuthFailureUnauthorizedOperation,
            E::NoInstance(_) => Code::ResourceNotFoundInstanceNotFound,
            E::Offline => Code::ResourceUnavailableAgentStatusNotOnline,
            E::Unsupported => Code::UnsupportedOperationAgentSessionUnsupported,
            E::Limit(_) => Code::LimitExceededSession,
            E::StartFailed(_) => Code::FailedOperationSessionStartFailed,
            E::Ended => Code::FailedOperationSessionClosed,
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
            BadUrl(_) | Forbidden => Code::InvalidParameterValueInvalidWebhookUrl,
            BadSecret => Code::InvalidParameterValueInvalidWebhookSecret,
        };
        ApiError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each wire code is declared once and shaped as TAT's
    /// (`Category` or `Category.Detail`, letters only).
    #[test]
    fn codes_are_declared_once_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for &c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} is declared twice");
            let parts: Vec<&str> = s.split('.').collect();
            assert!(parts.len() <= 2, "{s}");
            for p in parts {
                assert!(p.starts_with(|ch: char| ch.is_ascii_uppercase()), "{s}");
                assert!(p.chars().all(|ch| ch.is_ascii_alphabetic()), "{s}");
            }
            assert_eq!(format!("{c:?}"), s.replace('.', ""), "variant name of {s}");
        }
        assert!(Code::AuthFailureSignatureFailure.is_auth_failure());
        assert!(!Code::UnauthorizedOperation.is_auth_failure());
        let e = ApiError::new(Code::AuthFailureSessionExpired, "x");
        assert_eq!(e.console_status(), hyper::StatusCode::UNAUTHORIZED);
        assert_eq!(ApiError::internal().console_status(), hyper::StatusCode::OK);
    }

    #[test]
    fn cam_store_errors_get_cam_codes() {
        let code = |e: StoreError| ApiError::from(e).code;
        let missing = |e: Entity| code(StoreError::missing(e, "x"));
        assert_eq!(missing(Entity::User), Code::ResourceNotFoundUserNotExist);
        assert_eq!(missing(Entity::Uin), Code::ResourceNotFoundUserNotExist);
        assert_eq!(missing(Entity::Group), Code::ResourceNotFoundGroupNotExist);
        assert_eq!(
            missing(Entity::Policy),
            Code::ResourceNotFoundPolicyIdNotFound
        );
        assert_eq!(
            missing(Entity::AccessKey),
            Code::ResourceNotFoundSecretNotExist
        );
        assert_eq!(
            missing(Entity::Command),
            Code::ResourceNotFoundCommandNotFound
        );
        assert_eq!(
            missing(Entity::Secret),
            Code::ResourceNotFoundSecretNotFound
        );
        assert_eq!(
            code(StoreError::Refused(Rule::UserNameTaken, String::new())),
            Code::InvalidParameterSubUserNameInUse
        );
        assert_eq!(
            code(StoreError::Refused(Rule::KeyLimit, String::new())),
            Code::OperationDeniedAccessKeyOverLimit
        );
        assert_eq!(
            code(StoreError::Refused(Rule::SecretNameTaken, String::new())),
            Code::InvalidParameterValueSecretNameDuplicated
        );
        let m = ApiError::from(StoreError::missing(Entity::Uin, "100")).message;
        assert_eq!(m, "the user with uin `100` does not exist");
    }
}
