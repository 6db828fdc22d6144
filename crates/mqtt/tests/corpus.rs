//! Decodes every file of the fuzzer's corpus (`fuzz/corpus/decode`) with each protocol option:
//! none may panic, and each committed seed (`seed-*`) must decode to a whole packet under at
//! least one of them. Regenerate the seeds with
//! `cargo run -p mqtt --example seed_corpus -- fuzz/corpus/decode`.

use bytes::BytesMut;
use mqtt::{Packet, Protocol, decode};
use std::collections::BTreeSet;
use std::path::Path;

const OPTIONS: [Option<Protocol>; 4] = [None, Some(Protocol::V31), Some(Protocol::V311), Some(Protocol::V5)];
const MAX: usize = 1 << 20;

/// Decodes packets from `bytes` until it needs more or fails; returns them and whether all
/// bytes were used.
fn decode_all(bytes: &[u8], protocol: Option<Protocol>) -> (Vec<Packet>, bool) {
    let mut buf = BytesMut::from(bytes);
    let mut packets = Vec::new();
    while let Ok(Some(p)) = decode(&mut buf, protocol, MAX) {
        packets.push(p);
    }
    (packets, buf.is_empty())
}

#[test]
fn corpus_decodes_without_panic_and_every_seed_is_a_packet() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut seeds = 0;
    let mut types = BTreeSet::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let mut whole = Vec::new();
        for protocol in OPTIONS {
            let (packets, all_used) = decode_all(&bytes, protocol);
            if let [p] = &packets[..]
                && all_used
            {
                whole.push((protocol, p.clone()));
            }
        }
        if name.starts_with("seed-") {
            seeds += 1;
            assert!(!whole.is_empty(), "{name} decodes to one whole packet under no protocol option");
            types.extend(whole.iter().map(|(_, p)| p.name()));
            // The seed is what its name says.
            let v5 = name.starts_with("seed-v5-");
            assert!(
                whole.iter().any(|(v, _)| (*v == Some(Protocol::V5)) == v5),
                "{name} does not decode under its own protocol level: {whole:?}"
            );
        }
    }
    assert!(seeds >= 30, "only {seeds} seeds in {}", dir.display());
    let all = [
        "CONNECT",
        "CONNACK",
        "PUBLISH",
        "PUBACK",
        "PUBREC",
        "PUBREL",
        "PUBCOMP",
        "SUBSCRIBE",
        "SUBACK",
        "UNSUBSCRIBE",
        "UNSUBACK",
        "PINGREQ",
        "PINGRESP",
        "DISCONNECT",
        "AUTH",
    ];
    let missing: Vec<_> = all.iter().filter(|t| !types.contains(*t)).collect();
    assert!(missing.is_empty(), "no seed of {missing:?}");
}
