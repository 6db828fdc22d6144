//! Black-box MQTT 5 feature tests: the real `ferrite` binary driven by the rumqttc v5 client, plus raw packets where a client library cannot send or show what a test needs.
mod common;

use bytes::Bytes;
use common::{Raw, Server, WAIT, connect_packet};
use mqtt::{Connect, Packet, Properties, Protocol, PubResp, ReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::v5::mqttbytes::v5::{
    Filter, LastWill, LastWillProperties, PubAckReason, PublishProperties, RetainForwardRule, SubscribeProperties,
    SubscribeReasonCode, UnsubAckReason,
};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long to watch for something that must NOT happen.
const QUIET: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------------------------
// rumqttc wrapper: one task polls the event loop and forwards incoming packets; the test reads
// them in order, keeping packets it is not looking for yet.

// Test events: matched by value in patterns, so the packet is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Ev {
    Packet(m5::Packet),
    Closed(String),
}

struct Client {
    c: AsyncClient,
    rx: mpsc::UnboundedReceiver<Ev>,
    pending: VecDeque<m5::Packet>,
    closed: Option<String>,
    task: tokio::task::JoinHandle<()>,
    connack: m5::ConnAck,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn opts(server: &Server, id: &str) -> MqttOptions {
    MqttOptions::new(id, "127.0.0.1", server.port)
}

/// Connects and returns once the CONNACK (which must be a success) has arrived.
async fn connect(o: MqttOptions) -> Client {
    let (c, mut el) = AsyncClient::new(o, 64);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ev::Packet(p)).is_err() {
                        break;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    // Stop here: polling again would reconnect.
                    let _ = tx.send(Ev::Closed(e.to_string()));
                    break;
                }
            }
        }
    });
    let connack = match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Ev::Packet(m5::Packet::ConnAck(a)))) => a,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    assert_eq!(connack.code, m5::ConnectReturnCode::Success, "CONNACK {connack:?}");
    Client { c, rx, pending: VecDeque::new(), closed: None, task, connack }
}

fn connack_props(a: &m5::ConnAck) -> m5::ConnAckProperties {
    a.properties.clone().expect("an MQTT 5 CONNACK from Ferrite carries properties")
}

fn topic_of(p: &m5::Publish) -> &str {
    std::str::from_utf8(&p.topic).expect("utf-8 topic")
}

fn payload_of(p: &m5::Publish) -> &str {
    std::str::from_utf8(&p.payload).expect("utf-8 payload")
}

fn pprops(p: &m5::Publish) -> PublishProperties {
    p.properties.clone().unwrap_or_default()
}

