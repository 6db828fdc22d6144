//! Reading a timestamp with a java.time `DateTimeFormatter` pattern (`time_to_epoch`).
//!
//! Letters: `G` era, `u`/`y`/`Y` year (`yy`: 2000-2099), `M`/`L` month (number, `MMM`,
//! `MMMM`), `d`, `D` day of year, `E`/`e`/`c` day of week (read and ignored), `a` AM/PM,
//! `H`, `k`, `K`, `h`, `m`, `s`, `S` fraction, `n` nanoseconds, `z`/`V` zone id or name,
//! `O` localized offset (`GMT+8`), `X`/`x`/`Z` offsets; `[...]` optional sections. Text
//! is matched without regard to case. Missing date fields default to 1970-01-01, missing
//! time fields to 0, a missing zone to UTC.

use super::zones::{Zone, parse_offset};
use super::{DAYS, MONTHS, PatTok, days_from_civil, days_in_month, tokenize};

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    bc: bool,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: u32,
    second: u32,
    nanos: u32,
    zone: Option<Zone>,
}

struct Reader<'a> {
    s: &'a [char],
    i: usize,
}

impl Reader<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        while self.i < self.s.len() && self.i - start < max && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            self.i = start;
            return None;
        }
        self.s[start..self.i].iter().collect::<String>().parse().ok()
    }

    fn word(&mut self, options: &[&str]) -> Option<usize> {
        let rest: String = self.s[self.i..].iter().collect();
        let mut best: Option<(usize, usize)> = None;
        for (idx, opt) in options.iter().enumerate() {
            let n = opt.chars().count();
            if rest.chars().count() >= n {
                let head: String = rest.chars().take(n).collect();
                if head.eq_ignore_ascii_case(opt) && best.is_none_or(|(_, m)| n > m) {
                    best = Some((idx, n));
                }
            }
        }
        let (idx, n) = best?;
        self.i += n;
        Some(idx)
    }

    fn zone_word(&mut self) -> Option<Zone> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], '/' | '_' | '+' | '-' | ':'))
        {
            self.i += 1;
        }
        let word: String = self.s[start..self.i].iter().collect();
        let z = Zone::from_name(&word);
        if z.is_none() {
            self.i = start;
        }
        z
    }

    fn offset(&mut self, allow_z: bool) -> Option<i32> {
        if allow_z && self.s.get(self.i).is_some_and(|c| *c == 'Z' || *c == 'z') {
            self.i += 1;
            return Some(0);
        }
        let start = self.i;
        if !matches!(self.s.get(self.i), Some('+' | '-')) {
            return None;
        }
        self.i += 1;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || self.s[self.i] == ':') {
            self.i += 1;
        }
        let text: String = self.s[start..self.i].iter().collect();
        let v = parse_offset(&text);
        if v.is_none() {
            self.i = start;
        }
        v
    }
}

fn is_numeric_field(t: Option<&PatTok>) -> bool {
    matches!(t, Some(PatTok::Field(c, n)) if "uyYdDHhKkmsSn".contains(*c) || (*c == 'M' && *n <= 2))
}

