//! API errors in AWS's rest-json shape: an error type (sent as `x-amzn-ErrorType`), a message,
//! and the exception's extra members. The HTTP status is the one the operation's model gives
//! the exception ([`ApiError::resolve`]); handlers and domain crates name only the type.

use serde_json::{Map, Value};

/// An error returned by an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status: the model's for a modeled exception (set by [`ApiError::resolve`]),
    /// else [`fallback_status`] or what [`ApiError::with_status`] set.
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
    /// Extra members of the exception (e.g. `resourceId`, `resourceArn`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// An error of the given type.
    pub fn new(error_type: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: fallback_status(error_type), error_type, message: message.into(), extra: Map::new() }
    }

    /// Sets the status of an error no model describes (authentication, transport).
    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    /// The error with the status `model` gives its type, when the model has the exception.
    pub fn resolve(mut self, model: &awsmodel::Service) -> ApiError {
        if let Some(status) = model.error_status(self.error_type) {
            self.status = status;
        }
        self
    }

    /// InvalidRequestException.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new("InvalidRequestException", message)
    }

    /// ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new("ResourceNotFoundException", message)
    }

    /// ResourceAlreadyExistsException with the existing resource's id and ARN.
    pub fn already_exists(message: impl Into<String>, resource_id: &str, resource_arn: &str) -> ApiError {
        ApiError::new("ResourceAlreadyExistsException", message).with("resourceId", resource_id.into()).with("resourceArn", resource_arn.into())
    }

    /// VersionConflictException.
    pub fn version_conflict(message: impl Into<String>) -> ApiError {
        ApiError::new("VersionConflictException", message)
    }

    /// DeleteConflictException.
    pub fn delete_conflict(message: impl Into<String>) -> ApiError {
        ApiError::new("DeleteConflictException", message)
    }

    /// LimitExceededException.
    pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
        ApiError::new("LimitExceededException", message)
    }

    /// InternalFailureException.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("InternalFailureException", message)
    }

    /// 501 NotImplementedException: an operation of the model that has no handler.
    pub fn not_implemented(model: &str, op: &str) -> ApiError {
        ApiError::new(NOT_IMPLEMENTED, format!("Ferrite does not implement {model}:{op} yet."))
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

/// The status of an error type before a model resolves it: errors that are in no model
/// (Ferrite's own, the request's transport), and the usual one otherwise.
pub fn fallback_status(error_type: &str) -> u16 {
    match error_type {
        NOT_IMPLEMENTED => 501,
        CONFLICT => 409,
        "ResourceNotFoundException" | "UnknownOperationException" | "UnknownServiceException" => 404,
        "ResourceAlreadyExistsException" | "VersionConflictException" | "DeleteConflictException" => 409,
        "AccessDeniedException" | "UnrecognizedClientException" => 403,
        "UnauthorizedException" => 401,
        "RequestTimeoutException" => 408,
        "RequestEntityTooLargeException" => 413,
        "ThrottlingException" | "TooManyRequestsException" => 429,
        "ServiceUnavailableException" => 503,
        t if t.starts_with("Internal") || t == "ServiceException" => 500,
        _ => 400,
    }
}

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
            return ApiError::new(CONFLICT, format!("The {kind} {key} was changed by another request at the same time; try again."));
        }
        tracing::error!(error = %e, "store failure in an API call");
        ApiError::internal("An internal error occurred while writing to the store.")
    }
}
