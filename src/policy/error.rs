//! Errors of policy documents: each names the part of the document at fault
//! (`statement[1].resource[0]`) and has the part at fault (`api/error.rs` maps it to
//! CAM's error code).

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

    /// The part at fault (a text that is not JSON is the whole document);
    /// `api/error.rs` maps it to its CAM error code.
    pub fn part(&self) -> Part {
        match self {
            PolicyError::Json(_) => Part::Document,
            PolicyError::Invalid { part, .. } => *part,
        }
    }
}
