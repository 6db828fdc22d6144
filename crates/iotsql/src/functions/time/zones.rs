//! Time zones without a tz database: UTC, fixed offsets (`+01:00`, `UTC+01:00`, `GMT-5`,
//! `Etc/GMT+5`), and a built-in table of common IANA regions with their current standard
//! offset and daylight-saving rule (US, EU, southern Australia, New Zealand, or none). The
//! current rules are applied to every year: historical changes are not modelled.

use super::{days_from_civil, weekday_of_days};

/// A daylight-saving rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// No daylight saving.
    None,
    /// United States and Canada (since 2007): second Sunday of March 02:00 local to first
    /// Sunday of November 02:00 local.
    Us,
    /// European Union: last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    Eu,
    /// South-eastern Australia: first Sunday of October 02:00 standard to first Sunday of
    /// April 03:00 daylight.
    Au,
    /// New Zealand: last Sunday of September 02:00 standard to first Sunday of April 03:00
    /// daylight.
    Nz,
}

/// A region: id, standard offset (minutes), standard and daylight abbreviations, rule.
pub struct Region {
    id: &'static str,
    std_min: i32,
    std_abbr: &'static str,
    dst_abbr: &'static str,
    rule: Rule,
}

macro_rules! regions {
    ($(($id:literal, $off:expr, $s:literal, $d:literal, $r:ident)),* $(,)?) => {
        &[$(Region { id: $id, std_min: $off, std_abbr: $s, dst_abbr: $d, rule: Rule::$r }),*]
    };
}

const REGIONS: &[Region] = regions![
    ("America/New_York", -300, "EST", "EDT", Us),
    ("America/Detroit", -300, "EST", "EDT", Us),
    ("America/Toronto", -300, "EST", "EDT", Us),
    ("America/Montreal", -300, "EST", "EDT", Us),
    ("US/Eastern", -300, "EST", "EDT", Us),
    ("America/Chicago", -360, "CST", "CDT", Us),
    ("America/Winnipeg", -360, "CST", "CDT", Us),
    ("US/Central", -360, "CST", "CDT", Us),
    ("America/Mexico_City", -360, "CST", "CST", None),
    ("America/Belize", -360, "CST", "CST", None),
    ("America/Costa_Rica", -360, "CST", "CST", None),
    ("America/Guatemala", -360, "CST", "CST", None),
    ("America/Regina", -360, "CST", "CST", None),
    ("America/Denver", -420, "MST", "MDT", Us),
    ("America/Edmonton", -420, "MST", "MDT", Us),
    ("US/Mountain", -420, "MST", "MDT", Us),
    ("America/Phoenix", -420, "MST", "MST", None),
    ("US/Arizona", -420, "MST", "MST", None),
    ("America/Los_Angeles", -480, "PST", "PDT", Us),
    ("America/Vancouver", -480, "PST", "PDT", Us),
    ("America/Tijuana", -480, "PST", "PDT", Us),
    ("US/Pacific", -480, "PST", "PDT", Us),
    ("America/Anchorage", -540, "AKST", "AKDT", Us),
    ("US/Alaska", -540, "AKST", "AKDT", Us),
    ("Pacific/Honolulu", -600, "HST", "HST", None),
    ("US/Hawaii", -600, "HST", "HST", None),
    ("America/Halifax", -240, "AST", "ADT", Us),
    ("America/Puerto_Rico", -240, "AST", "AST", None),
    ("America/St_Johns", -210, "NST", "NDT", Us),
    ("America/Sao_Paulo", -180, "BRT", "BRT", None),
    ("America/Argentina/Buenos_Aires", -180, "ART", "ART", None),
    ("America/Bogota", -300, "COT", "COT", None),
    ("America/Lima", -300, "PET", "PET", None),
    ("America/Caracas", -240, "VET", "VET", None),
    ("Europe/London", 0, "GMT", "BST", Eu),
    ("Europe/Dublin", 0, "GMT", "IST", Eu),
    ("Europe/Lisbon", 0, "WET", "WEST", Eu),
    ("Atlantic/Reykjavik", 0, "GMT", "GMT", None),
    ("Europe/Paris", 60, "CET", "CEST", Eu),
    ("Europe/Berlin", 60, "CET", "CEST", Eu),
    ("Europe/Madrid", 60, "CET", "CEST", Eu),
    ("Europe/Rome", 60, "CET", "CEST", Eu),
    ("Europe/Amsterdam", 60, "CET", "CEST", Eu),
    ("Europe/Brussels", 60, "CET", "CEST", Eu),
    ("Europe/Vienna", 60, "CET", "CEST", Eu),
    ("Europe/Zurich", 60, "CET", "CEST", Eu),
    ("Europe/Stockholm", 60, "CET", "CEST", Eu),
    ("Europe/Oslo", 60, "CET", "CEST", Eu),
    ("Europe/Copenhagen", 60, "CET", "CEST", Eu),
    ("Europe/Prague", 60, "CET", "CEST", Eu),
    ("Europe/Warsaw", 60, "CET", "CEST", Eu),
    ("Europe/Budapest", 60, "CET", "CEST", Eu),
    ("Europe/Belgrade", 60, "CET", "CEST", Eu),
    ("Africa/Lagos", 60, "WAT", "WAT", None),
    ("Europe/Athens", 120, "EET", "EEST", Eu),
    ("Europe/Helsinki", 120, "EET", "EEST", Eu),
    ("Europe/Kiev", 120, "EET", "EEST", Eu),
    ("Europe/Kyiv", 120, "EET", "EEST", Eu),
    ("Europe/Bucharest", 120, "EET", "EEST", Eu),
    ("Europe/Sofia", 120, "EET", "EEST", Eu),
    ("Africa/Johannesburg", 120, "SAST", "SAST", None),
    ("Africa/Cairo", 120, "EET", "EET", None),
    ("Europe/Istanbul", 180, "TRT", "TRT", None),
    ("Europe/Moscow", 180, "MSK", "MSK", None),
    ("Africa/Nairobi", 180, "EAT", "EAT", None),
    ("Asia/Riyadh", 180, "AST", "AST", None),
    ("Asia/Dubai", 240, "GST", "GST", None),
    ("Asia/Karachi", 300, "PKT", "PKT", None),
    ("Asia/Kolkata", 330, "IST", "IST", None),
    ("Asia/Calcutta", 330, "IST", "IST", None),
    ("Asia/Kathmandu", 345, "NPT", "NPT", None),
    ("Asia/Dhaka", 360, "BST", "BST", None),
    ("Asia/Bangkok", 420, "ICT", "ICT", None),
    ("Asia/Ho_Chi_Minh", 420, "ICT", "ICT", None),
    ("Asia/Jakarta", 420, "WIB", "WIB", None),
    ("Asia/Shanghai", 480, "CST", "CST", None),
    ("Asia/Hong_Kong", 480, "HKT", "HKT", None),
    ("Asia/Taipei", 480, "CST", "CST", None),
    ("Asia/Singapore", 480, "SGT", "SGT", None),
    ("Asia/Manila", 480, "PHT", "PHT", None),
    ("Australia/Perth", 480, "AWST", "AWST", None),
    ("Asia/Seoul", 540, "KST", "KST", None),
    ("Asia/Tokyo", 540, "JST", "JST", None),
    ("Australia/Darwin", 570, "ACST", "ACST", None),
    ("Australia/Adelaide", 570, "ACST", "ACDT", Au),
    ("Australia/Brisbane", 600, "AEST", "AEST", None),
    ("Australia/Sydney", 600, "AEST", "AEDT", Au),
    ("Australia/Melbourne", 600, "AEST", "AEDT", Au),
    ("Australia/Canberra", 600, "AEST", "AEDT", Au),
    ("Australia/Hobart", 600, "AEST", "AEDT", Au),
    ("Pacific/Auckland", 720, "NZST", "NZDT", Nz),
];

