//! Property tests of the codec (every packet type, MQTT 3.1.1 and 5.0, round-trips through
//! encode and decode; prefixes need more bytes; random bytes never panic) and unit tests of
//! strict validation, each with the MQTT 5 reason code the server must send.

use bytes::{Bytes, BytesMut};
use mqtt::topic::{matches, parse_filter, valid_filter};
use mqtt::*;
use proptest::prelude::*;
use proptest::sample::select;

const V31: Protocol = Protocol::V31;
const V311: Protocol = Protocol::V311;
const V5: Protocol = Protocol::V5;
const MAX: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The specification's tables, written out here independently of the codec's own.

/// Where a property list sits: it decides which properties are allowed (MQTT 5.0, 2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

const ALL_CTX: [Ctx; 11] = [
    Ctx::Connect,
    Ctx::Will,
    Ctx::ConnAck,
    Ctx::Publish,
    Ctx::PubResp,
    Ctx::Subscribe,
    Ctx::SubAck,
    Ctx::Unsubscribe,
    Ctx::UnsubAck,
    Ctx::Disconnect,
    Ctx::Auth,
];

/// Every property identifier MQTT 5.0 defines.
const KNOWN_IDS: [u8; 27] = [
    0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1C, 0x1F, 0x21,
    0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
];

impl Ctx {
    fn ids(self) -> &'static [u8] {
        match self {
            Ctx::Connect => &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27],
            Ctx::Will => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26],
            Ctx::ConnAck => &[
                0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
            ],
            Ctx::Publish => &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26],
            Ctx::PubResp | Ctx::SubAck | Ctx::UnsubAck => &[0x1F, 0x26],
            Ctx::Subscribe => &[0x0B, 0x26],
            Ctx::Unsubscribe => &[0x26],
            Ctx::Disconnect => &[0x11, 0x1C, 0x1F, 0x26],
            Ctx::Auth => &[0x15, 0x16, 0x1F, 0x26],
        }
    }

    fn allows(self, id: u8) -> bool {
        self.ids().contains(&id)
    }
}

/// Reason codes each MQTT 5 packet may carry.
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A,
    0x9B, 0x9C, 0x9D, 0x9F,
];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];
/// MQTT 3.1.1 SUBACK return codes.
const V3_SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

// ---------------------------------------------------------------------------------------------
// Strategies.

/// A UTF-8 string without U+0000: often ASCII, sometimes any Unicode.
fn string() -> BoxedStrategy<String> {
    prop_oneof!["[a-z0-9/ _-]{0,10}", "[^\\x00]{0,8}"].boxed()
}

/// A topic name: non-empty, no wildcards, no U+0000.
fn topic_name() -> BoxedStrategy<String> {
    prop_oneof!["[a-z0-9/$]{1,12}", "[^\\x00+#]{1,8}"].boxed()
}

fn binary() -> BoxedStrategy<Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from).boxed()
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = u16> {
    prop_oneof![1u16..=10, Just(u16::MAX), 1u16..]
}

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    select(codes).prop_map(ReasonCode)
}

/// A Variable Byte Integer property value (non-zero), covering each encoded length.
fn varint_value() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=127, 128u32..=16_383, 16_384u32..=2_097_151, 2_097_152u32..=MAX_VARINT, Just(MAX_VARINT)]
}

/// A topic filter, sometimes shared: levels of literals and `+`, maybe ending in `#`.
fn filter() -> BoxedStrategy<String> {
    let level = prop_oneof!["[a-z]{0,4}", Just("+".to_string()), Just("$SYS".to_string()), Just("é".to_string())];
    (prop::collection::vec(level, 0..4), any::<bool>(), prop::option::of("[a-z0-9]{1,4}"))
        .prop_filter_map("empty filter", |(levels, hash, share)| {
            let mut f = levels.join("/");
            if hash {
                f = if levels.is_empty() { "#".to_string() } else { f + "/#" };
            }
            if f.is_empty() {
                return None;
            }
            Some(match share {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            })
        })
        .boxed()
}

/// `Some(value)` about a third of the time when property `id` is allowed in `ctx`, else `None`.
fn field<T: std::fmt::Debug + Clone + 'static>(
    ctx: Ctx,
    id: u8,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    if ctx.allows(id) { prop::option::weighted(0.35, s).boxed() } else { Just(None).boxed() }
}

fn flag() -> impl Strategy<Value = u8> {
    0u8..=1
}

