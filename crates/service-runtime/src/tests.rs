//! The runtime with an echo service over an in-memory broker: order per key, replies to the
//! requester only, throttling past the in-flight bound.

use super::*;
use broker::{Broker, Message};
use bytes::Bytes;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Answers `req/{key}/{n}` with `n` on `req/{key}/reply`, to the requester only; remembers the
/// order it applied each key's requests in.
struct Echo {
    applied: Mutex<Vec<(String, u32)>>,
    delay: Duration,
    /// A request number that makes `apply` panic.
    panic_on: Option<u32>,
}

impl Service for Echo {
    type Applied = (String, u32);

    fn filters(&self) -> Vec<String> {
        vec!["req/+/+".into()]
    }

    fn key<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix("req/")?.split('/').next()
    }

    fn apply(&self, req: &Request) -> (String, u32) {
        std::thread::sleep(self.delay);
        let mut parts = req.topic().split('/').skip(1);
        let key = parts.next().unwrap_or_default().to_string();
        let n = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        assert_ne!(Some(n), self.panic_on, "asked to fail");
        self.applied.lock().unwrap().push((key.clone(), n));
        (key, n)
    }

    fn settle<'a>(&'a self, req: &'a Request, (key, n): (String, u32)) -> Replies<'a> {
        let to = req.client_id().cloned().unwrap_or_else(|| "nobody".into());
        Box::pin(async move { vec![Reply::only_to(msg(&format!("req/{key}/reply"), &n.to_string()), to)] })
    }

    fn throttled(&self, req: &Request) -> Vec<Reply> {
        let to = req.client_id().cloned().unwrap_or_else(|| "nobody".into());
        vec![Reply::only_to(msg(&format!("{}/throttled", req.topic()), "429"), to)]
    }
}

fn msg(topic: &str, payload: &str) -> Message {
    let p = mqtt::Publish { topic: topic.into(), payload: Bytes::from(payload.to_string()), qos: QoS::AtLeastOnce, ..Default::default() };
    Message::from_publish(p, None, Instant::now())
}

async fn next(c: &InternalClient) -> Arc<Message> {
    tokio::time::timeout(Duration::from_secs(5), c.recv()).await.expect("a reply within 5 s").msg
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_of_a_key_are_applied_in_order_and_answered_to_their_sender() {
    let broker = Broker::new(Default::default());
    let echo = Arc::new(Echo { applied: Mutex::default(), delay: Duration::ZERO, panic_on: None });
    serve(echo.clone(), broker.internal_client("$ferrite/echo"), RuntimeConfig { shards: 3, max_in_flight: 10_000 });
    let devices: Vec<_> = (0..4).map(|i| broker.internal_client(&format!("dev{i}"))).collect();
    for d in &devices {
        d.subscribe("req/+/reply", QoS::AtLeastOnce).unwrap();
    }
    for n in 0..50u32 {
        for (i, d) in devices.iter().enumerate() {
            d.publish(msg(&format!("req/k{i}/{n}"), "")).await;
        }
    }
    for (i, d) in devices.iter().enumerate() {
        for n in 0..50u32 {
            let m = next(d).await;
            assert_eq!((&*m.topic, &m.payload[..]), (format!("req/k{i}/reply").as_str(), n.to_string().as_bytes()), "device {i} gets only its own replies, in order");
        }
    }
    let applied = echo.applied.lock().unwrap().clone();
    for i in 0..4 {
        let order: Vec<u32> = applied.iter().filter(|(k, _)| *k == format!("k{i}")).map(|(_, n)| *n).collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saturated_shard_answers_with_the_throttling_rejection() {
    let broker = Broker::new(Default::default());
    let echo = Arc::new(Echo { applied: Mutex::default(), delay: Duration::from_millis(20), panic_on: None });
    let metrics = serve(echo.clone(), broker.internal_client("$ferrite/echo"), RuntimeConfig { shards: 1, max_in_flight: 2 });
    let dev = broker.internal_client("dev");
    dev.subscribe("req/#", QoS::AtLeastOnce).unwrap();
    for n in 0..20u32 {
        dev.publish(msg(&format!("req/k/{n}"), "")).await;
    }
    let (mut answered, mut throttled) = (0, 0);
    while answered + throttled < 20 {
        let m = next(&dev).await;
        if m.topic.ends_with("/throttled") {
            throttled += 1;
        } else {
            answered += 1;
        }
    }
    assert!(throttled > 0 && answered >= 2, "answered {answered}, throttled {throttled}");
    assert_eq!(metrics.throttled.load(Ordering::Relaxed), throttled);
    assert_eq!(echo.applied.lock().unwrap().len(), answered as usize, "a throttled request is not applied");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_service_fails_on_does_not_stop_its_shard() {
    let broker = Broker::new(Default::default());
    let echo = Arc::new(Echo { applied: Mutex::default(), delay: Duration::ZERO, panic_on: Some(1) });
    serve(echo.clone(), broker.internal_client("$ferrite/echo"), RuntimeConfig { shards: 1, max_in_flight: 10 });
    let dev = broker.internal_client("dev");
    dev.subscribe("req/+/reply", QoS::AtLeastOnce).unwrap();
    for n in 0..3u32 {
        dev.publish(msg(&format!("req/k/{n}"), "")).await;
    }
    assert_eq!(&next(&dev).await.payload[..], b"0");
    assert_eq!(&next(&dev).await.payload[..], b"2", "the request after the failed one is answered");
}

#[test]
fn shards_are_stable_and_spread() {
    assert_eq!(shard_of("thing-1", 4), shard_of("thing-1", 4));
    let mut seen = [0usize; 4];
    for i in 0..1000 {
        seen[shard_of(&format!("thing-{i}"), 4)] += 1;
    }
    assert!(seen.iter().all(|n| *n > 150), "{seen:?}");
    // Fixed by the algorithm (FNV-1a), not by the build: positions recorded per shard stay valid.
    assert_eq!(shard_of("a", 1_000_000), (0xaf63_dc4c_8601_ec8c_u64 % 1_000_000) as usize);
}
