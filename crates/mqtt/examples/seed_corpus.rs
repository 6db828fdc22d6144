//! Writes the fuzzer's seed corpus: one encoded packet of each type for MQTT 3.1, 3.1.1 and 5.0.
//!
//! Usage: `cargo run -p mqtt --example seed_corpus -- fuzz/corpus/decode`
//! (writes `seed-{version}-{packet}` files there, replacing any of the same name).

use bytes::{Bytes, BytesMut};
use mqtt::*;
use std::path::PathBuf;
use std::process::ExitCode;

/// Two User Properties, one of them beyond ASCII.
fn user() -> Vec<(String, String)> {
    vec![("region".into(), "eu-west-1".into()), ("trace".into(), "ä€😀".into())]
}

fn connect(protocol: Protocol) -> Packet {
    let v5 = protocol.is_v5();
    let properties = if v5 {
        Properties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            maximum_packet_size: Some(1 << 20),
            topic_alias_maximum: Some(10),
            request_response_information: Some(1),
            request_problem_information: Some(0),
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"client-first")),
            user_properties: user(),
            ..Default::default()
        }
    } else {
        Properties::default()
    };
    let will_properties = if v5 {
        Properties {
            will_delay_interval: Some(30),
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(600),
            content_type: Some("text/plain".into()),
            response_topic: Some("devices/d1/will/ack".into()),
            correlation_data: Some(Bytes::from_static(&[1, 2, 3, 4])),
            user_properties: user(),
            ..Default::default()
        }
    } else {
        Properties::default()
    };
    Packet::Connect(Box::new(Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: "sensor-42".into(),
        will: Some(Will {
            topic: "devices/sensor-42/status".into(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: will_properties,
        }),
        username: Some("alice".into()),
        password: Some(Bytes::from_static(b"s3cret")),
        properties,
    }))
}

