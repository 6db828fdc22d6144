//! SQL values (AWS's types: Int, Decimal, Boolean, String, Array, Object, Null, Undefined)
//! and the standard conversions of the data-types page.

use std::sync::Arc;

use crate::decimal::{Decimal, IntRounding};
use crate::json;

/// A value of the rules engine.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Not a value: a missing field, or a function given bad arguments. Never serialized.
    #[default]
    Undefined,
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A discrete integer.
    Int(i128),
    /// A decimal number of 34 digits.
    Decimal(Decimal),
    /// A UTF-8 string.
    String(String),
    /// A JSON array.
    Array(Vec<Value>),
    /// A JSON object, keys in insertion order.
    Object(Object),
    /// A payload that is not JSON, as raw bytes (only `*` can produce it).
    Binary(Arc<[u8]>),
}

/// A JSON object that keeps its keys in order; a key appears once (the last write wins, in
/// the place of the first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object(Vec<(String, Value)>);

impl Object {
    /// An empty object.
    pub fn new() -> Object {
        Object(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, mutable.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` (replacing in place when present).
    pub fn insert(&mut self, key: String, value: Value) {
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends without looking for an existing key (the caller knows it is new).
    pub(crate) fn push_unchecked(&mut self, key: String, value: Value) {
        self.0.push((key, value));
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Object {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

/// The type of a value, as the docs name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `Undefined`.
    Undefined,
    /// `Null`.
    Null,
    /// `Boolean`.
    Boolean,
    /// `Int`.
    Int,
    /// `Decimal`.
    Decimal,
    /// `String`.
    String,
    /// `Array`.
    Array,
    /// `Object`.
    Object,
    /// A non-JSON payload.
    Binary,
}

impl PartialEq for Value {
    /// Structural equality (numbers compared by value, Int 2 equal to Decimal 2.0); used by
    /// tests. SQL's `=` is [`crate::ops`].
    fn eq(&self, other: &Value) -> bool {
        crate::ops::deep_eq(self, other)
    }
}

impl Value {
    /// The type of this value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Undefined => Type::Undefined,
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Boolean,
            Value::Int(_) => Type::Int,
            Value::Decimal(_) => Type::Decimal,
            Value::String(_) => Type::String,
            Value::Array(_) => Type::Array,
            Value::Object(_) => Type::Object,
            Value::Binary(_) => Type::Binary,
        }
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Whether this is `Undefined`.
    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    /// A Decimal from an `f64` result ("Decimal with double precision"); Undefined for NaN
    /// and infinities ("imaginary results are returned as Undefined").
    pub fn from_f64(f: f64) -> Value {
        Decimal::from_f64(f).map(Value::Decimal).unwrap_or(Value::Undefined)
    }

    /// A Decimal result, or Undefined when out of range.
    pub fn from_decimal(d: Option<Decimal>) -> Value {
        d.map(Value::Decimal).unwrap_or(Value::Undefined)
    }

    /// Conversion to Decimal (data-types page): Int and Decimal as they are, strings that
    /// match `^-?\d+(\.\d+)?((?i)E-?\d+)?$` parsed, everything else `None` (Undefined; Null
    /// is reported as `None` too, the callers that care check it first).
    pub fn to_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Int(i) => Some(Decimal::from_i128(*i)),
            Value::Decimal(d) => Some(d.clone()),
            Value::String(s) => Decimal::parse_aws(s),
            _ => None,
        }
    }

    /// Conversion to a number for arithmetic: Int stays Int, Decimal stays Decimal, a
    /// convertible String becomes a Decimal.
    pub fn to_number(&self) -> Option<Value> {
        match self {
            Value::Int(_) | Value::Decimal(_) => Some(self.clone()),
            Value::String(s) => Decimal::parse_aws(s).map(Value::Decimal),
            _ => None,
        }
    }

    /// Conversion to `f64` for the double-precision functions.
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            other => other.to_decimal().map(|d| d.to_f64()),
        }
    }

    /// Conversion to Int as the functions that say "rounded down" do (toward zero);
    /// strings go through Decimal.
    pub fn to_int_down(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            other => other.to_decimal()?.to_i128(IntRounding::Down),
        }
    }

    /// The standard conversion to Int: Decimal rounded to nearest, String parsed as Decimal
    /// and truncated.
    pub fn to_int_standard(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Decimal(d) => d.to_i128(IntRounding::HalfUp),
            Value::String(s) => Decimal::parse_aws(s)?.to_i128(IntRounding::Down),
            _ => None,
        }
    }

    /// Conversion to Boolean (data-types page): Boolean, or the strings "true"/"false" in
    /// any case.
    pub fn to_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    /// Conversion to String (data-types page): numbers in standard (or scientific)
    /// notation, booleans lowercase, arrays and objects serialized to JSON; Null and
    /// Undefined give `None` (Undefined). A binary payload gives its text if it is UTF-8.
    pub fn to_sql_string(&self) -> Option<String> {
        match self {
            Value::Undefined | Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Decimal(d) => Some(d.to_string()),
            Value::String(s) => Some(s.clone()),
            Value::Array(_) | Value::Object(_) => Some(json::to_string(self)),
            Value::Binary(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        }
    }

    /// The value as a string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A member of an object (Undefined for anything else).
    pub fn member(&self, key: &str) -> Value {
        match self {
            Value::Object(o) => o.get(key).cloned().unwrap_or(Value::Undefined),
            _ => Value::Undefined,
        }
    }

    /// Converts from a `serde_json` value (numbers: integers stay Int, others Decimal).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i.into())
                } else if let Some(u) = n.as_u64() {
                    Value::Int(u.into())
                } else {
                    Decimal::parse(&n.to_string()).map(Value::Decimal).unwrap_or(Value::Undefined)
                }
            }
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
            }
        }
    }

    /// Converts to a `serde_json` value; `None` for Undefined (and binary). Decimals beyond
    /// `f64` precision and integers beyond 64 bits are approximated: use
    /// [`crate::json::to_string`] for the exact text.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        Some(match self {
            Value::Undefined | Value::Binary(_) => return None,
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    v.into()
                } else if let Ok(v) = u64::try_from(*i) {
                    v.into()
                } else {
                    serde_json::Number::from_f64(*i as f64).map(serde_json::Value::Number)?
                }
            }
            Value::Decimal(d) => {
                let f = d.to_f64();
                serde_json::Number::from_f64(f).map(serde_json::Value::Number)?
            }
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().filter_map(Value::to_json).collect()),
            Value::Object(o) => {
                serde_json::Value::Object(o.iter().filter_map(|(k, v)| v.to_json().map(|j| (k.clone(), j))).collect())
            }
        })
    }
}
