//! ferrite-storm: a reconnect storm against any MQTT broker. N persistent sessions (MQTT 3.1.1,
//! clean session off) each subscribe at QoS 1 to their own retained topic `storm/{i}` (N
//! retained messages, published first), then disconnect; then all N reconnect at once, and the
//! storm lasts until every one has its CONNACK with the session present.
//!
//! `ferrite-storm --port 1883 --sessions 10000`

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use mqtt::{Connect, Packet, Properties, Protocol, Publish, QoS, Subscribe, SubscriptionOptions};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Connections being set up at once during the preparation.
    #[arg(long, default_value_t = 200)]
    setup_concurrency: usize,
}

/// Sends `packets` after a CONNECT and reads until `until` says the expected answers came.
async fn exchange(args: &Args, id: &str, packets: Vec<Packet>, mut until: impl FnMut(&Packet) -> bool) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect((args.host.as_str(), args.port)).await?;
    s.set_nodelay(true)?;
    let mut out = BytesMut::new();
    let connect = Connect { protocol: Protocol::V311, clean_start: false, keep_alive: 600, client_id: id.into(), will: None, username: None, password: None, properties: Properties::default() };
    Packet::Connect(Box::new(connect)).encode(&mut out, Protocol::V311);
    for p in packets {
        p.encode(&mut out, Protocol::V311);
    }
    s.write_all(&out).await?;
    let mut rbuf = BytesMut::new();
    loop {
        match mqtt::decode(&mut rbuf, Some(Protocol::V311), usize::MAX)? {
            Some(p) => {
                if let Packet::Publish(p) = &p
                    && p.qos == QoS::AtLeastOnce
                {
                    let mut ack = BytesMut::new();
                    Packet::PubAck(mqtt::PubResp::new(p.packet_id)).encode(&mut ack, Protocol::V311);
                    s.write_all(&ack).await?;
                }
                if until(&p) {
                    return Ok(s);
                }
            }
            None => match tokio::time::timeout(Duration::from_secs(60), s.read_buf(&mut rbuf)).await {
                Ok(Ok(0)) => bail!("{id}: connection closed"),
                Ok(r) => {
                    r?;
                }
                Err(_) => bail!("{id}: no answer within 60 s"),
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let n = args.sessions;
    // The retained messages, from one publisher (QoS 1, so each is stored when acknowledged).
    let publishes: Vec<Packet> = (0..n)
        .map(|i| Packet::Publish(Publish { qos: QoS::AtLeastOnce, retain: true, topic: format!("storm/{i}").into(), packet_id: (i % 60_000) as u16 + 1, payload: Bytes::from_static(b"retained"), ..Default::default() }))
        .collect();
    let mut acked = 0;
    exchange(&args, "storm-publisher", publishes, |p| {
        acked += matches!(p, Packet::PubAck(_)) as usize;
        acked == n
    })
    .await
    .context("publishing the retained messages")?;
    // The sessions: subscribe (getting the retained message), then leave.
    let setup = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.setup_concurrency));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (a, sem) = (args.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await?;
            let sub = Packet::Subscribe(Subscribe { packet_id: 1, filters: vec![(format!("storm/{i}"), SubscriptionOptions { qos: QoS::AtLeastOnce, ..Default::default() })], ..Default::default() });
            let s = exchange(&a, &format!("storm-{i}"), vec![sub], |p| matches!(p, Packet::Publish(_))).await?;
            drop(s);
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("{n} persistent sessions subscribed (each got its retained message) in {:.1} s", setup.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The storm: every session at once.
    let storm = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let a = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut present = false;
            let s = exchange(&a, &format!("storm-{i}"), vec![], |p| {
                present = matches!(p, Packet::ConnAck(c) if c.session_present);
                matches!(p, Packet::ConnAck(_))
            })
            .await?;
            anyhow::Ok((present, s))
        }));
    }
    let mut resumed = 0;
    let mut conns = Vec::with_capacity(n);
    for t in tasks {
        let (present, s) = t.await??;
        resumed += present as usize;
        conns.push(s);
    }
    let secs = storm.elapsed().as_secs_f64();
    println!("reconnect storm: {n} sessions, {resumed} resumed (session present) in {secs:.2} s = {:.0} reconnects/s", n as f64 / secs);
    if resumed != n {
        bail!("{} sessions were not resumed", n - resumed);
    }
    Ok(())
}
