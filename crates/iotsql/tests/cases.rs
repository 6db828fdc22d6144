//! Data-driven tests: every case of `tests/cases.txt` (statement or expression, message,
//! expected output, parse error with position, or evaluation error).
//!
//! The file is blocks of `key: value` lines separated by blank lines (`#` starts a
//! comment). Keys: `sql` (a statement) or `expr` (evaluated as `SELECT VALUE expr FROM
//! 'a/b'`, parse positions relative to the expression) or `template`; `version`
//! (default 2016-03-23); `topic` (default `a/b`); the payload as `payload` (JSON text, used
//! byte for byte), `payload-text` or `payload-b64` (default `{}`); and one or more
//! expectations: `expect` (JSON, compared strictly: Int is not Decimal, decimals by their
//! digits, object keys in any order), `expect-text` (the exact output bytes), `type`,
//! `undefined` (SELECT VALUE gave Undefined), `none` (WHERE was not true), `bytes-b64`
//! (binary output), `parse-error` (`<position> <text in the message>`), `eval-error` (text
//! in the message).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use iotsql::{Func, Message, Output, Query, SqlVersion, TemplateContext, TestHost, Value, json, substitute_template};

const CASES: &str = include_str!("cases.txt");

struct Case {
    line: usize,
    keys: Vec<(String, String)>,
}

impl Case {
    fn get(&self, k: &str) -> Option<&str> {
        self.keys.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut cur: Option<Case> = None;
    for (n, line) in CASES.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed.starts_with('#') {
            continue;
        }
        if trimmed.is_empty() {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            continue;
        }
        let (k, v) = match trimmed.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
            None => panic!("line {}: expected `key: value`", n + 1),
        };
        cur.get_or_insert_with(|| Case { line: n + 1, keys: Vec::new() }).keys.push((k, v));
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// Equality that tells Int from Decimal and compares decimals digit for digit.
fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Decimal(x), Value::Decimal(y)) => x.to_string() == y.to_string(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) | (Value::Undefined, Value::Undefined) => true,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| strict_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| strict_eq(v, w)))
        }
        _ => false,
    }
}

