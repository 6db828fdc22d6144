//! Service limits (with AWS IoT's defaults) and thing and shadow name validation.

/// The longest thing name AWS IoT accepts: 128 bytes of UTF-8.
pub const MAX_THING_NAME_BYTES: usize = 128;

/// The longest shadow name AWS IoT accepts: 64 bytes of UTF-8.
pub const MAX_SHADOW_NAME_BYTES: usize = 64;

/// The configurable limits of the shadow service. [`Limits::default`] gives AWS IoT's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest stored state (the `desired` and `reported` sections, serialized compactly; metadata
    /// does not count) an update may leave, in bytes. Beyond it: 413. AWS: 8 KB.
    pub max_document_bytes: usize,
    /// Largest request payload read at all, in bytes. Beyond it: 413 before parsing. AWS's
    /// message size limit: 128 KB.
    pub max_request_bytes: usize,
    /// Most levels of nesting in `desired` or `reported`, the section object itself counting as
    /// the first level (AWS allows five levels below it). Beyond it: 400 "JSON contains too many
    /// levels of nesting; maximum is N". AWS: 6.
    pub max_depth: usize,
    /// Longest `clientToken`, in bytes. Beyond it: 400 "Invalid clientToken". AWS: 64.
    pub max_client_token_bytes: usize,
    /// Most named shadows a thing may have; `None` is no limit, as in AWS IoT, which documents
    /// none. The caller counts (see [`Limits::allows_another_named_shadow`]).
    pub max_named_shadows_per_thing: Option<usize>,
    /// How long a deleted shadow's version is remembered: a shadow recreated within this time
    /// continues the deleted one's version, later it starts again from 0. AWS: 48 hours.
    pub deleted_version_retention_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 8 * 1024,
            max_request_bytes: 128 * 1024,
            max_depth: 6,
            max_client_token_bytes: 64,
            max_named_shadows_per_thing: None,
            deleted_version_retention_secs: 48 * 60 * 60,
        }
    }
}

impl Limits {
    /// Whether a thing that has `existing` named shadows may get one more.
    pub fn allows_another_named_shadow(&self, existing: usize) -> bool {
        self.max_named_shadows_per_thing.is_none_or(|max| existing < max)
    }
}

/// Why a thing or shadow name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("name must match [a-zA-Z0-9:_-]+")]
    BadCharacter,
}

/// Checks a thing name: 1 to 128 bytes of `[a-zA-Z0-9:_-]`.
pub fn validate_thing_name(name: &str) -> Result<(), NameError> {
    validate_name(name, MAX_THING_NAME_BYTES)
}

/// Checks a named shadow's name: 1 to 64 bytes of `[a-zA-Z0-9:_-]`. The classic shadow has no
/// name and is not checked here.
pub fn validate_shadow_name(name: &str) -> Result<(), NameError> {
    validate_name(name, MAX_SHADOW_NAME_BYTES)
}

fn validate_name(name: &str, max: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > max {
        return Err(NameError::TooLong { max });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
    {
        return Err(NameError::BadCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_aws_limits() {
        let l = Limits::default();
        assert_eq!(l.max_document_bytes, 8192);
        assert_eq!(l.max_request_bytes, 131072);
        assert_eq!(l.max_depth, 6);
        assert_eq!(l.max_client_token_bytes, 64);
        assert_eq!(l.max_named_shadows_per_thing, None);
        assert_eq!(l.deleted_version_retention_secs, 172800);
    }

    #[test]
    fn named_shadow_quota() {
        let mut l = Limits::default();
        assert!(l.allows_another_named_shadow(1_000_000));
        l.max_named_shadows_per_thing = Some(2);
        assert!(l.allows_another_named_shadow(0));
        assert!(l.allows_another_named_shadow(1));
        assert!(!l.allows_another_named_shadow(2));
        assert!(!l.allows_another_named_shadow(3));
    }

    #[test]
    fn shadow_names() {
        let max = "a".repeat(64);
        for ok in ["a", "Z", "0", "my-shadow", "a:b_c-D9", ":", "_", "-", max.as_str()] {
            assert_eq!(validate_shadow_name(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(65);
        let cases = [
            ("", NameError::Empty),
            (long.as_str(), NameError::TooLong { max: 64 }),
            ("a b", NameError::BadCharacter),
            ("a/b", NameError::BadCharacter),
            ("$aws", NameError::BadCharacter),
            ("a+", NameError::BadCharacter),
            ("a#", NameError::BadCharacter),
            ("é", NameError::BadCharacter),
            ("a.b", NameError::BadCharacter),
        ];
        for (bad, want) in cases {
            assert_eq!(validate_shadow_name(bad), Err(want), "{bad:?}");
        }
    }

    #[test]
    fn thing_names() {
        let max = "t".repeat(128);
        assert_eq!(validate_thing_name(&max), Ok(()));
        assert_eq!(validate_thing_name("thing-1:a_b"), Ok(()));
        assert_eq!(
            validate_thing_name(&"t".repeat(129)),
            Err(NameError::TooLong { max: 128 })
        );
        assert_eq!(validate_thing_name(""), Err(NameError::Empty));
        assert_eq!(validate_thing_name("th/ing"), Err(NameError::BadCharacter));
    }
}
