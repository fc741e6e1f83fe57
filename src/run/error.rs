//! What can stop a run from starting, as values the API maps to TAT codes
//! (`api/error.rs`) and the scheduler acts on (a denied or handled trigger)
//! without comparing code strings.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The request is wrong: `problem` says which check failed (the API
    /// maps it to its TAT code), `message` says how.
    #[error("{message}")]
    Invalid { problem: Problem, message: String },
    /// An instance of the run does not exist.
    #[error("the instance `{0}` does not exist")]
    InstanceNotFound(String),
    /// A `{{secret:NAME}}` names no secret.
    #[error("the secret `{0}` does not exist")]
    SecretNotFound(String),
    /// The command type cannot take secrets as data (see `params::SecretRefs`).
    #[error("{{{{secret:...}}}} can be used in SHELL and POWERSHELL commands, not {0}")]
    SecretsUnsupported(String),
    /// The agent of an instance cannot run the command's type.
    #[error("the agent of `{instance}` cannot run {command_type} commands")]
    UnsupportedType {
        instance: String,
        command_type: String,
    },
    /// The principal the run acts for may not run it.
    #[error(transparent)]
    Denied(#[from] crate::gate::Denied),
    /// An invoker's creator is gone (or was never recorded).
    #[error("{0}")]
    Orphaned(String),
    /// An invoker's trigger was already handled (fired earlier, or the
    /// invoker was disabled or deleted meanwhile).
    #[error("the trigger was already handled")]
    TriggerHandled,
    #[error(transparent)]
    Store(StoreError),
    /// Something that is not the caller's fault (a secret that does not
    /// decrypt); logged where it happens, reported without detail.
    #[error("an internal error occurred")]
    Internal,
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> RunError {
        match e {
            StoreError::Refused(crate::store::Rule::InvokerTriggerHandled, _) => {
                RunError::TriggerHandled
            }
            other => RunError::Store(other),
        }
    }
}

/// Which check of a run's request failed; `api/error.rs` maps each to
/// its TAT code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    InvalidParameter,
    ConflictParameter,
    InvalidContent,
    InvalidCosBucketUrl,
    InvalidCosKeyPrefix,
    InvalidUsername,
    InvalidWorkingDirectory,
    LackOfParameterInfo,
    LimitExceeded,
    NoInstanceMatched,
    ParameterDisabled,
    ParameterInvalidJsonFormat,
    ParameterKeyContainsInvalidChar,
    ParameterKeyDuplicated,
    ParameterKeyLenExceeded,
    ParameterNumberExceeded,
    ParameterValueNotString,
    Range,
    SupportParametersOnlyIfEnableParameter,
    TooLong,
    StoredData,
    Value,
    Missing,
}

impl RunError {
    pub fn new(problem: Problem, message: impl Into<String>) -> RunError {
        RunError::Invalid {
            problem,
            message: message.into(),
        }
    }

    pub fn value(message: impl Into<String>) -> RunError {
        Self::new(Problem::Value, message)
    }

    pub fn missing(name: &str) -> RunError {
        Self::new(
            Problem::Missing,
            format!("the request is missing required parameter `{name}`"),
        )
    }

    pub fn wrong_type(name: &str, want: &str) -> RunError {
        Self::new(
            Problem::InvalidParameter,
            format!("the parameter `{name}` must be {want}"),
        )
    }
}

pub type R<T> = Result<T, RunError>;

#[cfg(test)]
impl RunError {
    /// Which request check failed, if that is what stopped the run (the
    /// API maps it to its TAT code in `api/error.rs`).
    pub fn problem(&self) -> Option<Problem> {
        match self {
            RunError::Invalid { problem, .. } => Some(*problem),
            _ => None,
        }
    }
}
