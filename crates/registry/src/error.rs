//! The registry's errors, one variant per kind of AWS IoT exception they become on the wire.

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A bad name, value, combination of parameters or a rule of the registry (AWS
    /// InvalidRequestException).
    #[error("{0}")]
    Invalid(String),
    /// The named resource does not exist (ResourceNotFoundException).
    #[error("{0}")]
    NotFound(String),
    /// A resource with this name exists with another configuration (ResourceAlreadyExistsException).
    #[error("{message}")]
    AlreadyExists { message: String, resource_id: String, resource_arn: String },
    /// `expectedVersion` does not match (VersionConflictException).
    #[error("{0}")]
    VersionConflict(String),
    /// A per-resource limit would be exceeded (LimitExceededException).
    #[error("{0}")]
    LimitExceeded(String),
    /// A stored document cannot be read back.
    #[error("stored {kind} document {key:?} is not valid: {error}")]
    Corrupt { kind: &'static str, key: String, error: String },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Shorthand for registry results.
pub type Result<T> = std::result::Result<T, RegistryError>;

pub(crate) fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(RegistryError::Invalid(message.into()))
}

pub(crate) fn not_found(message: impl Into<String>) -> RegistryError {
    RegistryError::NotFound(message.into())
}

impl From<awscore::tags::TagError> for RegistryError {
    fn from(e: awscore::tags::TagError) -> RegistryError {
        match e {
            awscore::tags::TagError::Invalid(m) => RegistryError::Invalid(m),
            awscore::tags::TagError::Limit(m) => RegistryError::LimitExceeded(m),
        }
    }
}
