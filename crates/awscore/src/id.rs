//! Random identifiers: version 4 UUIDs (thing ids, request ids, trace ids) and hex strings
//! (certificate ids, tokens), from the OS's random source.

/// Fills `b` from the OS's random source. `SystemRandom` fails only without an OS entropy
/// source, which Ferrite cannot run without.
fn fill(b: &mut [u8]) {
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), b);
}

/// A random version 4 UUID, lowercase (`8-4-4-4-12` hex digits).
pub fn uuid() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    fill(&mut b);
    hex(&b)
}

/// Bytes as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
        assert_eq!(random_hex(3).len(), 6);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
