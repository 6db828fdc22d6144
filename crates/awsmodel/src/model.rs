//! The shape of a generated service model: what the botocore JSON says about each operation
//! (HTTP binding, input and output shapes, errors) and each shape (type, members with their
//! wire locations, constraints), with the documentation left out.

use regex::Regex;
use std::sync::OnceLock;

/// An index into [`Service::shapes`].
pub type ShapeId = u16;

/// The wire protocol of a service (botocore's `metadata.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// REST with JSON bodies; errors name their type in `x-amzn-ErrorType`.
    RestJson,
    /// `POST /` with `X-Amz-Target: <targetPrefix>.<Operation>`; errors carry `__type`.
    Json,
    /// Form-encoded `Action=...` requests, XML answers (IAM, STS).
    Query,
}

/// One service's model.
#[derive(Debug)]
pub struct Service {
    /// botocore's folder name (`iot`, `iot-data`, `iotsitewise`, ...).
    pub name: &'static str,
    pub api_version: &'static str,
    /// The service name in the SigV4 credential scope (botocore's `signingName`, else `endpointPrefix`).
    pub signing_name: &'static str,
    pub endpoint_prefix: &'static str,
    pub protocol: Protocol,
    /// For [`Protocol::Json`]: the `X-Amz-Target` prefix.
    pub target_prefix: Option<&'static str>,
    /// The action prefix of IAM policies for this service (`iot`, `iotevents`, `greengrass`, ...).
    pub iam_prefix: &'static str,
    /// The error a violated input constraint answers: the service's own validation exception.
    pub validation_error: Option<ShapeId>,
    pub operations: &'static [Operation],
    pub shapes: &'static [Shape],
    /// The regular expressions of `pattern` constraints ([`Shape::pattern`] indexes them).
    pub patterns: &'static [&'static str],
    /// Compiled [`Service::patterns`], built on first use (`None`: not a pattern Rust's regex
    /// crate accepts, so it is not enforced).
    pub compiled: &'static [OnceLock<Option<Regex>>],
}

/// One operation.
#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    pub method: &'static str,
    /// The path part of `requestUri`: literal segments, `{label}` and `{label+}` (greedy).
    pub path: &'static str,
    /// Literal query parameters of `requestUri` (`?find=LayerVersion`) the request must carry.
    pub query: &'static [(&'static str, &'static str)],
    /// botocore's `endpoint.hostPrefix` (`api.`, `data.`), prepended to the host by SDKs.
    pub host_prefix: Option<&'static str>,
    pub input: Option<ShapeId>,
    pub output: Option<ShapeId>,
    /// The status of a success (`http.responseCode`, 200 when absent).
    pub status: u16,
    pub errors: &'static [ShapeId],
}

/// A shape's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Float,
    Double,
    Boolean,
    Blob,
    Timestamp,
}

/// How a timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Seconds since the epoch, a number (with a fraction).
    EpochSeconds,
    /// RFC 3339 / ISO 8601 (`2026-12-03T09:00:00Z`).
    Iso8601,
    /// RFC 7231 HTTP date (`Thu, 03 Dec 2026 09:00:00 GMT`).
    HttpDate,
}

/// Where a member travels in a request or response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Uri,
    Query,
    Header,
    /// All headers starting with the member's wire name (a map).
    Headers,
    /// The response's HTTP status.
    StatusCode,
}

/// One member of a structure.
#[derive(Debug)]
pub struct Member {
    pub name: &'static str,
    pub shape: ShapeId,
    pub location: Location,
    /// The name on the wire when it is not the member name (`locationName`: a path label,
    /// query key, header name); see [`Member::wire_name`].
    pub wire: &'static str,
    pub required: bool,
    /// A header that carries base64-encoded JSON.
    pub json_value: bool,
    /// A member-level `timestampFormat`.
    pub timestamp_format: Option<TimestampFormat>,
}

