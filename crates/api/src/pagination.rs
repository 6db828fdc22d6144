//! Pagination as AWS list operations do it: an opaque `nextToken` (here, the hex of the last
//! key returned) and a page size.

use crate::ApiError;

/// The key a `nextToken` continues after (`None`: the first page).
pub fn after(token: Option<&str>) -> Result<Option<String>, ApiError> {
    awscore::page::after(token).map_err(|e| ApiError::invalid(e.to_string()))
}

pub use awscore::page::token;

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
    let next = if rest.peek().is_some() { out.last().map(|i| awscore::page::token(key(i))) } else { None };
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
