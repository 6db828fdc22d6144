//! Checking an answer against the operation's output shape: every member a handler put in the
//! JSON body is a body member of the output shape with the right type (strings, numbers,
//! booleans, lists, maps, structures; timestamps as numbers or strings), walked with an
//! explicit stack. The API runs it on every answer in debug builds and tests, so a hand-built
//! output cannot drift from what boto3 parses without a test failing.

use crate::{Kind, Location, Operation, Service, ShapeId};
use serde_json::Value;

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
}
