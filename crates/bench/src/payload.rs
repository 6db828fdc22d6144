//! The 16-byte header at the start of every benchmark payload: send time (monotonic nanoseconds
//! since the run started), publisher id and per-publisher sequence number, all little-endian.
//! The rest of the payload is filler.

/// Bytes of the header, and so the smallest payload.
pub const HEADER_LEN: usize = 16;

/// What a subscriber learns from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Nanoseconds since the run's start when the message was written.
    pub sent_ns: u64,
    pub publisher: u32,
    pub seq: u32,
}

/// Writes the header into the first [`HEADER_LEN`] bytes of `payload` (which must be that long).
pub fn write(payload: &mut [u8], h: Header) {
    payload[0..8].copy_from_slice(&h.sent_ns.to_le_bytes());
    payload[8..12].copy_from_slice(&h.publisher.to_le_bytes());
    payload[12..16].copy_from_slice(&h.seq.to_le_bytes());
}

/// Reads the header, or `None` if the payload is too short to hold one.
pub fn read(payload: &[u8]) -> Option<Header> {
    let b: &[u8; HEADER_LEN] = payload.get(..HEADER_LEN)?.try_into().ok()?;
    let [t0, t1, t2, t3, t4, t5, t6, t7, p0, p1, p2, p3, s0, s1, s2, s3] = *b;
    Some(Header {
        sent_ns: u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
        publisher: u32::from_le_bytes([p0, p1, p2, p3]),
        seq: u32::from_le_bytes([s0, s1, s2, s3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header { sent_ns: 0x0102_0304_0506_0708, publisher: 7, seq: u32::MAX };
        let mut buf = [0xAAu8; 20];
        write(&mut buf, h);
        assert_eq!(read(&buf), Some(h));
        assert_eq!(read(&buf[..15]), None);
    }
}
