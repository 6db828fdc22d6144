//! The errors of certificate and policy operations, one variant per AWS IoT exception they
//! become on the wire ([`AuthzError::aws`] gives the HTTP status and error type).

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// InvalidRequestException (400).
    #[error("{0}")]
    Invalid(String),
    /// ResourceNotFoundException (404).
    #[error("{0}")]
    NotFound(String),
    /// ResourceAlreadyExistsException (409), with the existing resource's id and ARN.
    #[error("{message}")]
    AlreadyExists { message: String, resource_id: String, resource_arn: String },
    /// CertificateStateException (406): the operation is not allowed in the certificate's status.
    #[error("{0}")]
    CertificateState(String),
    /// CertificateValidationException (400).
    #[error("{0}")]
    CertificateValidation(String),
    /// CertificateConflictException (409): more than one registered CA could have signed it.
    #[error("{0}")]
    CertificateConflict(String),
    /// RegistrationCodeValidationException (400).
    #[error("{0}")]
    RegistrationCodeValidation(String),
    /// DeleteConflictException (409).
    #[error("{0}")]
    DeleteConflict(String),
    /// MalformedPolicyException (400).
    #[error("{0}")]
    MalformedPolicy(String),
    /// VersionsLimitExceededException (409).
    #[error("{0}")]
    VersionsLimitExceeded(String),
    /// LimitExceededException (410).
    #[error("{0}")]
    LimitExceeded(String),
    /// InvalidResponseException (400): a custom authorizer's function failed or answered
    /// something AWS would not accept.
    #[error("{0}")]
    InvalidResponse(String),
    /// A stored document cannot be read back.
    #[error("stored {kind} document {key:?} is not valid: {error}")]
    Corrupt { kind: &'static str, key: String, error: String },
    /// InternalFailureException (500): creating a key or certificate failed.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, AuthzError>;

impl AuthzError {
    /// The AWS error type of this error (its HTTP status is the model's; registry errors are
    /// mapped by the caller, which knows them).
    pub fn aws_type(&self) -> &'static str {
        match self {
            AuthzError::Invalid(_) => "InvalidRequestException",
            AuthzError::NotFound(_) => "ResourceNotFoundException",
            AuthzError::AlreadyExists { .. } => "ResourceAlreadyExistsException",
            AuthzError::CertificateState(_) => "CertificateStateException",
            AuthzError::CertificateValidation(_) => "CertificateValidationException",
            AuthzError::CertificateConflict(_) => "CertificateConflictException",
            AuthzError::RegistrationCodeValidation(_) => "RegistrationCodeValidationException",
            AuthzError::DeleteConflict(_) => "DeleteConflictException",
            AuthzError::MalformedPolicy(_) => "MalformedPolicyException",
            AuthzError::VersionsLimitExceeded(_) => "VersionsLimitExceededException",
            AuthzError::LimitExceeded(_) => "LimitExceededException",
            AuthzError::InvalidResponse(_) => "InvalidResponseException",
            AuthzError::Corrupt { .. } | AuthzError::Internal(_) | AuthzError::Store(_) | AuthzError::Registry(_) => "InternalFailureException",
        }
    }
}

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(AuthzError::Invalid(message.into()))
}

pub(crate) fn not_found(message: impl Into<String>) -> AuthzError {
    AuthzError::NotFound(message.into())
}
