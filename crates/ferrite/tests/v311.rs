//! Black-box MQTT 3.1.1 suite: a real client library (`rumqttc`) and the raw-packet client
//! against the real `ferrite` binary, one test per user-visible broker feature.

mod common;

use common::{Raw, Server, WAIT, connect_packet};
use mqtt::{Packet as RawPacket, Protocol, PubResp, ReasonCode, Subscribe, SubscriptionOptions};
use rumqttc::{AsyncClient, ConnAck, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the event-loop task forwards to the test.
enum Ev {
    Packet(Packet),
    /// The connection ended (server closed it, or it failed); the loop has stopped.
    Closed(String),
}

/// A connected `rumqttc` client whose event loop runs in a spawned task; incoming packets come
/// through a channel. Packets a test is not waiting for are kept in a backlog, in order.
struct Client {
    id: String,
    c: AsyncClient,
    rx: mpsc::UnboundedReceiver<Ev>,
    task: JoinHandle<()>,
    backlog: VecDeque<Packet>,
    closed: Option<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects with clean session and default options.
async fn connect(server: &Server, id: &str) -> Client {
    let (c, ack) = connect_with(server, id, |_| {}).await;
    assert_eq!(ack.code, ConnectReturnCode::Success, "{id}: CONNACK");
    c
}

/// Connects with options adjusted by `f`; returns the client and its CONNACK. Panics if the
/// connection fails or no CONNACK comes.
async fn connect_with(server: &Server, id: &str, f: impl FnOnce(&mut MqttOptions)) -> (Client, ConnAck) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", server.port);
    opts.set_keep_alive(Duration::from_secs(30));
    f(&mut opts);
    let (c, mut el) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel();
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
                    let _ = tx.send(Ev::Closed(e.to_string()));
                    break;
                }
            }
        }
    });
    let mut client = Client { id: id.to_string(), c, rx, task, backlog: VecDeque::new(), closed: None };
    let ack = client.expect("CONNACK", |p| match p {
        Packet::ConnAck(a) => Some(a.clone()),
        _ => None,
    })
    .await;
    (client, ack)
}

