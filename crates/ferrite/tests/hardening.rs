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

fn unsubscribe(raw: &mut Raw, filter: &str) -> ReasonCode {
    raw.send(&Packet::Unsubscribe(mqtt::Unsubscribe { packet_id: 2, filters: vec![filter.to_string()], ..Default::default() }));
    match raw.recv() {
        Some(Packet::UnsubAck(a)) => a.reasons[0],
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Whether the server still answers: a fresh client connects and gets its own message back.
fn alive(port: u16) -> bool {
    let (mut c, ack) = Raw::connect(port, Protocol::V5, "probe");
    ack.reason == ReasonCode::SUCCESS && subscribe(&mut c, "probe/t") == ReasonCode(1) && publish(&mut c, "probe/t", false) == ReasonCode::SUCCESS
}

#[test]
fn a_deep_topic_filter_is_refused_past_the_limits() {
    let server = Server::start();
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "deep");
    let deep = format!("{}#", "+/".repeat(8000));
    assert_eq!(subscribe(&mut raw, &deep), ReasonCode::TOPIC_FILTER_INVALID);
    assert_eq!(subscribe(&mut raw, &format!("a/{}", "x".repeat(2000))), ReasonCode::TOPIC_FILTER_INVALID, "past max_topic_length_bytes");
    assert_eq!(subscribe(&mut raw, &format!("{}x", "a/".repeat(31))), ReasonCode(1), "32 levels are fine");
    // A PUBLISH past the limits closes the connection with 0x90.
    raw.send(&Packet::Publish(Publish { topic: "a/".repeat(40).as_str().into(), payload: Bytes::from_static(b"x"), ..Default::default() }));
    let got = raw.expect_close();
    assert!(matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::TOPIC_NAME_INVALID), "{got:?}");
    assert!(alive(server.port));
}

#[test]
fn a_deep_topic_filter_does_not_crash_the_server_even_with_the_limits_lifted() {
    // The walks over topic levels are iterative: with the level limit lifted, a filter of 8,000
    // levels is subscribed, matched, unsubscribed, re-subscribed and dropped with its session.
    let mut server = Server::start_with(&["mqtt.max_topic_levels=65535", "mqtt.max_topic_length_bytes=65535", "mqtt.max_packet_size_bytes=1048576"]);
    let deep = format!("{}#", "+/".repeat(8000));
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "deep");
    assert_eq!(subscribe(&mut raw, &deep), ReasonCode(1));
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V5, "pub");
    let topic = "x/".repeat(8001);
    assert_eq!(publish(&mut publisher, topic.trim_end_matches('/'), false), ReasonCode::SUCCESS);
    assert!(next_publish(&mut raw, Duration::from_secs(5)).is_some());
    assert_eq!(unsubscribe(&mut raw, &deep), ReasonCode::SUCCESS);
    assert_eq!(subscribe(&mut raw, &deep), ReasonCode(1));
    drop(raw); // clean session: the session and its subscription go with the connection
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(server.port));
    // A persistent session holding it survives a restart and expires without harm.
    let mut c = connect_packet(Protocol::V5, "deep-persistent");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(1);
    let (mut raw, _) = Raw::connect_with(server.port, c);
    assert_eq!(subscribe(&mut raw, &deep), ReasonCode(1));
    drop(raw);
    server.restart();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alive(server.port));
}

