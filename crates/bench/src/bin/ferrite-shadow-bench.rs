//! ferrite-shadow-bench: Device Shadow updates per second against a running Ferrite, over MQTT
//! (each client updates its own thing's shadow and waits for `/update/accepted`) or over the
//! HTTP API (SigV4-signed UpdateThingShadow on keep-alive connections).
//!
//! `ferrite-shadow-bench mqtt --port 1883 --clients 16 --duration 5`
//! `ferrite-shadow-bench mqtt --port 1883 --clients 16 --things 10000 --subscribers --duration 5`
//! (the clients update 10,000 things in turn, and each thing has a persistent QoS 1 subscriber
//! to its `/update/accepted` and `/update/documents`, acknowledging every message)
//! `ferrite-shadow-bench http --port 8080 --key AKIA... --secret ... --clients 16 --duration 5`

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mqtt::{Connect, Packet, Properties, Protocol, Publish, QoS, Subscribe, SubscriptionOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// `mqtt` or `http`.
    mode: String,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Concurrent clients, each updating its own thing's shadow.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Access key id (http mode).
    #[arg(long, default_value = "")]
    key: String,
    /// Secret access key (http mode).
    #[arg(long, default_value = "")]
    secret: String,
    /// Things updated (mqtt mode; 0: one per client). Client `c` updates things `c`, `c +
    /// clients`, ... in turn.
    #[arg(long, default_value_t = 0)]
    things: usize,
    /// Give every thing a persistent QoS 1 subscriber to `/update/accepted` and
    /// `/update/documents` (mqtt mode).
    #[arg(long)]
    subscribers: bool,
}

/// Connects with MQTT 3.1.1 and subscribes to `filters` (in SUBSCRIBEs of at most 100); returns
/// the stream and what it read past the SUBACKs.
async fn mqtt_session(args: &Args, client_id: &str, clean: bool, filters: Vec<(String, QoS)>) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut s = TcpStream::connect((args.host.as_str(), args.port)).await?;
    s.set_nodelay(true)?;
    let mut out = BytesMut::new();
    let connect = Connect {
        protocol: Protocol::V311,
        clean_start: clean,
        keep_alive: 600,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    };
    Packet::Connect(Box::new(connect)).encode(&mut out, Protocol::V311);
    let chunks: Vec<_> = filters.chunks(100).map(|c| c.to_vec()).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let filters = chunk.iter().map(|(f, qos)| (f.clone(), SubscriptionOptions { qos: *qos, ..Default::default() })).collect();
        Packet::Subscribe(Subscribe { packet_id: i as u16 + 1, filters, ..Default::default() }).encode(&mut out, Protocol::V311);
    }
    s.write_all(&out).await?;
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut acks = 0;
    while acks < 1 + chunks.len() {
        match mqtt::decode(&mut rbuf, Some(Protocol::V311), usize::MAX)? {
            Some(Packet::ConnAck(_)) | Some(Packet::SubAck(_)) => acks += 1,
            Some(_) => {}
            None => {
                if s.read_buf(&mut rbuf).await? == 0 {
                    bail!("connection closed during setup");
                }
            }
        }
    }
    Ok((s, rbuf))
}

/// A thing's persistent subscriber: acknowledges every QoS 1 message until the connection ends.
async fn subscriber(mut s: TcpStream, mut rbuf: BytesMut) -> anyhow::Result<u64> {
    let mut got = 0u64;
    let mut out = BytesMut::new();
    loop {
        match mqtt::decode(&mut rbuf, Some(Protocol::V311), usize::MAX)? {
            Some(Packet::Publish(p)) => {
                got += 1;
                if p.qos == QoS::AtLeastOnce {
                    Packet::PubAck(mqtt::PubResp::new(p.packet_id)).encode(&mut out, Protocol::V311);
                }
            }
            Some(_) => {}
            None => {
                if !out.is_empty() {
                    s.write_all(&out).await?;
                    out.clear();
                }
                if s.read_buf(&mut rbuf).await? == 0 {
                    return Ok(got);
                }
            }
        }
    }
}

fn thing_name(t: usize) -> String {
    format!("shadow-bench-{t}")
}

/// The things client `id` updates.
fn things_of(args: &Args, id: usize) -> Vec<String> {
    let n = if args.things == 0 { args.clients } else { args.things };
    (id..n).step_by(args.clients.max(1)).map(thing_name).collect()
}