/// One shape.
#[derive(Debug)]
pub struct Shape {
    pub name: &'static str,
    pub kind: Kind,
    /// Length (strings, blobs, lists, maps) or value (numbers) bounds.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// An index into [`Service::patterns`].
    pub pattern: Option<u16>,
    pub enumeration: &'static [&'static str],
    /// Structure members.
    pub members: &'static [Member],
    /// The member shape of a list; the value shape of a map.
    pub member: Option<ShapeId>,
    /// The key shape of a map.
    pub key: Option<ShapeId>,
    /// The member that is the whole HTTP body (a blob, string or structure).
    pub payload: Option<&'static str>,
    /// A union: exactly one member is set.
    pub union: bool,
    /// A shape-level `timestampFormat`.
    pub timestamp_format: Option<TimestampFormat>,
    /// For an exception: its code on the wire and its HTTP status.
    pub error: Option<ErrorInfo>,
    /// An event stream (a streaming answer Ferrite sends as one message).
    pub event_stream: bool,
}

/// What an exception shape says about itself.
#[derive(Debug, Clone, Copy)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub status: u16,
}

impl Member {
    /// The defaults every generated member starts from.
    pub const EMPTY: Member = Member { name: "", shape: 0, location: Location::Body, wire: "", required: false, json_value: false, timestamp_format: None };

    /// Its name on the wire.
    pub fn wire_name(&self) -> &'static str {
        if self.wire.is_empty() { self.name } else { self.wire }
    }
}

impl Shape {
    /// The defaults every generated shape starts from.
    pub const EMPTY: Shape = Shape {
        name: "",
        kind: Kind::String,
        min: None,
        max: None,
        pattern: None,
        enumeration: &[],
        members: &[],
        member: None,
        key: None,
        payload: None,
        union: false,
        timestamp_format: None,
        error: None,
        event_stream: false,
    };

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

impl Service {
    /// A shape by id.
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id as usize]
    }

    /// The HTTP status of the exception whose code on the wire is `code`.
    pub fn error_status(&self, code: &str) -> Option<u16> {
        self.shapes.iter().find_map(|s| s.error.filter(|e| e.code == code).map(|e| e.status))
    }

    /// An operation by name.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == name)
    }

    /// The compiled regular expression of a pattern constraint (anchored at both ends, as
    /// AWS matches them, in Rust's dialect of Java's: see [`rust_pattern`]); `None` when Rust's
    /// regex crate cannot compile it (look-arounds: those are not enforced).
    pub fn regex(&self, pattern: u16) -> Option<&Regex> {
        let i = pattern as usize;
        self.compiled[i]
            .get_or_init(|| {
                let p = rust_pattern(self.patterns[i]);
                regex::RegexBuilder::new(&format!("^(?:{p})$")).size_limit(1 << 24).build().ok()
            })
            .as_ref()
    }

    /// The input shape of an operation.
    pub fn input(&self, op: &Operation) -> Option<&Shape> {
        op.input.map(|id| self.shape(id))
    }
}

/// A botocore (Java) pattern in Rust's regex dialect: `\p{Graph}` becomes `[:graph:]` (used
/// inside a class), a `-` right after a class escape (`[\w- ]`) is escaped, and a counted
/// repetition above 1000 (`{1,2048}`, which would compile to megabytes) becomes `+`/`*`: the
/// shape's own length bounds still apply.
pub fn rust_pattern(java: &str) -> String {
    let mut p = java.replace("\\p{Graph}", "[:graph:]");
    for class in ["\\w-", "\\d-", "\\s-"] {
        p = p.replace(class, &format!("{}\\-", &class[..2]));
    }
    let mut out = String::with_capacity(p.len());
    let mut rest = p.as_str();
    while let Some(start) = rest.find('{') {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let counted = after[1..].split_once('}').and_then(|(inner, tail)| {
            let (lo, hi) = inner.split_once(',').unwrap_or((inner, inner));
            let (lo, hi) = (lo.trim().parse::<u32>().ok()?, hi.trim().parse::<u32>().ok()?);
            Some((lo, hi, tail))
        });
        match counted {
            Some((lo, hi, tail)) if hi > 1000 => {
                out.push(if lo == 0 { '*' } else { '+' });
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