fn nonzero_u16() -> impl Strategy<Value = u16> {
    1u16..
}

/// Properties allowed in `ctx`, with valid values (MQTT 5 only; MQTT 3.1.1 has none).
fn properties(v: Protocol, ctx: Ctx) -> BoxedStrategy<Properties> {
    if !v.is_v5() {
        return Just(Properties::default()).boxed();
    }
    let sub_ids: BoxedStrategy<Vec<u32>> = match ctx {
        Ctx::Publish => prop::collection::vec(varint_value(), 0..3).boxed(),
        Ctx::Subscribe => prop::collection::vec(varint_value(), 0..=1).boxed(),
        _ => Just(Vec::new()).boxed(),
    };
    let user = prop::collection::vec((string(), string()), 0..3);
    let a = (
        field(ctx, 0x01, flag()),
        field(ctx, 0x02, any::<u32>()),
        field(ctx, 0x03, string()),
        field(ctx, 0x08, topic_name()),
        field(ctx, 0x09, binary()),
        sub_ids,
        field(ctx, 0x11, any::<u32>()),
        field(ctx, 0x12, string()),
        field(ctx, 0x13, any::<u16>()),
        field(ctx, 0x15, string()),
    );
    let b = (
        field(ctx, 0x16, binary()),
        field(ctx, 0x17, flag()),
        field(ctx, 0x18, any::<u32>()),
        field(ctx, 0x19, flag()),
        field(ctx, 0x1A, string()),
        field(ctx, 0x1C, string()),
        field(ctx, 0x1F, string()),
        field(ctx, 0x21, nonzero_u16()),
        field(ctx, 0x22, any::<u16>()),
        field(ctx, 0x23, nonzero_u16()),
    );
    let c = (
        field(ctx, 0x24, flag()),
        field(ctx, 0x25, flag()),
        user,
        field(ctx, 0x27, 1u32..),
        field(ctx, 0x28, flag()),
        field(ctx, 0x29, flag()),
        field(ctx, 0x2A, flag()),
    );
    (a, b, c)
        .prop_map(move |(a, b, c)| {
            let mut p = Properties {
                payload_format_indicator: a.0,
                message_expiry_interval: a.1,
                content_type: a.2,
                response_topic: a.3,
                correlation_data: a.4,
                subscription_identifiers: a.5,
                session_expiry_interval: a.6,
                assigned_client_identifier: a.7,
                server_keep_alive: a.8,
                authentication_method: a.9,
                authentication_data: b.0,
                request_problem_information: b.1,
                will_delay_interval: b.2,
                request_response_information: b.3,
                response_information: b.4,
                server_reference: b.5,
                reason_string: b.6,
                receive_maximum: b.7,
                topic_alias_maximum: b.8,
                topic_alias: b.9,
                maximum_qos: c.0,
                retain_available: c.1,
                user_properties: c.2,
                maximum_packet_size: c.3,
                wildcard_subscription_available: c.4,
                subscription_identifier_available: c.5,
                shared_subscription_available: c.6,
            };
            // CONNECT: Authentication Data without an Authentication Method is a Protocol Error.
            if ctx == Ctx::Connect && p.authentication_method.is_none() {
                p.authentication_data = None;
            }
            p
        })
        .boxed()
}

fn will(v: Protocol) -> impl Strategy<Value = Will> {
    (topic_name(), binary(), qos(), any::<bool>(), properties(v, Ctx::Will)).prop_map(
        |(topic, payload, qos, retain, properties)| Will { topic: topic.into(), payload, qos, retain, properties },
    )
}

fn connect(v: Protocol) -> impl Strategy<Value = Packet> {
    let level = if v.is_v5() { Just(V5).boxed() } else { select(vec![V311, V31]).boxed() };
    (
        level,
        any::<bool>(),
        any::<u16>(),
        string(),
        prop::option::of(will(v)),
        prop::option::of(string()),
        prop::option::of(binary()),
        properties(v, Ctx::Connect),
    )
        .prop_map(|(protocol, clean_start, keep_alive, client_id, will, username, mut password, properties)| {
            // MQTT 3.1.1: a password needs a user name.
            if !protocol.is_v5() && username.is_none() {
                password = None;
            }
            Packet::Connect(Box::new(Connect {
                protocol,
                clean_start,
                keep_alive,
                client_id,
                will,
                username,
                password,
                properties,
            }))
        })
}

