//! [`RulesError`]: what a rules operation can fail with, one variant per AWS error type.

/// A failed rules operation.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The statement does not parse (AWS's SqlParseException, 400).
    #[error("{0}")]
    SqlParse(String),
    /// Anything else wrong with the request (InvalidRequestException, 400).
    #[error("{0}")]
    Invalid(String),
    /// No such rule or destination. AWS IoT answers UnauthorizedException (401) here: the
    /// caller may not act on a resource that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A rule or destination of that name or URL exists (ResourceAlreadyExistsException, 409).
    #[error("{message}")]
    AlreadyExists { message: String, arn: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A stored document that cannot be read.
    #[error("stored {kind} {key} cannot be read: {message}")]
    Corrupt { kind: &'static str, key: String, message: String },
}
