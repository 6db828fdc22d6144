//! Errors: [`SqlParseError`] for statements that do not parse (AWS's SqlParseException) and
//! [`EvalError`] for evaluations that cannot complete.

use thiserror::Error;

/// A statement or template that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("at character {position}: {message}")]
pub struct SqlParseError {
    /// Character offset (0-based) in the text where the problem was found.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl SqlParseError {
    /// An error at `position`.
    pub fn new(position: usize, message: impl Into<String>) -> SqlParseError {
        SqlParseError { position, message: message.into() }
    }
}

/// An evaluation that fails as a whole (the rule's error action would run). Bad arguments
/// to functions are not errors: they give Undefined, as AWS documents.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EvalError {
    /// The payload is not JSON and the statement refers to a JSON name, or mixes `*` with
    /// other SELECT items (binary-payload rules).
    #[error("binary payload: {0}")]
    BinaryPayload(String),
    /// A function that calls a service this engine does not provide.
    #[error("function {0} is not supported")]
    Unsupported(String),
    /// The host failed to answer a context-dependent function.
    #[error("{function} failed: {message}")]
    Host {
        /// The SQL function.
        function: String,
        /// The host's message.
        message: String,
    },
    /// SQL version 2015-10-08 cannot output an array as the top-level value.
    #[error("SELECT VALUE of an array needs SQL version 2016-03-23")]
    TopLevelArray,
}

/// What a [`crate::Host`] returns when it cannot answer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct HostError(pub String);