impl Client {
    /// The next packet before `deadline`, or `None` (timeout or connection closed).
    async fn recv_until(&mut self, deadline: tokio::time::Instant) -> Option<m5::Packet> {
        if self.closed.is_some() {
            return None;
        }
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(Ev::Packet(p))) => Some(p),
            Ok(Some(Ev::Closed(e))) => {
                self.closed = Some(e);
                None
            }
            Ok(None) => {
                self.closed = Some("event loop task ended".into());
                None
            }
            Err(_) => None,
        }
    }

    /// Waits (up to `wait`) for the first packet `f` accepts, keeping the others for later.
    async fn try_expect<T>(&mut self, wait: Duration, mut f: impl FnMut(&m5::Packet) -> Option<T>) -> Option<T> {
        if let Some(i) = self.pending.iter().position(|p| f(p).is_some()) {
            let p = self.pending.remove(i).unwrap();
            return f(&p);
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(p) = self.recv_until(deadline).await {
            if let Some(t) = f(&p) {
                return Some(t);
            }
            self.pending.push_back(p);
        }
        None
    }

    async fn expect<T>(&mut self, what: &str, f: impl FnMut(&m5::Packet) -> Option<T>) -> T {
        match self.try_expect(WAIT, f).await {
            Some(t) => t,
            None => panic!(
                "no {what} within {WAIT:?} (connection closed: {:?}; other packets: {:?})",
                self.closed, self.pending
            ),
        }
    }

    /// The next PUBLISH delivered to this client.
    async fn next_publish(&mut self) -> m5::Publish {
        self.expect("PUBLISH", |p| match p {
            m5::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// The next PUBLISH if one arrives within `wait`.
    async fn try_next_publish(&mut self, wait: Duration) -> Option<m5::Publish> {
        self.try_expect(wait, |p| match p {
            m5::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Asserts that no PUBLISH arrives within `wait`.
    async fn no_publish_within(&mut self, wait: Duration, why: &str) {
        let got = self.try_next_publish(wait).await;
        assert!(got.is_none(), "{why}: unexpected PUBLISH {got:?}");
    }

    /// Sends one SUBSCRIBE (with an optional subscription identifier) and returns the SUBACK codes.
    async fn subscribe_filters(&mut self, filters: Vec<Filter>, id: Option<usize>) -> Vec<SubscribeReasonCode> {
        match id {
            Some(id) => {
                let props = SubscribeProperties { id: Some(id), user_properties: vec![] };
                self.c.subscribe_many_with_properties(filters, props).await.expect("subscribe")
            }
            None => self.c.subscribe_many(filters).await.expect("subscribe"),
        }
        self.expect("SUBACK", |p| match p {
            m5::Packet::SubAck(a) => Some(a.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// Subscribes one filter and asserts it was granted `qos`.
    async fn subscribe(&mut self, filter: Filter, id: Option<usize>) {
        let qos = filter.qos;
        let codes = self.subscribe_filters(vec![filter], id).await;
        assert_eq!(codes, vec![SubscribeReasonCode::Success(qos)]);
    }

    async fn sub(&mut self, filter: &str, qos: QoS) {
        self.subscribe(Filter::new(filter, qos), None).await;
    }

    /// Publishes; for QoS 1 waits for the PUBACK and returns its reason.
    async fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
        props: Option<PublishProperties>,
    ) -> Option<PubAckReason> {
        let payload: Bytes = payload.into();
        match props {
            Some(p) => self.c.publish_with_properties(topic, qos, retain, payload, p).await.expect("publish"),
            None => self.c.publish(topic, qos, retain, payload).await.expect("publish"),
        }
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(
                self.expect("PUBACK", |p| match p {
                    m5::Packet::PubAck(a) => Some(a.reason),
                    _ => None,
                })
                .await,
            ),
            QoS::ExactlyOnce => panic!("the helper publishes QoS 0 and 1 only"),
        }
    }

    async fn publish1(&mut self, topic: &str, payload: &str) -> PubAckReason {
        self.publish(topic, QoS::AtLeastOnce, false, payload.to_string(), None).await.unwrap()
    }

    /// Waits until the connection is closed (by either side).
    async fn wait_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.closed.is_none() {
            match self.recv_until(deadline).await {
                Some(p) => self.pending.push_back(p),
                None => assert!(self.closed.is_some(), "connection still open after {WAIT:?}"),
            }
        }
    }

    /// Normal DISCONNECT (reason 0x00), then waits for the server to close the connection.
    async fn disconnect(mut self) {
        self.c.disconnect().await.expect("disconnect");
        self.wait_closed().await;
    }

    /// Drops the TCP connection without DISCONNECT (as a crashed client would).
    async fn drop_connection(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw helpers.

fn raw_connect(server: &Server, id: &str, edit: impl FnOnce(&mut Connect)) -> (Raw, mqtt::ConnAck) {
    let mut c = connect_packet(Protocol::V5, id);
    edit(&mut c);
    let (raw, ack) = Raw::connect_with(server.port, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK {ack:?}");
    (raw, ack)
}

fn raw_subscribe(raw: &mut Raw, packet_id: u16, filters: &[(&str, mqtt::QoS)]) -> Vec<ReasonCode> {
    let filters = filters
        .iter()
        .map(|(f, q)| (f.to_string(), mqtt::SubscriptionOptions { qos: *q, ..Default::default() }))
        .collect();
    raw.send(&Packet::Subscribe(mqtt::Subscribe { packet_id, properties: Properties::default(), filters }));
    match raw.recv() {
        Some(Packet::SubAck(a)) => {
            assert_eq!(a.packet_id, packet_id);
            a.reasons
        }
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// The next packet, which must be a PUBLISH if anything arrives within `wait`.
fn raw_publish_within(raw: &mut Raw, wait: Duration) -> Option<mqtt::Publish> {
    match raw.recv_within(wait) {
        Some(Packet::Publish(p)) => Some(p),
        None => None,
        Some(other) => panic!("expected PUBLISH, got {other:?}"),
    }
}

fn raw_publish(raw: &mut Raw) -> mqtt::Publish {
    raw_publish_within(raw, WAIT).expect("no PUBLISH arrived")
}

/// Reads until the server closes the connection; returns the DISCONNECT reason it sent.
fn raw_disconnect_reason(raw: &mut Raw) -> ReasonCode {
    let got = raw.expect_close();
    match got.iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    }) {
        Some(r) => r,
        None => panic!("server closed without a DISCONNECT; got {got:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// CONNACK.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_advertises_maximum_packet_size_topic_alias_maximum_and_receive_maximum() {
    let server = Server::start_with(&[
        "mqtt.max_packet_size_bytes=4096",
        "mqtt.topic_alias_maximum=7",
        "mqtt.receive_maximum=9",
    ]);
    let c = connect(opts(&server, "limits")).await;
    assert!(!c.connack.session_present);
    let p = connack_props(&c.connack);
    assert_eq!(p.max_packet_size, Some(4096), "Maximum Packet Size");
    assert_eq!(p.topic_alias_max, Some(7), "Topic Alias Maximum");
    assert_eq!(p.receive_max, Some(9), "Receive Maximum");
    assert_eq!(p.max_qos, None, "Maximum QoS is absent when QoS 2 is supported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_assigns_a_client_identifier_for_an_empty_one() {
    let server = Server::start();
    let a = connect(opts(&server, "")).await;
    let b = connect(opts(&server, "")).await;
    let id_a = connack_props(&a.connack).assigned_client_identifier.expect("Assigned Client Identifier");
    let id_b = connack_props(&b.connack).assigned_client_identifier.expect("Assigned Client Identifier");
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b, "assigned identifiers must be unique");
    // A client that chose its own identifier is not assigned one.
    let named = connect(opts(&server, "named")).await;
    assert_eq!(connack_props(&named.connack).assigned_client_identifier, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_server_keep_alive_caps_the_requested_keep_alive() {
    let server = Server::start_with(&["mqtt.max_keep_alive_secs=2"]);
    let mut o = opts(&server, "ka");
    o.set_keep_alive(Duration::from_secs(60));
    let c = connect(o).await;
    assert_eq!(connack_props(&c.connack).server_keep_alive, Some(2), "Server Keep Alive");

    // And the server holds the client to it: a client silent for 1.5 × 2 s is disconnected
    // with "Keep Alive timeout", although it asked for 60 s.
    let started = Instant::now();
    let (mut raw, ack) = raw_connect(&server, "ka-raw", |c| c.keep_alive = 60);
    assert_eq!(ack.properties.server_keep_alive, Some(2));
    assert_eq!(raw_disconnect_reason(&mut raw), ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_millis(2500), "disconnected too early: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_caps_session_expiry_at_the_configured_maximum() {
    let server = Server::start_with(&["mqtt.max_session_expiry_secs=10"]);
    let mut o = opts(&server, "se-cap");
    o.set_session_expiry_interval(Some(3600));
    let c = connect(o).await;
    assert_eq!(connack_props(&c.connack).session_expiry_interval, Some(10), "Session Expiry Interval");

    let mut o = opts(&server, "se-ok");
    o.set_session_expiry_interval(Some(5));
    let c = connect(o).await;
    assert_eq!(connack_props(&c.connack).session_expiry_interval.unwrap_or(5), 5, "a granted expiry is not changed");
}

// ---------------------------------------------------------------------------------------------
// Sessions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_start_and_session_present() {
    let server = Server::start();
    let mut publisher = connect(opts(&server, "sp-pub")).await;
    let persistent = || {
        let mut o = opts(&server, "sp");
        o.set_clean_start(false).set_session_expiry_interval(Some(60));
        o
    };

    let mut c = connect(persistent()).await;
    assert!(!c.connack.session_present, "no session existed yet");
    c.sub("sp/t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    let mut c = connect(persistent()).await;
    assert!(c.connack.session_present, "the session (expiry 60 s) must be resumed");
    assert_eq!(publisher.publish1("sp/t", "kept").await, PubAckReason::Success);
    assert_eq!(payload_of(&c.next_publish().await), "kept", "the subscription survived the reconnect");
    c.disconnect().await;

    let mut o = persistent();
    o.set_clean_start(true);
    let c = connect(o).await;
    assert!(!c.connack.session_present, "clean start discards the session");
    assert_eq!(
        publisher.publish1("sp/t", "gone").await,
        PubAckReason::NoMatchingSubscribers,
        "clean start must remove the old session's subscriptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_keeps_queued_messages_then_expires() {
    let server = Server::start();
    let mut publisher = connect(opts(&server, "se-pub")).await;
    let persistent = || {
        let mut o = opts(&server, "se");
        o.set_clean_start(false).set_session_expiry_interval(Some(2));
        o
    };
    let mut c = connect(persistent()).await;
    c.sub("se/t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    // Offline: the message is queued for the session.
    assert_eq!(publisher.publish1("se/t", "while-away").await, PubAckReason::Success);
    let mut c = connect(persistent()).await;
    assert!(c.connack.session_present);
    let p = c.next_publish().await;
    assert_eq!((topic_of(&p), payload_of(&p)), ("se/t", "while-away"));
    c.disconnect().await;
    let left = Instant::now();

    // After the 2 s expiry, the session and its subscription are gone.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(left.elapsed())).await;
    assert_eq!(
        publisher.publish1("se/t", "after-expiry").await,
        PubAckReason::NoMatchingSubscribers,
        "the expired session's subscription must be gone"
    );
    let c = connect(persistent()).await;
    assert!(!c.connack.session_present, "the session expired 2 s after the disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_takeover_disconnects_the_first_connection_with_0x8e() {
    let server = Server::start();
    let (mut first, _) = raw_connect(&server, "takeover", |_| {});
    let second = connect(opts(&server, "takeover")).await;
    assert_eq!(raw_disconnect_reason(&mut first), ReasonCode::SESSION_TAKEN_OVER);
    drop(second);
}

// ---------------------------------------------------------------------------------------------
// Subscriptions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_identifiers_are_delivered_including_overlaps() {
    let server = Server::start();
    let mut s = connect(opts(&server, "si")).await;
    let mut publisher = connect(opts(&server, "si-pub")).await;
    s.subscribe(Filter::new("si/+", QoS::AtLeastOnce), Some(7)).await;
    s.subscribe(Filter::new("marker", QoS::AtLeastOnce), Some(3)).await;

    publisher.publish1("si/a", "one").await;
    let p = s.next_publish().await;
    assert_eq!(payload_of(&p), "one");
    assert_eq!(pprops(&p).subscription_identifiers, vec![7]);

    // Overlapping subscriptions of one session: one delivery carrying both identifiers.
    s.subscribe(Filter::new("si/#", QoS::AtLeastOnce), Some(8)).await;
    publisher.publish1("si/b", "two").await;
    publisher.publish1("marker", "end").await;
    let p = s.next_publish().await;
    assert_eq!(payload_of(&p), "two");
    let ids: BTreeSet<usize> = pprops(&p).subscription_identifiers.into_iter().collect();
    assert_eq!(ids, BTreeSet::from([7, 8]), "both matching subscriptions' identifiers");
    let p = s.next_publish().await;
    assert_eq!(
        (topic_of(&p), payload_of(&p)),
        ("marker", "end"),
        "a single copy of the overlapping message was expected"
    );
    assert_eq!(pprops(&p).subscription_identifiers, vec![3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_suppresses_own_messages() {
    let server = Server::start();
    let mut me = connect(opts(&server, "nl")).await;
    let mut other = connect(opts(&server, "nl-other")).await;
    me.subscribe(Filter { nolocal: true, ..Filter::new("nl/t", QoS::AtLeastOnce) }, None).await;
    me.publish1("nl/t", "own").await;
    other.publish1("nl/t", "other").await;
    let p = me.next_publish().await;
    assert_eq!(payload_of(&p), "other", "own message echoed despite No Local");
    me.no_publish_within(QUIET, "No Local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_as_published_keeps_the_retain_flag_on_live_delivery() {
    let server = Server::start();
    let mut rap = connect(opts(&server, "rap")).await;
    let mut plain = connect(opts(&server, "rap-plain")).await;
    let mut publisher = connect(opts(&server, "rap-pub")).await;
    rap.subscribe(Filter { preserve_retain: true, ..Filter::new("rap/t", QoS::AtLeastOnce) }, None).await;
    plain.sub("rap/t", QoS::AtLeastOnce).await;

    publisher.publish("rap/t", QoS::AtLeastOnce, true, "live", None).await;
    let p = rap.next_publish().await;
    assert_eq!(payload_of(&p), "live");
    assert!(p.retain, "Retain As Published: the retain flag must be kept");
    let p = plain.next_publish().await;
    assert_eq!(payload_of(&p), "live");
    assert!(!p.retain, "without Retain As Published the flag is cleared on live delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_1_2() {
    let server = Server::start();
    let mut publisher = connect(opts(&server, "rh-pub")).await;
    publisher.publish("rh/t", QoS::AtLeastOnce, true, "kept", None).await;
    let with = |rule| Filter { retain_forward_rule: rule, ..Filter::new("rh/t", QoS::AtLeastOnce) };

    // 0: retained messages at every subscribe.
    let mut c0 = connect(opts(&server, "rh0")).await;
    for round in 0..2 {
        c0.subscribe(with(RetainForwardRule::OnEverySubscribe), None).await;
        let p = c0.next_publish().await;
        assert_eq!(payload_of(&p), "kept", "retain handling 0, subscribe #{round}");
        assert!(p.retain, "a retained message sent on subscribe has the retain flag");
    }
    // 1: only when the subscription is new.
    let mut c1 = connect(opts(&server, "rh1")).await;
    c1.subscribe(with(RetainForwardRule::OnNewSubscribe), None).await;
    let p = c1.next_publish().await;
    assert_eq!(payload_of(&p), "kept", "retain handling 1, new subscription");
    assert!(p.retain);
    c1.subscribe(with(RetainForwardRule::OnNewSubscribe), None).await;
    // 2: never.
    let mut c2 = connect(opts(&server, "rh2")).await;
    c2.subscribe(with(RetainForwardRule::Never), None).await;

    // A live marker after all subscriptions: it must be the next thing each client sees.
    publisher.publish1("rh/t", "marker").await;
    let p = c1.next_publish().await;
    assert_eq!(payload_of(&p), "marker", "retain handling 1 sent the retained message to an existing subscription");
    let p = c2.next_publish().await;
    assert_eq!(payload_of(&p), "marker", "retain handling 2 sent a retained message");
    let p = c0.next_publish().await;
    assert_eq!(payload_of(&p), "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_splits_messages_between_members() {
    let server = Server::start();
    let mut m1 = connect(opts(&server, "sh-m1")).await;
    let mut m2 = connect(opts(&server, "sh-m2")).await;
    let mut plain = connect(opts(&server, "sh-plain")).await;
    let mut publisher = connect(opts(&server, "sh-pub")).await;
    m1.sub("$share/g/sh/t", QoS::AtLeastOnce).await;
    m2.sub("$share/g/sh/t", QoS::AtLeastOnce).await;
    plain.sub("sh/t", QoS::AtLeastOnce).await;

    const N: usize = 10;
    let all: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    for m in &all {
        publisher.publish1("sh/t", m).await;
    }
    let mut got_plain = Vec::new();
    for _ in 0..N {
        got_plain.push(payload_of(&plain.next_publish().await).to_string());
    }
    assert_eq!(got_plain, all, "a plain subscriber alongside the group gets every message");

    let (mut got1, mut got2) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + WAIT;
    while got1.len() + got2.len() < N && Instant::now() < deadline {
        if let Some(p) = m1.try_next_publish(Duration::from_millis(50)).await {
            got1.push(payload_of(&p).to_string());
        }
        if let Some(p) = m2.try_next_publish(Duration::from_millis(50)).await {
            got2.push(payload_of(&p).to_string());
        }
    }
    m1.no_publish_within(QUIET, "shared group member 1 got extra messages").await;
    m2.no_publish_within(Duration::from_millis(50), "shared group member 2 got extra messages").await;
    assert!(!got1.is_empty() && !got2.is_empty(), "each member gets a part: {got1:?} / {got2:?}");
    let mut union: Vec<String> = got1.iter().chain(&got2).cloned().collect();
    union.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(union, expected, "together the members get every message exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suback_and_unsuback_reason_codes_per_filter() {
    let server = Server::start();
    let (mut raw, _) = raw_connect(&server, "codes", |_| {});
    let reasons = raw_subscribe(&mut raw, 1, &[("ok/t", mqtt::QoS::AtLeastOnce), ("a/#/b", mqtt::QoS::AtLeastOnce)]);
    assert_eq!(reasons, vec![ReasonCode::GRANTED_QOS1, ReasonCode::TOPIC_FILTER_INVALID]);

    raw.send(&Packet::Unsubscribe(mqtt::Unsubscribe {
        packet_id: 2,
        properties: Properties::default(),
        filters: vec!["ok/t".into(), "never/t".into()],
    }));
    match raw.recv() {
        Some(Packet::UnsubAck(a)) => {
            assert_eq!(a.packet_id, 2);
            assert_eq!(a.reasons, vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]);
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }

    // The same through the client library, for the case a user sees.
    let mut c = connect(opts(&server, "codes-lib")).await;
    c.sub("lib/t", QoS::AtMostOnce).await;
    c.c.unsubscribe("not/subscribed").await.expect("unsubscribe");
    let reasons = c
        .expect("UNSUBACK", |p| match p {
            m5::Packet::UnsubAck(a) => Some(a.reasons.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reasons, vec![UnsubAckReason::NoSubscriptionExisted]);
}

// ---------------------------------------------------------------------------------------------
// Message properties.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_expiry_is_forwarded_with_the_remaining_time() {
    let server = Server::start();
    let mut publisher = connect(opts(&server, "me-pub")).await;
    let mut live = connect(opts(&server, "me-live")).await;
    live.sub("me/t", QoS::AtLeastOnce).await;
    let expiring = |secs| PublishProperties { message_expiry_interval: Some(secs), ..Default::default() };

    publisher.publish("me/t", QoS::AtLeastOnce, false, "live", Some(expiring(60))).await;
    let p = live.next_publish().await;
    let e = pprops(&p).message_expiry_interval.expect("Message Expiry Interval forwarded");
    assert!((1..=60).contains(&e), "remaining expiry {e} must be in 1..=60");

    // A message that waited 2 s in the server is forwarded with about 2 s less.
    let persistent = || {
        let mut o = opts(&server, "me-q");
        o.set_clean_start(false).set_session_expiry_interval(Some(30));
        o
    };
    let mut q = connect(persistent()).await;
    q.sub("me/q", QoS::AtLeastOnce).await;
    q.disconnect().await;
    publisher.publish("me/q", QoS::AtLeastOnce, false, "waited", Some(expiring(10))).await;
    let published = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut q = connect(persistent()).await;
    let p = q.next_publish().await;
    assert_eq!(payload_of(&p), "waited");
    // It waited more than 2 s, so at most 8 s (rounded up) remain.
    let e = pprops(&p).message_expiry_interval.expect("Message Expiry Interval forwarded");
    assert!(
        (1..=8).contains(&e),
        "remaining expiry {e} after {:.1} s of an original 10 s (must be reduced by the time spent waiting)",
        published.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_message_is_not_delivered_to_a_returning_session() {
    let server = Server::start();
    let mut publisher = connect(opts(&server, "mx-pub")).await;
    let persistent = || {
        let mut o = opts(&server, "mx");
        o.set_clean_start(false).set_session_expiry_interval(Some(30));
        o
    };
    let mut c = connect(persistent()).await;
    c.sub("mx/t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    let short = PublishProperties { message_expiry_interval: Some(1), ..Default::default() };
    publisher.publish("mx/t", QoS::AtLeastOnce, false, "short-lived", Some(short)).await;
    publisher.publish1("mx/t", "no-expiry").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut c = connect(persistent()).await;
    assert!(c.connack.session_present);
    let p = c.next_publish().await;
    assert_eq!(payload_of(&p), "no-expiry", "a message whose 1 s expiry ran out while queued was delivered");
    assert_eq!(pprops(&p).message_expiry_interval, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_and_content_properties_are_forwarded_intact() {
    let server = Server::start();
    let mut s = connect(opts(&server, "props")).await;
    let mut publisher = connect(opts(&server, "props-pub")).await;
    s.sub("props/t", QoS::AtLeastOnce).await;
    let user = vec![
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "2".to_string()),
        ("a".to_string(), "3".to_string()),
    ];
    let sent = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("props/reply".into()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr\xff")),
        user_properties: user.clone(),
        ..Default::default()
    };
    publisher.publish("props/t", QoS::AtLeastOnce, false, r#"{"x":1}"#, Some(sent)).await;
    let p = s.next_publish().await;
    assert_eq!(payload_of(&p), r#"{"x":1}"#);
    let got = pprops(&p);
    assert_eq!(got.payload_format_indicator, Some(1), "Payload Format Indicator");
    assert_eq!(got.content_type.as_deref(), Some("application/json"), "Content Type");
    assert_eq!(got.response_topic.as_deref(), Some("props/reply"), "Response Topic");
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x00\x01corr\xff"[..]), "Correlation Data");
    assert_eq!(got.user_properties, user, "User Properties, in order, duplicates kept");
}

// ---------------------------------------------------------------------------------------------
// Topic aliases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_topic_alias_is_resolved_for_subscribers() {
    let server = Server::start();
    let mut s = connect(opts(&server, "ta-sub")).await;
    let mut publisher = connect(opts(&server, "ta-pub")).await;
    s.sub("ta/in", QoS::AtLeastOnce).await;
    let alias = || PublishProperties { topic_alias: Some(1), ..Default::default() };
    assert_eq!(
        publisher.publish("ta/in", QoS::AtLeastOnce, false, "first", Some(alias())).await,
        Some(PubAckReason::Success)
    );
    assert_eq!(
        publisher.publish("", QoS::AtLeastOnce, false, "second", Some(alias())).await,
        Some(PubAckReason::Success)
    );
    for payload in ["first", "second"] {
        let p = s.next_publish().await;
        assert_eq!((topic_of(&p), payload_of(&p)), ("ta/in", payload));
        assert_eq!(pprops(&p).topic_alias, None, "the publisher's alias is not forwarded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_topic_alias_for_a_client_that_allows_them() {
    let server = Server::start();
    let (mut raw, _) = raw_connect(&server, "ta-out", |c| c.properties.topic_alias_maximum = Some(4));
    assert_eq!(raw_subscribe(&mut raw, 1, &[("ta/out", mqtt::QoS::AtMostOnce)]), vec![ReasonCode::SUCCESS]);
    let mut publisher = connect(opts(&server, "ta-out-pub")).await;
    publisher.publish1("ta/out", "one").await;
    publisher.publish1("ta/out", "two").await;

    let first = raw_publish(&mut raw);
    assert_eq!((&*first.topic, &first.payload[..]), ("ta/out", &b"one"[..]));
    let second = raw_publish(&mut raw);
    assert_eq!(&second.payload[..], b"two");
    let alias = second.properties.topic_alias.expect("the second message to the same topic carries a Topic Alias");
    assert!((1..=4).contains(&alias), "alias {alias} beyond the client's Topic Alias Maximum 4");
    assert_eq!(&*second.topic, "", "with an established alias the topic name is sent empty");
    assert_eq!(first.properties.topic_alias, Some(alias), "the alias must be set up by the first message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alias_above_the_maximum_gets_disconnect_0x94() {
    let server = Server::start_with(&["mqtt.topic_alias_maximum=2"]);
    let (mut raw, ack) = raw_connect(&server, "ta-bad", |_| {});
    assert_eq!(ack.properties.topic_alias_maximum, Some(2));
    raw.send(&Packet::Publish(mqtt::Publish {
        topic: "ta/x".into(),
        properties: Properties { topic_alias: Some(3), ..Default::default() },
        payload: Bytes::from_static(b"x"),
        ..Default::default()
    }));
    assert_eq!(raw_disconnect_reason(&mut raw), ReasonCode::TOPIC_ALIAS_INVALID);
}

// ---------------------------------------------------------------------------------------------
// Flow control toward the client.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_maximum_limits_unacknowledged_publishes_to_the_client() {
    let server = Server::start();
    let (mut raw, _) = raw_connect(&server, "rm", |c| c.properties.receive_maximum = Some(2));
    assert_eq!(raw_subscribe(&mut raw, 1, &[("rm/t", mqtt::QoS::AtLeastOnce)]), vec![ReasonCode::GRANTED_QOS1]);
    let mut publisher = connect(opts(&server, "rm-pub")).await;
    for i in 0..5 {
        publisher.publish1("rm/t", &format!("m{i}")).await;
    }
    let a = raw_publish(&mut raw);
    let b = raw_publish(&mut raw);
    assert_eq!((&a.payload[..], &b.payload[..]), (&b"m0"[..], &b"m1"[..]));
    assert_eq!((a.qos, b.qos), (mqtt::QoS::AtLeastOnce, mqtt::QoS::AtLeastOnce));
    if let Some(p) = raw_publish_within(&mut raw, QUIET) {
        panic!("a third QoS 1 PUBLISH arrived with 2 unacknowledged and Receive Maximum 2: {p:?}");
    }
    raw.send(&Packet::PubAck(PubResp::new(a.packet_id)));
    let c = raw_publish(&mut raw);
    assert_eq!(&c.payload[..], b"m2", "acknowledging one must release the next");
    if let Some(p) = raw_publish_within(&mut raw, QUIET) {
        panic!("more than 2 unacknowledged: {p:?}");
    }
    raw.send(&Packet::PubAck(PubResp::new(b.packet_id)));
    raw.send(&Packet::PubAck(PubResp::new(c.packet_id)));
    let d = raw_publish(&mut raw);
    let e = raw_publish(&mut raw);
    assert_eq!((&d.payload[..], &e.payload[..]), (&b"m3"[..], &b"m4"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_packet_size_of_the_client_is_respected() {
    let server = Server::start();
    let (mut raw, _) = raw_connect(&server, "mps", |c| c.properties.maximum_packet_size = Some(100));
    assert_eq!(raw_subscribe(&mut raw, 1, &[("mps/t", mqtt::QoS::AtLeastOnce)]), vec![ReasonCode::GRANTED_QOS1]);
    let mut publisher = connect(opts(&server, "mps-pub")).await;
    publisher.publish1("mps/t", &"x".repeat(500)).await;
    publisher.publish1("mps/t", "small").await;
    let p = raw_publish(&mut raw);
    assert_eq!(&p.payload[..], b"small", "a PUBLISH larger than the client's Maximum Packet Size was sent");
    raw.send(&Packet::PubAck(PubResp::new(p.packet_id)));
    if let Some(p) = raw_publish_within(&mut raw, QUIET) {
        panic!("unexpected PUBLISH of {} bytes payload", p.payload.len());
    }
}

// ---------------------------------------------------------------------------------------------
// Wills.

fn will_opts(server: &Server, id: &str, payload: &str, delay: Option<u32>) -> MqttOptions {
    let mut o = opts(server, id);
    let props = LastWillProperties {
        delay_interval: delay,
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        user_properties: vec![],
    };
    o.set_last_will(LastWill::new(format!("will/{id}"), payload, QoS::AtLeastOnce, false, Some(props)));
    o.set_clean_start(false).set_session_expiry_interval(Some(10));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_reconnect_in_time_suppresses_the_will() {
    let server = Server::start();
    let mut watcher = connect(opts(&server, "wd-watch")).await;
    watcher.sub("will/#", QoS::AtLeastOnce).await;
    let w = connect(will_opts(&server, "wd-back", "should-not-appear", Some(2))).await;
    w.drop_connection().await;
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let w = connect(will_opts(&server, "wd-back", "should-not-appear", Some(2))).await;
    assert!(dropped.elapsed() < Duration::from_secs(1), "test setup: reconnect took too long");
    assert!(w.connack.session_present);
    // Wait past the will delay (2 s) plus margin.
    watcher.no_publish_within(Duration::from_millis(3000), "the client reconnected within the will delay").await;
    w.disconnect().await;
    watcher.no_publish_within(QUIET, "a normal DISCONNECT discards the will").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_elapsed_publishes_the_will() {
    let server = Server::start();
    let mut watcher = connect(opts(&server, "wd-watch")).await;
    watcher.sub("will/#", QoS::AtLeastOnce).await;
    let w = connect(will_opts(&server, "wd-gone", "gone", Some(2))).await;
    w.drop_connection().await;
    let dropped = Instant::now();
    let p = watcher.next_publish().await;
    let after = dropped.elapsed();
    assert_eq!((topic_of(&p), payload_of(&p)), ("will/wd-gone", "gone"));
    assert!(after >= Duration::from_millis(1500), "will published after {after:?}, before its 2 s delay");
    assert!(after <= Duration::from_secs(6), "will published only after {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_will_publishes_it_and_normal_disconnect_does_not() {
    let server = Server::start();
    let mut watcher = connect(opts(&server, "dw-watch")).await;
    watcher.sub("will/#", QoS::AtLeastOnce).await;

    let normal = connect(will_opts(&server, "dw-normal", "normal", None)).await;
    normal.disconnect().await;

    let (mut raw, _) = raw_connect(&server, "dw-with", |c| {
        c.will = Some(mqtt::Will {
            topic: "will/dw-with".into(),
            payload: Bytes::from_static(b"with-will"),
            qos: mqtt::QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        })
    });
    raw.send(&Packet::Disconnect(mqtt::Disconnect { reason: ReasonCode::DISCONNECT_WITH_WILL, ..Default::default() }));
    raw.expect_close();

    let p = watcher.next_publish().await;
    assert_eq!(
        (topic_of(&p), payload_of(&p)),
        ("will/dw-with", "with-will"),
        "the first will seen must be the one of DISCONNECT 0x04 (a normal DISCONNECT discards the will)"
    );
    watcher.no_publish_within(QUIET, "a normal DISCONNECT discards the will").await;
}

// ---------------------------------------------------------------------------------------------
// Server-side DISCONNECT reasons and QoS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_larger_than_the_maximum_gets_disconnect_0x95() {
    let server = Server::start_with(&["mqtt.max_packet_size_bytes=128"]);
    let (mut raw, ack) = raw_connect(&server, "big", |_| {});
    assert_eq!(ack.properties.maximum_packet_size, Some(128));
    raw.send(&Packet::Publish(mqtt::Publish {
        topic: "big/t".into(),
        payload: Bytes::from(vec![b'x'; 500]),
        ..Default::default()
    }));
    assert_eq!(raw_disconnect_reason(&mut raw), ReasonCode::PACKET_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_publish_beyond_maximum_qos_gets_disconnect_0x9b() {
    let server = Server::start_with(&["mqtt.maximum_qos=1"]);
    let (mut raw, ack) = raw_connect(&server, "q2", |_| {});
    assert_eq!(ack.properties.maximum_qos, Some(1), "CONNACK must advertise Maximum QoS 1");
    raw.send(&Packet::Publish(mqtt::Publish {
        qos: mqtt::QoS::ExactlyOnce,
        topic: "q2/t".into(),
        packet_id: 1,
        payload: Bytes::from_static(b"x"),
        ..Default::default()
    }));
    assert_eq!(raw_disconnect_reason(&mut raw), ReasonCode::QOS_NOT_SUPPORTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_resent_with_dup_is_delivered_exactly_once() {
    let server = Server::start();
    let mut s = connect(opts(&server, "eo")).await;
    s.sub("eo/t", QoS::ExactlyOnce).await;
    let (mut raw, _) = raw_connect(&server, "eo-pub", |_| {});
    let publish = |dup| {
        Packet::Publish(mqtt::Publish {
            dup,
            qos: mqtt::QoS::ExactlyOnce,
            topic: "eo/t".into(),
            packet_id: 7,
            payload: Bytes::from_static(b"once"),
            ..Default::default()
        })
    };
    for dup in [false, true] {
        raw.send(&publish(dup));
        match raw.recv() {
            Some(Packet::PubRec(r)) => {
                assert_eq!(r.packet_id, 7);
                assert!(!r.reason.is_error(), "PUBREC {r:?}");
            }
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    raw.send(&Packet::PubRel(PubResp::new(7)));
    match raw.recv() {
        Some(Packet::PubComp(r)) => assert_eq!((r.packet_id, r.reason), (7, ReasonCode::SUCCESS)),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    raw.send(&Packet::Publish(mqtt::Publish {
        topic: "eo/t".into(),
        payload: Bytes::from_static(b"after"),
        ..Default::default()
    }));

    let p = s.next_publish().await;
    assert_eq!(payload_of(&p), "once");
    assert_eq!(p.qos, QoS::ExactlyOnce);
    let p = s.next_publish().await;
    assert_eq!(payload_of(&p), "after", "the QoS 2 message resent with DUP was delivered twice");
}
