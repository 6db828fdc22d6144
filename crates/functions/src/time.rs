//! Timestamps as Lambda writes them (`2024-05-01T12:34:56.789+0000`).

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

/// Milliseconds since the epoch as `YYYY-MM-DDThh:mm:ss.sss+0000` (UTC).
pub fn iso8601_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000", s / 3600, s % 3600 / 60, s % 60, ms.rem_euclid(1000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_lambda() {
        assert_eq!(super::iso8601_millis(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(super::iso8601_millis(1_481_825_251_155), "2016-12-15T18:07:31.155+0000");
        assert_eq!(super::iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000+0000");
    }
}
