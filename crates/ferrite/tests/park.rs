//! Black-box tests of parked connections: plain-TCP clients idle past `mqtt.park_idle_after_ms`
//! give up their task (the `ferrite_mqtt_connections_parked` gauge counts them) and everything
//! still works as if they had not: messages both ways, pings, keep-alive, takeover, wills, a
//! packet split across the parking delay, shutdown.

mod common;

use bytes::{Bytes, BytesMut};
use common::{Raw, Server, connect_packet};
use mqtt::{Packet, Properties, Protocol, PubResp, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions, Will};
use std::time::Duration;

const PARK_SOON: &str = "mqtt.park_idle_after_ms=100";

fn parked(server: &Server, n: u32) {
    server.wait_for_metric("ferrite_mqtt_connections_parked", n as f64);
}

fn subscribe(raw: &mut Raw, filter: &str, qos: QoS) {
    let opts = SubscriptionOptions { qos, ..Default::default() };
    raw.send(&Packet::Subscribe(Subscribe { packet_id: 1, filters: vec![(filter.into(), opts)], properties: Properties::default() }));
    assert!(matches!(raw.recv(), Some(Packet::SubAck(_))), "SUBACK expected");
}

fn publish(topic: &str, qos: QoS, packet_id: u16, payload: &str) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id,
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        ..Default::default()
    })
}

fn disconnect_reason(packets: &[Packet]) -> Option<ReasonCode> {
    packets.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

#[test]
fn parked_clients_exchange_messages_and_park_again() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut sub, _) = Raw::connect(server.port, Protocol::V311, "sub");
    subscribe(&mut sub, "t/#", QoS::AtLeastOnce);
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V311, "pub");
    for round in 1..=3u16 {
        parked(&server, 2);
        publisher.send(&publish("t/x", QoS::AtLeastOnce, round, &format!("m{round}")));
        assert_eq!(publisher.recv(), Some(Packet::PubAck(PubResp::new(round))), "a parked publisher gets its PUBACK");
        match sub.recv() {
            Some(Packet::Publish(p)) => {
                assert_eq!(p.payload, format!("m{round}").as_bytes(), "round {round}");
                sub.send(&Packet::PubAck(PubResp::new(p.packet_id)));
            }
            other => panic!("a parked subscriber must get the message, got {other:?}"),
        }
    }
    parked(&server, 2);
}

#[test]
fn a_parked_connection_answers_pings() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "pinger");
    for _ in 0..2 {
        parked(&server, 1);
        raw.send(&Packet::PingReq);
        assert_eq!(raw.recv(), Some(Packet::PingResp));
    }
}

#[test]
fn a_packet_split_across_the_parking_delay_is_read_whole() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut raw, _) = Raw::connect(server.port, Protocol::V311, "slow-writer");
    parked(&server, 1);
    let mut bytes = BytesMut::new();
    publish("slow/topic", QoS::AtLeastOnce, 7, "payload").encode(&mut bytes, Protocol::V311);
    raw.send_bytes(&bytes[..3]);
    std::thread::sleep(Duration::from_millis(400));
    raw.send_bytes(&bytes[3..]);
    assert_eq!(raw.recv(), Some(Packet::PubAck(PubResp::new(7))));
}

#[test]
fn keep_alive_runs_out_while_parked_and_the_will_is_published() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V311, "watcher");
    subscribe(&mut watcher, "wills/#", QoS::AtMostOnce);
    let mut c = connect_packet(Protocol::V5, "sleepy");
    c.keep_alive = 1;
    c.will = Some(Will { topic: "wills/sleepy".into(), payload: Bytes::from_static(b"gone"), qos: QoS::AtMostOnce, retain: false, properties: Properties::default() });
    let (mut sleepy, _) = Raw::connect_with(server.port, c);
    parked(&server, 2);
    assert_eq!(disconnect_reason(&sleepy.expect_close()), Some(ReasonCode::KEEP_ALIVE_TIMEOUT));
    match watcher.recv() {
        Some(Packet::Publish(p)) => assert_eq!((&*p.topic, &p.payload[..]), ("wills/sleepy", &b"gone"[..])),
        other => panic!("the will must be published, got {other:?}"),
    }
}

#[test]
fn a_takeover_reaches_a_parked_connection() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut first, _) = Raw::connect(server.port, Protocol::V5, "device-1");
    parked(&server, 1);
    let (mut second, _) = Raw::connect(server.port, Protocol::V5, "device-1");
    assert_eq!(disconnect_reason(&first.expect_close()), Some(ReasonCode::SESSION_TAKEN_OVER));
    second.send(&Packet::PingReq);
    assert_eq!(second.recv(), Some(Packet::PingResp));
}

#[test]
fn a_client_vanishing_while_parked_is_cleaned_up_and_its_will_published() {
    let server = Server::start_with(&[PARK_SOON]);
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V311, "watcher");
    subscribe(&mut watcher, "wills/#", QoS::AtMostOnce);
    let mut c = connect_packet(Protocol::V311, "vanishing");
    c.will = Some(Will { topic: "wills/vanishing".into(), payload: Bytes::from_static(b"lost"), qos: QoS::AtMostOnce, retain: false, properties: Properties::default() });
    let (vanishing, _) = Raw::connect_with(server.port, c);
    parked(&server, 2);
    drop(vanishing);
    match watcher.recv() {
        Some(Packet::Publish(p)) => assert_eq!(&*p.topic, "wills/vanishing"),
        other => panic!("the will must be published, got {other:?}"),
    }
    server.wait_for_metric("ferrite_mqtt_connections", 1.0);
}

