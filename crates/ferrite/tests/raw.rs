//! Black-box protocol-violation tests: raw packets no client library would send, each answered
//! with the right reason code, closing only the offending connection.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Raw, Server, connect_packet};
use mqtt::{Packet, Properties, Protocol, PubResp, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions};
use std::time::{Duration, Instant};

/// The DISCONNECT reason among the packets received before the close.
fn disconnect_reason(packets: &[Packet]) -> Option<ReasonCode> {
    packets.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

fn ping_works(raw: &mut Raw) {
    raw.send(&Packet::PingReq);
    assert_eq!(raw.recv(), Some(Packet::PingResp), "the other connection must be unaffected");
}

#[test]
fn malformed_publish_closes_only_that_connection() {
    let server = Server::start();
    let (mut good, _) = Raw::connect(server.port, Protocol::V5, "good");
    let (mut bad, _) = Raw::connect(server.port, Protocol::V5, "bad");
    // PUBLISH with QoS 3 in the fixed header.
    bad.send_bytes(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01]);
    assert_eq!(disconnect_reason(&bad.expect_close()), Some(ReasonCode::MALFORMED_PACKET));
    ping_works(&mut good);

    let (mut bad3, _) = Raw::connect(server.port, Protocol::V311, "bad3");
    bad3.send_bytes(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01]);
    assert!(bad3.expect_close().is_empty(), "MQTT 3.1.1 has no DISCONNECT from the server");
    ping_works(&mut good);
}

#[test]
fn protocol_violations_get_their_reason_codes() {
    let server = Server::start();
    let cases: Vec<(&str, Vec<u8>, ReasonCode)> = vec![
        ("PUBREL with flags 0", vec![0x60, 0x02, 0x00, 0x01], ReasonCode::MALFORMED_PACKET),
        ("SUBSCRIBE without filters", vec![0x82, 0x03, 0x00, 0x01, 0x00], ReasonCode::PROTOCOL_ERROR),
        ("wildcard in a PUBLISH topic", vec![0x30, 0x04, 0x00, 0x01, b'#', 0x00], ReasonCode::TOPIC_NAME_INVALID),
        ("invalid UTF-8 topic", vec![0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00], ReasonCode::MALFORMED_PACKET),
        ("topic alias 0", vec![0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00, b'x'], ReasonCode::PROTOCOL_ERROR),
        ("duplicate property", vec![0x30, 0x09, 0x00, 0x01, b'a', 0x04, 0x01, 0x00, 0x01, 0x00, b'x'], ReasonCode::PROTOCOL_ERROR),
        ("second CONNECT", {
            let mut b = BytesMut::new();
            Packet::Connect(Box::new(connect_packet(Protocol::V5, "again"))).encode(&mut b, Protocol::V5);
            b.to_vec()
        }, ReasonCode::PROTOCOL_ERROR),
        ("AUTH without an authentication method", vec![0xF0, 0x00], ReasonCode::PROTOCOL_ERROR),
        ("reserved packet type 0", vec![0x00, 0x00], ReasonCode::MALFORMED_PACKET),
        ("remaining length of five bytes", vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], ReasonCode::MALFORMED_PACKET),
        ("QoS 2 alias-less empty topic", vec![0x34, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00], ReasonCode::PROTOCOL_ERROR),
    ];
    for (what, bytes, want) in cases {
        let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "violator");
        raw.send_bytes(&bytes);
        assert_eq!(disconnect_reason(&raw.expect_close()), Some(want), "{what}");
    }
}

#[test]
fn first_packet_must_be_connect() {
    let server = Server::start();
    let mut raw = Raw::open(server.port, Protocol::V311);
    raw.send(&Packet::PingReq);
    assert!(raw.expect_close().is_empty());
}

