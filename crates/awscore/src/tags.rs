//! Resource tags as every AWS service keeps them: at most 50 per resource, keys of 1 to 128
//! characters (letters, digits, spaces, `_.:/=+-@`; not starting with `aws:`), values of at most
//! 256. The rules of TagResource and UntagResource, for every service's resources.

use std::collections::BTreeMap;

/// A resource's tags, by key.
pub type Tags = BTreeMap<String, String>;

/// Tags per resource.
pub const MAX_TAGS: usize = 50;
/// Characters in a tag key.
pub const MAX_TAG_KEY: usize = 128;
/// Characters in a tag value.
pub const MAX_TAG_VALUE: usize = 256;

/// A tag change that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A key or value breaks the rules (the message says which and how, as AWS words it).
    #[error("{0}")]
    Invalid(String),
    /// The resource would have more than [`MAX_TAGS`] tags.
    #[error("{0}")]
    Limit(String),
}

fn failed(field: &str, value: &str, constraint: &str) -> TagError {
    TagError::Invalid(format!("1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"))
}

/// Unicode's separators (`\p{Z}`).
fn separator(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// A tag key.
pub fn check_key(key: &str) -> Result<(), TagError> {
    let field = "tags.member.Key";
    let n = key.chars().count();
    if n == 0 {
        return Err(failed(field, key, "Member must have length greater than or equal to 1"));
    }
    if n > MAX_TAG_KEY {
        return Err(failed(field, key, &format!("Member must have length less than or equal to {MAX_TAG_KEY}")));
    }
    let ok = |c: char| c.is_alphabetic() || c.is_numeric() || separator(c) || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@');
    if !key.chars().all(ok) {
        return Err(failed(field, key, "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(TagError::Invalid(format!("Tag key {key:?} uses the prefix aws:, which is reserved for AWS use.")));
    }
    Ok(())
}

/// Tags as given at creation or to TagResource (keys and values; not the count).
pub fn check(tags: &[(String, String)]) -> Result<(), TagError> {
    for (k, v) in tags {
        check_key(k)?;
        if v.chars().count() > MAX_TAG_VALUE {
            return Err(failed(&format!("tags.{k}.Value"), v, &format!("Member must have length less than or equal to {MAX_TAG_VALUE}")));
        }
    }
    Ok(())
}

/// Tags given at creation, as a resource keeps them.
pub fn initial(tags: &[(String, String)]) -> Result<Tags, TagError> {
    check(tags)?;
    let all: Tags = tags.iter().cloned().collect();
    if all.len() > MAX_TAGS {
        return Err(TagError::Invalid(format!("A resource can have at most {MAX_TAGS} tags; {} were given.", all.len())));
    }
    Ok(all)
}

/// TagResource: `current` with `add` added or overwritten; `arn` names the resource in errors.
pub fn tag(current: &Tags, add: &[(String, String)], arn: &str) -> Result<Tags, TagError> {
    check(add)?;
    let mut all = current.clone();
    all.extend(add.iter().cloned());
    if all.len() > MAX_TAGS {
        return Err(TagError::Limit(format!("The resource {arn} would have {} tags; a resource can have at most {MAX_TAGS}.", all.len())));
    }
    Ok(all)
}

/// UntagResource: `current` without `keys` (keys it lacks are ignored).
pub fn untag(current: &Tags, keys: &[String]) -> Result<Tags, TagError> {
    for k in keys {
        check_key(k)?;
    }
    let mut all = current.clone();
    for k in keys {
        all.remove(k);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
    }

    #[test]
    fn tagging_follows_aws_rules() {
        let t = tag(&Tags::new(), &[("env".into(), "prod".into()), ("team".into(), String::new())], "arn:x").unwrap();
        let t = tag(&t, &[("env".into(), "dev".into())], "arn:x").unwrap();
        assert_eq!((t["env"].as_str(), t["team"].as_str()), ("dev", ""));
        let t = untag(&t, &["team".into(), "absent".into()]).unwrap();
        assert_eq!(t.len(), 1);
        assert!(matches!(tag(&t, &pairs(50), "arn:x"), Err(TagError::Limit(m)) if m.contains("51 tags")));
        assert!(tag(&Tags::new(), &pairs(50), "arn:x").is_ok());
        assert!(matches!(check_key("aws:x"), Err(TagError::Invalid(m)) if m.contains("reserved")));
        assert!(check_key("").is_err() && check_key(&"k".repeat(129)).is_err() && check_key("a b/c=d+e-f@g:h.i_j").is_ok());
        assert!(check(&[("k".into(), "v".repeat(257))]).is_err());
        assert!(matches!(initial(&pairs(51)), Err(TagError::Invalid(_))));
    }
}
