//! Black-box overload tests: a stalled subscriber cannot grow the server's memory or slow other
//! clients; connection rate and publish rate limits hold.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Raw, Server, connect_packet};
use mqtt::{Packet, Protocol, PubResp, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions};
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

fn subscribe(raw: &mut Raw, filter: &str, qos: QoS) {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(filter.into(), SubscriptionOptions { qos, ..Default::default() })],
        ..Default::default()
    }));
    assert!(matches!(raw.recv(), Some(Packet::SubAck(_))));
}

/// Writes `n` QoS 0 publishes of `size` bytes in large batches.
fn flood(raw: &mut Raw, topic: &str, n: usize, size: usize) {
    let payload = Bytes::from(vec![b'x'; size]);
    let mut batch = BytesMut::new();
    for i in 0..n {
        let p = Publish { topic: topic.into(), payload: payload.clone(), ..Default::default() };
        Packet::Publish(p).encode(&mut batch, raw.v);
        if i % 256 == 255 || i == n - 1 {
            raw.stream.write_all(&batch).expect("publisher write");
            batch.clear();
        }
    }
}

#[test]
fn a_stalled_subscriber_does_not_grow_memory_or_block_others() {
    let server = Server::start();
    // Stalled: subscribes, then never reads again.
    let (mut stalled, _) = Raw::connect(server.port, Protocol::V311, "stalled");
    subscribe(&mut stalled, "flood", QoS::AtLeastOnce);
    let baseline = server.rss_kib();

    let (mut publisher, _) = Raw::connect(server.port, Protocol::V311, "flooder");
    // 150,000 messages of 1 KiB: 150 MiB offered to a subscriber that reads nothing.
    flood(&mut publisher, "flood", 150_000, 1024);
    // The publisher's own session is unaffected: a ping round trip completes.
    publisher.send(&Packet::PingReq);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match publisher.recv_within(Duration::from_secs(1)) {
            Some(Packet::PingResp) => break,
            _ if Instant::now() > deadline => panic!("the publisher was blocked by the stalled subscriber"),
            _ => {}
        }
    }
    let grown = server.rss_kib().saturating_sub(baseline);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB while 150 MiB were offered to a stalled subscriber");

    // A healthy QoS 1 subscriber still gets every message of a second burst.
    let (mut healthy, _) = Raw::connect(server.port, Protocol::V311, "healthy");
    subscribe(&mut healthy, "burst", QoS::AtLeastOnce);
    for i in 1..=200u16 {
        publisher.send(&Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            topic: "burst".into(),
            packet_id: i,
            payload: Bytes::from(i.to_string()),
            ..Default::default()
        }));
    }
    let mut got = HashSet::new();
    while got.len() < 200 {
        match healthy.recv() {
            Some(Packet::Publish(p)) => {
                got.insert(p.payload.clone());
                healthy.send(&Packet::PubAck(PubResp::new(p.packet_id)));
            }
            Some(_) => {}
            None => panic!("healthy subscriber got only {} of 200", got.len()),
        }
    }
    drop(stalled);
}

#[test]
fn queue_full_policy_disconnect_tells_the_stalled_client_why() {
    let server = Server::start_with(&["mqtt.queue_full=disconnect", "mqtt.max_queued_messages=10", "mqtt.max_inflight_messages=5"]);
    let mut c = connect_packet(Protocol::V5, "slow");
    c.properties.receive_maximum = Some(5);
    let (mut slow, _) = Raw::connect_with(server.port, c);
    subscribe(&mut slow, "q", QoS::AtLeastOnce);
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V5, "pub");
    for i in 1..=30u16 {
        publisher.send(&Packet::Publish(Publish { qos: QoS::AtLeastOnce, topic: "q".into(), packet_id: i, payload: Bytes::from_static(b"m"), ..Default::default() }));
        assert!(matches!(publisher.recv(), Some(Packet::PubAck(_))));
    }
    let packets = slow.expect_close();
    let reason = packets.iter().find_map(|p| if let Packet::Disconnect(d) = p { Some(d.reason) } else { None });
    assert_eq!(reason, Some(ReasonCode::QUOTA_EXCEEDED));
}

#[test]
fn connection_rate_limit_refuses_with_0x9f() {
    let server = Server::start_with(&["mqtt.max_connections_per_sec=3"]);
    let mut refused = 0;
    let mut accepted = 0;
    for i in 0..12 {
        let (_raw, ack) = Raw::connect_with(server.port, connect_packet(Protocol::V5, &format!("c{i}")));
        if ack.reason == ReasonCode::CONNECTION_RATE_EXCEEDED {
            refused += 1;
        } else {
            assert_eq!(ack.reason, ReasonCode::SUCCESS);
            accepted += 1;
        }
    }
    assert!(accepted >= 3, "the burst allowance was not honoured");
    assert!(refused >= 1, "12 connections in a burst at 3/s were all accepted");
}

#[test]
fn publish_rate_limit_slows_a_fast_publisher_without_losing_messages() {
    let server = Server::start_with(&["mqtt.max_publish_per_sec=100"]);
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V311, "fast");
    let started = Instant::now();
    for i in 1..=300u16 {
        publisher.send(&Packet::Publish(Publish { qos: QoS::AtLeastOnce, topic: "t".into(), packet_id: i, payload: Bytes::from_static(b"m"), ..Default::default() }));
    }
    let mut acked = 0;
    while acked < 300 {
        match publisher.recv() {
            Some(Packet::PubAck(_)) => acked += 1,
            Some(_) => {}
            None => panic!("only {acked} of 300 acknowledged"),
        }
    }
    // 300 messages at 100/s with a burst of 100 take at least two seconds; only a lower bound is
    // asserted (a slow machine can only make it longer).
    assert!(started.elapsed() >= Duration::from_millis(1500), "not throttled: {:?}", started.elapsed());
}