fn update_doc(i: u64) -> String {
    format!(r#"{{"state":{{"reported":{{"temperature":{},"seq":{i}}}}}}}"#, 20 + i % 10)
}

async fn mqtt_client(args: Args, id: usize, stop: Arc<AtomicBool>) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    let things = things_of(&args, id);
    if things.is_empty() {
        return Ok(hist);
    }
    let filters = things.iter().flat_map(|t| ["accepted", "rejected"].map(|r| (format!("$aws/things/{t}/shadow/update/{r}"), QoS::AtMostOnce))).collect();
    let (mut s, mut rbuf) = mqtt_session(&args, &format!("shadow-bench-client-{id}"), true, filters).await?;
    let mut out = BytesMut::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let thing = &things[i as usize % things.len()];
        i += 1;
        out.clear();
        let p = Publish { qos: QoS::AtMostOnce, topic: format!("$aws/things/{thing}/shadow/update").into(), payload: Bytes::from(update_doc(i)), ..Default::default() };
        Packet::Publish(p).encode(&mut out, Protocol::V311);
        let started = Instant::now();
        s.write_all(&out).await?;
        loop {
            match mqtt::decode(&mut rbuf, Some(Protocol::V311), usize::MAX)? {
                Some(Packet::Publish(p)) if p.topic.ends_with("/accepted") => break,
                Some(Packet::Publish(p)) => bail!("rejected: {}", String::from_utf8_lossy(&p.payload)),
                Some(_) => {}
                None => match tokio::time::timeout(Duration::from_secs(10), s.read_buf(&mut rbuf)).await {
                    Ok(Ok(0)) => bail!("connection closed"),
                    Ok(r) => {
                        r?;
                    }
                    Err(_) => bail!("client {id}: update {i} of {thing} not answered within 10 s"),
                },
            }
        }
        hist.record(started.elapsed().as_micros() as u64)?;
    }
    Ok(hist)
}

async fn http_client(args: Args, id: usize, stop: Arc<AtomicBool>) -> anyhow::Result<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new(3)?;
    let stream = TcpStream::connect((args.host.as_str(), args.port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let host = format!("{}:{}", args.host, args.port);
    let path = format!("/things/shadow-bench-http-{id}/shadow");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let body = update_doc(i);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let date = identity::sigv4::format_amz_date(now);
        let headers = vec![("host".to_string(), host.clone()), ("x-amz-date".to_string(), date.clone())];
        let req = identity::sigv4::Request { method: "POST", path: &path, query: "", headers: &headers, body: body.as_bytes() };
        let auth = identity::sigv4::sign(&req, &args.key, &args.secret, "us-east-1", "iotdata").map_err(|e| anyhow::anyhow!("{e}"))?;
        let request = http::Request::post(&path)
            .header("host", &host)
            .header("x-amz-date", &date)
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))?;
        let started = Instant::now();
        let resp = sender.send_request(request).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await?;
        if !status.is_success() {
            bail!("UpdateThingShadow answered {status}");
        }
        hist.record(started.elapsed().as_micros() as u64)?;
    }
    Ok(hist)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    let mut subs = Vec::new();
    if args.subscribers {
        let n = if args.things == 0 { args.clients } else { args.things };
        let setup = Instant::now();
        for t in 0..n {
            let name = thing_name(t);
            let filters = ["accepted", "documents"].map(|r| (format!("$aws/things/{name}/shadow/update/{r}"), QoS::AtLeastOnce)).to_vec();
            let (s, rbuf) = mqtt_session(&args, &format!("shadow-bench-sub-{t}"), false, filters).await?;
            subs.push(tokio::spawn(subscriber(s, rbuf)));
        }
        println!("{n} persistent subscribers ready in {:.1} s", setup.elapsed().as_secs_f64());
    }
    let mut tasks = Vec::new();
    for id in 0..args.clients {
        let (a, s) = (args.clone(), stop.clone());
        tasks.push(match args.mode.as_str() {
            "mqtt" => tokio::spawn(mqtt_client(a, id, s)),
            "http" => tokio::spawn(http_client(a, id, s)),
            m => bail!("mode must be mqtt or http, not {m:?}"),
        });
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3)?;
    for t in tasks {
        total.add(t.await.context("client task")??)?;
    }
    let secs = started.elapsed().as_secs_f64();
    for s in subs {
        s.abort();
    }
    println!(
        "shadow updates over {}: {} clients, {} things, {} subscribers, {} updates in {:.1} s = {:.0} updates/s; latency p50 {} µs p99 {} µs max {} µs",
        args.mode,
        args.clients,
        if args.things == 0 { args.clients } else { args.things },
        if args.subscribers { "persistent" } else { "no" },
        total.len(),
        secs,
        total.len() as f64 / secs,
        total.value_at_quantile(0.5),
        total.value_at_quantile(0.99),
        total.max()
    );
    Ok(())
}
