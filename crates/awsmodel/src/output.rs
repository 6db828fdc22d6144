//! Answers by the model. [`serialize`] lays out what a handler answers by member name: header
//! members become headers, a status-code member the status, a structure payload the whole
//! body, body members take their wire names, and timestamps (given as epoch seconds) are
//! written in the format the member, its shape or its location calls for. [`check`] holds the
//! resulting body to the output shape: every member is a body member with the right type
//! (strings, numbers, booleans, lists, maps, structures; timestamps as numbers or strings),
//! walked with an explicit stack. The API runs it on every answer in debug builds and tests,
//! so a hand-built output cannot drift from what boto3 parses without a test failing.

use crate::{Kind, Location, Operation, Protocol, Service, ShapeId, TimestampFormat};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

/// An answer laid out for the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status a status-code member set.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// Lays out `members` (the handler's answer by member name; a member may also be named by its
/// wire name) by the output shape of `op`. Members the shape does not have stay in the body,
/// where [`check`] finds them.
pub fn serialize(service: &Service, op: &Operation, members: Map<String, Value>) -> Answer {
    let mut answer = Answer { status: None, headers: Vec::new(), body: Value::Object(Map::new()) };
    let Some(id) = op.output else {
        answer.body = Value::Object(members);
        return answer;
    };
    let shape = service.shape(id);
    let payload = shape.payload.and_then(|p| shape.member(p));
    let mut body = Map::new();
    for (k, mut v) in members {
        let Some(m) = shape.members.iter().find(|m| m.name == k || m.wire_name() == k) else {
            body.insert(k, v);
            continue;
        };
        let kind = service.shape(m.shape).kind;
        match m.location {
            Location::StatusCode => answer.status = v.as_u64().and_then(|n| u16::try_from(n).ok()),
            Location::Header => {
                let text = match (&v, kind) {
                    (Value::Number(n), Kind::Timestamp) => {
                        let format = m.timestamp_format.or(service.shape(m.shape).timestamp_format).unwrap_or(TimestampFormat::HttpDate);
                        timestamp(n.as_f64().unwrap_or(0.0), format).as_str().map(str::to_string).unwrap_or_else(|| n.to_string())
                    }
                    (Value::String(s), _) if m.json_value => B64.encode(s.as_bytes()),
                    (Value::String(s), _) => s.clone(),
                    (Value::Null, _) => continue,
                    (other, _) if m.json_value => B64.encode(other.to_string()),
                    (other, _) => other.to_string(),
                };
                answer.headers.push((m.wire_name().to_string(), text));
            }
            Location::Headers => {
                if let Value::Object(map) = v {
                    for (name, value) in map {
                        let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                        answer.headers.push((format!("{}{name}", m.wire_name()), text));
                    }
                }
            }
            _ if payload.is_some_and(|p| p.name == m.name) => {
                write_timestamps(service, m.shape, m.timestamp_format, &mut v);
                answer.body = v;
            }
            _ => {
                write_timestamps(service, m.shape, m.timestamp_format, &mut v);
                body.insert(m.wire_name().to_string(), v);
            }
        }
    }
    if let Value::Object(b) = &mut answer.body {
        b.extend(body);
    }
    answer
}

/// A time in epoch seconds, written in `format`.
fn timestamp(secs: f64, format: TimestampFormat) -> Value {
    let ms = (secs * 1000.0).round() as i64;
    match format {
        TimestampFormat::EpochSeconds => serde_json::Number::from_f64(secs).map_or(Value::Null, Value::Number),
        TimestampFormat::Iso8601 => Value::String(awscore::clock::iso8601(ms)),
        TimestampFormat::HttpDate => Value::String(awscore::clock::http_date(ms)),
    }
}

/// Rewrites the epoch-seconds timestamps inside `value` whose shape (or member) asks for
/// another format; walked with an explicit stack. JSON bodies default to epoch seconds.
fn write_timestamps(service: &Service, id: ShapeId, format: Option<TimestampFormat>, value: &mut Value) {
    if service.protocol == Protocol::Query {
        return;
    }
    let mut stack: Vec<(&mut Value, ShapeId, Option<TimestampFormat>)> = vec![(value, id, format)];
    while let Some((v, id, member_format)) = stack.pop() {
        let shape = service.shape(id);
        match (shape.kind, v) {
            (Kind::Timestamp, v @ Value::Number(_)) => {
                if let Some(format) = member_format.or(shape.timestamp_format).filter(|f| *f != TimestampFormat::EpochSeconds) {
                    *v = timestamp(v.as_f64().unwrap_or(0.0), format);
                }
            }
            (Kind::Structure, Value::Object(m)) => {
                for (k, item) in m.iter_mut() {
                    if let Some(x) = shape.members.iter().find(|x| x.wire_name() == k) {
                        stack.push((item, x.shape, x.timestamp_format));
                    }
                }
            }
            (Kind::List, Value::Array(items)) => {
                if let Some(member) = shape.member {
                    stack.extend(items.iter_mut().map(|item| (item, member, None)));
                }
            }
            (Kind::Map, Value::Object(m)) => {
                if let Some(member) = shape.member {
                    stack.extend(m.iter_mut().map(|(_, item)| (item, member, None)));
                }
            }
            _ => {}
        }
    }
}

/// The most mismatches one check reports.
const MAX_MISMATCHES: usize = 10;

