//! The wall clock as AWS's APIs count it, and the ways they write a timestamp.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (date, seconds of the day, milliseconds) of a time in milliseconds since the epoch.
fn split(ms: i64) -> ((i64, u32, u32), i64, i64) {
    let secs = ms.div_euclid(1000);
    (civil_from_days(secs.div_euclid(86_400)), secs.rem_euclid(86_400), ms.rem_euclid(1000))
}

/// `YYYY-MM-DDThh:mm:ss.sss+0000`, as Lambda writes `LastModified`.
pub fn iso8601_millis(ms: i64) -> String {
    let ((y, mo, d), s, milli) = split(ms);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}+0000", s / 3600, s % 3600 / 60, s % 60)
}

/// `YYYY-MM-DDThh:mm:ss[.sss]Z`: the models' `iso8601` timestamp format.
pub fn iso8601(ms: i64) -> String {
    let ((y, mo, d), s, milli) = split(ms);
    let frac = if milli == 0 { String::new() } else { format!(".{milli:03}") };
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z", s / 3600, s % 3600 / 60, s % 60)
}

/// `Thu, 15 Dec 2016 18:07:31 GMT`: the models' `rfc822` format (HTTP dates, headers' default).
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let ((y, mo, d), s, _) = split(ms);
    let weekday = DAYS[ms.div_euclid(86_400_000).rem_euclid(7) as usize];
    format!("{weekday}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT", MONTHS[mo as usize - 1], s / 3600, s % 3600 / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_aws_writes_them() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(iso8601_millis(1_481_825_251_155), "2016-12-15T18:07:31.155+0000");
        assert_eq!(iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000+0000");
        assert_eq!(iso8601(1_481_825_251_155), "2016-12-15T18:07:31.155Z");
        assert_eq!(iso8601(1_481_825_251_000), "2016-12-15T18:07:31Z");
        assert_eq!(http_date(1_481_825_251_155), "Thu, 15 Dec 2016 18:07:31 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
