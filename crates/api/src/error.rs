//! API errors in AWS's rest-json shape: an error type (sent as `x-amzn-ErrorType`), an HTTP
//! status from the botocore models, a message, and the exception's extra members.

use serde_json::{Map, Value};

/// An error returned by an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
    /// Extra members of the exception (e.g. `resourceId`, `resourceArn`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// An error of the given type and status.
    pub fn new(status: u16, error_type: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, error_type, message: message.into(), extra: Map::new() }
    }

    /// 400 InvalidRequestException.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidRequestException", message)
    }

    /// 404 ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "ResourceNotFoundException", message)
    }

    /// 409 ResourceAlreadyExistsException with the existing resource's id and ARN.
    pub fn already_exists(message: impl Into<String>, resource_id: &str, resource_arn: &str) -> ApiError {
        ApiError::new(409, "ResourceAlreadyExistsException", message)
            .with("resourceId", resource_id.into())
            .with("resourceArn", resource_arn.into())
    }

    /// 409 VersionConflictException.
    pub fn version_conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "VersionConflictException", message)
    }

    /// 409 DeleteConflictException.
    pub fn delete_conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "DeleteConflictException", message)
    }

    /// 410 LimitExceededException.
    pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "LimitExceededException", message)
    }

    /// 500 InternalFailureException.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalFailureException", message)
    }

    /// 501 NotImplementedException: an operation of the model that has no handler.
    pub fn not_implemented(model: &str, op: &str) -> ApiError {
        ApiError::new(501, NOT_IMPLEMENTED, format!("Ferrite does not implement {model}:{op} yet."))
    }

    /// Adds an extra member to the error body.
    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.into(), value);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut m = self.extra.clone();
        m.insert("message".into(), Value::String(self.message.clone()));
        Value::Object(m)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error_type, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The error type of an operation Ferrite does not implement (status 501).
pub const NOT_IMPLEMENTED: &str = "NotImplementedException";

/// The error type of a write that lost a race with another writer (another node): the
/// service catches up and runs the call again; after [`CONFLICT_RETRIES`] the caller gets it.
pub const CONFLICT: &str = "ConflictingResourceUpdateException";

/// How often a call that lost a race is run again.
pub const CONFLICT_RETRIES: usize = 5;

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        if let store::StoreError::State(store::state::StateError::Conflict { kind, key, .. }) = &e {
            return ApiError::new(409, CONFLICT, format!("The {kind} {key} was changed by another request at the same time; try again."));
        }
        tracing::error!(error = %e, "store failure in an API call");
        ApiError::internal("An internal error occurred while writing to the store.")
    }
}
