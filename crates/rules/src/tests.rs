//! The rules engine in process: a broker, in-process "devices", the rules service over a
//! temporary store, a recording HTTP server and command functions.

use super::*;
use bytes::Bytes;
use broker::internal::InternalClient;
use broker::{Broker, Message};
use mqtt::QoS;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    dir: PathBuf,
    shadows: Arc<shadow_service::Shadows>,
    broker: Broker,
    docs: Arc<store::Documents>,
    functions: Arc<functions::Functions>,
    rules: Arc<Rules>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config() -> RulesConfig {
    RulesConfig { http_timeout: std::time::Duration::from_secs(2), http_retry_backoff: std::time::Duration::from_millis(10), allow_plain_http: true, ..RulesConfig::default() }
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, config())
}

fn fixture_with(name: &str, config: RulesConfig) -> Fixture {
    let dir = std::env::temp_dir().join(format!("ferrite-rules-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let docs = Arc::new(store::Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
    let broker = Broker::new(Default::default());
    let fconfig = functions::FunctionsConfig { allowed_command_dirs: vec![dir.join("bin")], retry_backoff: std::time::Duration::from_millis(1), allow_private_targets: true, ..Default::default() };
    let functions = functions::Functions::new(docs.clone(), fconfig);
    let shadows = shadow_service::Shadows::load(docs.clone(), broker.clone(), shadow::Limits::default()).unwrap();
    let rules = Rules::start(docs.clone(), broker.clone(), functions.clone(), Some(Arc::new(Shadowed(shadows.clone()))), config).unwrap();
    Fixture { dir, shadows, broker, docs, functions, rules }
}

/// The shadows as the engine reads them (`ferrite` wires the same).
struct Shadowed(Arc<shadow_service::Shadows>);

impl ShadowReader for Shadowed {
    fn get(&self, thing: &str, shadow: Option<&str>) -> Result<Value, String> {
        self.0.get(thing, shadow)
    }
}

fn publish(topic: &str, payload: &str) -> Message {
    let p = mqtt::Publish { topic: topic.into(), payload: Bytes::from(payload.to_string()), qos: QoS::AtLeastOnce, ..Default::default() };
    Message::from_publish(p, None, std::time::Instant::now())
}

async fn next(c: &InternalClient) -> Arc<Message> {
    tokio::time::timeout(std::time::Duration::from_secs(5), c.recv()).await.expect("a message within 5 s").msg
}

async fn nothing(c: &InternalClient) {
    assert!(tokio::time::timeout(std::time::Duration::from_millis(300), c.recv()).await.is_err(), "unexpected message");
}

fn republish(topic: &str) -> Value {
    json!({"republish": {"topic": topic, "roleArn": "arn:aws:iam::123456789012:role/r", "qos": 1}})
}

fn payload(sql: &str, actions: Vec<Value>) -> Value {
    json!({"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions})
}

#[tokio::test(flavor = "multi_thread")]
async fn republish_renders_templates_and_mqtt5_headers() {
    let f = fixture("republish");
    let mut action = republish("alerts/${topic(2)}/${upper(kind)}");
    action["republish"]["headers"] = json!({
        "contentType": "application/json",
        "correlationData": "${encode(topic(2), 'base64')}",
        "messageExpiry": "${60 * 2}",
        "payloadFormatIndicator": "UTF8_DATA",
        "responseTopic": "replies/${clientid()}",
        "userProperties": [{"key": "source", "value": "${topic(1)}"}, {"key": "k", "value": "v"}]
    });
    f.rules.create_rule("alerts", &payload("SELECT temp, topic(2) AS device FROM 'sensors/+' WHERE temp > 20", vec![action]), vec![]).unwrap();
    let app = f.broker.internal_client("app");
    app.subscribe("alerts/#", QoS::AtLeastOnce).unwrap();
    let device = f.broker.internal_client("dev-7");
    device.publish(publish("sensors/t7", r#"{"temp": 10, "kind": "x"}"#)).await;
    device.publish(publish("sensors/t7", r#"{"temp": 25.5, "kind": "hot"}"#)).await;
    let m = next(&app).await;
    assert_eq!(&*m.topic, "alerts/t7/HOT");
    assert_eq!(serde_json::from_slice::<Value>(&m.payload).unwrap(), json!({"temp": 25.5, "device": "t7"}));
    assert_eq!(m.qos, QoS::AtLeastOnce);
    let p = &m.properties;
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"t7"[..]));
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.response_topic.as_deref(), Some("replies/dev-7"));
    assert_eq!(p.user_properties, vec![("source".into(), "sensors".into()), ("k".into(), "v".into())]);
    let left = m.remaining_expiry_secs(std::time::Instant::now()).unwrap();
    assert!((115..=120).contains(&left), "{left}");
    nothing(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_rules_each_get_a_copy_and_follow_enable_disable_replace_delete() {
    let f = fixture("lifecycle");
    f.rules.create_rule("a", &payload("SELECT 'a' AS r FROM 'in/#'", vec![republish("out/a")]), vec![]).unwrap();
    f.rules.create_rule("b", &payload("SELECT 'b' AS r FROM 'in/+'", vec![republish("out/b")]), vec![]).unwrap();
    let app = f.broker.internal_client("app");
    app.subscribe("out/+", QoS::AtLeastOnce).unwrap();
    let dev = f.broker.internal_client("dev");
    dev.publish(publish("in/x", "{}")).await;
    let mut got = vec![next(&app).await.topic.to_string(), next(&app).await.topic.to_string()];
    got.sort();
    assert_eq!(got, ["out/a", "out/b"]);
    f.rules.set_disabled("b", true).unwrap();
    assert!(f.rules.get_rule("b").unwrap().disabled);
    dev.publish(publish("in/x", "{}")).await;
    assert_eq!(&*next(&app).await.topic, "out/a");
    nothing(&app).await;
    f.rules.set_disabled("b", false).unwrap();
    f.rules.replace_rule("a", &payload("SELECT 'a2' AS r FROM 'in/#'", vec![republish("out/a2")])).unwrap();
    f.rules.delete_rule("b").unwrap();
    dev.publish(publish("in/x", "{}")).await;
    let m = next(&app).await;
    assert_eq!((&*m.topic, &m.payload[..]), ("out/a2", &b"{\"r\":\"a2\"}"[..]));
    nothing(&app).await;
    assert!(matches!(f.rules.get_rule("b"), Err(RulesError::NotFound(_))));
    assert!(matches!(f.rules.create_rule("a", &payload("SELECT * FROM 'x'", vec![]), vec![]), Err(RulesError::AlreadyExists { .. })));
    let page = f.rules.list_rules(Some("in/x"), Some(false), None, 10);
    assert_eq!((page.items.len(), page.more()), (1, false));
    assert_eq!(page.items[0].sql_version, "2016-03-23");
    // The rules survive a restart of the service.
    drop(f.rules.clone());
    let again = Rules::start(f.docs.clone(), f.broker.clone(), f.functions.clone(), None, config()).unwrap();
    assert_eq!(again.get_rule("a").unwrap().sql, "SELECT 'a2' AS r FROM 'in/#'");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_node_keeps_a_rule_running_when_only_its_tags_change() {
    let f = fixture("retag");
    let other = Rules::start(f.docs.clone(), f.broker.clone(), f.functions.clone(), None, config()).unwrap();
    other.follow();
    let arn = "arn:aws:iot:us-east-1:123456789012:rule/r";
    f.rules.create_rule("r", &payload("SELECT * FROM 'in/r'", vec![republish("out/r")]), vec![]).unwrap();
    let until = |what: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "the other node did not follow within 5 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    until(&|| other.running("r").is_some());
    let before = other.running("r").unwrap();
    f.rules.tag_resource(arn, &[("env".into(), "prod".into())]).unwrap();
    until(&|| other.list_tags(arn).is_ok_and(|t| t.get("env").is_some_and(|v| v == "prod")));
    assert!(Arc::ptr_eq(&before, &other.running("r").unwrap()), "a tag change restarted the rule's worker");
    // A change of the rule itself still restarts it.
    f.rules.replace_rule("r", &payload("SELECT * FROM 'in/r2'", vec![republish("out/r")])).unwrap();
    until(&|| other.running("r").is_some_and(|c| !Arc::ptr_eq(&before, &c)));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_ingest_reaches_only_the_named_rule() {
    let f = fixture("ingest");
    f.rules.create_rule("ingest_me", &payload("SELECT *, topic() AS t", vec![republish("out/${topic()}")]), vec![]).unwrap();
    f.rules.create_rule("other", &payload("SELECT * FROM 'a/#'", vec![republish("other/${topic()}")]), vec![]).unwrap();
    let snoop = f.broker.internal_client("snoop");
    snoop.subscribe("$aws/rules/#", QoS::AtLeastOnce).unwrap();
    snoop.subscribe("$aws/rules/ingest_me/#", QoS::AtLeastOnce).unwrap();
    let app = f.broker.internal_client("app");
    app.subscribe("out/#", QoS::AtLeastOnce).unwrap();
    app.subscribe("other/#", QoS::AtLeastOnce).unwrap();
    let dev = f.broker.internal_client("dev");
    dev.publish(publish("$aws/rules/ingest_me/a/b", r#"{"v":1}"#)).await;
    let m = next(&app).await;
    assert_eq!(&*m.topic, "out/a/b");
    assert_eq!(serde_json::from_slice::<Value>(&m.payload).unwrap(), json!({"v": 1, "t": "a/b"}));
    nothing(&app).await;
    nothing(&snoop).await;
}

/// A recorded request: target (path and query), headers (lowercase names), body.
type Recorded = (String, Vec<(String, String)>, String);

/// An HTTP server that records requests and answers with scripted statuses (then 200).
struct Recorder {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    async fn start(statuses: Vec<u16>, delay_ms: u64) -> Recorder {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses));
        let reqs = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                let (reqs, statuses) = (reqs.clone(), statuses.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let mut lines = head.lines();
                        let target = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
                        let headers: Vec<(String, String)> =
                            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
                        let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                        buf.drain(..end + 4 + len);
                        reqs.lock().unwrap().push((target, headers, body));
                        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                        let status = { let mut st = statuses.lock().unwrap(); if st.is_empty() { 200 } else { st.remove(0) } };
                        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Recorder { url, requests }
    }

    async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..500 {
            if self.requests.lock().unwrap().len() >= n {
                return self.requests.lock().unwrap().clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("expected {n} requests, got {:?}", self.requests.lock().unwrap());
    }
}

fn header<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_actions_need_a_confirmed_enabled_destination_and_retry() {
    let f = fixture("http");
    let server = Recorder::start(vec![200, 503], 0).await;
    let hook = format!("{}/hook", server.url);
    let action = json!({"http": {"url": format!("{hook}/${{topic(2)}}"), "confirmationUrl": hook, "headers": [{"key": "x-device", "value": "${topic(2)}"}]}});
    let error = republish("errors");
    let mut p = payload("SELECT * FROM 'h/+'", vec![action]);
    p["errorAction"] = error;
    f.rules.create_rule("web", &p, vec![]).unwrap();
    // Creating the rule created the destination and sent its confirmation.
    let reqs = server.wait_for(1).await;
    let (target, headers, body) = &reqs[0];
    let conf: Value = serde_json::from_str(body).unwrap();
    let token = conf["confirmationToken"].as_str().unwrap().to_string();
    assert_eq!(target, &format!("/hook?confirmationToken={token}"));
    assert_eq!(header(headers, "x-amz-rules-engine-message-type"), Some("DestinationConfirmation"));
    assert_eq!(conf["messageType"], "DestinationConfirmation");
    assert!(conf["enableUrl"].as_str().unwrap().ends_with(&format!("/confirmdestination/{token}")));
    let arn = conf["arn"].as_str().unwrap().to_string();
    assert_eq!(header(headers, "x-amz-rules-engine-destination-arn"), Some(arn.as_str()));
    assert_eq!(f.rules.get_destination(&arn).unwrap().status, DestinationStatus::InProgress);
    let errors = f.broker.internal_client("errors-app");
    errors.subscribe("errors", QoS::AtLeastOnce).unwrap();
    let dev = f.broker.internal_client("dev");
    // Not confirmed yet: the action fails and the error action reports it.
    dev.publish(publish("h/d1", r#"{"n":1}"#)).await;
    let e: Value = serde_json::from_slice(&next(&errors).await.payload).unwrap();
    assert_eq!(e["ruleName"], "web");
    assert_eq!(e["topic"], "h/d1");
    assert_eq!(e["clientId"], "dev");
    assert_eq!(e["base64OriginalPayload"], "eyJuIjoxfQ==");
    assert_eq!(e["failures"][0]["failedAction"], "HttpAction");
    assert_eq!(e["failures"][0]["failedResource"], format!("{hook}/d1"));
    assert!(e["failures"][0]["errorMessage"].as_str().unwrap().contains("not confirmed and enabled"));
    assert!(e["cloudwatchTraceId"].as_str().unwrap().len() == 36);
    // Confirm (→ DISABLED), enable, send: the first try gets 503, the retry succeeds.
    assert!(f.rules.confirm_destination("nope").is_err());
    f.rules.confirm_destination(&token).unwrap();
    assert_eq!(f.rules.get_destination(&arn).unwrap().status, DestinationStatus::Disabled);
    f.rules.update_destination(&arn, "ENABLED").unwrap();
    dev.publish(publish("h/d2", r#"{"n":2}"#)).await;
    let reqs = server.wait_for(3).await;
    for (target, headers, body) in &reqs[1..3] {
        assert_eq!(target, "/hook/d2");
        assert_eq!(body, r#"{"n":2}"#);
        assert_eq!(header(headers, "x-device"), Some("d2"));
        assert_eq!(header(headers, "content-type"), Some("application/json"));
    }
    nothing(&errors).await;
    // Disabled again: failures go to the error action.
    f.rules.update_destination(&arn, "DISABLED").unwrap();
    dev.publish(publish("h/d3", "{}")).await;
    next(&errors).await;
    assert_eq!(f.rules.list_destinations(None, 10).items.len(), 1);
    assert!(matches!(f.rules.create_destination(&hook), Err(RulesError::AlreadyExists { .. })));
    f.rules.delete_destination(&arn).unwrap();
    assert!(matches!(f.rules.get_destination(&arn), Err(RulesError::NotFound(_))));
}

fn script(f: &Fixture, name: &str, body: &str) -> String {
    let p = f.dir.join("bin").join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn lambda_actions_and_aws_lambda_run_ferrite_functions() {
    let f = fixture("lambda");
    let out = f.dir.join("bin/events");
    let p = script(&f, "record.sh", &format!("cat >> {}; echo >> {}; echo '{{}}'", out.display(), out.display()));
    f.functions.create(functions::NewFunction { name: "record".into(), location: p, ..Default::default() }).unwrap();
    let p = script(&f, "double.sh", r#"read -r ev; n=$(echo "$ev" | sed 's/[^0-9]//g'); echo "{\"doubled\": $((n * 2))}""#);
    f.functions.create(functions::NewFunction { name: "double".into(), location: p, ..Default::default() }).unwrap();
    let lambda = json!({"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:record"}});
    let sql = "SELECT n, aws_lambda('arn:aws:lambda:us-east-1:123456789012:function:double', {'n': n}).doubled AS d FROM 'l/+'";
    f.rules.create_rule("fn", &payload(sql, vec![lambda]), vec![]).unwrap();
    let dev = f.broker.internal_client("dev");
    dev.publish(publish("l/1", r#"{"n": 21}"#)).await;
    for _ in 0..500 {
        if std::fs::read_to_string(&out).is_ok_and(|s| s.contains('\n')) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let line = std::fs::read_to_string(&out).unwrap();
    assert_eq!(serde_json::from_str::<Value>(line.trim()).unwrap(), json!({"n": 21, "d": 42}));
    // A missing function fails the action, reported to the error action.
    let mut p = payload("SELECT * FROM 'm/+'", vec![json!({"lambda": {"functionArn": "missing"}})]);
    p["errorAction"] = republish("errors");
    f.rules.create_rule("missing_fn", &p, vec![]).unwrap();
    let errors = f.broker.internal_client("errors-app");
    errors.subscribe("errors", QoS::AtLeastOnce).unwrap();
    dev.publish(publish("m/1", "{}")).await;
    let e: Value = serde_json::from_slice(&next(&errors).await.payload).unwrap();
    assert_eq!(e["failures"][0]["failedAction"], "LambdaAction");
    assert_eq!(e["failures"][0]["failedResource"], "missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_thing_shadow_reads_ferrite_shadows() {
    let f = fixture("shadow");
    let id = shadow_service::ShadowId { thing: "lamp".into(), name: String::new() };
    f.shadows.http(&id, shadow_service::Op::Update, br#"{"state":{"reported":{"on":true}}}"#).await.unwrap();
    let sql = "SELECT get_thing_shadow(topic(2), 'arn:aws:iam::123456789012:role/r').state.reported.on AS on FROM 's/+'";
    f.rules.create_rule("sh", &payload(sql, vec![republish("out")]), vec![]).unwrap();
    let app = f.broker.internal_client("app");
    app.subscribe("out", QoS::AtLeastOnce).unwrap();
    f.broker.internal_client("dev").publish(publish("s/lamp", "{}")).await;
    assert_eq!(&next(&app).await.payload[..], br#"{"on":true}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_http_target_holds_back_neither_other_rules_nor_the_broker() {
    let cfg = RulesConfig { max_inflight_actions_per_rule: 2, http_timeout: std::time::Duration::from_secs(5), ..config() };
    let f = fixture_with("slow", cfg);
    let server = Recorder::start(vec![], 3000).await;
    let hook = format!("{}/slow", server.url);
    f.rules.create_rule("slow", &payload("SELECT * FROM 'x/#'", vec![json!({"http": {"url": hook}})]), vec![]).unwrap();
    let token = serde_json::from_str::<Value>(&server.wait_for(1).await[0].2).unwrap()["confirmationToken"].as_str().unwrap().to_string();
    f.rules.confirm_destination(&token).unwrap();
    let arn = f.rules.list_destinations(None, 1).items[0].arn.clone();
    f.rules.update_destination(&arn, "ENABLED").unwrap();
    f.rules.create_rule("fast", &payload("SELECT * FROM 'x/#'", vec![republish("fast")]), vec![]).unwrap();
    let app = f.broker.internal_client("app");
    app.subscribe("fast", QoS::AtLeastOnce).unwrap();
    let dev = f.broker.internal_client("dev");
    let started = std::time::Instant::now();
    for i in 0..50 {
        dev.publish(publish("x/1", &format!("{{\"i\":{i}}}"))).await;
    }
    for _ in 0..50 {
        next(&app).await;
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    let m = &f.rules.engine().metrics;
    // Both rules have seen every message; the slow one kept 2 in flight and dropped the rest.
    for _ in 0..500 {
        if m.actions_dropped.load(std::sync::atomic::Ordering::Relaxed) >= 48 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(m.actions_dropped.load(std::sync::atomic::Ordering::Relaxed), 48);
}