fn connack(v: Protocol) -> impl Strategy<Value = Packet> {
    let code = if v.is_v5() {
        reason(CONNACK_CODES).boxed()
    } else {
        (0u8..=5).prop_filter_map("v3 return code", ReasonCode::from_v3_connack).boxed()
    };
    (any::<bool>(), code, properties(v, Ctx::ConnAck))
        .prop_map(|(session_present, reason, properties)| Packet::ConnAck(ConnAck { session_present, reason, properties }))
}

fn publish(v: Protocol) -> impl Strategy<Value = Packet> {
    // MQTT 5 allows an empty topic name (a Topic Alias stands in for it).
    let topic = if v.is_v5() { prop_oneof![4 => topic_name(), 1 => Just(String::new())].boxed() } else { topic_name() };
    (qos(), any::<bool>(), any::<bool>(), topic, packet_id(), properties(v, Ctx::Publish), binary()).prop_map(
        |(qos, dup, retain, topic, packet_id, properties, payload)| {
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !qos0,
                qos,
                retain,
                topic: topic.into(),
                packet_id: if qos0 { 0 } else { packet_id },
                properties,
                payload,
            })
        },
    )
}

fn pub_resp(v: Protocol, codes: &'static [u8]) -> BoxedStrategy<PubResp> {
    let code = if v.is_v5() { reason(codes).boxed() } else { Just(ReasonCode::SUCCESS).boxed() };
    (packet_id(), code, properties(v, Ctx::PubResp))
        .prop_map(|(packet_id, reason, properties)| PubResp { packet_id, reason, properties })
        .boxed()
}

fn subscribe(v: Protocol) -> impl Strategy<Value = Packet> {
    let opts = if v.is_v5() {
        (qos(), any::<bool>(), any::<bool>(), 0u8..=2)
            .prop_map(|(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            })
            .boxed()
    } else {
        qos().prop_map(|qos| SubscriptionOptions { qos, ..Default::default() }).boxed()
    };
    (packet_id(), properties(v, Ctx::Subscribe), prop::collection::vec((filter(), opts), 1..4))
        .prop_map(|(packet_id, properties, filters)| Packet::Subscribe(Subscribe { packet_id, properties, filters }))
}

fn suback(v: Protocol) -> impl Strategy<Value = Packet> {
    let codes = if v.is_v5() { SUBACK_CODES } else { V3_SUBACK_CODES };
    (packet_id(), properties(v, Ctx::SubAck), prop::collection::vec(reason(codes), 0..4))
        .prop_map(|(packet_id, properties, reasons)| Packet::SubAck(SubAck { packet_id, properties, reasons }))
}

fn unsubscribe(v: Protocol) -> impl Strategy<Value = Packet> {
    (packet_id(), properties(v, Ctx::Unsubscribe), prop::collection::vec(filter(), 1..4)).prop_map(
        |(packet_id, properties, filters)| Packet::Unsubscribe(Unsubscribe { packet_id, properties, filters }),
    )
}

fn unsuback(v: Protocol) -> impl Strategy<Value = Packet> {
    let reasons = if v.is_v5() {
        prop::collection::vec(reason(UNSUBACK_CODES), 0..4).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (packet_id(), properties(v, Ctx::UnsubAck), reasons)
        .prop_map(|(packet_id, properties, reasons)| Packet::UnsubAck(UnsubAck { packet_id, properties, reasons }))
}

fn disconnect(v: Protocol) -> BoxedStrategy<Packet> {
    if !v.is_v5() {
        return Just(Packet::Disconnect(Disconnect::default())).boxed();
    }
    (reason(DISCONNECT_CODES), properties(v, Ctx::Disconnect))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
        .boxed()
}

fn auth() -> impl Strategy<Value = Packet> {
    (reason(AUTH_CODES), properties(V5, Ctx::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
}

/// Any valid packet of protocol `v` (3.1.1 or 5.0; CONNECT may also be 3.1).
fn packet(v: Protocol) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(v),
        connack(v),
        publish(v),
        pub_resp(v, PUBACK_CODES).prop_map(Packet::PubAck),
        pub_resp(v, PUBACK_CODES).prop_map(Packet::PubRec),
        pub_resp(v, PUBREL_CODES).prop_map(Packet::PubRel),
        pub_resp(v, PUBREL_CODES).prop_map(Packet::PubComp),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect(v),
    ];
    if v.is_v5() { prop_oneof![14 => common, 1 => auth()].boxed() } else { common.boxed() }
}

/// A protocol level and a valid packet of it.
fn versioned_packet() -> impl Strategy<Value = (Protocol, Packet)> {
    prop_oneof![packet(V311).prop_map(|p| (V311, p)), packet(V5).prop_map(|p| (V5, p))]
}

/// A protocol level and a few valid packets of it.
fn stream() -> impl Strategy<Value = (Protocol, Vec<Packet>)> {
    prop_oneof![
        prop::collection::vec(packet(V311), 1..5).prop_map(|ps| (V311, ps)),
        prop::collection::vec(packet(V5), 1..5).prop_map(|ps| (V5, ps)),
    ]
}

/// Every protocol option a decoder may be called with.
const OPTIONS: [Option<Protocol>; 4] = [None, Some(V31), Some(V311), Some(V5)];

// ---------------------------------------------------------------------------------------------
// Helpers.

fn encode(p: &Packet, v: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    p.encode(&mut out, v);
    out
}

/// Decodes packets from `bytes` until it needs more bytes or fails; must never panic.
fn decode_all(bytes: &[u8], protocol: Option<Protocol>, max: usize) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(p)) = decode(&mut buf, protocol, max) {
        check_reencodes(&p, protocol);
        out.push(p);
    }
    out
}