#[test]
fn shutdown_resumes_parked_connections_to_say_goodbye() {
    let mut server = Server::start_with(&[PARK_SOON]);
    let mut clients: Vec<Raw> = (0..3).map(|i| Raw::connect(server.port, Protocol::V5, &format!("c{i}")).0).collect();
    parked(&server, 3);
    assert_eq!(server.terminate(), Some(0), "ferrite must stop cleanly with parked connections");
    for c in &mut clients {
        assert_eq!(disconnect_reason(&c.expect_close()), Some(ReasonCode::SERVER_SHUTTING_DOWN));
    }
}

#[test]
fn parked_connections_keep_their_place_under_the_connection_limit() {
    let server = Server::start_with(&[PARK_SOON, "mqtt.max_connections=2"]);
    let (mut a, _) = Raw::connect(server.port, Protocol::V5, "a");
    let (_b, _) = Raw::connect(server.port, Protocol::V5, "b");
    parked(&server, 2);
    let (_, refused) = Raw::connect_with(server.port, connect_packet(Protocol::V5, "c"));
    assert_eq!(refused.reason, ReasonCode::SERVER_BUSY, "two parked connections still fill a limit of two");
    a.send(&Packet::Disconnect(Default::default()));
    assert!(a.expect_close().is_empty());
    server.wait_for_metric("ferrite_mqtt_connections", 1.0);
    let (_, ack) = Raw::connect_with(server.port, connect_packet(Protocol::V5, "c"));
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "a parked connection that ended gives its place back");
}

#[test]
fn a_subscriber_with_a_full_in_flight_window_waits_without_spinning() {
    let server = Server::start_with(&[PARK_SOON]);
    let mut c = connect_packet(Protocol::V5, "slow-acker");
    c.properties.receive_maximum = Some(1);
    let (mut sub, _) = Raw::connect_with(server.port, c);
    subscribe(&mut sub, "w/#", QoS::AtLeastOnce);
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V5, "pub");
    for id in 1..=2u16 {
        publisher.send(&publish("w/x", QoS::AtLeastOnce, id, &format!("m{id}")));
        assert!(matches!(publisher.recv(), Some(Packet::PubAck(_))));
    }
    let first = match sub.recv() {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected the first message, got {other:?}"),
    };
    // The second message waits for the first's PUBACK: the subscriber is idle but cannot park.
    let before = server.cpu_secs();
    std::thread::sleep(Duration::from_millis(1500));
    let used = server.cpu_secs() - before;
    assert!(used < 0.5, "the server used {used:.2} s of CPU in 1.5 s while a subscriber waited");
    sub.send(&Packet::PubAck(PubResp::new(first.packet_id)));
    match sub.recv() {
        Some(Packet::Publish(p)) => assert_eq!(p.payload, &b"m2"[..]),
        other => panic!("expected the second message after the PUBACK, got {other:?}"),
    }
}

/// Subscribers park and resume all the time (a 20 ms parking delay, bursts with pauses of up
/// to 60 ms): every QoS 1 message still reaches its subscriber.
#[test]
fn no_qos1_message_is_lost_while_subscribers_park_and_resume() {
    const SUBSCRIBERS: usize = 40;
    const ROUNDS: u16 = 30;
    let server = Server::start_with(&["mqtt.park_idle_after_ms=20"]);
    let readers: Vec<_> = (0..SUBSCRIBERS)
        .map(|i| {
            let (mut sub, _) = Raw::connect(server.port, Protocol::V311, &format!("sub-{i}"));
            subscribe(&mut sub, &format!("s/{i}"), QoS::AtLeastOnce);
            std::thread::spawn(move || {
                let mut got = std::collections::BTreeSet::new();
                while got.len() < ROUNDS as usize {
                    match sub.recv() {
                        Some(Packet::Publish(p)) => {
                            sub.send(&Packet::PubAck(PubResp::new(p.packet_id)));
                            got.insert(String::from_utf8_lossy(&p.payload).to_string());
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                got
            })
        })
        .collect();
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V311, "burst-publisher");
    let mut seen_parked = false;
    for round in 1..=ROUNDS {
        for i in 0..SUBSCRIBERS {
            publisher.send(&publish(&format!("s/{i}"), QoS::AtLeastOnce, round, &format!("m{round}")));
        }
        for _ in 0..SUBSCRIBERS {
            assert!(matches!(publisher.recv(), Some(Packet::PubAck(_))), "PUBACK for round {round}");
        }
        std::thread::sleep(Duration::from_millis(u64::from(round % 4) * 20));
        seen_parked |= server.metric("ferrite_mqtt_connections_parked").is_some_and(|n| n > 0.0);
    }
    for (i, r) in readers.into_iter().enumerate() {
        let got = r.join().expect("reader thread");
        assert_eq!(got.len(), ROUNDS as usize, "subscriber {i} got {} of {ROUNDS} messages", got.len());
    }
    assert!(seen_parked, "subscribers should have parked between bursts");
}