#[test]
fn subscriptions_per_session_are_capped() {
    let server = Server::start_with(&["mqtt.max_subscriptions_per_session=3"]);
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "many");
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: (0..5).map(|i| (format!("f/{i}"), SubscriptionOptions::default())).collect(),
        ..Default::default()
    }));
    let Some(Packet::SubAck(a)) = raw.recv() else { panic!("no SUBACK") };
    assert_eq!(a.reasons, vec![ReasonCode(0), ReasonCode(0), ReasonCode(0), ReasonCode::QUOTA_EXCEEDED, ReasonCode::QUOTA_EXCEEDED]);
    // Re-subscribing an existing filter is not a new subscription; after an unsubscribe there is room.
    assert_eq!(subscribe(&mut raw, "f/0"), ReasonCode(1));
    assert_eq!(unsubscribe(&mut raw, "f/1"), ReasonCode::SUCCESS);
    assert_eq!(subscribe(&mut raw, "f/9"), ReasonCode(1));
    // The default is AWS IoT's 50.
    let server = Server::start();
    let (mut raw, _) = Raw::connect(server.port, Protocol::V5, "many");
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: (0..51).map(|i| (format!("f/{i}"), SubscriptionOptions::default())).collect(),
        ..Default::default()
    }));
    let Some(Packet::SubAck(a)) = raw.recv() else { panic!("no SUBACK") };
    assert_eq!(a.reasons.iter().filter(|r| **r == ReasonCode::QUOTA_EXCEEDED).count(), 1);
}

fn create_rule(server: &Server, name: &str, sql: &str) -> (u16, String) {
    let body = serde_json::json!({
        "sql": sql,
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{ "republish": { "topic": format!("out/{name}"), "roleArn": "arn:aws:iam::123456789012:role/r" } }],
    });
    server.iot("POST", &format!("/rules/{name}"), "", &body.to_string())
}

