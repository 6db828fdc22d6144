//! Pagination as AWS's list operations do it: an opaque `nextToken` (here, the hex of the last
//! key returned) that the next call continues after.

/// A `nextToken` that is not one Ferrite gave out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nextToken {0:?} is not valid")]
pub struct BadToken(pub String);

/// The `nextToken` that continues after `key`.
pub fn token(key: &str) -> String {
    crate::id::hex(key.as_bytes())
}

/// The key a `nextToken` continues after (`None` or empty: the first page).
pub fn after(token: Option<&str>) -> Result<Option<String>, BadToken> {
    let t = match token {
        None | Some("") => return Ok(None),
        Some(t) => t,
    };
    let bad = || BadToken(t.to_string());
    if !t.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..t.len()).step_by(2).map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes.ok_or_else(bad)?).map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_tokens_are_refused() {
        for t in ["x", "abc", "zz", "ff"] {
            assert!(after(Some(t)).is_err(), "{t}");
        }
        assert_eq!(after(None), Ok(None));
        assert_eq!(after(Some("")), Ok(None));
    }

    proptest! {
        #[test]
        fn tokens_round_trip(key in "\\PC{0,40}") {
            let t = token(&key);
            prop_assert_eq!(after(Some(&t)).unwrap(), if key.is_empty() { None } else { Some(key) });
        }
    }
}
