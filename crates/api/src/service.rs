//! What a service plugs into the API: the AWS models it answers (by botocore name) and one
//! async entry point that receives a request already routed by the model and validated
//! against the operation's input shape.

use crate::ApiError;
use bytes::Bytes;
use identity::sigv4::Verified;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// A request matched to an operation.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub op: &'static str,
    /// The model the operation is from.
    pub model: &'static awsmodel::Service,
    /// The validated input: every member the request carries (labels, query, headers, body),
    /// by member name ([`awsmodel::bind`]).
    pub input: Map<String, Value>,
    pub method: String,
    /// Path labels, percent-decoded.
    pub params: HashMap<String, String>,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub caller: Verified,
    pub request_id: String,
}

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Body,
    pub headers: Vec<(String, String)>,
}

/// A response body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    Bytes { content_type: &'static str, data: Bytes },
}

/// What an operation returns.
pub type Reply = Result<ApiResponse, ApiError>;
/// The future a service returns.
pub type BoxReply<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// A service reachable through the API.
pub trait Service: Send + Sync + 'static {
    /// The models (botocore names: `iot`, `iot-data`, ...) whose operations it answers.
    fn models(&self) -> &'static [&'static str];
    /// Runs one operation of one of its models; an operation it has no handler for answers
    /// [`ApiError::not_implemented`].
    fn call(&self, req: ApiRequest) -> BoxReply<'_>;
}

impl ApiResponse {
    /// 200 with a JSON body.
    pub fn json(v: Value) -> Reply {
        Ok(ApiResponse { status: 200, body: Body::Json(v), headers: Vec::new() })
    }

    /// 200 with no body.
    pub fn empty() -> Reply {
        Ok(ApiResponse { status: 200, body: Body::Empty, headers: Vec::new() })
    }
}

impl ApiRequest {
    /// A path label.
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name).map(String::as_str).ok_or_else(|| ApiError::invalid(format!("{name} is required")))
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter (`true`/`false`), absent = `default`.
    pub fn query_bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.query(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(format!("{name} must be true or false, not {v:?}"))),
        }
    }

    /// An integer query parameter within `min..=max`, absent = `default`.
    pub fn query_int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.query(name) {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(format!("{name} must be an integer from {min} to {max}, not {v:?}"))),
            },
        }
    }

    /// A header (name lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The JSON body (an empty body is `{}`).
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        let v: Value = serde_json::from_slice(&self.body).map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        }
        Ok(v)
    }
}
