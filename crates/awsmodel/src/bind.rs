//! Turning a request into one validated input: the members bound to path labels, query
//! parameters, headers and the body (or the query protocol's form fields) are merged into one
//! JSON object keyed by member name, then checked against the input shape's constraints —
//! required, types, lengths, ranges, patterns, enums, unions — without recursion (an explicit
//! stack), reporting at most [`MAX_VIOLATIONS`] in AWS's words ("1 validation error detected:
//! Value 'a b' at 'thingName' failed to satisfy constraint: Member must satisfy regular
//! expression pattern: [a-zA-Z0-9:_-]+").

use crate::{Kind, Location, Operation, Protocol, Service, Shape, ShapeId};
use serde_json::{Map, Number, Value};

/// The most violations one answer lists.
pub const MAX_VIOLATIONS: usize = 10;

/// The parts of a request, decoded.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// Path labels by label name.
    pub labels: &'a [(String, String)],
    pub query: &'a [(String, String)],
    /// Headers with lowercase names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// For the query protocol: the form fields (body and query string).
    pub fields: &'a [(String, String)],
}

/// Why a request does not fit its operation's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BindError {
    /// The body is not JSON, or not an object.
    #[error("{0}")]
    Malformed(String),
    /// Constraints are violated; the message lists them as AWS does.
    #[error("{0}")]
    Invalid(String),
}

/// The validated input of `op`: members by name. A blob or string payload member (the whole
/// body, e.g. iot-data's Publish) is not copied in: the handler reads the body itself.
pub fn bind(service: &Service, op: &Operation, parts: &Parts<'_>) -> Result<Map<String, Value>, BindError> {
    let Some(input_id) = op.input else { return Ok(Map::new()) };
    let input = service.shape(input_id);
    let mut out = Map::new();
    let mut violations = Violations::default();
    // Members checked elsewhere or not at all: a raw payload (below), and the query
    // protocol's structures, maps and lists of them (flattened into fields it does not bind).
    let mut skip: Vec<&str> = Vec::new();
    if service.protocol == Protocol::Query {
        bind_fields(service, input, parts.fields, &mut out, &mut violations);
        skip.extend(input.members.iter().filter(|m| !out.contains_key(m.name) && !is_scalar_or_list_of_scalars(service, m.shape)).map(|m| m.name));
    } else {
        bind_body(service, input, parts.body, &mut out)?;
        for m in input.members {
            let shape = service.shape(m.shape);
            let raw: Option<Value> = match m.location {
                Location::Body | Location::StatusCode => continue,
                Location::Uri => parts.labels.iter().find(|(k, _)| k == m.wire_name()).map(|(_, v)| scalar(shape, v, m.name, &mut violations)),
                Location::Header => {
                    let name = m.wire_name().to_ascii_lowercase();
                    parts.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| scalar(shape, v, m.name, &mut violations))
                }
                Location::Headers => {
                    let prefix = m.wire_name().to_ascii_lowercase();
                    let map: Map<String, Value> = parts
                        .headers
                        .iter()
                        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_string(), Value::String(v.clone()))))
                        .collect();
                    (!map.is_empty()).then_some(Value::Object(map))
                }
                Location::Query => match shape.kind {
                    Kind::List => {
                        let item = shape.member.map(|i| service.shape(i)).unwrap_or(shape);
                        let values: Vec<Value> =
                            parts.query.iter().filter(|(k, _)| k == m.wire_name()).map(|(_, v)| scalar(item, v, m.name, &mut violations)).collect();
                        (!values.is_empty()).then_some(Value::Array(values))
                    }
                    Kind::Map => {
                        let bound: Vec<&str> = input.members.iter().filter(|o| o.location == Location::Query && o.name != m.name).map(|o| o.wire_name()).collect();
                        let map: Map<String, Value> =
                            parts.query.iter().filter(|(k, _)| !bound.contains(&k.as_str())).map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                        (!map.is_empty()).then_some(Value::Object(map))
                    }
                    _ => parts.query.iter().find(|(k, _)| k == m.wire_name()).map(|(_, v)| scalar(shape, v, m.name, &mut violations)),
                },
            };
            if let Some(v) = raw {
                out.insert(m.name.to_string(), v);
            }
        }
    }
    // A blob or string payload is the body itself: present when the body is not empty.
    let raw_payload = input.payload.and_then(|p| input.member(p)).filter(|m| service.shape(m.shape).kind != Kind::Structure);
    if let Some(m) = raw_payload
        && m.required
        && parts.body.is_empty()
    {
        violations.push(Value::Null, m.name, "Member must not be null".into());
    }
    skip.extend(raw_payload.map(|m| m.name));
    validate(service, input_id, &out, &skip, &mut violations);
    violations.finish()?;
    Ok(out)
}

