//! Errors of policy documents: each names the part of the document at fault
//! (`statement[1].resource[0]`) and maps to a stable CAM error code.

/// Which part of a policy document an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Document,
    Version,
    Statement,
    Effect,
    Action,
    Resource,
    Condition,
    Principal,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON at all.
    #[error("policy document is not valid JSON: {0}")]
    Json(String),
    /// The JSON is not a valid version 2.0 policy; `path` points at the bad part.
    #[error("{path}: {message}")]
    Invalid {
        part: Part,
        path: String,
        message: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(part: Part, path: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Invalid {
            part,
            path: path.into(),
            message: message.into(),
        }
    }

    /// The CAM error code (CreatePolicy / UpdatePolicy) for this error.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Json(_) => "InvalidParameter.PolicyDocumentError",
            PolicyError::Invalid { part, .. } => match part {
                Part::Document => "InvalidParameter.PolicyDocumentError",
                Part::Version => "InvalidParameter.VersionError",
                Part::Statement => "InvalidParameter.StatementError",
                Part::Effect => "InvalidParameter.EffectError",
                Part::Action => "InvalidParameter.ActionError",
                Part::Resource => "InvalidParameter.ResourceError",
                Part::Condition => "InvalidParameter.ConditionError",
                Part::Principal => "InvalidParameter.PrincipalError",
            },
        }
    }
}
