//! String functions: chr, concat, endswith/startswith, indexof, length, numbytes,
//! lower/upper, the trims and pads, replace, substring and the regexp functions.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::Regex;

use crate::decimal::IntRounding;
use crate::value::Value;

/// Applies `f` to the argument's string form (standard conversion; Null and Undefined give
/// Undefined).
pub fn map(s: &Value, f: impl FnOnce(&str) -> Value) -> Value {
    match s.to_sql_string() {
        Some(s) => f(&s),
        None => Value::Undefined,
    }
}

/// Applies `f` to both arguments' string forms; Undefined if either has none.
pub fn both(a: &Value, b: &Value, f: impl FnOnce(&str, &str) -> Value) -> Value {
    match (a.to_sql_string(), b.to_sql_string()) {
        (Some(a), Some(b)) => f(&a, &b),
        _ => Value::Undefined,
    }
}

/// `indexof`: the character index of the first occurrence, or -1.
pub fn index_of(s: &str, t: &str) -> Value {
    Value::Int(match s.find(t) {
        Some(byte) => s[..byte].chars().count() as i128,
        None => -1,
    })
}

/// `chr`: the ASCII character of an Int (Decimals and numeric strings rounded down).
pub fn chr(x: &Value) -> Value {
    match x {
        Value::Int(_) | Value::Decimal(_) | Value::String(_) => match x.to_int_down() {
            Some(n) if (0..=127).contains(&n) => Value::String(char::from(n as u8).to_string()),
            _ => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}

/// `concat`: none → Undefined; one → itself; with an Array among them → one array of all
/// (arrays spliced in); otherwise the concatenation of the string forms.
pub fn concat(args: &[Value]) -> Value {
    match args {
        [] => Value::Undefined,
        [one] => one.clone(),
        _ if args.iter().any(|a| matches!(a, Value::Array(_))) => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::Array(items) => out.extend(items.iter().cloned()),
                    Value::Undefined => return Value::Undefined,
                    other => out.push(other.clone()),
                }
            }
            Value::Array(out)
        }
        _ => {
            let mut out = String::new();
            for a in args {
                match a.to_sql_string() {
                    Some(s) => out.push_str(&s),
                    None => return Value::Undefined,
                }
            }
            Value::String(out)
        }
    }
}

/// `lpad` / `rpad`: the string form padded with spaces; the count (Int, Decimal or numeric
/// String, rounded down) is clamped to 0..=1000.
pub fn pad(s: &Value, n: &Value, left: bool) -> Value {
    let count = match n {
        Value::Int(_) | Value::Decimal(_) | Value::String(_) => match n.to_decimal() {
            Some(d) => d.to_i64_saturating(IntRounding::Down).clamp(0, 1000) as usize,
            None => return Value::Undefined,
        },
        _ => return Value::Undefined,
    };
    map(s, |s| {
        let spaces = " ".repeat(count);
        Value::String(if left { format!("{spaces}{s}") } else { format!("{s}{spaces}") })
    })
}

/// `replace`: every occurrence of the second argument replaced by the third (all three in
/// string form).
pub fn replace(s: &Value, from: &Value, to: &Value) -> Value {
    match (s.to_sql_string(), from.to_sql_string(), to.to_sql_string()) {
        (Some(s), Some(f), Some(t)) => Value::String(s.replace(&f, &t)),
        _ => Value::Undefined,
    }
}

/// `substring(s, start[, end])`: 0-based character indices, clamped to the string, end
/// exclusive; start ≥ end gives "". Indices are converted to Int (rounded down).
pub fn substring(s: &Value, start: &Value, end: Option<&Value>) -> Value {
    let idx = |v: &Value| -> Option<i64> {
        match v {
            Value::Int(i) => Some((*i).clamp(i64::MIN as i128, i64::MAX as i128) as i64),
            other => other.to_decimal().map(|d| d.to_i64_saturating(IntRounding::Down)),
        }
    };
    let Some(s) = s.to_sql_string() else { return Value::Undefined };
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    let Some(a) = idx(start) else { return Value::Undefined };
    let b = match end {
        Some(e) => match idx(e) {
            Some(b) => b,
            None => return Value::Undefined,
        },
        None => len,
    };
    let a = a.clamp(0, len) as usize;
    let b = b.clamp(0, len) as usize;
    if a >= b {
        return Value::string("");
    }
    Value::String(chars[a..b].iter().collect())
}

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// Compiles (or fetches from a small per-thread cache) a regular expression; None when it
/// is not valid.
fn regex(pattern: &str) -> Option<Regex> {
    REGEX_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(r) = c.get(pattern) {
            return r.clone();
        }
        if c.len() >= 128 {
            c.clear();
        }
        let r = regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().ok();
        c.insert(pattern.to_string(), r.clone());
        r
    })
}

/// `regexp_matches`: whether the string contains a match.
pub fn regexp_matches(s: &Value, re: &Value) -> Value {
    both(s, re, |s, re| match regex(re) {
        Some(r) => Value::Bool(r.is_match(s)),
        None => Value::Undefined,
    })
}

/// `regexp_substr`: the first match ("" when there is none).
pub fn regexp_substr(s: &Value, re: &Value) -> Value {
    both(s, re, |s, re| match regex(re) {
        Some(r) => Value::string(r.find(s).map(|m| m.as_str()).unwrap_or("")),
        None => Value::Undefined,
    })
}

/// `regexp_replace`: every match replaced; the replacement uses Java's syntax (`$1`,
/// `${name}`, `\$` for a literal dollar).
pub fn regexp_replace(s: &Value, re: &Value, rep: &Value) -> Value {
    let (Some(s), Some(re), Some(rep)) = (s.to_sql_string(), re.to_sql_string(), rep.to_sql_string()) else {
        return Value::Undefined;
    };
    let Some(r) = regex(&re) else { return Value::Undefined };
    match java_replacement(&rep, r.captures_len() - 1) {
        Some(rust_rep) => Value::String(r.replace_all(&s, rust_rep.as_str()).into_owned()),
        None => Value::Undefined,
    }
}

/// Translates a Java replacement string into the regex crate's syntax; None when Java
/// would reject it (a dangling `$` or `\`, a group that does not exist).
fn java_replacement(rep: &str, groups: usize) -> Option<String> {
    let chars: Vec<char> = rep.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = *chars.get(i + 1)?;
                if c == '$' {
                    out.push_str("$$");
                } else {
                    out.push(c);
                }
                i += 2;
            }
            '$' => {
                let next = *chars.get(i + 1)?;
                if next == '{' {
                    let close = chars[i + 2..].iter().position(|c| *c == '}')? + i + 2;
                    let name: String = chars[i + 2..close].iter().collect();
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return None;
                    }
                    out.push_str(&format!("${{{name}}}"));
                    i = close + 1;
                } else if let Some(d) = next.to_digit(10) {
                    let mut n = d as usize;
                    i += 2;
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let m = n * 10 + d as usize;
                        if m > groups {
                            break;
                        }
                        n = m;
                        i += 1;
                    }
                    if n > groups {
                        return None;
                    }
                    out.push_str(&format!("${{{n}}}"));
                } else {
                    return None;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}
