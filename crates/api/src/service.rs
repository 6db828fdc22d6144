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
    /// by member name ([`awsmodel::bind`]); handlers read it through [`ApiRequest::input`].
    pub members: Map<String, Value>,
    /// Path labels (REST protocols) or form fields (the query protocol) by wire name: what
    /// IAM's resources and the query protocol's handlers read.
    pub params: HashMap<String, String>,
    /// The body: a raw payload member (iot-data's Publish, Lambda's Invoke) is read from here.
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
