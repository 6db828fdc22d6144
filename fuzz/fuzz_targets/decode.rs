//! Fuzz target: decodes arbitrary bytes as a stream of MQTT packets under each protocol option;
//! decoding must never panic, and every decoded packet must re-encode to bytes that decode to it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt::{Packet, Protocol, decode};

/// The packet size limit: libFuzzer's inputs are at most 4096 bytes by default, so larger
/// remaining lengths exercise the Packet Too Large path without reserving big buffers.
const MAX_SIZE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    for protocol in [None, Some(Protocol::V311), Some(Protocol::V5)] {
        let mut buf = BytesMut::from(data);
        // Each packet decoded takes at least two bytes, so this ends.
        while let Ok(Some(packet)) = decode(&mut buf, protocol, MAX_SIZE) {
            reencode(&packet, protocol);
        }
    }
});

fn reencode(packet: &Packet, protocol: Option<Protocol>) {
    let v = match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol.unwrap_or(Protocol::V311),
    };
    let mut out = BytesMut::new();
    packet.encode(&mut out, v);
    assert_eq!(out.len(), packet.encoded_len(v), "encoded_len of {packet:?}");
    let again = decode(&mut out, protocol, usize::MAX);
    assert_eq!(again, Ok(Some(packet.clone())), "re-decoding {packet:?}");
    assert!(out.is_empty(), "bytes left after re-decoding {packet:?}");
}
