//! What every AWS-shaped service of Ferrite shares, in one place: ARNs ([`arn`]), ids
//! ([`id`]), the clock ([`clock`]), pagination tokens ([`page`]), resource tags ([`tags`]) and percent-decoding. Pure but for the clock
//! and the OS's random source. (Not named `core`: that is Rust's own crate.)

pub mod arn;
pub mod clock;
pub mod id;
pub mod page;
pub mod tags;

pub use arn::Arn;

/// Percent-decodes (`%2F` → `/`; `+` is kept) into UTF-8; `None` if the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s)).ok()
}

/// Percent-decodes into bytes (`%2F` → `/`; `+` and a `%` not followed by two hex digits are kept).
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_keeps_plus_and_refuses_bad_utf8() {
        assert_eq!(super::percent_decode("a%20b+c%2F%zz").as_deref(), Some("a b+c/%zz"));
        assert_eq!(super::percent_decode("%ff"), None);
    }
}
