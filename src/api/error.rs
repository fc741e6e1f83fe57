//! The one place where failures become TAT error codes.
//!
//! Handlers return `ApiError`; the router renders it as
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`. Messages name
//! the offending parameter or resource and never echo secrets.

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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
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
            other => {
                tracing::error!("store error: {other}");
                ApiError::internal()
            }
        }
    }
}
