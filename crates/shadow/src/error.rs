//! The Device Shadow error messages and the `/rejected` error response document.

use serde_json::{Map, Value};

/// A failure of a shadow request, with the exact message of the AWS IoT Device Shadow error
/// table. [`ShadowError::code`] is the HTTP status. The core produces the 400, 404, 409, 413
/// and 415 errors; the others are here so the caller renders every rejection the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShadowError {
    #[error("Invalid JSON")]
    InvalidJson,
    #[error("Missing required node: state")]
    MissingState,
    #[error("State node must be an object")]
    StateNotObject,
    #[error("Desired node must be an object")]
    DesiredNotObject,
    #[error("Reported node must be an object")]
    ReportedNotObject,
    #[error("Invalid version")]
    InvalidVersion,
    #[error("Invalid clientToken")]
    InvalidClientToken,
    #[error("JSON contains too many levels of nesting; maximum is {max}")]
    TooDeep { max: usize },
    #[error("State contains an invalid node")]
    InvalidNode,
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Forbidden")]
    Forbidden,
    #[error("Thing not found")]
    ThingNotFound,
    /// `name` is the thing name for the classic shadow, the shadow name for a named one.
    #[error("No shadow exists with name: '{name}'")]
    NoShadow { name: String },
    #[error("Version conflict")]
    VersionConflict,
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    #[error("Too Many Requests")]
    TooManyRequests,
    #[error("Internal service failure")]
    InternalFailure,
}

impl ShadowError {
    /// The HTTP status code of this error, also the `code` of the error response document.
    pub fn code(&self) -> u16 {
        use ShadowError::*;
        match self {
            InvalidJson
            | MissingState
            | StateNotObject
            | DesiredNotObject
            | ReportedNotObject
            | InvalidVersion
            | InvalidClientToken
            | TooDeep { .. }
            | InvalidNode => 400,
            Unauthorized => 401,
            Forbidden => 403,
            ThingNotFound | NoShadow { .. } => 404,
            VersionConflict => 409,
            PayloadTooLarge => 413,
            UnsupportedEncoding => 415,
            TooManyRequests => 429,
            InternalFailure => 500,
        }
    }
}

/// A rejected request: the error, when it happened and the request's `clientToken` (when it had a
/// valid one), which is everything the `/rejected` payload carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Rejection {
    pub error: ShadowError,
    /// Epoch seconds.
    pub timestamp: u64,
    pub client_token: Option<String>,
}

impl Rejection {
    /// A rejection of a request that carried `client_token`, at `timestamp` (epoch seconds).
    pub fn new(error: ShadowError, timestamp: u64, client_token: Option<String>) -> Self {
        Rejection {
            error,
            timestamp,
            client_token,
        }
    }

    /// The HTTP status code (and `code` of the payload).
    pub fn code(&self) -> u16 {
        self.error.code()
    }

    /// The error response document: `{"code", "message", "timestamp", "clientToken"}`, the last
    /// only when the request had a client token.
    pub fn payload(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("code".into(), self.code().into());
        doc.insert("message".into(), self.error.to_string().into());
        doc.insert("timestamp".into(), self.timestamp.into());
        if let Some(token) = &self.client_token {
            doc.insert("clientToken".into(), token.clone().into());
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_documented_message_and_code() {
        use ShadowError::*;
        let cases = [
            (InvalidJson, 400, "Invalid JSON"),
            (MissingState, 400, "Missing required node: state"),
            (StateNotObject, 400, "State node must be an object"),
            (DesiredNotObject, 400, "Desired node must be an object"),
            (ReportedNotObject, 400, "Reported node must be an object"),
            (InvalidVersion, 400, "Invalid version"),
            (InvalidClientToken, 400, "Invalid clientToken"),
            (
                TooDeep { max: 6 },
                400,
                "JSON contains too many levels of nesting; maximum is 6",
            ),
            (InvalidNode, 400, "State contains an invalid node"),
            (Unauthorized, 401, "Unauthorized"),
            (Forbidden, 403, "Forbidden"),
            (ThingNotFound, 404, "Thing not found"),
            (
                NoShadow { name: "lamp".into() },
                404,
                "No shadow exists with name: 'lamp'",
            ),
            (VersionConflict, 409, "Version conflict"),
            (PayloadTooLarge, 413, "The payload exceeds the maximum size allowed"),
            (
                UnsupportedEncoding,
                415,
                "Unsupported documented encoding; supported encoding is UTF-8",
            ),
            (TooManyRequests, 429, "Too Many Requests"),
            (InternalFailure, 500, "Internal service failure"),
        ];
        for (error, code, message) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn payload_has_the_documented_shape() {
        // The data-flow page's optimistic locking example, with a timestamp.
        let r = Rejection::new(
            ShadowError::VersionConflict,
            1591057529,
            Some("426bfd96-e720-46d3-95cd-014e3ef12bb6".into()),
        );
        assert_eq!(
            r.payload(),
            json!({"code": 409, "message": "Version conflict", "timestamp": 1591057529,
                   "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"})
        );
        let r = Rejection::new(ShadowError::InvalidJson, 7, None);
        assert_eq!(
            r.payload(),
            json!({"code": 400, "message": "Invalid JSON", "timestamp": 7})
        );
        assert_eq!(r.code(), 400);
        assert_eq!(r.to_string(), "Invalid JSON");
    }
}