/// One packet of every type for protocol `v` (CONNECT and AUTH are handled by the caller).
fn others(v: Protocol) -> Vec<(&'static str, Packet)> {
    let v5 = v.is_v5();
    let props = |p: Properties| if v5 { p } else { Properties::default() };
    let reason = |r: u8| if v5 { ReasonCode(r) } else { ReasonCode::SUCCESS };
    let acked = props(Properties {
        reason_string: Some("see the logs".into()),
        user_properties: user(),
        ..Default::default()
    });
    let resp = |code: u8| PubResp { packet_id: 7, reason: reason(code), properties: acked.clone() };
    let opts = |qos: QoS| {
        if v5 {
            SubscriptionOptions { qos, no_local: true, retain_as_published: true, retain_handling: 1 }
        } else {
            SubscriptionOptions { qos, ..Default::default() }
        }
    };
    vec![
        (
            "connack",
            Packet::ConnAck(ConnAck {
                session_present: v5,
                // MQTT 3.1.1: a refused connection has no session (return code 5 here).
                reason: if v5 { ReasonCode::SUCCESS } else { ReasonCode::NOT_AUTHORIZED },
                properties: props(Properties {
                    session_expiry_interval: Some(7200),
                    receive_maximum: Some(100),
                    maximum_qos: Some(1),
                    retain_available: Some(1),
                    maximum_packet_size: Some(256 * 1024),
                    assigned_client_identifier: Some("auto-1234".into()),
                    topic_alias_maximum: Some(8),
                    reason_string: Some("welcome".into()),
                    user_properties: user(),
                    wildcard_subscription_available: Some(1),
                    subscription_identifier_available: Some(1),
                    shared_subscription_available: Some(0),
                    server_keep_alive: Some(30),
                    response_information: Some("responses/".into()),
                    server_reference: Some("broker-2.example:1883".into()),
                    authentication_method: Some("SCRAM-SHA-1".into()),
                    authentication_data: Some(Bytes::from_static(b"server-final")),
                    ..Default::default()
                }),
            }),
        ),
        (
            "publish-qos0",
            Packet::Publish(Publish {
                topic: "sensors/kitchen/temperature".into(),
                payload: Bytes::from_static(b"21.5"),
                ..Default::default()
            }),
        ),
        (
            "publish-qos1",
            Packet::Publish(Publish {
                dup: true,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: "$aws/things/t1/shadow/update".into(),
                packet_id: 1,
                properties: props(Properties {
                    payload_format_indicator: Some(1),
                    message_expiry_interval: Some(120),
                    content_type: Some("application/json".into()),
                    response_topic: Some("$aws/things/t1/shadow/update/accepted".into()),
                    correlation_data: Some(Bytes::from_static(b"req-1")),
                    subscription_identifiers: vec![1, 300, 70_000],
                    topic_alias: Some(3),
                    user_properties: user(),
                    ..Default::default()
                }),
                payload: Bytes::from_static(br#"{"state":{"reported":{"on":true}}}"#),
            }),
        ),
        (
            "publish-qos2",
            Packet::Publish(Publish {
                qos: QoS::ExactlyOnce,
                // MQTT 5: an empty topic name with a Topic Alias standing in for it.
                topic: if v5 { "".into() } else { "a/b".into() },
                packet_id: 65_535,
                properties: props(Properties { topic_alias: Some(3), ..Default::default() }),
                payload: Bytes::from_static(&[0, 0xFF, 0x80, 0x7F]),
                ..Default::default()
            }),
        ),
        ("puback", Packet::PubAck(resp(0x10))),
        ("pubrec", Packet::PubRec(resp(0x80))),
        ("pubrel", Packet::PubRel(resp(0x92))),
        ("pubcomp", Packet::PubComp(PubResp::new(9))),
        (
            "subscribe",
            Packet::Subscribe(Subscribe {
                packet_id: 10,
                properties: props(Properties {
                    subscription_identifiers: vec![42],
                    user_properties: user(),
                    ..Default::default()
                }),
                filters: vec![
                    ("sensors/+/temperature".into(), opts(QoS::AtMostOnce)),
                    ("$share/group/alerts/#".into(), opts(QoS::AtLeastOnce)),
                    ("$aws/things/t1/shadow/#".into(), opts(QoS::ExactlyOnce)),
                ],
            }),
        ),
        (
            "suback",
            Packet::SubAck(SubAck {
                packet_id: 10,
                properties: acked.clone(),
                reasons: [0x00, 0x01, 0x02, 0x80].map(ReasonCode).into(),
            }),
        ),
        (
            "unsubscribe",
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 11,
                properties: props(Properties { user_properties: user(), ..Default::default() }),
                filters: vec!["sensors/+/temperature".into(), "$share/group/alerts/#".into()],
            }),
        ),
        (
            "unsuback",
            Packet::UnsubAck(UnsubAck {
                packet_id: 11,
                properties: acked.clone(),
                reasons: if v5 { vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED] } else { Vec::new() },
            }),
        ),
        ("pingreq", Packet::PingReq),
        ("pingresp", Packet::PingResp),
        (
            "disconnect",
            Packet::Disconnect(Disconnect {
                reason: reason(0x04),
                properties: props(Properties {
                    session_expiry_interval: Some(0),
                    reason_string: Some("bye".into()),
                    server_reference: Some("broker-3.example".into()),
                    user_properties: user(),
                    ..Default::default()
                }),
            }),
        ),
    ]
}

/// Every seed: its file name, and the bytes of its packet.
fn seeds() -> Vec<(String, BytesMut)> {
    let mut out = Vec::new();
    let mut add = |version: &str, name: &str, packet: &Packet, v: Protocol| {
        let mut buf = BytesMut::new();
        packet.encode(&mut buf, v);
        out.push((format!("seed-{version}-{name}"), buf));
    };
    add("v31", "connect", &connect(Protocol::V31), Protocol::V31);
    for (version, v) in [("v311", Protocol::V311), ("v5", Protocol::V5)] {
        add(version, "connect", &connect(v), v);
        for (name, packet) in others(v) {
            add(version, name, &packet, v);
        }
    }
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: Properties {
            authentication_method: Some("SCRAM-SHA-1".into()),
            authentication_data: Some(Bytes::from_static(b"client-final")),
            reason_string: Some("continue".into()),
            user_properties: user(),
            ..Default::default()
        },
    });
    add("v5", "auth", &auth, Protocol::V5);
    out
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seed_corpus DIR   (e.g. fuzz/corpus/decode)");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let seeds = seeds();
    for (name, bytes) in &seeds {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("wrote {} seeds to {}", seeds.len(), dir.display());
    ExitCode::SUCCESS
}
