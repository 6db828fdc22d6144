//! What a service plugs into the API: its SigV4 signing name, its route table (method and
//! path template per operation), and one async entry point that receives a parsed request.

use crate::ApiError;
use bytes::Bytes;
use identity::sigv4::Verified;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// One operation's HTTP binding, as in the botocore model.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Path template: literal segments, `{name}` (one segment) or `{name+}` (the rest).
    pub path: &'static str,
    pub op: &'static str,
}

/// A request matched to an operation.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub op: &'static str,
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
    /// The service name in the SigV4 credential scope (`iot`, `iotdata`, ...).
    fn signing_name(&self) -> &'static str;
    /// Its operations' HTTP bindings.
    fn routes(&self) -> &'static [Route];
    /// Runs one operation.
    fn call(&self, req: ApiRequest) -> BoxReply<'_>;
    /// For a service of AWS's query protocol (IAM, STS): its operations, named by the request's
    /// `Action` field; the request's form fields then arrive as `params`, and errors go out as XML.
    fn query_operations(&self) -> Option<&'static [&'static str]> {
        None
    }
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

/// Matches a raw (percent-encoded) path against a template; returns the decoded labels.
pub fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            let rest = p.get(i..)?.join("/");
            if rest.is_empty() {
                return None;
            }
            params.insert(name.to_string(), decode(&rest)?);
            return Some(params);
        }
        let actual = p.get(i)?;
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if actual.is_empty() {
                return None;
            }
            params.insert(name.to_string(), decode(actual)?);
        } else if seg != actual {
            return None;
        }
    }
    (t.len() == p.len()).then_some(params)
}

/// Percent-decodes into UTF-8 (`None` if the result is not UTF-8).
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_and_decode() {
        let m = match_path("/things/{thingName}", "/things/a%20b").unwrap();
        assert_eq!(m["thingName"], "a b");
        assert!(match_path("/things/{thingName}", "/things/a/principals").is_none());
        assert!(match_path("/things/{thingName}", "/things/").is_none());
        let m = match_path("/topics/{topic}", "/topics/%24aws%2Fthings%2Fx").unwrap();
        assert_eq!(m["topic"], "$aws/things/x");
        let m = match_path("/retainedMessage/{topic+}", "/retainedMessage/a/b/c").unwrap();
        assert_eq!(m["topic"], "a/b/c");
        assert!(match_path("/thing-groups/addThingToThingGroup", "/thing-groups/addThingToThingGroup").unwrap().is_empty());
        assert!(match_path("/things", "/things").is_some());
    }
}