/// What the fuzz target checks: a decoded packet encodes to bytes that decode to itself.
fn check_reencodes(p: &Packet, protocol: Option<Protocol>) {
    let v = match p {
        Packet::Connect(c) => c.protocol,
        _ => protocol.unwrap_or(V311),
    };
    let mut buf = encode(p, v);
    assert_eq!(buf.len(), p.encoded_len(v), "encoded_len of {p:?}");
    let again = decode(&mut buf, protocol, usize::MAX);
    assert_eq!(again, Ok(Some(p.clone())), "re-decoding {p:?}");
    assert!(buf.is_empty(), "bytes left after re-decoding {p:?}");
}

/// Decodes `bytes` as a whole and returns the error.
fn err(bytes: &[u8], protocol: Option<Protocol>) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, MAX) {
        Err(e) => e,
        other => panic!("expected an error for {bytes:02X?}, got {other:?}"),
    }
}

fn ok(bytes: &[u8], protocol: Option<Protocol>) -> Packet {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, protocol, MAX) {
        Ok(Some(p)) if buf.is_empty() => p,
        other => panic!("expected one whole packet from {bytes:02X?}, got {other:?} with {} bytes left", buf.len()),
    }
}

/// A packet from its first byte and body, with the remaining length computed.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n & 0x7F) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A property list with its length prefix.
fn prop_list(props: &[u8]) -> Vec<u8> {
    assert!(props.len() < 128);
    let mut out = vec![props.len() as u8];
    out.extend_from_slice(props);
    out
}

