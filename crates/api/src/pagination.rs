//! Pagination as AWS list operations do it: an opaque `nextToken` (here, the hex of the last
//! key returned) and a page size.

use crate::ApiError;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// The key a `nextToken` continues after (`None`: the first page).
pub fn after(token: Option<&str>) -> Result<Option<String>, ApiError> {
    match token {
        None | Some("") => Ok(None),
        Some(t) => Ok(Some(unhex(t).ok_or_else(|| ApiError::invalid(format!("nextToken {t:?} is not valid")))?)),
    }
}

/// The `nextToken` that continues after `key`.
pub fn token(key: &str) -> String {
    hex(key)
}

/// One page of `items` (sorted by `key`), starting after `token`. Returns the page and the token
/// for the next one.
pub fn page<T>(items: Vec<T>, key: impl Fn(&T) -> &str, token: Option<&str>, size: usize) -> Result<(Vec<T>, Option<String>), ApiError> {
    let after = after(token)?;
    let mut rest = items.into_iter().filter(|i| after.as_deref().is_none_or(|a| key(i) > a)).peekable();
    let mut out = Vec::new();
    while out.len() < size {
        match rest.next() {
            Some(i) => out.push(i),
            None => break,
        }
    }
    let next = if rest.peek().is_some() { out.last().map(|i| hex(key(i))) } else { None };
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<String> = (0..25).map(|i| format!("thing-{i:02}")).collect();
        let mut token = None;
        let mut seen = Vec::new();
        loop {
            let (p, next) = page(items.clone(), |s| s.as_str(), token.as_deref(), 10).unwrap();
            seen.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page(items, |s| s.as_str(), Some("zz"), 10).is_err());
    }
}