#[test]
fn unsupported_protocol_level_gets_return_code_1() {
    let server = Server::start();
    let mut raw = Raw::open(server.port, Protocol::V311);
    // CONNECT, protocol name MQTT, level 6.
    raw.send_bytes(&[0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01, b'x']);
    let got = raw.expect_close();
    match got.first() {
        Some(Packet::ConnAck(a)) => assert_eq!(a.reason, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        other => panic!("expected CONNACK 1, got {other:?}"),
    }
}

#[test]
fn malformed_v5_connect_gets_connack_0x81() {
    let server = Server::start();
    let mut raw = Raw::open(server.port, Protocol::V5);
    // CONNECT v5 with the reserved flag bit set.
    raw.send_bytes(&[0x10, 0x0E, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x03, 0x00, 0x3C, 0x00, 0x00, 0x01, b'x']);
    match raw.expect_close().first() {
        Some(Packet::ConnAck(a)) => assert_eq!(a.reason, ReasonCode::MALFORMED_PACKET),
        other => panic!("expected CONNACK 0x81, got {other:?}"),
    }
}

#[test]
fn enhanced_authentication_is_refused_with_bad_method() {
    let server = Server::start();
    let mut c = connect_packet(Protocol::V5, "auth");
    c.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let (mut raw, ack) = Raw::connect_with(server.port, c);
    assert_eq!(ack.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert!(raw.expect_close().is_empty());
}

#[test]
fn idle_socket_is_closed_after_the_connect_timeout() {
    let server = Server::start_with(&["mqtt.connect_timeout_secs=1"]);
    let mut raw = Raw::open(server.port, Protocol::V311);
    let started = Instant::now();
    assert!(raw.expect_close().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout");
}

#[test]
fn garbage_never_takes_the_server_down() {
    let server = Server::start();
    let (mut good, _) = Raw::connect(server.port, Protocol::V5, "survivor");
    // A small deterministic generator (xorshift) of junk, half of it after a valid CONNECT.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..150 {
        let mut junk = Vec::new();
        for _ in 0..(1 + i % 64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk.push(x as u8);
        }
        let mut raw = if i % 2 == 0 {
            Raw::open(server.port, Protocol::V5)
        } else {
            Raw::connect(server.port, Protocol::V5, &format!("junk{i}")).0
        };
        raw.send_bytes(&junk);
    }
    ping_works(&mut good);
    let (mut fresh, ack) = Raw::connect(server.port, Protocol::V311, "fresh");
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    ping_works(&mut fresh);
}

#[test]
fn puback_reports_no_subscribers_and_bad_payload_format() {
    let server = Server::start();
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "pub");
    let mut p = Publish { qos: QoS::AtLeastOnce, topic: "nobody/here".into(), packet_id: 1, payload: Bytes::from_static(b"x"), ..Default::default() };
    raw.send(&Packet::Publish(p.clone()));
    assert_eq!(raw.recv(), Some(Packet::PubAck(PubResp { packet_id: 1, reason: ReasonCode::NO_MATCHING_SUBSCRIBERS, ..Default::default() })));
    p.packet_id = 2;
    p.payload = Bytes::from_static(&[0xFF, 0xFE]);
    p.properties = Properties { payload_format_indicator: Some(1), ..Default::default() };
    raw.send(&Packet::Publish(p));
    assert_eq!(raw.recv(), Some(Packet::PubAck(PubResp { packet_id: 2, reason: ReasonCode::PAYLOAD_FORMAT_INVALID, ..Default::default() })));
}

#[test]
fn sigterm_disconnects_clients_with_0x8b_and_exits_cleanly() {
    let mut server = Server::start();
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "bye");
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![("x".into(), SubscriptionOptions::default())],
        ..Default::default()
    }));
    assert!(matches!(raw.recv(), Some(Packet::SubAck(_))));
    assert_eq!(server.terminate(), Some(0));
    assert_eq!(disconnect_reason(&raw.expect_close()), Some(ReasonCode::SERVER_SHUTTING_DOWN));
}