#[test]
fn long_sql_operator_chains_neither_crash_evaluation_nor_deletion() {
    let mut server = Server::start();
    let ors = vec!["x = 1"; 3000].join(" OR ");
    let (status, out) = create_rule(&server, "ors", &format!("SELECT x FROM 'in/ors' WHERE {ors}"));
    assert_eq!(status, 200, "{out}");
    let sum = vec!["x"; 50_000].join(" + ");
    let (status, out) = create_rule(&server, "sum", &format!("SELECT {sum} AS s FROM 'in/sum'"));
    assert_eq!(status, 200, "{out}");
    // Too long a statement is refused as AWS refuses a bad one.
    let (status, out) = create_rule(&server, "huge", &format!("SELECT x FROM 'in/h' WHERE {}", vec!["x = 1"; 60_000].join(" OR ")));
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("bytes long"), "{out}");

    let (mut sub, _) = Raw::connect(server.port, Protocol::V5, "sub");
    assert_eq!(subscribe(&mut sub, "out/#"), ReasonCode(1));
    let (mut device, _) = Raw::connect(server.port, Protocol::V5, "dev");
    device.send(&Packet::Publish(Publish { topic: "in/ors".into(), payload: Bytes::from_static(br#"{"x":1}"#), ..Default::default() }));
    let p = next_publish(&mut sub, Duration::from_secs(10)).expect("the rule republished");
    assert_eq!((&*p.topic, &p.payload[..]), ("out/ors", &br#"{"x":1}"#[..]));
    device.send(&Packet::Publish(Publish { topic: "in/sum".into(), payload: Bytes::from_static(br#"{"x":1}"#), ..Default::default() }));
    let p = next_publish(&mut sub, Duration::from_secs(10)).expect("the rule republished");
    assert_eq!((&*p.topic, &p.payload[..]), ("out/sum", &br#"{"s":50000}"#[..]));
    // The rules survive a restart (they are compiled again) and can be deleted.
    drop((sub, device));
    server.restart();
    assert!(alive(server.port));
    for name in ["ors", "sum"] {
        let (status, out) = server.iot("DELETE", &format!("/rules/{name}"), "", "");
        assert_eq!(status, 200, "{out}");
    }
    assert!(alive(server.port));
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn the_data_directory_is_private_and_locked() {
    use std::os::unix::fs::PermissionsExt;
    let mut server = Server::start_with(&["mqtt.tls_listen=127.0.0.1:0"]);
    let check = |server: &Server| {
        assert_eq!(mode(&server.dir), 0o700, "data directory");
        assert_eq!(mode(&server.dir.join("certs")), 0o700, "certs");
        for f in ["ferrite.db", "ferrite.db-wal", "ferrite.db-shm", "certs/ca.key", "certs/ca.pem", "certs/server.key", "certs/server.pem"] {
            assert_eq!(mode(&server.dir.join(f)), 0o600, "{f}");
        }
        // The state store's files, when it is SQLite (not with FERRITE_TEST_BACKEND=postgres).
        for f in ["state.db", "state.db-wal", "state.db-shm"].into_iter().filter(|f| server.dir.join(f).exists()) {
            assert_eq!(mode(&server.dir.join(f)), 0o600, "{f}");
        }
    };
    check(&server);
    // A second process on the same directory refuses to start and says who holds it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["serve", "--data-dir"])
        .arg(&server.dir)
        .args(["--set", "mqtt.listen=127.0.0.1:0", "--set", "mqtt.tls_listen=off", "--set", "mqtt.ws_listen=off", "--set", "mqtt.wss_listen=off", "--set", "api.listen=127.0.0.1:0", "--set", "api.tls_listen=off"])
        .output()
        .expect("run a second ferrite");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by pid"), "{stderr}");
    assert!(alive(server.port), "the first process is unaffected");
    // Modes loosened while it was stopped are fixed at the next start.
    assert_eq!(server.terminate(), Some(0));
    std::fs::set_permissions(&server.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(server.dir.join("ferrite.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    server.crash_and_restart(); // (already stopped: this only starts it again)
    check(&server);
}

/// The head of a SigV4-signed `iot-data` Publish whose body will be `body` (Content-Length set).
fn signed_publish_head(server: &Server, body: &[u8]) -> String {
    let (id, secret) = server.creds.clone().expect("root credentials");
    let host = format!("127.0.0.1:{}", server.ports["http"]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let headers = vec![("host".to_string(), host.clone()), ("x-amz-date".to_string(), identity::sigv4::format_amz_date(now))];
    let req = identity::sigv4::Request { method: "POST", path: "/topics/slow", query: "qos=0", headers: &headers, body };
    let auth = identity::sigv4::sign(&req, &id, &secret, "us-east-1", "iotdata").expect("sign");
    format!(
        "POST /topics/slow?qos=0 HTTP/1.1\r\nhost: {host}\r\nx-amz-date: {}\r\nauthorization: {auth}\r\ncontent-length: {}\r\n\r\n",
        headers[1].1,
        body.len()
    )
}

/// The status line's code of what the server answers on `s` within `wait`, or None if it
/// closed or said nothing.
fn http_status(s: &mut std::net::TcpStream, wait: Duration) -> Option<u16> {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).split(' ').nth(1)?.parse().ok()
}

#[test]
fn http_bodies_are_bounded_before_authentication() {
    use std::io::Write;
    let server = Server::start_with(&["api.body_timeout_secs=1", "api.max_pending_body_bytes=3000", "api.max_connections=6"]);
    let api = format!("127.0.0.1:{}", server.ports["http"]);
    // Unsigned, or signed with an unknown key: refused from the headers alone, the announced
    // megabyte never read.
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    s.write_all(b"POST /topics/x HTTP/1.1\r\nhost: h\r\ncontent-length: 1048576\r\n\r\n").unwrap();
    assert_eq!(http_status(&mut s, Duration::from_secs(5)), Some(403));
    // More than api.max_body_bytes announced: 413 before reading.
    let mut s = std::net::TcpStream::connect(&api).unwrap();
    let head = signed_publish_head(&server, &vec![b'x'; 2 * 1024 * 1024]);
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(http_status(&mut s, Duration::from_secs(5)), Some(413));
    // A validly signed head whose body trickles: 408 after body_timeout_secs.
    let body = vec![b'x'; 2000];
    let mut slow = std::net::TcpStream::connect(&api).unwrap();
    slow.write_all(signed_publish_head(&server, &body).as_bytes()).unwrap();
    slow.write_all(&body[..100]).unwrap();
    // Meanwhile its 2,000 bytes count against the 3,000-byte budget: a second such body is refused.
    std::thread::sleep(Duration::from_millis(200));
    let mut second = std::net::TcpStream::connect(&api).unwrap();
    second.write_all(signed_publish_head(&server, &body).as_bytes()).unwrap();
    assert_eq!(http_status(&mut second, Duration::from_secs(5)), Some(429));
    assert_eq!(http_status(&mut slow, Duration::from_secs(5)), Some(408));
    // Once it is gone the budget is back.
    let mut ok = std::net::TcpStream::connect(&api).unwrap();
    ok.write_all(signed_publish_head(&server, &body).as_bytes()).unwrap();
    ok.write_all(&body).unwrap();
    assert_eq!(http_status(&mut ok, Duration::from_secs(5)), Some(200));
    drop((s, slow, second, ok));
    // At most api.max_connections at once: the next one is closed without an answer.
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<_> = (0..6).map(|_| std::net::TcpStream::connect(&api).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = std::net::TcpStream::connect(&api).unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nhost: h\r\n\r\n");
    assert_eq!(http_status(&mut extra, Duration::from_secs(2)), None);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = std::net::TcpStream::connect(&api).unwrap();
    again.write_all(b"GET /healthz HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
    assert_eq!(http_status(&mut again, Duration::from_secs(5)), Some(200));
}

#[test]
fn plain_http_on_a_public_address_is_refused_unless_allowed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["config", "show", "--set", "api.listen=0.0.0.0:8080"])
        .output()
        .expect("run ferrite");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api.listen") && stderr.contains("api.allow_plaintext_remote"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["config", "show", "--set", "api.listen=0.0.0.0:8080", "--set", "api.allow_plaintext_remote=true"])
        .output()
        .expect("run ferrite");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The start of a QoS 0 PUBLISH on `t` announcing a packet of about `size` bytes, and `sent`
/// bytes of its payload.
fn publish_start(size: usize, sent: usize) -> Vec<u8> {
    let mut out = vec![0x30];
    let mut len = size - 5;
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&[0, 1, b't']);
    out.extend(std::iter::repeat_n(b'x', sent));
    out
}

fn connect_keepalive_0(port: u16, id: &str) -> Raw {
    let mut c = connect_packet(Protocol::V5, id);
    c.keep_alive = 0;
    let (raw, ack) = Raw::connect_with(port, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    raw
}

#[test]
fn a_half_sent_packet_is_dropped_after_the_packet_timeout() {
    let server = Server::start_with(&["mqtt.packet_timeout_secs=2"]);
    let mut raw = connect_keepalive_0(server.port, "slow");
    raw.send_bytes(&publish_start(1_000_000, 100));
    let got = raw.expect_close();
    assert!(matches!(got.last(), Some(Packet::Disconnect(d)) if d.reason == ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR), "{got:?}");
    // A packet that keeps arriving in pieces, each within the timeout, but whole within it, is fine.
    let mut raw = connect_keepalive_0(server.port, "pieces");
    assert_eq!(subscribe(&mut raw, "t"), ReasonCode(1));
    let mut whole = bytes::BytesMut::new();
    Packet::Publish(Publish { topic: "t".into(), payload: Bytes::from(vec![b'x'; 300]), ..Default::default() }).encode(&mut whole, Protocol::V5);
    for chunk in whole.chunks(100) {
        raw.send_bytes(chunk);
        std::thread::sleep(Duration::from_millis(150));
    }
    let p = next_publish(&mut raw, Duration::from_secs(5)).expect("the packet sent in pieces arrived");
    assert_eq!(p.payload.len(), 300);
}

#[test]
fn announced_packets_do_not_pin_memory() {
    let server = Server::start_with(&["mqtt.max_connections=1000"]);
    let before = server.rss_kib();
    // 150 connections each announcing a 1 MB PUBLISH and sending 10 bytes of it.
    let held: Vec<Raw> = (0..150)
        .map(|i| {
            let mut raw = connect_keepalive_0(server.port, &format!("announce-{i}"));
            raw.send_bytes(&publish_start(1_000_000, 10));
            raw
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let grew_mib = server.rss_kib().saturating_sub(before) / 1024;
    assert!(grew_mib < 40, "150 announced 1 MB packets took {grew_mib} MiB");
    drop(held);
    assert!(alive(server.port));
}

#[test]
fn bytes_of_packets_still_arriving_are_bounded_across_connections() {
    let server = Server::start_with(&["mqtt.max_partial_packet_bytes_total=300000"]);
    let mut conns = Vec::new();
    let mut closed = 0;
    for i in 0..5 {
        let mut raw = connect_keepalive_0(server.port, &format!("big-{i}"));
        raw.send_bytes(&publish_start(1_000_000, 100_000));
        std::thread::sleep(Duration::from_millis(200));
        if let Some(Packet::Disconnect(d)) = raw.recv_within(Duration::from_millis(300)) {
            assert_eq!(d.reason, ReasonCode::QUOTA_EXCEEDED);
            closed += 1;
        }
        conns.push(raw);
    }
    assert!(closed >= 2, "only {closed} of 5 connections holding 100 KB each were closed under a 300 KB budget");
    drop(conns);
    assert!(alive(server.port));
}

/// The status of a WebSocket upgrade on `/mqtt` with the given `Origin` header.
fn upgrade_status(port: u16, origin: Option<&str>) -> Option<u16> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    let req = format!(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n{origin}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    http_status(&mut s, Duration::from_secs(5))
}

#[test]
fn the_loopback_websocket_listener_refuses_other_web_pages() {
    let server = Server::start_with(&["mqtt.ws_listen=127.0.0.1:0"]);
    let ws = server.ports["ws"];
    assert_eq!(upgrade_status(ws, Some("https://evil.example.com")), Some(403));
    assert_eq!(upgrade_status(ws, Some("null")), Some(403));
    assert_eq!(upgrade_status(ws, Some("http://localhost:3000")), Some(101));
    assert_eq!(upgrade_status(ws, Some("http://127.0.0.1:8080")), Some(101));
    assert_eq!(upgrade_status(ws, None), Some(101), "a client that is not a browser sends no Origin");
    let listed = Server::start_with(&["mqtt.ws_listen=127.0.0.1:0", r#"mqtt.ws_allowed_origins=["https://dashboard.example.com"]"#]);
    let ws = listed.ports["ws"];
    assert_eq!(upgrade_status(ws, Some("https://dashboard.example.com")), Some(101));
    assert_eq!(upgrade_status(ws, Some("https://evil.example.com")), Some(403));
}

/// A small tmpfs, unmounted on drop (needs root, as CI and this project's machines run).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = std::env::temp_dir().join(format!("ferrite-smalldisk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root (this suite runs as root, as CI does)");
        SmallDisk(dir)
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_persistent_session_is_not_acknowledged_when_its_commit_fails() {
    let disk = SmallDisk::mount("8m");
    let server = Server::start_in(disk.0.join("data"), &["store.sync=full"]);
    assert!(alive(server.port));
    let filler = disk.fill();
    let mut c = connect_packet(Protocol::V5, "durable");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(300);
    let mut raw = Raw::open(server.port, Protocol::V5);
    raw.send(&Packet::Connect(Box::new(c.clone())));
    let got = raw.expect_close();
    assert!(!got.iter().any(|p| matches!(p, Packet::ConnAck(a) if a.reason == ReasonCode::SUCCESS)), "CONNACK sent for a session that was not stored: {got:?}");
    // With room again, the same connect is acknowledged.
    std::fs::remove_file(filler).unwrap();
    let (_raw, ack) = Raw::connect_with(server.port, c);
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    drop(server);
}

#[test]
fn a_subscriber_gets_every_retained_message_even_beyond_its_queue_bound() {
    let server = Server::start_with(&["mqtt.max_queued_messages=100"]);
    let (mut publisher, _) = Raw::connect(server.port, Protocol::V5, "retainer");
    const N: usize = 3003;
    for i in 0..N {
        publisher.send(&Packet::Publish(Publish { retain: true, topic: format!("k9/{i}").as_str().into(), payload: Bytes::from_static(b"r"), ..Default::default() }));
    }
    // A QoS 1 round trip after them: every retained message is stored by then.
    assert_eq!(publish(&mut publisher, "k9-done", false), ReasonCode::NO_MATCHING_SUBSCRIBERS);
    for (qos, id) in [(QoS::AtLeastOnce, "sub-1"), (QoS::AtMostOnce, "sub-0")] {
        let (mut sub, _) = Raw::connect(server.port, Protocol::V5, id);
        sub.send(&Packet::Subscribe(Subscribe { packet_id: 1, filters: vec![("k9/#".into(), SubscriptionOptions { qos, ..Default::default() })], ..Default::default() }));
        let mut seen = std::collections::HashSet::new();
        while seen.len() < N {
            match sub.recv() {
                Some(Packet::Publish(p)) => {
                    assert!(p.retain);
                    if p.qos == QoS::AtLeastOnce {
                        sub.send(&Packet::PubAck(mqtt::PubResp::new(p.packet_id)));
                    }
                    seen.insert(p.topic.to_string());
                }
                Some(Packet::SubAck(_)) => {}
                other => panic!("{id}: after {} retained messages: {other:?}", seen.len()),
            }
        }
    }
}

/// Publishes a shadow request (QoS 1) and waits for its PUBACK.
fn shadow_request(raw: &mut Raw, topic: &str, body: &str) {
    assert!(shadow_request_stored(raw, topic, body), "closed while waiting for the PUBACK of {topic}");
}

/// Publishes a shadow request (QoS 1): true once acknowledged, false when the server closed
/// the connection instead (it could not store the request).
fn shadow_request_stored(raw: &mut Raw, topic: &str, body: &str) -> bool {
    raw.send(&Packet::Publish(Publish { qos: QoS::AtLeastOnce, topic: topic.into(), packet_id: 9, payload: Bytes::from(body.to_string()), ..Default::default() }));
    loop {
        match raw.recv() {
            Some(Packet::PubAck(_)) => return true,
            Some(Packet::Publish(p)) if p.qos == QoS::AtLeastOnce => raw.send(&Packet::PubAck(mqtt::PubResp::new(p.packet_id))),
            Some(_) => {}
            None => return false,
        }
    }
}

/// The classic shadow of `thing` as the server answers `get`.
fn shadow_get(raw: &mut Raw, thing: &str) -> serde_json::Value {
    shadow_request(raw, &format!("$aws/things/{thing}/shadow/get"), "{}");
    loop {
        // (A request applied while this device was away may still be answered first.)
        let got = next_publish(raw, Duration::from_secs(10)).expect("get is answered");
        if got.topic.as_str().ends_with("/get/accepted") {
            return serde_json::from_slice(&got.payload).unwrap();
        }
    }
}

fn shadow_device(server: &Server, thing: &str) -> Raw {
    let (mut dev, _) = Raw::connect(server.port, Protocol::V5, "full-dev");
    let filters = ["update/accepted", "update/rejected", "get/accepted"].map(|f| (format!("$aws/things/{thing}/shadow/{f}"), SubscriptionOptions { qos: QoS::AtLeastOnce, ..Default::default() }));
    dev.send(&Packet::Subscribe(Subscribe { packet_id: 1, filters: filters.to_vec(), ..Default::default() }));
    loop {
        // (A request applied while this device was away may be answered meanwhile.)
        match dev.recv() {
            Some(Packet::SubAck(a)) => {
                assert_eq!(a.reasons, [ReasonCode(1); 3]);
                return dev;
            }
            Some(Packet::Publish(p)) if p.qos == QoS::AtLeastOnce => dev.send(&Packet::PubAck(mqtt::PubResp::new(p.packet_id))),
            Some(_) => {}
            None => panic!("closed before SUBACK"),
        }
    }
}

#[test]
fn a_shadow_update_whose_commit_fails_is_not_accepted_and_is_rolled_back() {
    let disk = SmallDisk::mount("8m");
    // The shadows' store must be on the small disk: SQLite whatever FERRITE_TEST_BACKEND says.
    let mut server = Server::start_in(disk.0.join("data"), &["store.sync=full", "store.backend=sqlite"]);
    let mut dev = shadow_device(&server, "full");
    shadow_request(&mut dev, "$aws/things/full/shadow/update", r#"{"state":{"reported":{"x":1}}}"#);
    let first = next_publish(&mut dev, Duration::from_secs(10)).expect("the first update is accepted");
    assert!(first.topic.as_str().ends_with("/update/accepted"), "{}", first.topic.as_str());
    let filler = disk.fill();
    let big = format!(r#"{{"state":{{"reported":{{"x":2,"pad":"{}"}}}}}}"#, "p".repeat(6000));
    // The disk is full: either the request itself cannot be stored (no PUBACK: the connection
    // is closed) or it is, and its shadow write cannot: rejected with AWS's 500 InternalFailure,
    // as the HTTP API answers it. Never accepted.
    if shadow_request_stored(&mut dev, "$aws/things/full/shadow/update", &big) {
        let failed = next_publish(&mut dev, Duration::from_secs(10)).expect("an update that could not be stored is answered");
        assert!(failed.topic.as_str().ends_with("/update/rejected"), "an update that could not be stored was answered on {}", failed.topic.as_str());
        let error: serde_json::Value = serde_json::from_slice(&failed.payload).unwrap();
        assert_eq!(error["code"].as_i64(), Some(500), "{error}");
    }
    std::fs::remove_file(filler).unwrap();
    let mut dev = shadow_device(&server, "full");
    let served = shadow_get(&mut dev, "full");
    // What the server answers is what it stored: a failed write was rolled back in memory.
    drop(dev);
    server.restart();
    let mut dev = shadow_device(&server, "full");
    let stored = shadow_get(&mut dev, "full");
    assert_eq!((&served["state"], &served["version"]), (&stored["state"], &stored["version"]), "served {served}, stored {stored}");
    assert_eq!(stored["state"]["reported"]["x"].as_i64(), stored["version"].as_i64(), "each version is one applied update: {stored}");
    shadow_request(&mut dev, "$aws/things/full/shadow/update", r#"{"state":{"reported":{"x":3}}}"#);
    let next = next_publish(&mut dev, Duration::from_secs(10)).expect("an update with room again is accepted");
    let doc: serde_json::Value = serde_json::from_slice(&next.payload).unwrap();
    assert_eq!(doc["version"].as_i64(), Some(stored["version"].as_i64().unwrap() + 1), "{doc}");
    drop(server);
}

#[test]
fn a_client_cannot_take_the_client_id_of_a_ferrite_service() {
    let server = Server::start();
    for v in [Protocol::V5, Protocol::V311] {
        let (_, ack) = Raw::connect(server.port, v, "$ferrite/shadow");
        // (3.1.1's return code 2, identifier rejected, reads as 0x85.)
        assert_eq!(ack.reason, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID, "{v:?}");
    }
    // The shadow service still answers.
    let mut dev = shadow_device(&server, "still");
    assert_eq!(shadow_get_or_none(&mut dev, "still"), None);
}

/// The classic shadow's `get` answer: `None` when it is rejected (no shadow).
fn shadow_get_or_none(raw: &mut Raw, thing: &str) -> Option<serde_json::Value> {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: 2,
        filters: vec![(format!("$aws/things/{thing}/shadow/get/rejected"), SubscriptionOptions { qos: QoS::AtLeastOnce, ..Default::default() })],
        ..Default::default()
    }));
    shadow_request(raw, &format!("$aws/things/{thing}/shadow/get"), "{}");
    loop {
        let got = next_publish(raw, Duration::from_secs(10)).expect("get is answered");
        match got.topic.as_str() {
            t if t.ends_with("/get/accepted") => return Some(serde_json::from_slice(&got.payload).unwrap()),
            t if t.ends_with("/get/rejected") => return None,
            _ => {}
        }
    }
}
