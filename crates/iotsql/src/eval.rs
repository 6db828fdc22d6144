//! Evaluation of expressions and SELECT clauses against a document.

use crate::SqlVersion;
use crate::ast::{Expr, Select, SelectItem, Subquery};
use crate::error::EvalError;
use crate::functions;
use crate::host::Host;
use crate::ops;
use crate::value::{Object, Value};

/// Values bound by a statement's SET clause, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables(Vec<(String, Value)>);

impl Variables {
    /// No variables.
    pub fn new() -> Variables {
        Variables(Vec::new())
    }

    /// The value of `@name` (Undefined when not set).
    pub fn get(&self, name: &str) -> Value {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// Binds `@name`.
    pub fn set(&mut self, name: String, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The bindings in order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// What an evaluation can see besides the current document.
pub(crate) struct Env<'a> {
    pub host: &'a dyn Host,
    pub version: SqlVersion,
    pub vars: &'a Variables,
    /// The raw payload, while evaluating at the top level (for `encode(*, ...)`).
    pub raw: Option<&'a [u8]>,
}

/// Evaluates `e` with `doc` as the current document (`*`).
pub(crate) fn eval(e: &Expr, doc: &Value, env: &Env) -> Result<Value, EvalError> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Star => doc.clone(),
        Expr::Field(name) => field(doc, name)?,
        Expr::Var(name) => env.vars.get(name),
        Expr::Member(base, name) => eval(base, doc, env)?.member(name),
        Expr::Index(base, idx) => {
            let b = eval(base, doc, env)?;
            let i = eval(idx, doc, env)?;
            index(&b, &i)
        }
        Expr::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                let v = eval(it, doc, env)?;
                if !v.is_undefined() {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        Expr::Object(members) => {
            let mut o = Object::new();
            for (k, it) in members {
                let v = eval(it, doc, env)?;
                if !v.is_undefined() {
                    o.insert(k.clone(), v);
                }
            }
            Value::Object(o)
        }
        Expr::Not(x) => ops::not(&eval(x, doc, env)?),
        Expr::Neg(x) => ops::neg(&eval(x, doc, env)?),
        Expr::Chain(first, rest) => {
            let mut acc = eval(first, doc, env)?;
            for (op, r) in rest {
                let r = eval(r, doc, env)?;
                acc = ops::binary(*op, &acc, &r);
            }
            acc
        }
        Expr::Case { operand, arms, default } => case(operand.as_deref(), arms, default.as_deref(), doc, env)?,
        Expr::Cast(x, ty) => functions::cast(&eval(x, doc, env)?, *ty, env.version),
        Expr::Call(f, args) => functions::call(*f, args, doc, env)?,
        Expr::Subquery(q) => subquery(q, doc, env)?,
    })
}

/// A top-level field of the document; asking a binary payload for a JSON name is an error.
fn field(doc: &Value, name: &str) -> Result<Value, EvalError> {
    match doc {
        Value::Binary(_) => Err(EvalError::BinaryPayload(format!(
            "the payload is not JSON, so the statement cannot refer to the field '{name}'"
        ))),
        other => Ok(other.member(name)),
    }
}

/// `base[i]`: an array element (index converted to Int; out of range is Undefined), or an
/// object member when the index is a string.
fn index(base: &Value, i: &Value) -> Value {
    match (base, i) {
        (Value::Array(a), _) => match i.to_int_standard() {
            Some(n) if n >= 0 && (n as u128) < a.len() as u128 => a[n as usize].clone(),
            _ => Value::Undefined,
        },
        (Value::Object(o), Value::String(k)) => o.get(k).cloned().unwrap_or_default(),
        _ => Value::Undefined,
    }
}

fn case(
    operand: Option<&Expr>,
    arms: &[(Expr, Expr)],
    default: Option<&Expr>,
    doc: &Value,
    env: &Env,
) -> Result<Value, EvalError> {
    match operand {
        Some(op) => {
            let v = eval(op, doc, env)?;
            if v.is_undefined() {
                return Ok(Value::Undefined);
            }
            for (w, t) in arms {
                let wv = eval(w, doc, env)?;
                if ops::sql_eq(&v, &wv) == Some(true) {
                    return eval(t, doc, env);
                }
            }
        }
        None => {
            for (w, t) in arms {
                if matches!(eval(w, doc, env)?, Value::Bool(true)) {
                    return eval(t, doc, env);
                }
            }
        }
    }
    match default {
        Some(d) => eval(d, doc, env),
        None => Ok(Value::Undefined),
    }
}

/// A nested query: over an array, one result per element that passes WHERE (Undefined
/// results left out); over an object, one result (Undefined when WHERE fails).
fn subquery(q: &Subquery, doc: &Value, env: &Env) -> Result<Value, EvalError> {
    let source = eval(&q.from, doc, env)?;
    let inner = Env { host: env.host, version: env.version, vars: env.vars, raw: None };
    let one = |elem: &Value| -> Result<Value, EvalError> {
        if let Some(w) = &q.where_
            && !matches!(eval(w, elem, &inner)?, Value::Bool(true)) {
                return Ok(Value::Undefined);
            }
        select(&q.select, elem, &inner)
    };
    match &source {
        Value::Array(items) => {
            let mut out = Vec::new();
            for elem in items {
                let v = one(elem)?;
                if !v.is_undefined() {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        Value::Object(_) => one(&source),
        _ => Ok(Value::Undefined),
    }
}

/// Evaluates a SELECT clause: `VALUE e` gives the value, a list gives an object (a lone
/// `*` over a non-object document gives the document itself).
pub(crate) fn select(sel: &Select, doc: &Value, env: &Env) -> Result<Value, EvalError> {
    let items = match sel {
        Select::Value(e) => return eval(e, doc, env),
        Select::Items(items) => items,
    };
    if let [SelectItem::Star] = items.as_slice() {
        return Ok(doc.clone());
    }
    let mut out = Object::new();
    for item in items {
        match item {
            SelectItem::Star => {
                if let Value::Object(o) = doc {
                    for (k, v) in o.iter() {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            SelectItem::Expr { expr, name } => {
                let v = eval(expr, doc, env)?;
                if !v.is_undefined() {
                    insert_path(&mut out, name, v);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Sets `path` (an alias such as `bar.baz`) in `o`, creating the objects on the way.
fn insert_path(o: &mut Object, path: &[String], v: Value) {
    match path {
        [] => {}
        [last] => o.insert(last.clone(), v),
        [first, rest @ ..] => {
            if !matches!(o.get(first), Some(Value::Object(_))) {
                o.insert(first.clone(), Value::Object(Object::new()));
            }
            if let Some(Value::Object(inner)) = o.get_mut(first) {
                insert_path(inner, rest, v);
            }
        }
    }
}
