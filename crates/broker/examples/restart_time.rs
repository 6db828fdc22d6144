//! Measures how long Ferrite's broker takes to load its store on restart: fills a fresh store
//! with N retained messages and M persistent sessions (each with a subscription and queued
//! messages), then times `Broker::open`.
//!
//! `cargo run --release -p broker --example restart_time -- [retained] [sessions] [queued_per_session]`

use std::sync::Arc;
use std::time::Instant;
use store::{Op, QueuedRow, StoredMessage, SubscriptionRow, SyncMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let retained = args.first().copied().unwrap_or(100_000);
    let sessions = args.get(1).copied().unwrap_or(10_000);
    let queued = args.get(2).copied().unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("ferrite-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ferrite.db");

    let fill = Instant::now();
    {
        let mut s = store::Store::open(&path, SyncMode::Off)?;
        let msg = |topic: String| {
            Arc::new(StoredMessage { topic, payload: vec![b'v'; 64], qos: 1, retain: true, props: vec![], expires_at_ms: None, created_ms: 0, publisher: None })
        };
        let mut ops = Vec::new();
        for i in 0..retained {
            ops.push(Op::PutRetained(msg(format!("site/{}/device/{i}/status", i % 100))));
        }
        for i in 0..sessions {
            let client_id = format!("device-{i}");
            ops.push(Op::PutSession { client_id: client_id.clone(), protocol: 4, expiry_secs: 86_400, principal: None });
            let sub = SubscriptionRow { filter: format!("cmd/{i}/#"), options: 1, sub_id: None };
            ops.push(Op::PutSubscription { client_id: client_id.clone(), sub });
            for q in 0..queued {
                let row = QueuedRow { seq: q as u64 + 1, packet_id: 0, stage: 0, qos: 1, retain: false, sub_ids: vec![], msg: msg(format!("cmd/{i}/x")) };
                ops.push(Op::PutMessage { client_id: client_id.clone(), row });
            }
        }
        s.apply(&ops)?;
    }
    eprintln!("filled store with {retained} retained, {sessions} sessions x {queued} queued in {:?}", fill.elapsed());

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let started = Instant::now();
        let (broker, restored) = broker::Broker::open(broker::BrokerConfig::default(), &path, SyncMode::Full)?;
        let elapsed = started.elapsed();
        println!(
            "restart: loaded {} retained, {} sessions, {} queued messages in {:.0} ms",
            restored.retained,
            restored.sessions,
            restored.messages,
            elapsed.as_secs_f64() * 1000.0
        );
        broker.close_store().await;
        Ok::<_, store::StoreError>(())
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
