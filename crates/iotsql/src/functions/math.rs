//! Numeric functions: abs, the double-precision functions (trigonometry, logarithms,
//! power, sqrt), bit functions, ceil/floor/round, sign, trunc.

use crate::decimal::IntRounding;
use crate::value::Value;

/// `abs`: Int → Int, Decimal → Decimal, numeric String → Decimal.
pub fn abs(x: &Value) -> Value {
    match x.to_number() {
        Some(Value::Int(i)) => i
            .checked_abs()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Decimal(crate::decimal::Decimal::from_i128(i).abs())),
        Some(Value::Decimal(d)) => Value::Decimal(d.abs()),
        _ => Value::Undefined,
    }
}

/// A function computed in double precision: Int, Decimal or numeric String in, Decimal
/// (double precision) out; NaN and infinities are Undefined.
pub fn double(x: &Value, f: fn(f64) -> f64) -> Value {
    match x.to_f64() {
        Some(v) => Value::from_f64(f(v)),
        None => Value::Undefined,
    }
}

/// A two-argument double-precision function.
pub fn double2(x: &Value, y: &Value, f: fn(f64, f64) -> f64) -> Value {
    match (x.to_f64(), y.to_f64()) {
        (Some(a), Some(b)) => Value::from_f64(f(a, b)),
        _ => Value::Undefined,
    }
}

/// `bitand`, `bitor`, `bitxor`: arguments converted to Int (Decimals and numeric strings
/// rounded down), on 64 bits.
pub fn bits(x: &Value, y: &Value, f: fn(i64, i64) -> i64) -> Value {
    match (int64(x), int64(y)) {
        (Some(a), Some(b)) => Value::Int(f(a, b).into()),
        _ => Value::Undefined,
    }
}

/// `bitnot`: the two's-complement NOT of the Int-converted argument on 64 bits.
pub fn bitnot(x: &Value) -> Value {
    int64(x).map(|a| Value::Int((!a).into())).unwrap_or_default()
}

fn int64(x: &Value) -> Option<i64> {
    x.to_int_down().and_then(|i| i64::try_from(i).ok())
}

/// `ceil`, `floor`, `round`: Int unchanged; Decimal or numeric String rounded to an Int.
pub fn rounding(x: &Value, mode: IntRounding) -> Value {
    match x.to_number() {
        Some(Value::Int(i)) => Value::Int(i),
        Some(Value::Decimal(d)) => d.to_i128(mode).map(Value::Int).unwrap_or_default(),
        _ => Value::Undefined,
    }
}

/// `sign`: -1, 0 or 1 as an Int.
pub fn sign(x: &Value) -> Value {
    match x.to_number() {
        Some(Value::Int(i)) => Value::Int(i.signum()),
        Some(Value::Decimal(d)) => Value::Int(d.signum().into()),
        _ => Value::Undefined,
    }
}

/// `trunc(x, n)`: x truncated to n decimal places (n clamped to 0..=34; a Decimal n is
/// rounded down), trailing zeros stripped. `trunc(Int, Int)` is the Int itself.
pub fn trunc(x: &Value, n: &Value) -> Value {
    let places = match n {
        Value::Int(i) => (*i).clamp(0, 34) as i64,
        Value::Decimal(d) => d.to_i64_saturating(IntRounding::Down).clamp(0, 34),
        _ => return Value::Undefined,
    };
    match x.to_number() {
        Some(Value::Int(i)) => Value::Int(i),
        Some(Value::Decimal(d)) => Value::Decimal(d.trunc_places(places)),
        _ => Value::Undefined,
    }
}
