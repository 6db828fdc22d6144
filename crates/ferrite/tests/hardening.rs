//! Black-box regression tests of the holes an attacker found (issue "Core hardening"): wills
//! past authorization, forged reserved topics, wildcard client ids widening a grant.

mod common;

use bytes::Bytes;
use common::{Raw, Server, connect_packet};
use mqtt::{Packet, Properties, Protocol, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions, Will};
use std::time::Duration;

/// A loopback policy like a device's: connect as anything, publish and receive only under
/// `dev/${iot:ClientId}/`, subscribe to its own filters and to the reserved topics.
const DEVICE_POLICY: &str = r#"mqtt.local_policy={"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
 {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/dev/${iot:ClientId}/*"},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:*:*:topicfilter/dev/${iot:ClientId}/*","arn:aws:iot:*:*:topicfilter/$aws/*"]},
 {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/$aws/*"}]}"#;

fn subscribe(raw: &mut Raw, filter: &str) -> ReasonCode {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(filter.to_string(), SubscriptionOptions { qos: QoS::AtLeastOnce, ..Default::default() })],
        ..Default::default()
    }));
    match raw.recv() {
        Some(Packet::SubAck(a)) => a.reasons[0],
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn publish(raw: &mut Raw, topic: &str, retain: bool) -> ReasonCode {
    raw.send(&Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        retain,
        topic: topic.into(),
        packet_id: 7,
        payload: Bytes::from_static(b"{\"state\":{\"reported\":{\"x\":1}}}"),
        ..Default::default()
    }));
    match raw.recv() {
        Some(Packet::PubAck(a)) => a.reason,
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// The next PUBLISH within `wait`, acknowledging QoS 1.
fn next_publish(raw: &mut Raw, wait: Duration) -> Option<Publish> {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if let Some(Packet::Publish(p)) = raw.recv_within(deadline - std::time::Instant::now()) {
            if p.qos == QoS::AtLeastOnce {
                raw.send(&Packet::PubAck(mqtt::PubResp::new(p.packet_id)));
            }
            return Some(p);
        }
    }
    None
}

fn with_will(client_id: &str, topic: &str, retain: bool) -> mqtt::Connect {
    let mut c = connect_packet(Protocol::V5, client_id);
    c.will = Some(Will { topic: topic.into(), payload: Bytes::from_static(b"gone"), qos: QoS::AtLeastOnce, retain, properties: Properties::default() });
    c
}

#[test]
fn a_will_on_a_topic_the_policy_forbids_is_refused_at_connect() {
    let server = Server::start_with(&[DEVICE_POLICY]);
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V5, "watcher");
    assert_eq!(subscribe(&mut watcher, "$aws/things/victim/shadow/update/accepted"), ReasonCode(1));

    for (topic, retain) in [("$aws/things/victim/shadow/update", false), ("other/topic", true), ("$aws/events/presence/connected/victim", false)] {
        let (_raw, ack) = Raw::connect_with(server.port, with_will("mallory", topic, retain));
        assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED, "will on {topic}");
    }
    // Its own topic is fine, but never retained on a reserved topic, and a retained will needs
    // iot:RetainPublish (which the policy does not grant).
    let (_raw, ack) = Raw::connect_with(server.port, with_will("mallory", "dev/mallory/status", true));
    assert_eq!(ack.reason, ReasonCode::NOT_AUTHORIZED, "retained will without iot:RetainPublish");
    let (raw, ack) = Raw::connect_with(server.port, with_will("mallory", "dev/mallory/status", false));
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    drop(raw);
    // Nothing reached the victim's shadow.
    assert!(next_publish(&mut watcher, Duration::from_millis(500)).is_none(), "the shadow service took a forged will");
}

#[test]
fn reserved_topics_cannot_be_forged_even_with_iot_star() {
    // The default local policy allows iot:* on *: the reserved-topic table still decides.
    let server = Server::start();
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V5, "watcher");
    assert_eq!(subscribe(&mut watcher, "$aws/#"), ReasonCode(1));
    let (mut mallory, _) = Raw::connect(server.port, Protocol::V5, "mallory");
    let forged = [
        "$aws/things/victim/shadow/update/accepted",
        "$aws/things/victim/shadow/update/delta",
        "$aws/things/victim/shadow/name/cfg/update/documents",
        "$aws/events/presence/connected/victim",
        "$aws/events/thing/victim/deleted",
        "$aws/things/victim/jobs/notify-next",
        "$aws/made-up",
        "$SYS/uptime",
    ];
    for topic in forged {
        assert_eq!(publish(&mut mallory, topic, false), ReasonCode::NOT_AUTHORIZED, "{topic}");
    }
    // (The watcher also sees mallory's own lifecycle events.)
    while let Some(p) = next_publish(&mut watcher, Duration::from_millis(500)) {
        assert!(!forged.contains(&&*p.topic), "a forged message on {} was delivered", p.topic);
    }
    // Requests are allowed: the shadow service answers on accepted, which the watcher sees.
    assert_eq!(publish(&mut mallory, "$aws/things/victim/shadow/update", false), ReasonCode::SUCCESS);
    let mut topics = Vec::new();
    while let Some(p) = next_publish(&mut watcher, Duration::from_secs(3)) {
        topics.push(p.topic.to_string());
        if p.topic.ends_with("/update/accepted") {
            break;
        }
    }
    assert!(topics.contains(&"$aws/things/victim/shadow/update/accepted".to_string()), "{topics:?}");
    // A request is never retained (it would be answered again for every new subscriber).
    assert_eq!(publish(&mut mallory, "$aws/things/victim/shadow/update", true), ReasonCode::NOT_AUTHORIZED);
    // Subscriptions only where the table lets clients subscribe.
    assert_eq!(subscribe(&mut mallory, "$aws/rules/my_rule"), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(subscribe(&mut mallory, "$aws/things/t/defender/metrics/json"), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(subscribe(&mut mallory, "$SYS/#"), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(subscribe(&mut mallory, "$aws/things/+/shadow/update/delta"), ReasonCode(1));
}

#[test]
fn a_client_id_with_mqtt_wildcards_does_not_widen_a_grant() {
    let server = Server::start_with(&[DEVICE_POLICY]);
    let (mut honest, _) = Raw::connect(server.port, Protocol::V5, "alice");
    assert_eq!(subscribe(&mut honest, "dev/alice/#"), ReasonCode(1));
    // With `+` as its client id, `topicfilter/dev/${iot:ClientId}/*` would grant `dev/+/#`.
    let (mut mallory, ack) = Raw::connect(server.port, Protocol::V5, "+");
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert_eq!(subscribe(&mut mallory, "dev/+/#"), ReasonCode::NOT_AUTHORIZED);
    assert_eq!(subscribe(&mut mallory, "dev/+/temp"), ReasonCode::NOT_AUTHORIZED);
}
