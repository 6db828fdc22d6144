//! Pagination as AWS's list operations do it: a [`Page`] of items and, when more follow, the
//! key of the last one, given to the client as an opaque `nextToken` (here, the hex of that
//! key) that the next call continues after.

/// An item's key in the order a list is paged in.
pub trait Keyed {
    fn key(&self) -> &str;
}

/// Implements [`Keyed`] for types keyed by one of their fields: `keyed!(Thing => name, ...)`.
#[macro_export]
macro_rules! keyed {
    ($($t:ty => $field:ident),* $(,)?) => {
        $(impl $crate::page::Keyed for $t {
            fn key(&self) -> &str {
                &self.$field
            }
        })*
    };
}

impl Keyed for String {
    fn key(&self) -> &str {
        self
    }
}

impl<T> Keyed for (String, T) {
    fn key(&self) -> &str {
        &self.0
    }
}

/// One page of a list: the items, and the key to continue after when more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The key of the last item when more follow (`None`: this is the last page).
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Up to `limit` items of an iterator in key order, and whether any remain.
    pub fn take(iter: impl Iterator<Item = T>, limit: usize) -> Page<T>
    where
        T: Keyed,
    {
        let mut iter = iter.peekable();
        let mut items = Vec::new();
        while items.len() < limit {
            match iter.next() {
                Some(i) => items.push(i),
                None => break,
            }
        }
        let next = if iter.peek().is_some() { items.last().map(|i| i.key().to_string()) } else { None };
        Page { items, next }
    }

    /// Pages `items` ordered by `key` (ascending or descending), after the key `after`.
    pub fn sorted(mut items: Vec<T>, key: impl Fn(&T) -> String, ascending: bool, after: Option<&str>, limit: usize) -> Page<T> {
        items.sort_by_key(|i| key(i));
        if !ascending {
            items.reverse();
        }
        let mut rest = items.into_iter().filter(|i| after.is_none_or(|a| if ascending { key(i).as_str() > a } else { key(i).as_str() < a })).peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            match rest.next() {
                Some(i) => out.push(i),
                None => break,
            }
        }
        let next = if rest.peek().is_some() { out.last().map(&key) } else { None };
        Page { items: out, next }
    }

    /// Whether more items follow this page.
    pub fn more(&self) -> bool {
        self.next.is_some()
    }

    /// The `nextToken` of the next page.
    pub fn token(&self) -> Option<String> {
        self.next.as_deref().map(token)
    }

    /// The same page with its items mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}

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
    fn pages_walk_the_whole_list_once_in_either_order() {
        let items: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        for ascending in [true, false] {
            let (mut seen, mut after) = (Vec::new(), None);
            loop {
                let p = Page::sorted(items.clone(), |s| s.clone(), ascending, after.as_deref(), 10);
                seen.extend(p.items.clone());
                match p.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            let mut want = items.clone();
            if !ascending {
                want.reverse();
            }
            assert_eq!(seen, want);
        }
        let p = Page::take(items.clone().into_iter(), 3);
        assert_eq!((p.items.len(), p.next.as_deref(), p.more()), (3, Some("k02"), true));
        assert_eq!(after(p.token().as_deref()), Ok(Some("k02".to_string())));
        assert_eq!(Page::take(items.into_iter(), 25).next, None);
    }

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