/// Reads the tokens from `start`; returns the index after the last consumed token (an
/// `OptEnd` or the end) or None on a mismatch.
fn run(toks: &[PatTok], mut t: usize, r: &mut Reader, f: &mut Fields) -> Option<usize> {
    while t < toks.len() {
        let next = toks.get(t + 1);
        match &toks[t] {
            PatTok::OptEnd => return Some(t),
            PatTok::OptStart => {
                let (save_i, save_fields) = (r.i, snapshot(f));
                let end = match run(toks, t + 1, r, f) {
                    Some(e) => e,
                    None => {
                        r.i = save_i;
                        restore(f, save_fields);
                        skip_section(toks, t + 1)
                    }
                };
                t = end + 1;
                continue;
            }
            PatTok::Literal(l) => {
                for c in l.chars() {
                    if r.s.get(r.i) != Some(&c) {
                        return None;
                    }
                    r.i += 1;
                }
            }
            PatTok::Field(c, n) => {
                let n = *n;
                let fixed = |n: usize| if n >= 2 { (n, n) } else { (1, 2) };
                match c {
                    'u' | 'y' | 'Y' => {
                        let v = if n == 2 {
                            2000 + r.digits(2, 2)?
                        } else if is_numeric_field(next) {
                            r.digits(n.max(4), n.max(4))?
                        } else {
                            let neg = r.s.get(r.i) == Some(&'-');
                            if neg {
                                r.i += 1;
                            }
                            let v = r.digits(n, 10)?;
                            if neg { -v } else { v }
                        };
                        f.year = Some(v);
                    }
                    'G' => f.bc = r.word(&["BC", "AD", "Before Christ", "Anno Domini"])? % 2 == 0,
                    'M' | 'L' => {
                        f.month = Some(match n {
                            1 | 2 => {
                                let (a, b) = fixed(n);
                                r.digits(a, b)? as u32
                            }
                            3 => {
                                let short: Vec<&str> = MONTHS.iter().map(|m| &m[..3]).collect();
                                r.word(&short)? as u32 + 1
                            }
                            _ => r.word(&MONTHS)? as u32 + 1,
                        })
                    }
                    'd' => {
                        let (a, b) = fixed(n);
                        f.day = Some(r.digits(a, b)? as u32);
                    }
                    'D' => f.day_of_year = Some(r.digits(n.min(3), 3)? as u32),
                    'E' | 'e' | 'c' => {
                        if *c == 'E' || n >= 3 {
                            let mut names: Vec<&str> = DAYS.to_vec();
                            names.extend(DAYS.iter().map(|d| &d[..3]));
                            r.word(&names)?;
                        } else {
                            r.digits(1, 1)?;
                        }
                    }
                    'a' => f.pm = Some(r.word(&["AM", "PM"])? == 1),
                    'H' | 'k' => {
                        let (a, b) = fixed(n);
                        let v = r.digits(a, b)? as u32;
                        f.hour = Some(if *c == 'k' && v == 24 { 0 } else { v });
                    }
                    'h' | 'K' => {
                        let (a, b) = fixed(n);
                        f.hour12 = Some(r.digits(a, b)? as u32 % 12);
                    }
                    'm' => {
                        let (a, b) = fixed(n);
                        f.minute = r.digits(a, b)? as u32;
                    }
                    's' => {
                        let (a, b) = fixed(n);
                        f.second = r.digits(a, b)? as u32;
                    }
                    'S' => {
                        let start = r.i;
                        let v = r.digits(n, n.max(9))?;
                        let len = (r.i - start) as u32;
                        f.nanos = (v * 10i64.pow(9 - len.min(9))) as u32;
                    }
                    'n' => f.nanos = r.digits(1, 9)? as u32,
                    'z' | 'V' => f.zone = Some(r.zone_word()?),
                    'O' => {
                        r.word(&["GMT"])?;
                        let off = r.offset(false).unwrap_or(0);
                        f.zone = Some(Zone::Fixed(off, None));
                    }
                    'X' | 'x' | 'Z' => {
                        if *c == 'Z' && n == 4 {
                            r.word(&["GMT"])?;
                            let off = r.offset(false).unwrap_or(0);
                            f.zone = Some(Zone::Fixed(off, None));
                        } else {
                            let off = r.offset(*c == 'X' || (*c == 'Z' && n == 5))?;
                            f.zone = Some(Zone::Fixed(off, None));
                        }
                    }
                    _ => return None,
                }
            }
        }
        t += 1;
    }
    Some(t)
}

fn skip_section(toks: &[PatTok], mut t: usize) -> usize {
    let mut depth = 0;
    while t < toks.len() {
        match toks[t] {
            PatTok::OptStart => depth += 1,
            PatTok::OptEnd if depth == 0 => return t,
            PatTok::OptEnd => depth -= 1,
            _ => {}
        }
        t += 1;
    }
    t
}

type Snapshot = (Option<i64>, Option<u32>, Option<u32>, Option<u32>, Option<u32>, Option<bool>, u32, u32, u32);

fn snapshot(f: &Fields) -> Snapshot {
    (f.year, f.month, f.day, f.hour, f.hour12, f.pm, f.minute, f.second, f.nanos)
}

fn restore(f: &mut Fields, s: Snapshot) {
    (f.year, f.month, f.day, f.hour, f.hour12, f.pm, f.minute, f.second, f.nanos) = s;
}

/// Milliseconds since the epoch of `text` read with `pattern`; None when it does not match
/// or a field is out of range.
pub fn parse(text: &str, pattern: &str) -> Option<i64> {
    let toks = tokenize(pattern, true)?;
    let chars: Vec<char> = text.chars().collect();
    let mut r = Reader { s: &chars, i: 0 };
    let mut f = Fields::default();
    let end = run(&toks, 0, &mut r, &mut f)?;
    if end != toks.len() || r.i != chars.len() {
        return None;
    }
    let mut year = f.year.unwrap_or(1970);
    if f.bc {
        year = 1 - year;
    }
    let days = match (f.day_of_year, f.month, f.day) {
        (Some(doy), None, None) => {
            let max = if super::is_leap(year) { 366 } else { 365 };
            if doy == 0 || doy > max {
                return None;
            }
            days_from_civil(year, 1, 1) + i64::from(doy) - 1
        }
        (_, m, d) => {
            let (m, d) = (m.unwrap_or(1), d.unwrap_or(1));
            if !(1..=12).contains(&m) || d == 0 || d > days_in_month(year, m) {
                return None;
            }
            days_from_civil(year, m, d)
        }
    };
    let hour = match (f.hour, f.hour12, f.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), pm) => h + if pm == Some(true) { 12 } else { 0 },
        (None, None, _) => 0,
    };
    if hour > 23 || f.minute > 59 || f.second > 59 {
        return None;
    }
    let local = days * 86_400 + i64::from(hour) * 3600 + i64::from(f.minute) * 60 + i64::from(f.second);
    let utc = f.zone.unwrap_or(Zone::UTC).local_to_utc(local);
    utc.checked_mul(1000)?.checked_add(i64::from(f.nanos / 1_000_000))
}