/// Abbreviations accepted when parsing a zone name, with their offsets in minutes.
const ABBREVIATIONS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("UT", 0),
    ("Z", 0),
    ("WET", 0),
    ("WEST", 60),
    ("BST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("AKST", -540),
    ("AKDT", -480),
    ("HST", -600),
    ("AST", -240),
    ("ADT", -180),
    ("NST", -210),
    ("NDT", -150),
    ("IST", 330),
    ("SGT", 480),
    ("HKT", 480),
    ("JST", 540),
    ("KST", 540),
    ("AWST", 480),
    ("ACST", 570),
    ("ACDT", 630),
    ("AEST", 600),
    ("AEDT", 660),
    ("NZST", 720),
    ("NZDT", 780),
];

/// A time zone.
#[derive(Clone, Copy)]
pub enum Zone {
    /// A fixed offset in seconds, with the id it was written as (None: print the offset).
    Fixed(i32, Option<&'static str>),
    /// A region of the built-in table.
    Region(&'static Region),
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone::Fixed(0, Some("UTC"));

    /// Resolves a zone id: UTC and its synonyms, fixed offsets, `UTC±..`/`GMT±..`,
    /// `Etc/GMT±N`, or a region of the table (exact, then case-insensitive).
    pub fn from_id(id: &str) -> Option<Zone> {
        match id {
            "UTC" | "GMT" | "UT" | "Z" | "Etc/UTC" | "Etc/GMT" | "Etc/UCT" | "UCT" | "Zulu" | "Etc/Zulu"
            | "Universal" | "Etc/Universal" | "Greenwich" | "GMT0" | "Etc/GMT0" => return Some(Zone::UTC),
            _ => {}
        }
        if let Some(rest) = id.strip_prefix("Etc/GMT") {
            let secs = parse_offset(rest)?;
            return Some(Zone::Fixed(-secs, None));
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if let Some(rest) = id.strip_prefix(prefix)
                && (rest.starts_with('+') || rest.starts_with('-')) {
                    return parse_offset(rest).map(|s| Zone::Fixed(s, None));
                }
        }
        if id.starts_with('+') || id.starts_with('-') {
            return parse_offset(id).map(|s| Zone::Fixed(s, None));
        }
        region(id).map(Zone::Region)
    }

    /// Resolves a zone name as a parser reads it: an id, or an abbreviation such as `PST`.
    pub fn from_name(name: &str) -> Option<Zone> {
        Zone::from_id(name)
            .or_else(|| ABBREVIATIONS.iter().find(|(a, _)| *a == name).map(|(a, m)| Zone::Fixed(m * 60, Some(a))))
    }

    /// The offset (seconds) in force at `utc` seconds since the epoch, and whether it is
    /// daylight time.
    pub fn offset_at(&self, utc: i64) -> (i32, bool) {
        match self {
            Zone::Fixed(s, _) => (*s, false),
            Zone::Region(r) => {
                let std = r.std_min * 60;
                let dst = in_dst(r, utc);
                (if dst { std + 3600 } else { std }, dst)
            }
        }
    }

    /// The UTC seconds of a local time; in an overlap the earlier instant, in a gap the
    /// standard-time reading.
    pub fn local_to_utc(&self, local: i64) -> i64 {
        match self {
            Zone::Fixed(s, _) => local - i64::from(*s),
            Zone::Region(r) => {
                let std = i64::from(r.std_min) * 60;
                let as_dst = local - std - 3600;
                if r.rule != Rule::None && in_dst(r, as_dst) { as_dst } else { local - std }
            }
        }
    }

    /// The short name (`UTC`, `PST`/`PDT`, or the offset `+05:30` for a bare offset).
    pub fn short_name(&self, utc: i64) -> String {
        match self {
            Zone::Fixed(_, Some(name)) => (*name).to_string(),
            Zone::Fixed(s, None) => format_offset(*s, true),
            Zone::Region(r) => {
                let (_, dst) = self.offset_at(utc);
                (if dst { r.dst_abbr } else { r.std_abbr }).to_string()
            }
        }
    }

    /// The id (`America/Los_Angeles`, `UTC`, `+05:30`).
    pub fn id(&self) -> String {
        match self {
            Zone::Fixed(_, Some(name)) => (*name).to_string(),
            Zone::Fixed(s, None) => format_offset(*s, true),
            Zone::Region(r) => r.id.to_string(),
        }
    }
}

fn region(id: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.id == id).or_else(|| REGIONS.iter().find(|r| r.id.eq_ignore_ascii_case(id)))
}

/// Parses `+H`, `+HH`, `+HHMM`, `+HH:MM`, `+HH:MM:SS` (sign required) into seconds.
pub fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 6 {
        return None;
    }
    let (h, m, sec) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0, 0),
        3 => (digits[..1].parse::<i32>().ok()?, digits[1..].parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?, 0),
        6 => (digits[..2].parse::<i32>().ok()?, digits[2..4].parse::<i32>().ok()?, digits[4..].parse::<i32>().ok()?),
        _ => return None,
    };
    if h > 18 || m > 59 || sec > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60 + sec))
}