impl Client {
    /// The next packet for which `f` returns `Some`, skipping (and keeping) others. Panics with
    /// `what` if the connection closes or nothing matching comes within [`WAIT`].
    async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(&Packet) -> Option<T>) -> T {
        if let Some(i) = self.backlog.iter().position(|p| f(p).is_some()) {
            let p = self.backlog.remove(i).expect("index");
            return f(&p).expect("matched");
        }
        if let Some(why) = &self.closed {
            panic!("{}: waiting for {what}, but the connection is closed ({why})", self.id);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => panic!("{}: no {what} within {WAIT:?}; unclaimed: {:?}", self.id, self.backlog),
                Ok(None) => panic!("{}: event loop gone while waiting for {what}", self.id),
                Ok(Some(Ev::Closed(why))) => {
                    self.closed = Some(why.clone());
                    panic!("{}: connection closed ({why}) while waiting for {what}; unclaimed: {:?}", self.id, self.backlog);
                }
                Ok(Some(Ev::Packet(p))) => {
                    if let Some(t) = f(&p) {
                        return t;
                    }
                    if p != Packet::PingResp {
                        self.backlog.push_back(p);
                    }
                }
            }
        }
    }

    /// The next application message delivered to this client.
    async fn next_publish(&mut self) -> Publish {
        self.expect("PUBLISH", |p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for the next message and checks its topic and payload; returns it.
    async fn expect_message(&mut self, topic: &str, payload: &[u8]) -> Publish {
        let p = self.next_publish().await;
        assert_eq!(
            (p.topic.as_str(), &p.payload[..]),
            (topic, payload),
            "{}: unexpected message (payload {:?})",
            self.id,
            String::from_utf8_lossy(&p.payload)
        );
        p
    }

    /// Subscribes and waits for the SUBACK; returns the granted QoS (panics on failure).
    async fn subscribe(&mut self, filter: &str, qos: QoS) -> QoS {
        self.c.subscribe(filter, qos).await.expect("queue SUBSCRIBE");
        let codes = self
            .expect("SUBACK", |p| match p {
                Packet::SubAck(s) => Some(s.return_codes.clone()),
                _ => None,
            })
            .await;
        match codes.as_slice() {
            [SubscribeReasonCode::Success(q)] => *q,
            other => panic!("{}: SUBSCRIBE {filter} refused: {other:?}", self.id),
        }
    }

    /// Unsubscribes and waits for the UNSUBACK.
    async fn unsubscribe(&mut self, filter: &str) {
        self.c.unsubscribe(filter).await.expect("queue UNSUBSCRIBE");
        self.expect("UNSUBACK", |p| matches!(p, Packet::UnsubAck(_)).then_some(())).await;
    }

    /// Publishes and, for QoS 1 and 2, waits until the server has acknowledged it (PUBACK or
    /// PUBCOMP), so the message has been routed when this returns.
    async fn publish(&mut self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        self.c.publish(topic, qos, retain, payload.to_vec()).await.expect("queue PUBLISH");
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await,
            QoS::ExactlyOnce => self.expect("PUBCOMP", |p| matches!(p, Packet::PubComp(_)).then_some(())).await,
        }
    }

    /// Waits until the connection has ended (the server closed it). Packets received before
    /// that stay in the backlog.
    async fn expect_closed(&mut self, wait: Duration) -> String {
        if let Some(why) = &self.closed {
            return why.clone();
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => panic!("{}: connection still open after {wait:?}", self.id),
                Ok(None) => return "event loop gone".into(),
                Ok(Some(Ev::Closed(why))) => {
                    self.closed = Some(why.clone());
                    return why;
                }
                Ok(Some(Ev::Packet(p))) => {
                    if p != Packet::PingResp {
                        self.backlog.push_back(p)
                    }
                }
            }
        }
    }

    /// Sends DISCONNECT and waits for the server to close the connection.
    async fn disconnect(&mut self) {
        self.c.disconnect().await.expect("queue DISCONNECT");
        self.expect_closed(WAIT).await;
    }

    /// Drops the TCP connection without DISCONNECT: aborts the event-loop task and waits until
    /// it is gone (dropping the event loop closes its socket).
    async fn drop_connection(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

fn qos_n(q: QoS) -> u8 {
    q as u8
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if qos_n(a) <= qos_n(b) { a } else { b }
}

// ---------------------------------------------------------------------------------------------
// Publish / subscribe at each QoS.

/// One subscriber and one publisher at the same QoS: the message arrives once, topic and
/// (binary) payload intact, at that QoS.
async fn pubsub_at(qos: QoS) {
    let server = Server::start();
    let mut sub = connect(&server, "sub").await;
    let mut publ = connect(&server, "pub").await;
    assert_eq!(sub.subscribe("qos/test", qos).await, qos, "granted QoS");
    let payload: Vec<u8> = (0u8..=255).chain(b"tail \xff\x00".iter().copied()).collect();
    publ.publish("qos/test", qos, false, &payload).await;
    publ.publish("qos/test", qos, false, b"second").await;
    let p = sub.expect_message("qos/test", &payload).await;
    assert_eq!(p.qos, qos, "delivery QoS");
    assert!(!p.retain, "a live message must not carry the retain flag");
    assert!(!p.dup, "first delivery must not carry DUP");
    // The next message is the second one, not a duplicate of the first.
    let p = sub.expect_message("qos/test", b"second").await;
    assert_eq!(p.qos, qos);
}

#[tokio::test]
async fn publish_subscribe_qos0() {
    pubsub_at(QoS::AtMostOnce).await;
}

#[tokio::test]
async fn publish_subscribe_qos1() {
    pubsub_at(QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn publish_subscribe_qos2() {
    pubsub_at(QoS::ExactlyOnce).await;
}

/// Each subscriber gets each message at min(publish QoS, subscription QoS).
#[tokio::test]
async fn delivery_qos_is_min_of_publish_and_subscription() {
    let server = Server::start();
    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    let mut subs = Vec::new();
    for s in levels {
        let mut c = connect(&server, &format!("sub{}", qos_n(s))).await;
        assert_eq!(c.subscribe("min/qos", s).await, s);
        subs.push((s, c));
    }
    let mut publ = connect(&server, "pub").await;
    for p in levels {
        publ.publish("min/qos", p, false, format!("pub{}", qos_n(p)).as_bytes()).await;
    }
    for (s, c) in &mut subs {
        for p in levels {
            let m = c.expect_message("min/qos", format!("pub{}", qos_n(p)).as_bytes()).await;
            assert_eq!(m.qos, min_qos(p, *s), "published at {p:?}, subscribed at {s:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Topic filters.

/// `+` matches exactly one level (possibly empty), `#` the parent and any number of levels.
#[tokio::test]
async fn wildcards_plus_and_hash() {
    let server = Server::start();
    let mut plus = connect(&server, "plus").await;
    let mut hash = connect(&server, "hash").await;
    let mut publ = connect(&server, "pub").await;
    plus.subscribe("sensors/+/temp", QoS::AtLeastOnce).await;
    hash.subscribe("sensors/#", QoS::AtLeastOnce).await;
    let topics = ["sensors/k/temp", "sensors/k/hum", "sensors/k/x/temp", "sensors", "sensors//temp", "other/k/temp", "sensorsX/k/temp"];
    for t in topics {
        publ.publish(t, QoS::AtLeastOnce, false, t.as_bytes()).await;
    }
    // Same publisher, same QoS: arrival order is publish order, so the sentinel ends the list.
    publ.publish("sensors/end/temp", QoS::AtLeastOnce, false, b"end").await;
    for t in ["sensors/k/temp", "sensors//temp"] {
        plus.expect_message(t, t.as_bytes()).await;
    }
    plus.expect_message("sensors/end/temp", b"end").await;
    for t in ["sensors/k/temp", "sensors/k/hum", "sensors/k/x/temp", "sensors", "sensors//temp"] {
        hash.expect_message(t, t.as_bytes()).await;
    }
    hash.expect_message("sensors/end/temp", b"end").await;
}

/// Topics starting with `$` are not matched by filters starting with a wildcard.
#[tokio::test]
async fn leading_wildcards_do_not_match_dollar_topics() {
    let server = Server::start();
    let mut wild = connect(&server, "wild").await;
    let mut sys = connect(&server, "sys").await;
    let mut publ = connect(&server, "pub").await;
    // (Clients may publish only to the reserved topics AWS IoT lets them: a shadow request is
    // one. Retained `$` topics follow the same rule: broker::retained's unit tests.)
    wild.subscribe("#", QoS::AtLeastOnce).await;
    wild.subscribe("+/things/t/shadow/update", QoS::AtLeastOnce).await;
    sys.subscribe("$aws/things/t/shadow/update", QoS::AtLeastOnce).await;
    publ.publish("$aws/things/t/shadow/update", QoS::AtLeastOnce, false, b"dollar").await;
    publ.publish("n/x", QoS::AtLeastOnce, false, b"plain").await;
    // The `$aws/...` subscriber proves the message was accepted...
    sys.expect_message("$aws/things/t/shadow/update", b"dollar").await;
    // ...but `#` and `+/...` skip it: the first thing they see is the plain topic, once.
    wild.expect_message("n/x", b"plain").await;
    publ.publish("n/x", QoS::AtLeastOnce, false, b"end").await;
    wild.expect_message("n/x", b"end").await;
}

/// A message matching several subscriptions of one client is delivered once, at the highest
/// QoS granted among them (capped by the publish QoS).
#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_highest_qos() {
    let server = Server::start();
    let mut sub = connect(&server, "sub").await;
    let mut publ = connect(&server, "pub").await;
    sub.subscribe("o/+", QoS::AtMostOnce).await;
    sub.subscribe("o/#", QoS::ExactlyOnce).await;
    sub.subscribe("o/t", QoS::AtLeastOnce).await;
    publ.publish("o/t", QoS::ExactlyOnce, false, b"m1").await;
    publ.publish("o/t", QoS::AtLeastOnce, false, b"m2").await;
    publ.publish("o/t", QoS::ExactlyOnce, false, b"end").await;
    let m = sub.expect_message("o/t", b"m1").await;
    assert_eq!(m.qos, QoS::ExactlyOnce, "highest granted QoS");
    let m = sub.expect_message("o/t", b"m2").await;
    assert_eq!(m.qos, QoS::AtLeastOnce, "capped by the publish QoS");
    sub.expect_message("o/t", b"end").await;
}

/// After UNSUBSCRIBE the filter no longer delivers; other subscriptions keep working.
#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = Server::start();
    let mut sub = connect(&server, "sub").await;
    let mut publ = connect(&server, "pub").await;
    sub.subscribe("u/a", QoS::AtLeastOnce).await;
    sub.subscribe("u/b", QoS::AtLeastOnce).await;
    publ.publish("u/a", QoS::AtLeastOnce, false, b"before").await;
    sub.expect_message("u/a", b"before").await;
    sub.unsubscribe("u/a").await;
    publ.publish("u/a", QoS::AtLeastOnce, false, b"after").await;
    publ.publish("u/b", QoS::AtLeastOnce, false, b"still").await;
    sub.expect_message("u/b", b"still").await;
}

// ---------------------------------------------------------------------------------------------
// Retained messages.

/// A retained message reaches later subscribers with the retain flag set; subscribers that
/// were already there when it was published get it with the flag clear.
#[tokio::test]
async fn retained_message_delivered_on_subscribe() {
    let server = Server::start();
    let mut early = connect(&server, "early").await;
    early.subscribe("r/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&server, "pub").await;
    publ.publish("r/t", QoS::AtLeastOnce, true, b"kept").await;
    let live = early.expect_message("r/t", b"kept").await;
    assert!(!live.retain, "3.1.1 [MQTT-3.3.1-9]: retain flag is 0 for established subscribers");

    let mut late = connect(&server, "late").await;
    late.subscribe("r/#", QoS::AtLeastOnce).await;
    let m = late.expect_message("r/t", b"kept").await;
    assert!(m.retain, "retained message sent on subscribe must have the retain flag set");
    assert_eq!(m.qos, QoS::AtLeastOnce);
}

/// A newer retained message replaces the older one: a new subscriber gets only the newest.
#[tokio::test]
async fn retained_message_replaced_by_newer() {
    let server = Server::start();
    let mut publ = connect(&server, "pub").await;
    publ.publish("r/t", QoS::AtLeastOnce, true, b"old").await;
    publ.publish("r/t", QoS::AtLeastOnce, true, b"new").await;
    let mut sub = connect(&server, "sub").await;
    sub.subscribe("r/t", QoS::AtLeastOnce).await;
    let m = sub.expect_message("r/t", b"new").await;
    assert!(m.retain);
    // Nothing else retained on r/t: the next message is a live one.
    publ.publish("r/t", QoS::AtLeastOnce, false, b"live").await;
    let m = sub.expect_message("r/t", b"live").await;
    assert!(!m.retain);
}

/// A retained PUBLISH with an empty payload clears the topic's retained message.
#[tokio::test]
async fn retained_message_cleared_by_empty_payload() {
    let server = Server::start();
    let mut publ = connect(&server, "pub").await;
    publ.publish("r/t", QoS::AtLeastOnce, true, b"gone soon").await;
    publ.publish("r/t", QoS::AtLeastOnce, true, b"").await;
    let mut sub = connect(&server, "sub").await;
    sub.subscribe("r/t", QoS::AtLeastOnce).await;
    // If anything were still retained it would be queued right after the SUBACK, ahead of this.
    publ.publish("r/t", QoS::AtLeastOnce, false, b"live").await;
    let m = sub.expect_message("r/t", b"live").await;
    assert!(!m.retain);
}

// ---------------------------------------------------------------------------------------------
// Will messages.

/// Dropping the TCP connection without DISCONNECT publishes the will.
#[tokio::test]
async fn will_published_when_connection_drops() {
    let server = Server::start();
    let mut watcher = connect(&server, "watcher").await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let (dying, ack) = connect_with(&server, "dying", |o| {
        o.set_last_will(LastWill::new("will/dying", "dying is gone", QoS::AtLeastOnce, false));
    })
    .await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    dying.drop_connection().await;
    let m = watcher.expect_message("will/dying", b"dying is gone").await;
    assert_eq!(m.qos, QoS::AtLeastOnce);
}

/// A clean DISCONNECT discards the will.
#[tokio::test]
async fn will_not_published_after_clean_disconnect() {
    let server = Server::start();
    let mut watcher = connect(&server, "watcher").await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let (mut polite, _) = connect_with(&server, "polite", |o| {
        o.set_last_will(LastWill::new("will/polite", "must not be sent", QoS::AtLeastOnce, false));
    })
    .await;
    polite.disconnect().await;
    // A second client that does drop its connection: its will arrives, and by then the polite
    // client's connection is long settled, so a wrongly published will would have come too.
    let (rude, _) = connect_with(&server, "rude", |o| {
        o.set_last_will(LastWill::new("will/rude", "rude is gone", QoS::AtLeastOnce, false));
    })
    .await;
    rude.drop_connection().await;
    watcher.expect_message("will/rude", b"rude is gone").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut publ = connect(&server, "pub").await;
    publ.publish("will/end", QoS::AtLeastOnce, false, b"end").await;
    watcher.expect_message("will/end", b"end").await;
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// clean_session=false: QoS 1 messages published while the client is away are delivered when
/// it comes back, and the CONNACK says the session was present.
#[tokio::test]
async fn persistent_session_receives_messages_published_while_offline() {
    let server = Server::start();
    let persistent = |o: &mut MqttOptions| {
        o.set_clean_session(false);
    };
    let (mut sub, ack) = connect_with(&server, "durable", persistent).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(!ack.session_present, "first connection has no session");
    sub.subscribe("p/t", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    drop(sub);

    let mut publ = connect(&server, "pub").await;
    publ.publish("p/t", QoS::AtLeastOnce, false, b"m1").await;
    publ.publish("p/t", QoS::AtLeastOnce, false, b"m2").await;

    let (mut sub, ack) = connect_with(&server, "durable", persistent).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(ack.session_present, "CONNACK must report the stored session");
    let m = sub.expect_message("p/t", b"m1").await;
    assert_eq!(m.qos, QoS::AtLeastOnce);
    sub.expect_message("p/t", b"m2").await;
    // The subscription itself survived too.
    publ.publish("p/t", QoS::AtLeastOnce, false, b"m3").await;
    sub.expect_message("p/t", b"m3").await;
}

/// Reconnecting with clean_session=true discards the stored session and what it queued.
#[tokio::test]
async fn clean_session_discards_stored_session() {
    let server = Server::start();
    let (mut sub, _) = connect_with(&server, "durable", |o| {
        o.set_clean_session(false);
    })
    .await;
    sub.subscribe("p/t", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    drop(sub);

    let mut publ = connect(&server, "pub").await;
    publ.publish("p/t", QoS::AtLeastOnce, false, b"queued").await;

    let (mut sub, ack) = connect_with(&server, "durable", |_| {}).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(!ack.session_present, "clean session must start without a session");
    sub.subscribe("p/other", QoS::AtLeastOnce).await;
    publ.publish("p/t", QoS::AtLeastOnce, false, b"not subscribed any more").await;
    publ.publish("p/other", QoS::AtLeastOnce, false, b"fresh").await;
    // Neither the queued message nor the old subscription may show up before this.
    sub.expect_message("p/other", b"fresh").await;
    sub.disconnect().await;
    drop(sub);

    // A clean session is not kept after it ends either.
    let (_sub, ack) = connect_with(&server, "durable", |o| {
        o.set_clean_session(false);
    })
    .await;
    assert!(!ack.session_present, "a clean session must not survive its connection");
}

/// A second connection with the same client id takes over: the first one is disconnected.
#[tokio::test]
async fn session_takeover_disconnects_first_client() {
    let server = Server::start();
    let mut first = connect(&server, "same-id").await;
    first.subscribe("take/first", QoS::AtLeastOnce).await;
    let mut second = connect(&server, "same-id").await;
    let why = first.expect_closed(WAIT).await;
    assert!(first.backlog.iter().all(|p| !matches!(p, Packet::Publish(_))), "{why}");
    // The new connection works.
    second.subscribe("take/second", QoS::AtLeastOnce).await;
    let mut publ = connect(&server, "pub").await;
    publ.publish("take/second", QoS::AtLeastOnce, false, b"hi").await;
    second.expect_message("take/second", b"hi").await;
}

/// A takeover of a persistent session (both clean_session=false): the first connection is
/// closed, the second resumes the session and gets its subscriptions' messages.
#[tokio::test]
async fn session_takeover_resumes_persistent_session() {
    let server = Server::start();
    let persistent = |o: &mut MqttOptions| {
        o.set_clean_session(false);
    };
    let (mut first, _) = connect_with(&server, "same-id", persistent).await;
    first.subscribe("take/t", QoS::AtLeastOnce).await;
    let (mut second, ack) = connect_with(&server, "same-id", persistent).await;
    assert_eq!(ack.code, ConnectReturnCode::Success);
    assert!(ack.session_present, "the second connection resumes the session");
    first.expect_closed(WAIT).await;
    let mut publ = connect(&server, "pub").await;
    publ.publish("take/t", QoS::AtLeastOnce, false, b"to the new connection").await;
    second.expect_message("take/t", b"to the new connection").await;
}

// ---------------------------------------------------------------------------------------------
// Raw-packet checks: keep alive, connection limit, client identifiers, redelivery.

/// A client that asked for keep alive 1 s and then sends nothing is disconnected by the server
/// (after 1.5 × keep alive).
#[test]
fn keep_alive_timeout_disconnects_silent_client() {
    let server = Server::start();
    let mut c = connect_packet(Protocol::V311, "silent");
    c.keep_alive = 1;
    let (mut raw, ack) = Raw::connect_with(server.port, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let start = Instant::now();
    let got = raw.expect_close();
    let took = start.elapsed();
    assert!(got.is_empty(), "a 3.1.1 client gets no packet before the close: {got:?}");
    assert!(took >= Duration::from_millis(900), "closed too early, after {took:?}");
    assert!(took <= Duration::from_secs(4), "closed after {took:?}, expected about 1.5 s");
}

/// A client with keep alive 1 s that pings in time stays connected.
#[test]
fn keep_alive_pings_keep_connection_open() {
    let server = Server::start();
    let mut c = connect_packet(Protocol::V311, "pinger");
    c.keep_alive = 1;
    let (mut raw, _) = Raw::connect_with(server.port, c);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        raw.send(&RawPacket::PingReq);
        match raw.recv_within(Duration::from_millis(500)) {
            Some(RawPacket::PingResp) => {}
            other => panic!("expected PINGRESP after {:?}, got {other:?}", start.elapsed()),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// With `mqtt.max_connections=1`, a second connection gets CONNACK 3 (server unavailable);
/// once the first leaves, a new connection is served again.
#[test]
fn max_connections_refuses_with_server_unavailable() {
    let server = Server::start_with(&["mqtt.max_connections=1"]);
    let (first, ack) = Raw::connect(server.port, Protocol::V311, "first");
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    let (mut second, ack) = Raw::connect_with(server.port, connect_packet(Protocol::V311, "second"));
    assert_eq!(ack.reason, ReasonCode::SERVER_UNAVAILABLE, "CONNACK return code 3 expected");
    assert!(!ack.session_present);
    second.expect_close();
    drop(first);
    // The slot is released once the server notices the first connection is gone.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_third, ack) = Raw::connect_with(server.port, connect_packet(Protocol::V311, "third"));
        if ack.reason == ReasonCode::SUCCESS {
            break;
        }
        assert!(Instant::now() < deadline, "connection slot never released: {ack:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An empty client id with clean session 1 is accepted (the server assigns one).
#[test]
fn empty_client_id_with_clean_session_is_accepted() {
    let server = Server::start();
    let (mut raw, ack) = Raw::connect_with(server.port, connect_packet(Protocol::V311, ""));
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(!ack.session_present);
    raw.send(&RawPacket::PingReq);
    assert_eq!(raw.recv(), Some(RawPacket::PingResp), "connection must be usable");
}

/// An empty client id with clean session 0 is refused with return code 2 (identifier rejected)
/// and the connection is closed.
#[test]
fn empty_client_id_without_clean_session_is_rejected() {
    let server = Server::start();
    let mut c = connect_packet(Protocol::V311, "");
    c.clean_start = false;
    let (mut raw, ack) = Raw::connect_with(server.port, c);
    assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, "CONNACK return code 2 expected");
    assert!(!ack.session_present, "[MQTT-3.2.2-4]: session present must be 0 on a refusal");
    raw.expect_close();
}

fn raw_subscribe(raw: &mut Raw, filter: &str, qos: mqtt::QoS) {
    raw.send(&RawPacket::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(filter.to_string(), SubscriptionOptions { qos, ..Default::default() })],
        ..Default::default()
    }));
    match raw.recv() {
        Some(RawPacket::SubAck(s)) => assert_eq!(s.reasons, vec![ReasonCode(qos as u8)]),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

fn raw_publish_qos1(raw: &mut Raw, topic: &str, packet_id: u16, payload: &'static [u8]) {
    raw.send(&RawPacket::Publish(mqtt::Publish {
        qos: mqtt::QoS::AtLeastOnce,
        topic: topic.into(),
        packet_id,
        payload: bytes::Bytes::from_static(payload),
        ..Default::default()
    }));
    match raw.recv() {
        Some(RawPacket::PubAck(a)) => assert_eq!(a.packet_id, packet_id),
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

fn persistent_connect(port: u16, id: &str) -> (Raw, mqtt::ConnAck) {
    let mut c = connect_packet(Protocol::V311, id);
    c.clean_start = false;
    Raw::connect_with(port, c)
}

fn expect_raw_publish(raw: &mut Raw) -> mqtt::Publish {
    match raw.recv() {
        Some(RawPacket::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// A QoS 1 message that was sent but never acknowledged is sent again, with DUP set and the
/// same packet id, when the persistent session resumes; once acknowledged, it is not resent.
#[test]
fn unacknowledged_qos1_redelivered_with_dup_after_reconnect() {
    let server = Server::start();
    let (mut sub, ack) = persistent_connect(server.port, "forgetful");
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    raw_subscribe(&mut sub, "dup/t", mqtt::QoS::AtLeastOnce);
    let (mut publ, _) = Raw::connect(server.port, Protocol::V311, "pub");
    raw_publish_qos1(&mut publ, "dup/t", 7, b"at least once");

    let first = expect_raw_publish(&mut sub);
    assert_eq!((first.topic.as_str(), &first.payload[..]), ("dup/t", &b"at least once"[..]));
    assert_eq!(first.qos, mqtt::QoS::AtLeastOnce);
    assert!(!first.dup, "first delivery must not have DUP");
    drop(sub); // no PUBACK

    let (mut sub, ack) = persistent_connect(server.port, "forgetful");
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(ack.session_present, "session must be resumed");
    let again = expect_raw_publish(&mut sub);
    assert!(again.dup, "redelivery must have DUP set: {again:?}");
    assert_eq!(again.packet_id, first.packet_id, "redelivery keeps the packet id");
    assert_eq!(again.qos, mqtt::QoS::AtLeastOnce);
    assert_eq!((again.topic.as_str(), &again.payload[..]), ("dup/t", &b"at least once"[..]));
    sub.send(&RawPacket::PubAck(PubResp::new(again.packet_id)));
    // PINGREQ/PINGRESP round trip: the PUBACK has been processed when the PINGRESP comes.
    sub.send(&RawPacket::PingReq);
    assert_eq!(sub.recv(), Some(RawPacket::PingResp));
    drop(sub);

    let (mut sub, ack) = persistent_connect(server.port, "forgetful");
    assert!(ack.session_present);
    raw_publish_qos1(&mut publ, "dup/t", 8, b"next");
    let next = expect_raw_publish(&mut sub);
    assert_eq!(&next.payload[..], b"next", "an acknowledged message must not be resent: {next:?}");
    assert!(!next.dup);
}

/// A QoS 2 PUBLISH retransmitted (DUP) before PUBREL is acknowledged again but delivered only
/// once: exactly-once across a retransmission.
#[test]
fn qos2_retransmitted_publish_delivered_once() {
    let server = Server::start();
    let (mut sub, _) = Raw::connect(server.port, Protocol::V311, "sub");
    raw_subscribe(&mut sub, "q2/t", mqtt::QoS::ExactlyOnce);
    let (mut publ, _) = Raw::connect(server.port, Protocol::V311, "pub");
    let msg = |id: u16, dup: bool, payload: &'static [u8]| {
        RawPacket::Publish(mqtt::Publish {
            dup,
            qos: mqtt::QoS::ExactlyOnce,
            topic: "q2/t".into(),
            packet_id: id,
            payload: bytes::Bytes::from_static(payload),
            ..Default::default()
        })
    };
    publ.send(&msg(5, false, b"once"));
    assert!(matches!(publ.recv(), Some(RawPacket::PubRec(r)) if r.packet_id == 5));
    publ.send(&msg(5, true, b"once"));
    assert!(matches!(publ.recv(), Some(RawPacket::PubRec(r)) if r.packet_id == 5), "retransmission must get PUBREC");
    publ.send(&RawPacket::PubRel(PubResp::new(5)));
    assert!(matches!(publ.recv(), Some(RawPacket::PubComp(r)) if r.packet_id == 5));
    publ.send(&msg(6, false, b"end"));
    assert!(matches!(publ.recv(), Some(RawPacket::PubRec(r)) if r.packet_id == 6));
    publ.send(&RawPacket::PubRel(PubResp::new(6)));
    assert!(matches!(publ.recv(), Some(RawPacket::PubComp(r)) if r.packet_id == 6));

    // The subscriber completes every QoS 2 flow and records the payloads until "end".
    let mut got = Vec::new();
    while got.last().map(Vec::as_slice) != Some(&b"end"[..]) {
        match sub.recv() {
            Some(RawPacket::Publish(p)) => {
                assert_eq!(p.qos, mqtt::QoS::ExactlyOnce);
                sub.send(&RawPacket::PubRec(PubResp::new(p.packet_id)));
                got.push(p.payload.to_vec());
            }
            Some(RawPacket::PubRel(r)) => sub.send(&RawPacket::PubComp(PubResp::new(r.packet_id))),
            other => panic!("subscriber: unexpected {other:?} after {got:?}"),
        }
    }
    assert_eq!(got, vec![b"once".to_vec(), b"end".to_vec()], "message delivered more than once");
}
