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
    /// No resource of that ARN, for the operations AWS answers ResourceNotFoundException (404).
    #[error("{0}")]
    NoSuchResource(String),
    /// A per-resource limit would be exceeded (LimitExceededException).
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A stored document that cannot be read.
    #[error("stored {kind} {key} cannot be read: {message}")]
    Corrupt { kind: &'static str, key: String, message: String },
}

impl From<awscore::tags::TagError> for RulesError {
    fn from(e: awscore::tags::TagError) -> RulesError {
        match e {
            awscore::tags::TagError::Invalid(m) => RulesError::Invalid(m),
            awscore::tags::TagError::Limit(m) => RulesError::LimitExceeded(m),
        }
    }
}