/// `+01:00` (with colon) or `+0100`.
pub fn format_offset(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    if colon { format!("{sign}{h:02}:{m:02}") } else { format!("{sign}{h:02}{m:02}") }
}

/// The day number (days since the epoch) of the `n`th (1-based) Sunday of a month, or of
/// the last Sunday when `n` is 0.
fn sunday(year: i64, month: u32, n: u32) -> i64 {
    if n == 0 {
        let next = if month == 12 { days_from_civil(year + 1, 1, 1) } else { days_from_civil(year, month + 1, 1) };
        let last = next - 1;
        return last - i64::from(weekday_of_days(last) % 7);
    }
    let first = days_from_civil(year, month, 1);
    let to_sunday = (7 - i64::from(weekday_of_days(first) % 7)) % 7;
    first + to_sunday + 7 * i64::from(n - 1)
}

fn in_dst(r: &Region, utc: i64) -> bool {
    let std = i64::from(r.std_min) * 60;
    let year = super::civil_from_days((utc + std).div_euclid(86_400)).0;
    let at = |day: i64, local_secs: i64, offset: i64| day * 86_400 + local_secs - offset;
    match r.rule {
        Rule::None => false,
        Rule::Us => {
            let start = at(sunday(year, 3, 2), 7200, std);
            let end = at(sunday(year, 11, 1), 7200, std + 3600);
            utc >= start && utc < end
        }
        Rule::Eu => {
            let start = at(sunday(year, 3, 0), 3600, 0);
            let end = at(sunday(year, 10, 0), 3600, 0);
            utc >= start && utc < end
        }
        Rule::Au => {
            let end = at(sunday(year, 4, 1), 10_800, std + 3600);
            let start = at(sunday(year, 10, 1), 7200, std);
            utc < end || utc >= start
        }
        Rule::Nz => {
            let end = at(sunday(year, 4, 1), 10_800, std + 3600);
            let start = at(sunday(year, 9, 0), 7200, std);
            utc < end || utc >= start
        }
    }
}