/// Copies the body's members (JSON keys are wire names) into `out` by member name.
fn bind_body(service: &Service, input: &Shape, body: &[u8], out: &mut Map<String, Value>) -> Result<(), BindError> {
    if let Some(payload) = input.payload.and_then(|p| input.member(p)) {
        let shape = service.shape(payload.shape);
        if shape.kind == Kind::Structure && !body.iter().all(u8::is_ascii_whitespace) {
            out.insert(payload.name.to_string(), parse_object(body)?);
        }
        return Ok(());
    }
    if !input.members.iter().any(|m| m.location == Location::Body) || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let Value::Object(mut object) = parse_object(body)? else { return Ok(()) };
    for m in input.members.iter().filter(|m| m.location == Location::Body) {
        if let Some(v) = object.remove(m.wire_name()) {
            out.insert(m.name.to_string(), v);
        }
    }
    Ok(())
}

fn parse_object(body: &[u8]) -> Result<Value, BindError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BindError::Malformed(format!("The request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(BindError::Malformed("The request body must be a JSON object.".into()));
    }
    Ok(v)
}

fn is_scalar_or_list_of_scalars(service: &Service, id: ShapeId) -> bool {
    let shape = service.shape(id);
    let scalar = |k: Kind| !matches!(k, Kind::Structure | Kind::Map | Kind::List);
    match shape.kind {
        Kind::List => shape.member.is_some_and(|m| scalar(service.shape(m).kind)),
        k => scalar(k),
    }
}

/// The query protocol's fields: scalars by member name, lists of scalars as `Name.member.N`.
fn bind_fields(service: &Service, input: &Shape, fields: &[(String, String)], out: &mut Map<String, Value>, violations: &mut Violations) {
    for m in input.members {
        let shape = service.shape(m.shape);
        match shape.kind {
            Kind::Structure | Kind::Map => {}
            Kind::List => {
                let item = shape.member.map(|i| service.shape(i)).unwrap_or(shape);
                if matches!(item.kind, Kind::Structure | Kind::Map | Kind::List) {
                    continue;
                }
                let prefix = format!("{}.member.", m.name);
                let mut items: Vec<(usize, &str)> =
                    fields.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).and_then(|n| n.parse().ok()).map(|n| (n, v.as_str()))).collect();
                items.sort_by_key(|(n, _)| *n);
                if !items.is_empty() {
                    out.insert(m.name.to_string(), Value::Array(items.into_iter().map(|(_, v)| scalar(item, v, m.name, violations)).collect()));
                }
            }
            _ => {
                if let Some((_, v)) = fields.iter().find(|(k, _)| k == m.name) {
                    out.insert(m.name.to_string(), scalar(shape, v, m.name, violations));
                }
            }
        }
    }
}

/// A string from a label, query parameter, header or form field, as its shape types it.
fn scalar(shape: &Shape, raw: &str, path: &str, violations: &mut Violations) -> Value {
    match shape.kind {
        Kind::Integer | Kind::Long => match raw.trim().parse::<i64>() {
            Ok(n) => Value::Number(n.into()),
            Err(_) => {
                violations.push(Value::String(raw.into()), path, "Member must be an integer".into());
                Value::Null
            }
        },
        Kind::Float | Kind::Double => match raw.trim().parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => {
                violations.push(Value::String(raw.into()), path, "Member must be a number".into());
                Value::Null
            }
        },
        Kind::Boolean => match raw.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                violations.push(Value::String(raw.into()), path, "Member must be true or false".into());
                Value::Null
            }
        },
        _ => Value::String(raw.to_string()),
    }
}

#[derive(Default)]
struct Violations {
    count: usize,
    text: Vec<String>,
}