fn host(case: &Case) -> TestHost {
    let mut h = TestHost::with_topic(case.get("topic").unwrap_or("a/b"));
    let doc = |s: &str| json::parse(s.as_bytes()).expect("shadow JSON");
    h.shadows = vec![
        ("MyThing".to_string(), Some("MyThingShadow".to_string()), doc(r#"{"state":{"reported":{"alarm":"ON"}}}"#)),
        ("MyThing".to_string(), None, doc(r#"{"state":{"reported":{"alarm":"OFF"}}}"#)),
    ];
    h
}

fn payload(case: &Case) -> Vec<u8> {
    if let Some(p) = case.get("payload") {
        p.as_bytes().to_vec()
    } else if let Some(t) = case.get("payload-text") {
        t.as_bytes().to_vec()
    } else if let Some(b) = case.get("payload-b64") {
        STANDARD.decode(b).expect("payload-b64")
    } else {
        b"{}".to_vec()
    }
}

/// Runs one case; Err describes the mismatch.
fn run(case: &Case) -> Result<(), String> {
    let version = match case.get("version") {
        Some(v) => SqlVersion::parse(v).ok_or_else(|| format!("bad version {v}"))?,
        None => SqlVersion::V2016_03_23,
    };
    let h = host(case);
    let payload = payload(case);
    if let Some(t) = case.get("template") {
        let msg = Message::new(&payload);
        let ctx = TemplateContext { message: &msg, host: &h, version, variables: None };
        let got = substitute_template(t, &ctx);
        return match (got, case.get("expect-text"), case.get("parse-error"), case.get("eval-error")) {
            (Ok(s), Some(want), _, _) if s == want => Ok(()),
            (Err(iotsql::TemplateError::Parse(e)), _, Some(want), _) => check_parse_error(&e, want, 0),
            (Err(iotsql::TemplateError::Eval(e)), _, _, Some(want)) if e.to_string().contains(want) => Ok(()),
            (got, ..) => Err(format!("template gave {got:?}")),
        };
    }
    let (sql, offset) = match (case.get("sql"), case.get("expr")) {
        (Some(s), _) => (s.to_string(), 0),
        (None, Some(e)) => (format!("SELECT VALUE {e} FROM 'a/b'"), "SELECT VALUE ".len()),
        _ => return Err("case has no sql, expr or template".to_string()),
    };
    let q = match Query::parse(&sql, version) {
        Ok(q) => q,
        Err(e) => {
            return match case.get("parse-error") {
                Some(want) => check_parse_error(&e, want, offset),
                None => Err(format!("unexpected parse error: {e}")),
            };
        }
    };
    if case.get("parse-error").is_some() {
        return Err("parsed, but a parse error was expected".to_string());
    }
    let out = match q.evaluate(&payload, &h) {
        Ok(o) => o,
        Err(e) => {
            return match case.get("eval-error") {
                Some(want) if e.to_string().contains(want) => Ok(()),
                _ => Err(format!("unexpected evaluation error: {e}")),
            };
        }
    };
    if let Some(want) = case.get("eval-error") {
        return Err(format!("expected evaluation error '{want}', got {out:?}"));
    }
    let Some(out) = out else {
        return if case.get("none").is_some() { Ok(()) } else { Err("WHERE was not true".to_string()) };
    };
    if case.get("none").is_some() {
        return Err(format!("expected no output, got {out:?}"));
    }
    let text = String::from_utf8_lossy(&out.to_bytes()).into_owned();
    if let Some(want) = case.get("expect") {
        let want_v = json::parse(want.as_bytes()).ok_or_else(|| format!("bad expect JSON {want}"))?;
        match out.value() {
            Some(v) if strict_eq(v, &want_v) => {}
            _ => return Err(format!("expected {want}, got {text}")),
        }
    }
    if let Some(want) = case.get("expect-text")
        && text != want {
            return Err(format!("expected text {want}, got {text}"));
        }
    if let Some(want) = case.get("type") {
        let got = out.value().map(|v| format!("{:?}", v.type_of())).unwrap_or_default();
        if got != want {
            return Err(format!("expected type {want}, got {got} ({text})"));
        }
    }
    if case.get("undefined").is_some() && !matches!(out, Output::Value(Value::Undefined)) {
        return Err(format!("expected Undefined, got {text}"));
    }
    if let Some(want) = case.get("bytes-b64") {
        match &out {
            Output::Binary(b) if STANDARD.encode(b) == want => {}
            _ => return Err(format!("expected binary {want}, got {out:?}")),
        }
    }
    let checked = ["expect", "expect-text", "type", "undefined", "bytes-b64"];
    if !checked.iter().any(|k| case.get(k).is_some()) {
        return Err("case checks nothing".to_string());
    }
    Ok(())
}

fn check_parse_error(e: &iotsql::SqlParseError, want: &str, offset: usize) -> Result<(), String> {
    let (pos, text) = want.split_once(' ').unwrap_or((want, ""));
    let pos: usize = pos.parse().map_err(|_| format!("bad parse-error position {pos}"))?;
    if e.position.checked_sub(offset) == Some(pos) && e.message.contains(text) {
        Ok(())
    } else {
        Err(format!(
            "expected parse error at {pos} containing '{text}', got at {}: {}",
            e.position - offset.min(e.position),
            e.message
        ))
    }
}

#[test]
fn fixture_cases() {
    let all = cases();
    let mut failures = Vec::new();
    for c in &all {
        if let Err(e) = run(c) {
            let what = c.get("sql").or(c.get("expr")).or(c.get("template")).unwrap_or("?");
            failures.push(format!("line {}: {what}\n    {e}", c.line));
        }
    }
    println!("{} fixture cases", all.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), all.len(), failures.join("\n"));
}

#[test]
fn every_function_has_a_case() {
    let lower = CASES.to_ascii_lowercase();
    let missing: Vec<&str> = Func::all().map(|(n, _)| n).filter(|n| !lower.contains(&format!("{n}("))).collect();
    assert!(missing.is_empty(), "functions without a fixture case: {missing:?}");
    for op in [
        " and ", " or ", "not ", " = ", " <> ", " != ", " < ", " <= ", " > ", " >= ", " + ", " - ", " * ", " / ", " % ",
    ] {
        assert!(lower.contains(op), "operator {op} has no fixture case");
    }
}