/// The mismatches between `body` and the output shape of `op` (empty: it fits). Members bound
/// to headers or the status code must not be in the body; a payload member is the whole body.
pub fn check(service: &Service, op: &Operation, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(id) = op.output else {
        if body.as_object().is_some_and(|m| !m.is_empty()) {
            out.push(format!("{} has no output, but the answer has members {}", op.name, keys(body)));
        }
        return out;
    };
    let shape = service.shape(id);
    if let Some(payload) = shape.payload.and_then(|p| shape.member(p)) {
        if service.shape(payload.shape).kind == Kind::Structure {
            walk(service, payload.shape, body, payload.name.to_string(), &mut out);
        }
        return out;
    }
    let Value::Object(members) = body else {
        out.push(format!("the answer of {} is not a JSON object", op.name));
        return out;
    };
    for (k, v) in members {
        match shape.members.iter().find(|m| m.wire_name() == k) {
            None => out.push(format!("{k} is not a member of {}", shape.name)),
            Some(m) if m.location != Location::Body => out.push(format!("{k} belongs in the {:?}, not the body", m.location)),
            Some(m) => walk(service, m.shape, v, k.clone(), &mut out),
        }
    }
    out.truncate(MAX_MISMATCHES);
    out
}

fn keys(v: &Value) -> String {
    v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

fn walk(service: &Service, id: ShapeId, value: &Value, path: String, out: &mut Vec<String>) {
    let mut stack = vec![(value, id, path)];
    while let Some((v, id, path)) = stack.pop() {
        if out.len() >= MAX_MISMATCHES {
            return;
        }
        let shape = service.shape(id);
        let fits = match (shape.kind, v) {
            (_, Value::Null) => true,
            (Kind::Structure, Value::Object(m)) => {
                for (k, item) in m {
                    match shape.members.iter().find(|x| x.wire_name() == k) {
                        Some(x) => stack.push((item, x.shape, format!("{path}.{k}"))),
                        None => out.push(format!("{path}.{k} is not a member of {}", shape.name)),
                    }
                }
                true
            }
            (Kind::List, Value::Array(items)) => {
                if let Some(member) = shape.member {
                    stack.extend(items.iter().enumerate().map(|(i, item)| (item, member, format!("{path}[{i}]"))));
                }
                true
            }
            (Kind::Map, Value::Object(m)) => {
                if let Some(member) = shape.member {
                    stack.extend(m.iter().map(|(k, item)| (item, member, format!("{path}.{k}"))));
                }
                true
            }
            (Kind::String | Kind::Blob, Value::String(_)) => true,
            (Kind::Integer | Kind::Long, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Float | Kind::Double, Value::Number(_)) => true,
            (Kind::Boolean, Value::Bool(_)) => true,
            (Kind::Timestamp, Value::Number(_) | Value::String(_)) => true,
            _ => false,
        };
        if !fits {
            let shown: String = v.to_string().chars().take(40).collect();
            out.push(format!("{path} is {shown}, not a {:?} ({})", shape.kind, shape.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::iot;
    use serde_json::json;

    fn run(op: &str, body: Value) -> Vec<String> {
        check(&iot::SERVICE, iot::SERVICE.operation(op).unwrap(), &body)
    }

    #[test]
    fn answers_are_checked_against_the_output_shape() {
        assert!(run("DescribeThing", json!({"thingName": "t", "version": 1, "attributes": {"a": "b"}})).is_empty());
        let bad = run("DescribeThing", json!({"thingName": 1, "versoin": 1, "attributes": {"a": 2}}));
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad.iter().any(|m| m.contains("versoin is not a member of DescribeThingResponse")), "{bad:?}");
        assert!(bad.iter().any(|m| m.contains("attributes.a is 2")), "{bad:?}");
        assert!(run("ListThings", json!({"things": [{"thingName": "t", "version": 1.5}]})).iter().any(|m| m.contains("things[0].version")));
        assert!(!run("DeleteThing", json!({"x": 1})).is_empty() || iot::SERVICE.operation("DeleteThing").unwrap().output.is_some());
    }

    fn lay_out(service: &Service, op: &str, members: Value) -> Answer {
        let Value::Object(m) = members else { unreachable!() };
        serialize(service, service.operation(op).unwrap(), m)
    }

    #[test]
    fn answers_are_laid_out_by_the_model() {
        use crate::generated::{iot1click_devices, lambda};
        // Header and status-code members leave the body.
        let a = lay_out(&lambda::SERVICE, "Invoke", json!({"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST"}));
        assert_eq!(a.status, Some(200));
        let mut h = a.headers.clone();
        h.sort();
        assert_eq!(h, vec![("X-Amz-Executed-Version".to_string(), "$LATEST".to_string()), ("X-Amz-Function-Error".into(), "Unhandled".into())]);
        assert_eq!(a.body, json!({}));
        // Body members take their wire names.
        let a = lay_out(&iot1click_devices::SERVICE, "ListDeviceEvents", json!({"Events": [], "NextToken": "t"}));
        assert_eq!(a.body, json!({"events": [], "nextToken": "t"}));
        assert!(check(&iot1click_devices::SERVICE, iot1click_devices::SERVICE.operation("ListDeviceEvents").unwrap(), &a.body).is_empty());
        // Epoch-seconds timestamps stay numbers in JSON bodies.
        let a = lay_out(&iot::SERVICE, "DescribeThingType", json!({"thingTypeMetadata": {"creationDate": 1481825251.155}}));
        assert_eq!(a.body["thingTypeMetadata"]["creationDate"], json!(1481825251.155));
        assert_eq!(timestamp(1481825251.155, TimestampFormat::Iso8601), json!("2016-12-15T18:07:31.155Z"));
        assert_eq!(timestamp(1481825251.0, TimestampFormat::HttpDate), json!("Thu, 15 Dec 2016 18:07:31 GMT"));
    }
}
