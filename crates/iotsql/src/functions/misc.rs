//! cast, get, decode/encode (base64) and transform.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use crate::SqlVersion;
use crate::ast::CastType;
use crate::decimal::{Decimal, IntRounding};
use crate::json;
use crate::value::{Object, Value};

/// `cast(v AS type)` per the casting tables: like the standard conversions, plus numbers ↔
/// booleans. Casting to Decimal gives an Int for whole numbers (documented behaviour of
/// 2016-03-23).
pub fn cast(v: &Value, ty: CastType, _version: SqlVersion) -> Value {
    match ty {
        CastType::String => v.to_sql_string().map(Value::String).unwrap_or_default(),
        CastType::Int => match v {
            Value::Bool(b) => Value::Int(i128::from(*b)),
            other => other.to_int_down().map(Value::Int).unwrap_or_default(),
        },
        CastType::Double => {
            let f = match v {
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                other => other.to_f64(),
            };
            f.map(Value::from_f64).unwrap_or_default()
        }
        CastType::Decimal => {
            let d = match v {
                Value::Bool(b) => Some(Decimal::new(if *b { 10 } else { 0 }.into(), 1)),
                other => other.to_decimal(),
            };
            match d {
                Some(d) if d.is_integral() => match d.to_i128(IntRounding::Down) {
                    Some(i) => Value::Int(i),
                    None => Value::Decimal(d),
                },
                Some(d) => Value::Decimal(d),
                None => Value::Undefined,
            }
        }
        CastType::Boolean => match v {
            Value::Int(i) => Value::Bool(*i != 0),
            Value::Decimal(d) => Value::Bool(!d.is_zero()),
            other => other.to_bool().map(Value::Bool).unwrap_or_default(),
        },
    }
}

/// `get(collection, key)`: an array element (key converted to Int), a string's character,
/// or an object's member (key must be a String).
pub fn get(c: &Value, k: &Value) -> Value {
    match c {
        Value::Array(a) => match k.to_int_standard() {
            Some(i) if i >= 0 && (i as u128) < a.len() as u128 => a[i as usize].clone(),
            _ => Value::Undefined,
        },
        Value::String(s) => match k.to_int_standard() {
            Some(i) if i >= 0 => s
                .chars()
                .nth(usize::try_from(i).unwrap_or(usize::MAX))
                .map(|ch| Value::String(ch.to_string()))
                .unwrap_or_default(),
            _ => Value::Undefined,
        },
        Value::Object(o) => match k {
            Value::String(key) => o.get(key).cloned().unwrap_or_default(),
            _ => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}

fn is_base64(scheme: &Value) -> bool {
    matches!(scheme, Value::String(s) if s.eq_ignore_ascii_case("base64"))
}

/// `decode(value, 'base64')`: a JSON document when the decoded text is one, otherwise the
/// text; Null when the value is not valid base64.
pub fn decode(v: &Value, scheme: &Value) -> Value {
    if !is_base64(scheme) {
        return Value::Undefined;
    }
    let Some(text) = v.to_sql_string() else { return Value::Undefined };
    let trimmed = text.trim();
    let bytes = match STANDARD.decode(trimmed).or_else(|_| STANDARD_NO_PAD.decode(trimmed)) {
        Ok(b) => b,
        Err(_) => return Value::Null,
    };
    if let Some(doc) = json::parse(&bytes) {
        return doc;
    }
    Value::String(String::from_utf8_lossy(&bytes).into_owned())
}

/// `encode(value, 'base64')` of an evaluated value: its string form's UTF-8 bytes (a binary
/// payload's own bytes).
pub fn encode(v: &Value, scheme: &Value) -> Value {
    match v {
        Value::Binary(b) => encode_bytes(b, scheme),
        other => match other.to_sql_string() {
            Some(s) => encode_bytes(s.as_bytes(), scheme),
            None => Value::Undefined,
        },
    }
}

/// `encode(*, 'base64')`: the raw payload bytes, whatever their format.
pub fn encode_bytes(raw: &[u8], scheme: &Value) -> Value {
    if !is_base64(scheme) {
        return Value::Undefined;
    }
    Value::String(STANDARD.encode(raw))
}

/// `transform('enrichArray', object, array)`: each element of the array (which must all
/// be objects) with the object's members added.
pub fn transform(mode: &Value, o: &Value, arr: &Value) -> Value {
    let (Value::String(m), Value::Object(extra), Value::Array(items)) = (mode, o, arr) else {
        return Value::Undefined;
    };
    if m != "enrichArray" {
        return Value::Undefined;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(base) = item else { return Value::Undefined };
        let mut merged: Object = base.clone();
        for (k, v) in extra.iter() {
            merged.insert(k.clone(), v.clone());
        }
        out.push(Value::Object(merged));
    }
    Value::Array(out)
}
