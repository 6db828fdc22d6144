//! The operators, each following its table on the operators page.

use std::cmp::Ordering;

use crate::ast::BinOp;
use crate::decimal::Decimal;
use crate::value::Value;

/// Applies a binary operator to two evaluated operands.
pub fn binary(op: BinOp, l: &Value, r: &Value) -> Value {
    match op {
        BinOp::And => logic(l, r, |a, b| a && b),
        BinOp::Or => logic(l, r, |a, b| a || b),
        BinOp::Eq => sql_eq(l, r).map(Value::Bool).unwrap_or_default(),
        BinOp::Ne => sql_eq(l, r).map(|b| Value::Bool(!b)).unwrap_or_default(),
        BinOp::Lt => compare(l, r, |o| o == Ordering::Less),
        BinOp::Le => compare(l, r, |o| o != Ordering::Greater),
        BinOp::Gt => compare(l, r, |o| o == Ordering::Greater),
        BinOp::Ge => compare(l, r, |o| o != Ordering::Less),
        BinOp::Add => add(l, r),
        BinOp::Sub => arith(l, r, i128::checked_sub, |a, b| a.sub(b)),
        BinOp::Mul => arith(l, r, i128::checked_mul, |a, b| a.mul(b)),
        BinOp::Div => arith(l, r, int_div, |a, b| a.div(b)),
        BinOp::Rem => arith(l, r, int_rem, |a, b| a.rem(b)),
    }
}

/// `NOT`: Boolean, or a "true"/"false" string (any case); anything else is Undefined.
pub fn not(v: &Value) -> Value {
    v.to_bool().map(|b| Value::Bool(!b)).unwrap_or_default()
}

/// Unary minus: Int stays Int, Decimal stays Decimal, a numeric String becomes Decimal.
pub fn neg(v: &Value) -> Value {
    match v.to_number() {
        Some(Value::Int(i)) => match i.checked_neg() {
            Some(n) => Value::Int(n),
            None => Value::from_decimal(Some(Decimal::from_i128(i).neg())),
        },
        Some(Value::Decimal(d)) => Value::Decimal(d.neg()),
        _ => Value::Undefined,
    }
}

fn logic(l: &Value, r: &Value, f: fn(bool, bool) -> bool) -> Value {
    match (l.to_bool(), r.to_bool()) {
        (Some(a), Some(b)) => Value::Bool(f(a, b)),
        _ => Value::Undefined,
    }
}

/// `=`: Undefined on either side gives Undefined (`None`); numbers compare by value (Int
/// converted to Decimal); strings, booleans, arrays (in order) and objects (any key order)
/// compare by content; Null equals Null; mismatched types are not equal.
pub fn sql_eq(l: &Value, r: &Value) -> Option<bool> {
    if l.is_undefined() || r.is_undefined() {
        return None;
    }
    Some(deep_eq(l, r))
}

/// Structural equality under the `=` rules (no Undefined handling).
pub fn deep_eq(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Int(_) | Value::Decimal(_), Value::Int(_) | Value::Decimal(_)) => {
            match (l.to_decimal(), r.to_decimal()) {
                (Some(a), Some(b)) => a.cmp_num(&b) == Ordering::Equal,
                _ => false,
            }
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Binary(a), Value::Binary(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| deep_eq(x, y)),
        (Value::Object(a), Value::Object(b)) => {
            let present = |o: &crate::value::Object| o.iter().filter(|(_, v)| !v.is_undefined()).count();
            present(a) == present(b)
                && a.iter().filter(|(_, v)| !v.is_undefined()).all(|(k, v)| b.get(k).is_some_and(|w| deep_eq(v, w)))
        }
        _ => false,
    }
}

/// `< <= > >=`: both sides converted to Decimal (Int, Decimal, or a numeric String);
/// anything else is Undefined.
fn compare(l: &Value, r: &Value, f: fn(Ordering) -> bool) -> Value {
    if let (Value::Int(a), Value::Int(b)) = (l, r) {
        return Value::Bool(f(a.cmp(b)));
    }
    match (l.to_decimal(), r.to_decimal()) {
        (Some(a), Some(b)) => Value::Bool(f(a.cmp_num(&b))),
        _ => Value::Undefined,
    }
}

/// `+`: a String on either side concatenates the other side's string form; Int + Int is
/// Int; Int/Decimal mixes are Decimal; anything else is Undefined.
fn add(l: &Value, r: &Value) -> Value {
    if let Value::String(a) = l {
        return match r.to_sql_string() {
            Some(b) => Value::String(format!("{a}{b}")),
            None => Value::Undefined,
        };
    }
    if let Value::String(b) = r {
        return match l.to_sql_string() {
            Some(a) => Value::String(format!("{a}{b}")),
            None => Value::Undefined,
        };
    }
    arith(l, r, i128::checked_add, |a, b| a.add(b))
}

fn int_div(a: i128, b: i128) -> Option<i128> {
    a.checked_div(b)
}

fn int_rem(a: i128, b: i128) -> Option<i128> {
    a.checked_rem(b)
}

/// `- * / %` (and numeric `+`): Int op Int is Int (Decimal if it overflows); a Decimal
/// operand or a numeric String makes it Decimal; anything else is Undefined, and so is a
/// division by zero.
fn arith(
    l: &Value,
    r: &Value,
    int: fn(i128, i128) -> Option<i128>,
    dec: fn(&Decimal, &Decimal) -> Option<Decimal>,
) -> Value {
    match (l.to_number(), r.to_number()) {
        (Some(Value::Int(a)), Some(Value::Int(b))) => match int(a, b) {
            Some(v) => Value::Int(v),
            None if b == 0 => Value::Undefined,
            None => Value::from_decimal(dec(&Decimal::from_i128(a), &Decimal::from_i128(b))),
        },
        (Some(a), Some(b)) => match (a.to_decimal(), b.to_decimal()) {
            (Some(x), Some(y)) => Value::from_decimal(dec(&x, &y)),
            _ => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}
