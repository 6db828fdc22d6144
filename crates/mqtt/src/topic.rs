//! Topic names, topic filters, shared-subscription filters, and matching.

/// A topic name a PUBLISH may carry: non-empty, no wildcards, at most 65,535 bytes.
pub fn valid_topic_name(t: &str) -> bool {
    !t.is_empty() && t.len() <= 65_535 && !t.contains(['+', '#', '\0'])
}

/// A topic filter: non-empty; `#` only as the whole last level; `+` only as a whole level.
pub fn valid_filter(f: &str) -> bool {
    if f.is_empty() || f.len() > 65_535 || f.contains('\0') {
        return false;
    }
    let mut levels = f.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !last) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// True when the filter has a `+` or `#`.
pub fn has_wildcard(f: &str) -> bool {
    f.contains(['+', '#'])
}

/// A subscription filter split into its share group (for `$share/{group}/{filter}`) and filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFilter<'a> {
    pub share_group: Option<&'a str>,
    pub filter: &'a str,
}

/// Why a subscription filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid topic filter")]
    Invalid,
    #[error("invalid shared subscription: $share/{{group}}/{{filter}} with a group free of '+', '#' and '/'")]
    BadShare,
}

/// Parses a SUBSCRIBE/UNSUBSCRIBE filter, including the `$share/{group}/{filter}` form.
pub fn parse_filter(f: &str) -> Result<ParsedFilter<'_>, FilterError> {
    if let Some(rest) = f.strip_prefix("$share/") {
        let (group, filter) = rest.split_once('/').ok_or(FilterError::BadShare)?;
        if group.is_empty() || group.contains(['+', '#']) || !valid_filter(filter) {
            return Err(FilterError::BadShare);
        }
        return Ok(ParsedFilter { share_group: Some(group), filter });
    }
    if f == "$share" || !valid_filter(f) {
        return Err(FilterError::Invalid);
    }
    Ok(ParsedFilter { share_group: None, filter: f })
}

/// Whether `topic` matches `filter`. Wildcards at the first level do not match topics that
/// start with `$` (MQTT-4.7.2-1).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_validated() {
        for ok in ["a", "a/b", "#", "+", "a/+/c", "a/#", "+/+", "/", "$SYS/#", "a//b"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+", "a/b+/c", "#/a", "a/\0"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn matching_follows_the_spec() {
        let cases = [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/b", "/b", true),
            ("+", "/b", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$aws/things/+/shadow/#", "$aws/things/t1/shadow/update", true),
            ("a/b", "a/c", false),
            ("a//b", "a//b", true),
            ("a/+/b", "a//b", true),
        ];
        for (f, t, want) in cases {
            assert_eq!(matches(f, t), want, "{f} vs {t}");
        }
    }

    #[test]
    fn shared_filters_are_parsed() {
        assert_eq!(parse_filter("$share/g/a/+").unwrap(), ParsedFilter { share_group: Some("g"), filter: "a/+" });
        assert_eq!(parse_filter("$share/g"), Err(FilterError::BadShare));
        assert_eq!(parse_filter("$share//a"), Err(FilterError::BadShare));
        assert_eq!(parse_filter("$share/g+/a"), Err(FilterError::BadShare));
        assert_eq!(parse_filter("a/#/b"), Err(FilterError::Invalid));
        assert_eq!(parse_filter("x/y").unwrap().share_group, None);
    }
}