impl Violations {
    fn push(&mut self, value: Value, path: &str, rule: String) {
        self.count += 1;
        if self.text.len() < MAX_VIOLATIONS {
            let shown = match &value {
                Value::Null => "null".to_string(),
                Value::String(s) => format!("'{}'", truncate(s)),
                other => format!("'{}'", truncate(&other.to_string())),
            };
            self.text.push(format!("Value {shown} at '{path}' failed to satisfy constraint: {rule}"));
        }
    }

    fn finish(self) -> Result<(), BindError> {
        match self.count {
            0 => Ok(()),
            1 => Err(BindError::Invalid(format!("1 validation error detected: {}", self.text.join("; ")))),
            n => Err(BindError::Invalid(format!("{n} validation errors detected: {}", self.text.join("; ")))),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= 64 { s.to_string() } else { format!("{}...", s.chars().take(64).collect::<String>()) }
}

/// Checks `input` against the structure `shape`, depth first with an explicit stack.
/// `skip` names root members checked elsewhere.
fn validate(service: &Service, shape: ShapeId, input: &Map<String, Value>, skip: &[&str], violations: &mut Violations) {
    // (value, shape, path); the root's members are pushed first.
    let mut stack: Vec<(&Value, ShapeId, String)> = Vec::new();
    check_members(service.shape(shape), input, "", skip, &mut stack, violations);
    while let Some((value, id, path)) = stack.pop() {
        if violations.count > MAX_VIOLATIONS {
            return;
        }
        let shape = service.shape(id);
        if value.is_null() {
            continue;
        }
        match shape.kind {
            Kind::Structure => match value {
                Value::Object(m) => check_members(shape, m, &path, &[], &mut stack, violations),
                _ => violations.push(value.clone(), &path, "Member must be a structure".into()),
            },
            Kind::List => match value {
                Value::Array(items) => {
                    length(shape, items.len(), value, &path, violations);
                    if let Some(member) = shape.member {
                        for (i, item) in items.iter().enumerate().rev() {
                            if item.is_null() {
                                violations.push(Value::Null, &format!("{path}.{}.member", i + 1), "Member must not be null".into());
                            }
                            stack.push((item, member, format!("{path}.{}.member", i + 1)));
                        }
                    }
                }
                _ => violations.push(value.clone(), &path, "Member must be a list".into()),
            },
            Kind::Map => match value {
                Value::Object(m) => {
                    length(shape, m.len(), value, &path, violations);
                    for (k, v) in m {
                        if let Some(key) = shape.key {
                            check_string(service, service.shape(key), k, &format!("{path}.key"), violations);
                        }
                        if let Some(member) = shape.member {
                            stack.push((v, member, format!("{path}.{k}")));
                        }
                    }
                }
                _ => violations.push(value.clone(), &path, "Member must be a map".into()),
            },
            Kind::String => match value {
                Value::String(s) => check_string(service, shape, s, &path, violations),
                _ => violations.push(value.clone(), &path, "Member must be a string".into()),
            },
            Kind::Integer | Kind::Long => match value.as_i64() {
                Some(n) => range(shape, n as f64, value, &path, violations),
                None => violations.push(value.clone(), &path, "Member must be an integer".into()),
            },
            Kind::Float | Kind::Double => match value.as_f64() {
                Some(n) => range(shape, n, value, &path, violations),
                None => violations.push(value.clone(), &path, "Member must be a number".into()),
            },
            Kind::Boolean => {
                if !value.is_boolean() {
                    violations.push(value.clone(), &path, "Member must be a boolean".into());
                }
            }
            Kind::Blob => {
                if !value.is_string() {
                    violations.push(value.clone(), &path, "Member must be base64-encoded binary data".into());
                }
            }
            Kind::Timestamp => {
                if !value.is_number() && !value.is_string() {
                    violations.push(value.clone(), &path, "Member must be a timestamp".into());
                }
            }
        }
    }
}

fn check_members<'v>(
    shape: &Shape,
    object: &'v Map<String, Value>,
    path: &str,
    skip: &[&str],
    stack: &mut Vec<(&'v Value, ShapeId, String)>,
    violations: &mut Violations,
) {
    let mut set = 0;
    for m in shape.members.iter().rev().filter(|m| !skip.contains(&m.name)) {
        let key = if path.is_empty() { m.name } else { m.wire_name() };
        let at = if path.is_empty() { m.name.to_string() } else { format!("{path}.{}", m.name) };
        match object.get(key).filter(|v| !v.is_null()) {
            None if m.required => violations.push(Value::Null, &at, "Member must not be null".into()),
            None => {}
            Some(v) => {
                set += 1;
                stack.push((v, m.shape, at));
            }
        }
    }
    if shape.union && set != 1 {
        let at = if path.is_empty() { "input" } else { path };
        violations.push(Value::Object(object.clone()), at, format!("Member must have exactly one member set, not {set}"));
    }
}

fn check_string(service: &Service, shape: &Shape, s: &str, path: &str, violations: &mut Violations) {
    let value = || Value::String(s.to_string());
    length(shape, s.chars().count(), &value(), path, violations);
    if let Some(re) = shape.pattern.and_then(|p| service.regex(p))
        && !re.is_match(s)
    {
        let p = shape.pattern.map(|p| service.patterns[p as usize]).unwrap_or("");
        violations.push(value(), path, format!("Member must satisfy regular expression pattern: {p}"));
    }
    if !shape.enumeration.is_empty() && !shape.enumeration.contains(&s) {
        violations.push(value(), path, format!("Member must satisfy enum value set: [{}]", shape.enumeration.join(", ")));
    }
}

fn length(shape: &Shape, len: usize, value: &Value, path: &str, violations: &mut Violations) {
    if let Some(min) = shape.min
        && (len as f64) < min
    {
        violations.push(value.clone(), path, format!("Member must have length greater than or equal to {min}"));
    }
    if let Some(max) = shape.max
        && (len as f64) > max
    {
        violations.push(value.clone(), path, format!("Member must have length less than or equal to {max}"));
    }
}

fn range(shape: &Shape, n: f64, value: &Value, path: &str, violations: &mut Violations) {
    if let Some(min) = shape.min
        && n < min
    {
        violations.push(value.clone(), path, format!("Member must have value greater than or equal to {min}"));
    }
    if let Some(max) = shape.max
        && n > max
    {
        violations.push(value.clone(), path, format!("Member must have value less than or equal to {max}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn run(s: &Service, op: &str, labels: &[(&str, &str)], query: &[(&str, &str)], headers: &[(&str, &str)], body: &str) -> Result<Map<String, Value>, BindError> {
        let (l, q, h) = (pairs(labels), pairs(query), pairs(headers));
        bind(s, s.operation(op).unwrap(), &Parts { labels: &l, query: &q, headers: &h, body: body.as_bytes(), fields: &[] })
    }

    #[test]
    fn locations_merge_into_one_input_by_member_name() {
        let input = run(&iot::SERVICE, "CreateThing", &[("thingName", "t1")], &[], &[], r#"{"thingTypeName":"ty","attributePayload":{"attributes":{"a":"1"}}}"#).unwrap();
        assert_eq!(input["thingName"], "t1");
        assert_eq!(input["thingTypeName"], "ty");
        assert_eq!(input["attributePayload"]["attributes"]["a"], "1");
        let input = run(&iot::SERVICE, "ListThings", &[], &[("maxResults", "5"), ("usePrefixAttributeValue", "true")], &[], "").unwrap();
        assert_eq!((input["maxResults"].as_i64(), input["usePrefixAttributeValue"].as_bool()), (Some(5), Some(true)));
        let input = run(&iot::SERVICE, "AttachThingPrincipal", &[("thingName", "t")], &[], &[("x-amzn-principal", "arn:cert")], "").unwrap();
        assert_eq!(input["principal"], "arn:cert");
        let input = run(&lambda::SERVICE, "Invoke", &[("FunctionName", "f")], &[], &[("x-amz-invocation-type", "Event")], "{not json").unwrap();
        assert_eq!(input["InvocationType"], "Event");
        assert!(input.get("Payload").is_none(), "a blob payload stays in the body");
        let input = run(&iot_data::SERVICE, "UpdateThingShadow", &[("thingName", "t")], &[], &[], r#"{"state":{}}"#).unwrap();
        assert!(input.get("payload").is_none());
        let e = run(&iot_data::SERVICE, "UpdateThingShadow", &[("thingName", "t")], &[], &[], "").unwrap_err();
        assert!(e.to_string().contains("Value null at 'payload'"), "{e}");
    }

    #[test]
    fn violations_name_the_member_and_the_rule_as_aws_does() {
        let e = run(&iot::SERVICE, "CreateThing", &[("thingName", "a b")], &[], &[], "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value 'a b' at 'thingName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+"
        );
        let e = run(&iot::SERVICE, "ListThings", &[], &[("maxResults", "0")], &[], "").unwrap_err();
        assert!(e.to_string().contains("at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"), "{e}");
        let e = run(&iot::SERVICE, "CreateThing", &[("thingName", "t")], &[], &[], r#"{"attributePayload":{"attributes":{"a":1}}}"#).unwrap_err();
        assert!(e.to_string().contains("'attributePayload.attributes.a'") && e.to_string().contains("must be a string"), "{e}");
        let e = run(&iot::SERVICE, "DescribeEndpoint", &[], &[("endpointType", &"x".repeat(200))], &[], "").unwrap_err();
        assert!(e.to_string().contains("length less than or equal to 128"), "{e}");
        let e = run(&iot::SERVICE, "UpdateCertificate", &[("certificateId", &"a".repeat(64))], &[("newStatus", "NOPE")], &[], "").unwrap_err();
        assert!(e.to_string().contains("enum value set: [ACTIVE, INACTIVE"), "{e}");
        let e = run(&iot::SERVICE, "AttachThingPrincipal", &[("thingName", "t")], &[], &[], "").unwrap_err();
        assert!(e.to_string().contains("Value null at 'principal' failed to satisfy constraint: Member must not be null"), "{e}");
        let e = run(&iot::SERVICE, "CreateThing", &[("thingName", "t")], &[], &[], "[1]").unwrap_err();
        assert!(matches!(e, BindError::Malformed(_)));
    }

    #[test]
    fn many_violations_are_counted_and_listed_up_to_the_bound() {
        let tags: Vec<String> = (0..30).map(|_| r#"{"Value":"v"}"#.to_string()).collect();
        let body = format!(r#"{{"tags":[{}]}}"#, tags.join(","));
        let e = run(&iot::SERVICE, "TagResource", &[], &[], &[], &body).unwrap_err().to_string();
        assert!(e.starts_with("2") || e.starts_with("1"), "{e}");
        assert!(e.matches("Value ").count() <= MAX_VIOLATIONS, "{e}");
    }

    #[test]
    fn deep_input_is_checked_without_recursion() {
        // Nesting beyond the shapes is a type violation, found without recursing.
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let body = format!(r#"{{"attributePayload":{{"attributes":{{"a":{deep}}}}}}}"#);
        assert!(run(&iot::SERVICE, "CreateThing", &[("thingName", "t")], &[], &[], &body).is_err());
    }

    #[test]
    fn query_protocol_fields_bind_scalars_and_lists() {
        let f = pairs(&[("Action", "GetUser"), ("UserName", "bob")]);
        let s = &iam::SERVICE;
        let input = bind(s, s.operation("GetUser").unwrap(), &Parts { labels: &[], query: &[], headers: &[], body: b"", fields: &f }).unwrap();
        assert_eq!(input["UserName"], "bob");
        let f = pairs(&[("Action", "CreateUser")]);
        assert!(bind(s, s.operation("CreateUser").unwrap(), &Parts { labels: &[], query: &[], headers: &[], body: b"", fields: &f }).is_err());
    }

    /// Every pattern of every model compiles with Rust's regex crate, but for those with
    /// look-arounds (which it does not have; they go unenforced).
    #[test]
    fn patterns_compile() {
        let mut failed = Vec::new();
        for s in ALL {
            for (i, p) in s.patterns.iter().enumerate() {
                if s.regex(i as u16).is_none() && !p.contains("(?!") && !p.contains("(?<!") {
                    failed.push(format!("{}: {p}", s.name));
                }
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
        let graph = iot::SERVICE.patterns.iter().position(|p| p.contains("Graph")).unwrap();
        assert!(iot::SERVICE.regex(graph as u16).unwrap().is_match("a b~"));
    }
}
