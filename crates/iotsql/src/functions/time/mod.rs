//! `parse_time` (Joda-Time patterns) and `time_to_epoch` (java.time patterns), on a
//! proleptic Gregorian calendar, with the zones of [`zones`].

mod format;
mod parse;
mod zones;

use crate::decimal::IntRounding;
use crate::value::Value;

pub use zones::Zone;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO day of week of a day number: 1 = Monday … 7 = Sunday.
pub fn weekday_of_days(days: i64) -> u32 {
    ((days + 3).rem_euclid(7) + 1) as u32
}

/// Whether `y` is a leap year.
pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in a month.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// English month names.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// English day names, Monday first.
pub const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// `parse_time(pattern, millis[, zone])`: formats the instant with a Joda-Time pattern in
/// the zone (default UTC). Undefined for a bad pattern, zone or timestamp.
pub fn parse_time(pattern: &Value, millis: &Value, zone: Option<&Value>) -> Value {
    let Some(pattern) = pattern.to_sql_string() else { return Value::Undefined };
    let ms = match millis {
        Value::Int(i) => i64::try_from(*i).ok(),
        Value::Decimal(_) | Value::String(_) => {
            millis.to_decimal().and_then(|d| d.to_i128(IntRounding::Down)).and_then(|i| i64::try_from(i).ok())
        }
        _ => None,
    };
    let Some(ms) = ms else { return Value::Undefined };
    let zone = match zone {
        None => Zone::UTC,
        Some(z) => match z.to_sql_string().and_then(|id| Zone::from_id(&id)) {
            Some(z) => z,
            None => return Value::Undefined,
        },
    };
    format::format(&pattern, ms, zone).map(Value::String).unwrap_or_default()
}

/// `time_to_epoch(text, pattern)`: milliseconds since the epoch of a timestamp read with a
/// java.time pattern (UTC unless the text names a zone). Undefined when it does not match.
pub fn time_to_epoch(text: &Value, pattern: &Value) -> Value {
    let (Some(text), Some(pattern)) = (text.to_sql_string(), pattern.to_sql_string()) else {
        return Value::Undefined;
    };
    parse::parse(&text, &pattern).map(|ms| Value::Int(ms.into())).unwrap_or_default()
}

/// A pattern token: a run of one letter, or literal text.
#[derive(Clone, Debug, PartialEq)]
pub enum PatTok {
    /// A letter repeated `n` times.
    Field(char, usize),
    /// Text to copy or match.
    Literal(String),
    /// `[` of an optional section (java.time).
    OptStart,
    /// `]` of an optional section.
    OptEnd,
}

/// Splits a pattern: letter runs are fields, `'text'` is literal (`''` is a quote), other
/// characters are literal. `[`/`]` are optional-section marks when `sections` is set.
pub fn tokenize(p: &str, sections: bool) -> Option<Vec<PatTok>> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut lit = String::new();
    let flush = |lit: &mut String, out: &mut Vec<PatTok>| {
        if !lit.is_empty() {
            out.push(PatTok::Literal(std::mem::take(lit)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() {
            flush(&mut lit, &mut out);
            let mut n = 1;
            while i + n < chars.len() && chars[i + n] == c {
                n += 1;
            }
            out.push(PatTok::Field(c, n));
            i += n;
        } else if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return None,
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        lit.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(ch) => {
                        lit.push(*ch);
                        j += 1;
                    }
                }
            }
            i = j + 1;
        } else if sections && (c == '[' || c == ']') {
            flush(&mut lit, &mut out);
            out.push(if c == '[' { PatTok::OptStart } else { PatTok::OptEnd });
            i += 1;
        } else {
            lit.push(c);
            i += 1;
        }
    }
    flush(&mut lit, &mut out);
    Some(out)
}
