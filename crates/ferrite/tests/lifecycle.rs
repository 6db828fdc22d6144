//! Black-box tests of AWS IoT lifecycle events: presence (connected/disconnected with the
//! disconnect reason) and subscription events, as a subscriber on `$aws/events/#` sees them.

mod common;

use common::{Raw, Server, connect_packet};
use mqtt::{Packet, Protocol, QoS, Subscribe, SubscriptionOptions, Unsubscribe};
use serde_json::Value;

fn subscribe(raw: &mut Raw, id: u16, filters: &[&str]) {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: id,
        filters: filters.iter().map(|f| (f.to_string(), SubscriptionOptions { qos: QoS::AtMostOnce, ..Default::default() })).collect(),
        ..Default::default()
    }));
    assert!(matches!(raw.recv(), Some(Packet::SubAck(_))));
}

/// The next event about another client, as (topic, JSON payload).
fn event(watcher: &mut Raw) -> (String, Value) {
    loop {
        match watcher.recv() {
            Some(Packet::Publish(p)) if !p.topic.ends_with("/watcher") => {
                return (p.topic.to_string(), serde_json::from_slice(&p.payload).expect("JSON event"));
            }
            Some(_) => {}
            None => panic!("no lifecycle event arrived"),
        }
    }
}

#[test]
fn presence_and_subscription_events_follow_a_client() {
    let server = Server::start();
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V5, "watcher");
    subscribe(&mut watcher, 1, &["$aws/events/#"]);

    let (mut device, _) = Raw::connect(server.port, Protocol::V311, "device-7");
    let (topic, e) = event(&mut watcher);
    assert_eq!(topic, "$aws/events/presence/connected/device-7");
    assert_eq!(e["clientId"], "device-7");
    assert_eq!(e["eventType"], "connected");
    assert_eq!(e["ipAddress"], "127.0.0.1");
    assert!(e["timestamp"].as_i64().unwrap_or(0) > 1_700_000_000_000);
    let session = e["sessionIdentifier"].as_str().unwrap_or("").to_string();
    assert!(!session.is_empty());
    let version = e["versionNumber"].clone();

    subscribe(&mut device, 2, &["a/b", "c/#"]);
    let (topic, e) = event(&mut watcher);
    assert_eq!(topic, "$aws/events/subscriptions/subscribed/device-7");
    assert_eq!(e["topics"], serde_json::json!(["a/b", "c/#"]));
    assert_eq!(e["sessionIdentifier"], session.as_str());

    device.send(&Packet::Unsubscribe(Unsubscribe { packet_id: 3, filters: vec!["a/b".into(), "never".into()], ..Default::default() }));
    assert!(matches!(device.recv(), Some(Packet::UnsubAck(_))));
    let (topic, e) = event(&mut watcher);
    assert_eq!(topic, "$aws/events/subscriptions/unsubscribed/device-7");
    assert_eq!(e["topics"], serde_json::json!(["a/b"]));

    device.send(&Packet::Disconnect(Default::default()));
    let (topic, e) = event(&mut watcher);
    assert_eq!(topic, "$aws/events/presence/disconnected/device-7");
    assert_eq!(e["clientInitiatedDisconnect"], true);
    assert_eq!(e["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(e["versionNumber"], version, "connect and disconnect share a version number");

    // A dropped socket and a takeover are reported as such.
    let (lost, _) = Raw::connect(server.port, Protocol::V311, "flaky");
    let _ = event(&mut watcher);
    drop(lost);
    let (_, e) = event(&mut watcher);
    assert_eq!((e["clientInitiatedDisconnect"].clone(), e["disconnectReason"].clone()), (Value::Bool(false), Value::from("CONNECTION_LOST")));
    let (_first, _) = Raw::connect(server.port, Protocol::V311, "twin");
    let _ = event(&mut watcher);
    let (_second, _) = Raw::connect_with(server.port, connect_packet(Protocol::V311, "twin"));
    let mut reasons = Vec::new();
    for _ in 0..2 {
        let (t, e) = event(&mut watcher);
        if t.contains("disconnected") {
            reasons.push(e["disconnectReason"].as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(reasons, vec!["DUPLICATE_CLIENTID"]);
}

#[test]
fn lifecycle_events_can_be_turned_off() {
    let server = Server::start_with(&["mqtt.lifecycle_events=false"]);
    let (mut watcher, _) = Raw::connect(server.port, Protocol::V5, "watcher");
    subscribe(&mut watcher, 1, &["$aws/events/#"]);
    let _device = Raw::connect(server.port, Protocol::V311, "quiet");
    let got = watcher.recv_within(std::time::Duration::from_millis(300));
    assert!(got.is_none(), "an event was published: {got:?}");
}
