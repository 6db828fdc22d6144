//! Formatting an instant with a Joda-Time pattern (`parse_time`).
//!
//! Letters: `G` era, `C` century, `Y` year of era, `y` year (`yy`: two digits), `x`
//! week-year, `w` week of week-year, `e` day of week (number), `E` day of week (text), `D`
//! day of year, `M` month (number, `MMM` short text, `MMMM` full), `d` day of month, `a`
//! half-day, `K` hour 0-11, `h` clock hour 1-12, `H` hour 0-23, `k` clock hour 1-24, `m`,
//! `s`, `S` fraction of second, `z` zone name, `Z` offset (`ZZ` with colon, `ZZZ` zone id).
//! Any other letter makes the pattern invalid.

use super::{DAYS, MONTHS, PatTok, Zone, civil_from_days, days_from_civil, tokenize, weekday_of_days};

fn pad(v: i64, width: usize) -> String {
    if v < 0 { format!("-{:0width$}", -v, width = width) } else { format!("{v:0width$}") }
}

/// ISO week-year and week number of a date.
fn iso_week(days: i64, year: i64) -> (i64, i64) {
    let wd = i64::from(weekday_of_days(days));
    let thursday = days - wd + 4;
    let (wy, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(wy, 1, 1)) / 7 + 1;
    let _ = year;
    (wy, week)
}

/// Formats `millis` (since the epoch) in `zone`; None when the pattern is invalid.
pub fn format(pattern: &str, millis: i64, zone: Zone) -> Option<String> {
    let toks = tokenize(pattern, false)?;
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let (offset, _) = zone.offset_at(secs);
    let local = secs + i64::from(offset);
    let days = local.div_euclid(86_400);
    let sod = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let mut out = String::new();
    for t in toks {
        let (c, n) = match t {
            PatTok::Literal(s) => {
                out.push_str(&s);
                continue;
            }
            PatTok::Field(c, n) => (c, n),
            PatTok::OptStart | PatTok::OptEnd => return None,
        };
        let yoe = if year <= 0 { 1 - year } else { year };
        let s = match c {
            'G' => (if year <= 0 { "BC" } else { "AD" }).to_string(),
            'C' => pad(yoe / 100, n),
            'y' | 'Y' | 'x' => {
                let v = match c {
                    'y' => year,
                    'Y' => yoe,
                    _ => iso_week(days, year).0,
                };
                if n == 2 { pad(v.rem_euclid(100), 2) } else { pad(v, n) }
            }
            'w' => pad(iso_week(days, year).1, n),
            'e' => pad(i64::from(weekday_of_days(days)), n),
            'E' => {
                let name = DAYS[(weekday_of_days(days) - 1) as usize];
                if n >= 4 { name.to_string() } else { name[..3].to_string() }
            }
            'D' => pad(days - days_from_civil(year, 1, 1) + 1, n),
            'M' => match n {
                1 | 2 => pad(i64::from(month), n),
                3 => MONTHS[(month - 1) as usize][..3].to_string(),
                _ => MONTHS[(month - 1) as usize].to_string(),
            },
            'd' => pad(i64::from(day), n),
            'a' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            'K' => pad(hour % 12, n),
            'h' => pad(if hour % 12 == 0 { 12 } else { hour % 12 }, n),
            'H' => pad(hour, n),
            'k' => pad(if hour == 0 { 24 } else { hour }, n),
            'm' => pad(minute, n),
            's' => pad(second, n),
            'S' => {
                let mut frac = format!("{ms:03}");
                while frac.len() < n {
                    frac.push('0');
                }
                frac[..n].to_string()
            }
            'z' => {
                if n >= 4 {
                    zone.id()
                } else {
                    zone.short_name(secs)
                }
            }
            'Z' => match n {
                1 => super::zones::format_offset(offset, false),
                2 => super::zones::format_offset(offset, true),
                _ => zone.id(),
            },
            _ => return None,
        };
        out.push_str(&s);
    }
    Some(out)
}
