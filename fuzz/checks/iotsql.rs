//! The checks of the `iotsql` fuzz target, shared with its corpus replay test (`#[path]`-included by
//! both): arbitrary bytes as an AWS IoT SQL statement (each SQL version), an expression
//! and a substitution template, evaluated against fixed JSON and binary payloads, and as a JSON
//! payload; none may panic, and JSON the engine prints must read back to the same text.

use iotsql::{Message, Query, SqlVersion, Template, TemplateContext, TestHost, Value, json, parse_expression, substitute_template};


const VERSIONS: [SqlVersion; 3] = [SqlVersion::V2015_10_08, SqlVersion::V2016_03_23, SqlVersion::Beta];

/// The payloads every statement is evaluated against: a JSON object and bytes that are not JSON.
const PAYLOADS: [&[u8]; 2] = [br#"{"x":1,"a":[1,2],"s":"t"}"#, b"\xff\x00\x01binary"];

pub fn check(data: &[u8]) {
    check_json(data);
    let src = String::from_utf8_lossy(data);
    for version in VERSIONS {
        let _ = parse_expression(&src, version);
        if let Ok(query) = Query::parse(&src, version) {
            let _ = (query.topic_filter(), query.version(), query.statement());
            for payload in PAYLOADS {
                evaluate(&query, payload);
            }
            evaluate(&query, data);
        }
        for payload in PAYLOADS {
            let msg = Message::new(payload);
            let host = TestHost::default();
            let ctx = TemplateContext { message: &msg, host: &host, version, variables: None };
            let _ = substitute_template(&src, &ctx);
            if let Ok(t) = Template::parse(&src, version) {
                let _ = t.render(&ctx);
            }
        }
    }
}

/// Evaluates a statement on one payload, then renders the statement's text as a template
/// with the variables its SET clause gave.
fn evaluate(query: &Query, payload: &[u8]) {
    let host = TestHost::default();
    if let Ok(Some(out)) = query.evaluate(payload, &host) {
        let bytes = out.to_bytes();
        let _ = (out.to_json(), out.value());
        if let Some(v) = out.value()
            && !v.is_undefined()
            && depth(v) <= json::MAX_DEPTH
        {
            // A value output is JSON the engine reads back.
            assert!(json::parse(&bytes).is_some(), "output {:?} does not parse", String::from_utf8_lossy(&bytes));
        }
    }
    let msg = Message::new(payload);
    let _ = (msg.raw(), msg.document(), msg.is_binary());
    if let Ok(Some(ev)) = query.evaluate_message(&msg, &host) {
        let ctx = TemplateContext { message: &msg, host: &host, version: query.version(), variables: Some(&ev.variables) };
        let _ = substitute_template("${*}/${topic()}", &ctx);
    }
}

/// How deeply arrays and objects nest in `v` (a scalar is 0), without recursion.
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|e| (e, d + 1))),
            Value::Object(o) => stack.extend(o.iter().map(|(_, e)| (e, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// The bytes as a JSON payload: what the engine prints of what it read reads back, and prints
/// the same again.
fn check_json(data: &[u8]) {
    let msg = Message::new(data);
    let _ = msg.is_binary();
    if let Some(v) = json::parse(data) {
        let text = json::to_string(&v);
        let again = json::parse(text.as_bytes()).unwrap_or_else(|| panic!("printed JSON {text:?} does not parse"));
        assert_eq!(json::to_string(&again), text, "JSON printed twice differs");
    }
}