/// Every first byte a valid packet may start with.
const FIRST_BYTES: &[u8] = &[
    0x10, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3A, 0x3B, 0x3C, 0x3D, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90,
    0xA2, 0xB0, 0xC0, 0xD0, 0xE0, 0xF0,
];

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    // Cases are small and cheap: a thousand of each still runs in well under a second.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn encode_then_decode_round_trips((v, p) in versioned_packet()) {
        let bytes = encode(&p, v);
        prop_assert_eq!(bytes.len(), p.encoded_len(v));
        let mut buf = bytes.clone();
        prop_assert_eq!(decode(&mut buf, Some(v), MAX), Ok(Some(p.clone())));
        prop_assert!(buf.is_empty(), "{} bytes left", buf.len());
        // Before CONNECT the level is unknown; CONNECT carries its own, and 3.1.1 is the default.
        if matches!(p, Packet::Connect(_) | Packet::Auth(_)) || !v.is_v5() {
            let mut buf = bytes.clone();
            prop_assert_eq!(decode(&mut buf, None, MAX), Ok(Some(p.clone())));
            prop_assert!(buf.is_empty());
        }
        // The size limit is inclusive, and checked against the whole packet.
        let mut buf = bytes.clone();
        prop_assert_eq!(decode(&mut buf, Some(v), bytes.len()), Ok(Some(p.clone())));
        let mut buf = bytes.clone();
        let e = decode(&mut buf, Some(v), bytes.len() - 1).unwrap_err();
        prop_assert_eq!(e.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    }

    #[test]
    fn every_prefix_needs_more_bytes((v, p) in versioned_packet()) {
        let bytes = encode(&p, v);
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            prop_assert_eq!(decode(&mut buf, Some(v), MAX), Ok(None), "prefix of {} bytes", n);
            prop_assert_eq!(&buf[..], &bytes[..n], "a prefix must be left in place");
        }
    }

    #[test]
    fn packets_in_a_stream_decode_in_order((v, packets) in stream()) {
        // Several packets back to back, then the first one again cut short.
        let mut buf = BytesMut::new();
        for p in &packets {
            p.encode(&mut buf, v);
        }
        let tail = encode(&packets[0], v);
        buf.extend_from_slice(&tail[..tail.len() - 1]);
        for p in &packets {
            prop_assert_eq!(decode(&mut buf, Some(v), MAX), Ok(Some(p.clone())));
        }
        prop_assert_eq!(decode(&mut buf, Some(v), MAX), Ok(None));
        prop_assert_eq!(buf.len(), tail.len() - 1);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), max in prop_oneof![Just(MAX), 2usize..64]) {
        for protocol in OPTIONS {
            decode_all(&bytes, protocol, max);
        }
    }

    #[test]
    fn random_bodies_never_panic(first in select(FIRST_BYTES), body in prop::collection::vec(any::<u8>(), 0..80)) {
        // A valid fixed header gets random bytes past the header checks, into the body parsers.
        let bytes = frame(first, &body);
        for protocol in OPTIONS {
            decode_all(&bytes, protocol, MAX);
        }
    }

    #[test]
    fn mutated_packets_never_panic(
        (v, p) in versioned_packet(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = encode(&p, v).to_vec();
        for (i, b) in edits {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        for protocol in OPTIONS {
            decode_all(&bytes, protocol, MAX);
        }
    }

    #[test]
    fn wildcards_match_what_they_stand_for(
        levels in prop::collection::vec(prop::option::of("[a-z]{0,3}"), 1..5),
        fill in prop::collection::vec("[a-z0-9]{0,3}", 5),
        tail in prop::option::of(prop::collection::vec("[a-z]{0,3}", 0..3)),
        group in prop::option::of("[a-z]{1,3}"),
    ) {
        // `None` levels become `+` in the filter and `fill[i]` in the topic; `tail` adds `#`.
        let mut f: Vec<String> = levels.iter().map(|l| l.clone().unwrap_or_else(|| "+".into())).collect();
        let mut t: Vec<String> = levels.iter().zip(&fill).map(|(l, x)| l.clone().unwrap_or_else(|| x.clone())).collect();
        if let Some(extra) = tail {
            f.push("#".into());
            t.extend(extra);
        }
        let (filter, topic) = (f.join("/"), t.join("/"));
        prop_assume!(!filter.is_empty(), "a filter is never empty");
        prop_assert!(valid_filter(&filter), "{}", filter);
        prop_assert!(matches(&filter, &topic), "{} should match {}", filter, topic);
        let parsed = parse_filter(&filter).unwrap();
        prop_assert_eq!(parsed.share_group, None);
        if let Some(g) = group {
            let shared = format!("$share/{g}/{filter}");
            let parsed = parse_filter(&shared).unwrap();
            prop_assert_eq!(parsed.share_group, Some(g.as_str()));
            prop_assert_eq!(parsed.filter, filter.as_str());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strict validation, each with the reason code of the DISCONNECT (or CONNACK) it calls for.

#[test]
fn publish_with_qos_3_is_malformed() {
    let e = err(&frame(0x36, &[0, 1, b'a', 0, 1]), Some(V311));
    assert_eq!(e, DecodeError::BadQoS);
    assert_eq!(e.reason_code(), ReasonCode(0x81));
}

#[test]
fn dup_on_qos_0_is_malformed() {
    let e = err(&frame(0x38, &[0, 1, b'a']), Some(V311));
    assert!(matches!(e, DecodeError::Malformed(_)), "{e:?}");
    assert_eq!(e.reason_code(), ReasonCode(0x81));
}

#[test]
fn pubrel_flags_must_be_0010() {
    for first in [0x60, 0x61, 0x63, 0x6A] {
        let e = err(&[first, 2, 0, 1], Some(V311));
        assert_eq!(e, DecodeError::BadFlags { packet_type: 6, flags: first & 0x0F });
        assert_eq!(e.reason_code(), ReasonCode(0x81));
    }
    // SUBSCRIBE and UNSUBSCRIBE likewise; the others want 0.
    assert_eq!(err(&frame(0x80, &[0, 1, 0, 1, b'a', 0]), Some(V311)).reason_code(), ReasonCode(0x81));
    assert_eq!(err(&frame(0xA0, &[0, 1, 0, 1, b'a']), Some(V311)).reason_code(), ReasonCode(0x81));
    assert_eq!(err(&[0x41, 2, 0, 1], Some(V311)).reason_code(), ReasonCode(0x81));
    assert_eq!(err(&[0xC1, 0], Some(V311)).reason_code(), ReasonCode(0x81));
}

#[test]
fn duplicate_property_is_a_protocol_error() {
    // PUBLISH with two Payload Format Indicators.
    let mut body = vec![0, 1, b't'];
    body.extend(prop_list(&[0x01, 0, 0x01, 1]));
    let e = err(&frame(0x30, &body), Some(V5));
    assert_eq!(e, DecodeError::DuplicateProperty(0x01));
    assert_eq!(e.reason_code(), ReasonCode(0x82));
    // Two Subscription Identifiers are fine in PUBLISH, not in SUBSCRIBE.
    let mut body = vec![0, 1, b't'];
    body.extend(prop_list(&[0x0B, 1, 0x0B, 2]));
    let Packet::Publish(p) = ok(&frame(0x30, &body), Some(V5)) else { panic!("not a PUBLISH") };
    assert_eq!(p.properties.subscription_identifiers, vec![1, 2]);
    let mut body = vec![0, 1];
    body.extend(prop_list(&[0x0B, 1, 0x0B, 2]));
    body.extend([0, 1, b'a', 0]);
    assert_eq!(err(&frame(0x82, &body), Some(V5)).reason_code(), ReasonCode(0x82));
    // User Properties may repeat.
    let mut body = vec![0, 1, 0];
    body.extend(prop_list(&[0x26, 0, 1, b'k', 0, 1, b'v', 0x26, 0, 1, b'k', 0, 1, b'v']));
    let Packet::PubAck(r) = ok(&frame(0x40, &body), Some(V5)) else { panic!("not a PUBACK") };
    assert_eq!(r.properties.user_properties.len(), 2);
}

#[test]
fn property_not_allowed_in_the_packet_is_malformed() {
    // Topic Alias in PUBACK.
    let mut body = vec![0, 1, 0];
    body.extend(prop_list(&[0x23, 0, 1]));
    let e = err(&frame(0x40, &body), Some(V5));
    assert_eq!(e, DecodeError::PropertyNotAllowed { id: 0x23, packet: "PUBACK/PUBREC/PUBREL/PUBCOMP" });
    assert_eq!(e.reason_code(), ReasonCode(0x81));
}

/// The bytes of one property with a valid value, or `None` for an identifier MQTT 5 leaves undefined.
fn one_property(id: u8) -> Vec<u8> {
    let value: &[u8] = match id {
        0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => &[1],
        0x13 | 0x21 | 0x22 | 0x23 => &[0, 1],
        0x02 | 0x11 | 0x18 | 0x27 => &[0, 0, 0, 1],
        0x0B => &[1],
        0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => &[0, 1, b'a'],
        0x09 | 0x16 => &[0, 1, 0xAB],
        0x26 => &[0, 1, b'k', 0, 1, b'v'],
        _ => &[0],
    };
    let mut out = vec![id];
    out.extend_from_slice(value);
    out
}

/// A v5 packet with the property list `props` in the place of `ctx`.
fn packet_with_props(ctx: Ctx, props: &[u8]) -> Vec<u8> {
    let p = prop_list(props);
    let cat = |parts: &[&[u8]]| parts.concat();
    let connect_head: &[u8] = &[0, 4, b'M', b'Q', b'T', b'T', 5];
    match ctx {
        Ctx::Connect => frame(0x10, &cat(&[connect_head, &[0x02, 0, 60], &p, &[0, 1, b'c']])),
        Ctx::Will => frame(0x10, &cat(&[connect_head, &[0x06, 0, 60, 0], &[0, 1, b'c'], &p, &[0, 1, b't', 0, 1, b'x']])),
        Ctx::ConnAck => frame(0x20, &cat(&[&[0, 0], &p])),
        Ctx::Publish => frame(0x30, &cat(&[&[0, 1, b't'], &p, b"payload"])),
        Ctx::PubResp => frame(0x40, &cat(&[&[0, 1, 0], &p])),
        Ctx::Subscribe => frame(0x82, &cat(&[&[0, 1], &p, &[0, 1, b'a', 1]])),
        Ctx::SubAck => frame(0x90, &cat(&[&[0, 1], &p, &[0]])),
        Ctx::Unsubscribe => frame(0xA2, &cat(&[&[0, 1], &p, &[0, 1, b'a']])),
        Ctx::UnsubAck => frame(0xB0, &cat(&[&[0, 1], &p, &[0]])),
        Ctx::Disconnect => frame(0xE0, &cat(&[&[0], &p])),
        Ctx::Auth => frame(0xF0, &cat(&[&[0x18], &p])),
    }
}

#[test]
fn each_packet_allows_exactly_the_properties_of_the_specification() {
    for ctx in ALL_CTX {
        assert!(matches!(decode(&mut BytesMut::from(&packet_with_props(ctx, &[])[..]), Some(V5), MAX), Ok(Some(_))));
        for id in 0u8..0x80 {
            let mut props = one_property(id);
            if ctx == Ctx::Connect && id == 0x16 {
                // Authentication Data needs an Authentication Method.
                props.splice(0..0, one_property(0x15));
            }
            let mut buf = BytesMut::from(&packet_with_props(ctx, &props)[..]);
            let got = decode(&mut buf, Some(V5), MAX);
            if ctx.allows(id) {
                assert!(matches!(got, Ok(Some(_))), "{ctx:?} should allow 0x{id:02X}: {got:?}");
                assert!(buf.is_empty());
            } else {
                let e = got.expect_err("property should be refused");
                if KNOWN_IDS.contains(&id) {
                    assert!(matches!(e, DecodeError::PropertyNotAllowed { id: i, .. } if i == id), "{ctx:?} 0x{id:02X}: {e:?}");
                } else {
                    assert_eq!(e, DecodeError::UnknownProperty(id), "{ctx:?}");
                }
                assert_eq!(e.reason_code(), ReasonCode(0x81), "{ctx:?} 0x{id:02X}");
            }
        }
    }
}

#[test]
fn property_values_are_checked() {
    let cases: &[(&[u8], u8)] = &[
        (&[0x01, 2], 0x82),               // Payload Format Indicator 2
        (&[0x23, 0, 0], 0x82),            // Topic Alias 0
        (&[0x0B, 0], 0x82),               // Subscription Identifier 0
        (&[0x08, 0, 1, b'#'], 0x82),      // Response Topic with a wildcard
        (&[0x03, 0, 2, 0xC3, 0x28], 0x81), // Content Type not UTF-8
        (&[0x02, 0, 0], 0x81),            // Message Expiry Interval cut short
    ];
    for &(props, code) in cases {
        let e = err(&packet_with_props(Ctx::Publish, props), Some(V5));
        assert_eq!(e.reason_code(), ReasonCode(code), "{props:02X?}: {e:?}");
    }
    // CONNECT with Authentication Data but no Authentication Method.
    let e = err(&packet_with_props(Ctx::Connect, &one_property(0x16)), Some(V5));
    assert_eq!(e.reason_code(), ReasonCode(0x82));
}

#[test]
fn packet_over_the_maximum_size_is_refused_from_its_header() {
    // Only the fixed header: a PUBLISH of 128 + 3 bytes, with a limit of 100.
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x01][..]);
    let e = decode(&mut buf, Some(V311), 100).unwrap_err();
    assert_eq!(e, DecodeError::PacketTooLarge { size: 131, max: 100 });
    assert_eq!(e.reason_code(), ReasonCode(0x95));
    // The largest remaining length, with a limit of 1 MiB.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(decode(&mut buf, Some(V5), MAX).unwrap_err().reason_code(), ReasonCode(0x95));
}

#[test]
fn remaining_length_of_five_bytes_is_malformed() {
    for bytes in [&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..], &[0x30, 0x80, 0x80, 0x80, 0x80][..]] {
        let e = err(bytes, Some(V311));
        assert_eq!(e, DecodeError::BadRemainingLength);
        assert_eq!(e.reason_code(), ReasonCode(0x81));
    }
    // Not minimally encoded.
    assert_eq!(err(&[0xC0, 0x80, 0x00], Some(V311)).reason_code(), ReasonCode(0x81));
}

#[test]
fn subscribe_without_filters_is_a_protocol_error() {
    let e = err(&[0x82, 2, 0, 1], Some(V311));
    assert!(matches!(e, DecodeError::Protocol(_)), "{e:?}");
    assert_eq!(e.reason_code(), ReasonCode(0x82));
    assert_eq!(err(&[0x82, 3, 0, 1, 0], Some(V5)).reason_code(), ReasonCode(0x82));
    assert_eq!(err(&[0xA2, 2, 0, 1], Some(V311)).reason_code(), ReasonCode(0x82));
}

#[test]
fn wildcard_in_publish_topic_is_an_invalid_topic_name() {
    for topic in [&b"a/#"[..], b"+", b"a/+/b"] {
        let mut body = vec![0, topic.len() as u8];
        body.extend_from_slice(topic);
        let e = err(&frame(0x30, &body), Some(V311));
        assert!(matches!(e, DecodeError::BadTopicName(_)), "{e:?}");
        assert_eq!(e.reason_code(), ReasonCode(0x90));
    }
    // An empty topic name needs MQTT 5 (and a Topic Alias).
    assert_eq!(err(&frame(0x30, &[0, 0]), Some(V311)).reason_code(), ReasonCode(0x90));
    assert!(matches!(ok(&frame(0x30, &[0, 0, 3, 0x23, 0, 1]), Some(V5)), Packet::Publish(_)));
}

#[test]
fn unsupported_protocol_level_is_refused() {
    for (name, level) in [(&b"MQTT"[..], 6u8), (b"MQTT", 3), (b"MQIsdp", 4), (b"MQTX", 4)] {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend([level, 0x02, 0, 60, 0, 1, b'c']);
        let e = err(&frame(0x10, &body), None);
        assert!(matches!(e, DecodeError::UnsupportedProtocol { .. }), "{e:?}");
        assert_eq!(e.reason_code(), ReasonCode(0x84));
    }
}

#[test]
fn invalid_utf8_is_malformed() {
    for topic in [&[0xC3, 0x28][..], &[0xED, 0xA0, 0x80], &[b'a', 0, b'b'], &[0xFF]] {
        let mut body = vec![0, topic.len() as u8];
        body.extend_from_slice(topic);
        let e = err(&frame(0x30, &body), Some(V311));
        assert_eq!(e, DecodeError::BadUtf8, "{topic:02X?}");
        assert_eq!(e.reason_code(), ReasonCode(0x81));
    }
}

#[test]
fn zero_packet_identifier_is_malformed() {
    let cases: &[(&[u8], Protocol)] = &[
        (&[0x40, 2, 0, 0], V311),
        (&[0x62, 2, 0, 0], V5),
        (&[0x32, 5, 0, 1, b'a', 0, 0], V311),
        (&[0x82, 6, 0, 0, 0, 1, b'a', 0], V311),
        (&[0xB0, 3, 0, 0, 0], V5),
    ];
    for &(bytes, v) in cases {
        let e = err(bytes, Some(v));
        assert!(matches!(e, DecodeError::ZeroPacketId { .. }), "{bytes:02X?}: {e:?}");
        assert_eq!(e.reason_code(), ReasonCode(0x81));
    }
}

#[test]
fn auth_is_reserved_before_mqtt_5() {
    assert_eq!(err(&[0xF0, 0], Some(V311)).reason_code(), ReasonCode(0x81));
    assert_eq!(ok(&[0xF0, 0], Some(V5)), Packet::Auth(Auth::default()));
}

#[test]
fn reason_codes_are_checked_against_the_packet() {
    // PUBACK 0x92 (only PUBREL/PUBCOMP), PUBREL 0x10, DISCONNECT 0x01, CONNACK 0x01 in v5, CONNACK 6 in v3.
    let cases: &[(&[u8], Protocol)] = &[
        (&[0x40, 3, 0, 1, 0x92], V5),
        (&[0x62, 3, 0, 1, 0x10], V5),
        (&[0xE0, 1, 0x01], V5),
        (&[0x20, 3, 0, 0x01, 0], V5),
        (&[0x20, 2, 0, 6], V311),
        (&[0x90, 3, 0, 1, 0x83], V311),
    ];
    for &(bytes, v) in cases {
        let e = err(bytes, Some(v));
        assert!(matches!(e, DecodeError::BadReasonCode { .. }), "{bytes:02X?}: {e:?}");
        assert_eq!(e.reason_code(), ReasonCode(0x82));
    }
}
