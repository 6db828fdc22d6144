//! Rules engine throughput on the real broker, in process: a publisher (an in-process client)
//! sends JSON messages through `Broker::publish`; N rules, each its own in-process client and
//! task, evaluate them and republish the result (to topics without subscribers).
//!
//! - `fanout`: N rules on the same filter, so each message is evaluated (and republished) N
//!   times: rule executions per second.
//! - `spread`: N rules on N distinct topics, messages spread over them, so each message meets
//!   one rule: messages per second (the router finds the rule; nothing scans the rules).
//!
//! `cargo run --release -p rules --example throughput [-- 1 100 1000]`

use broker::{Broker, Message};
use bytes::Bytes;
use mqtt::QoS;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Evaluations per scenario run.
const EXECUTIONS: u64 = 2_000_000;

fn payload(i: u64) -> Bytes {
    Bytes::from(format!(r#"{{"deviceId":"sensor-{i}","temp":{},"humidity":48,"battery":{{"level":87}},"status":"ok"}}"#, 20 + i % 15))
}

async fn run(n: usize, fanout: bool) -> (f64, f64, u64) {
    let dir = std::env::temp_dir().join(format!("ferrite-rules-throughput-{}-{n}-{fanout}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let docs = Arc::new(store::Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).expect("store"));
    let broker = Broker::new(Default::default());
    let functions = functions::Functions::new(docs.clone(), Default::default());
    let rules = rules::Rules::start(docs, broker.clone(), functions, None, Default::default()).expect("rules");
    for i in 0..n {
        let from = if fanout { "bench/+/data".to_string() } else { format!("bench/{i}/data") };
        let sql = format!("SELECT temp, humidity, topic(2) AS device FROM '{from}' WHERE temp > 10");
        let p = json!({"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": [{"republish": {"topic": format!("out/{i}/${{topic(2)}}"), "roleArn": "arn:aws:iam::123456789012:role/r"}}]});
        rules.create_rule(&format!("r{i}"), &p, vec![]).expect("rule");
    }
    let messages = if fanout { EXECUTIONS / n as u64 } else { EXECUTIONS };
    let expected = if fanout { messages * n as u64 } else { messages };
    let device = broker.internal_client("publisher");
    let m = &rules.engine().metrics;
    let started = Instant::now();
    for i in 0..messages {
        let topic = if fanout { format!("bench/{}/data", i % 1000) } else { format!("bench/{}/data", i % n as u64) };
        let p = mqtt::Publish { topic: topic.as_str().into(), payload: payload(i), qos: QoS::AtMostOnce, ..Default::default() };
        device.publish(Message::from_publish(p, None, Instant::now())).await;
        // Keep the rules' queues below their bound: no drops, so every message is counted.
        while i % 1024 == 0 && m.messages.load(Ordering::Relaxed) + 50_000 < i * if fanout { n as u64 } else { 1 } {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let published = started.elapsed();
    while m.actions_ok.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(broker.metrics().dropped_queue_full.load(Ordering::Relaxed), 0, "a rule queue overflowed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = published;
    (messages as f64 / elapsed, expected as f64 / elapsed, m.matched.load(Ordering::Relaxed))
}

fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1, 100, 1000] } else { counts };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("{:>6} {:>8} {:>14} {:>18}", "rules", "scenario", "messages/s", "rule executions/s");
    for &n in &counts {
        for fanout in [true, false] {
            let (msgs, execs, _) = rt.block_on(run(n, fanout));
            println!("{n:>6} {:>8} {msgs:>14.0} {execs:>18.0}", if fanout { "fanout" } else { "spread" });
        }
    }
}
