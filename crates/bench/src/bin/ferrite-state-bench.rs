//! ferrite-state-bench: the state layer at registry scale.
//!
//! `populate` writes things (with attributes) and shadows straight into a state store, as the
//! registry and the shadow service store them (SQLite `state.db` of a data directory, or a
//! PostgreSQL database); `measure` drives a running Ferrite over its HTTP API with SigV4:
//! DescribeThing, GetThingShadow and ListThings (attribute filter) latencies from one
//! keep-alive connection, and CreateThing/s from concurrent clients. bench/state_store.sh runs
//! both backends side by side.
//!
//! `ferrite-state-bench populate --sqlite DIR/state.db --things 1000000 --shadows 100000`
//! `ferrite-state-bench measure --port 8080 --key AKIA... --secret ... --things 1000000`

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::state::{StateStore, Write};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes `things` things and `shadows` shadows into a state store.
    Populate {
        /// A SQLite state store file (a data directory's state.db).
        #[arg(long)]
        sqlite: Option<std::path::PathBuf>,
        /// A PostgreSQL database.
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long)]
        things: u64,
        #[arg(long, default_value_t = 0)]
        shadows: u64,
    },
    /// Measures a running Ferrite whose registry holds `things` things named thing-N.
    Measure {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        key: String,
        #[arg(long)]
        secret: String,
        #[arg(long)]
        things: u64,
        /// Shadows exist for thing-0 .. thing-(shadows - 1).
        #[arg(long, default_value_t = 0)]
        shadows: u64,
        /// Requests per read latency figure.
        #[arg(long, default_value_t = 2000)]
        requests: u64,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Only CreateThing/s (for a registry that is empty, or an older Ferrite).
        #[arg(long)]
        writes_only: bool,
    },
}

/// A thing document as the registry stores it.
fn thing_doc(i: u64) -> String {
    serde_json::json!({
        "name": format!("thing-{i}"),
        "id": format!("00000000-0000-4000-8000-{i:012}"),
        "attributes": {"site": format!("site-{}", i % 100), "fw": format!("1.{}", i % 7), "serial": format!("{i:010}")},
        "version": 1,
        "groups": {},
        "principals": {},
        "created_ms": 1_700_000_000_000i64 + i as i64,
    })
    .to_string()
}

async fn populate(store: StateStore, things: u64, shadows: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    const BATCH: u64 = 5000;
    let mut i = 0;
    while i < things {
        let end = (i + BATCH).min(things);
        let writes = (i..end).map(|n| Write::put("thing", format!("thing-{n}"), thing_doc(n))).collect();
        store.commit("registry", writes).await?;
        i = end;
    }
    let limits = shadow::Limits::default();
    let mut i = 0;
    while i < shadows {
        let end = (i + BATCH).min(shadows);
        let mut writes = Vec::new();
        for n in i..end {
            let body = format!(r#"{{"state":{{"reported":{{"temperature":{},"battery":{}}}}}}}"#, 20 + n % 10, n % 100);
            let out = shadow::update(None, body.as_bytes(), 1_700_000_000, &limits).map_err(|e| anyhow::anyhow!("shadow: {e:?}"))?;
            // The shadow service's key: `thing|name` (empty name: the classic shadow).
            writes.push(Write::put("shadow", format!("thing-{n}|"), serde_json::to_string(&out.stored)?));
        }
        store.commit(store::DOCUMENTS_DOMAIN, writes).await?;
        i = end;
    }
    println!("populated {things} things and {shadows} shadows in {:.1} s ({})", started.elapsed().as_secs_f64(), store.backend());
    Ok(())
}

struct Api {
    host: String,
    key: String,
    secret: String,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Api {
    async fn connect(host: &str, port: u16, key: &str, secret: &str) -> anyhow::Result<Api> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Api { host: format!("{host}:{port}"), key: key.into(), secret: secret.into(), sender })
    }

    /// One signed call; returns the status and the microseconds it took.
    async fn call(&mut self, service: &str, method: &str, path: &str, query: &str, body: &str) -> anyhow::Result<(u16, u64)> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let date = identity::sigv4::format_amz_date(now);
        let headers = vec![("host".to_string(), self.host.clone()), ("x-amz-date".to_string(), date.clone())];
        let req = identity::sigv4::Request { method, path, query, headers: &headers, body: body.as_bytes() };
        let auth = identity::sigv4::sign(&req, &self.key, &self.secret, "us-east-1", service).map_err(|e| anyhow::anyhow!("{e}"))?;
        let target = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
        let request = http::Request::builder()
            .method(method)
            .uri(target)
            .header("host", &self.host)
            .header("x-amz-date", &date)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        self.sender.ready().await?;
        let started = Instant::now();
        let resp = self.sender.send_request(request).await?;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await?;
        Ok((status, started.elapsed().as_micros() as u64))
    }
}

/// A spread of indexes in 0..n (a multiplicative walk, no two alike in a row).
fn pick(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761)) % n.max(1)
}

fn report(what: &str, h: &Histogram<u64>) {
    println!("{what}: n {} p50 {} µs p99 {} µs max {} µs", h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max());
}

#[allow(clippy::too_many_arguments)]
async fn measure(host: String, port: u16, key: String, secret: String, things: u64, shadows: u64, requests: u64, clients: usize, duration: u64, writes_only: bool) -> anyhow::Result<()> {
    if !writes_only {
        reads(&host, port, &key, &secret, things, shadows, requests).await?;
    }
    creates(host, port, key, secret, clients, duration).await
}

async fn reads(host: &str, port: u16, key: &str, secret: &str, things: u64, shadows: u64, requests: u64) -> anyhow::Result<()> {
    let mut api = Api::connect(host, port, key, secret).await?;
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..requests {
        let (status, us) = api.call("iot", "GET", &format!("/things/thing-{}", pick(i, things)), "", "").await?;
        if status != 200 {
            bail!("DescribeThing answered {status}");
        }
        h.record(us)?;
    }
    report("DescribeThing", &h);
    if shadows > 0 {
        let mut h = Histogram::<u64>::new(3)?;
        for i in 0..requests {
            let (status, us) = api.call("iotdata", "GET", &format!("/things/thing-{}/shadow", pick(i, shadows)), "", "").await?;
            if status != 200 {
                bail!("GetThingShadow answered {status}");
            }
            h.record(us)?;
        }
        report("GetThingShadow", &h);
    }
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..(requests / 10).max(1) {
        let query = format!("attributeName=site&attributeValue=site-{}&maxResults=100", i % 100);
        let (status, us) = api.call("iot", "GET", "/things", &query, "").await?;
        if status != 200 {
            bail!("ListThings answered {status}");
        }
        h.record(us)?;
    }
    report("ListThings (attribute filter, 100 per page)", &h);
    Ok(())
}

/// CreateThing from concurrent clients.
async fn creates(host: String, port: u16, key: String, secret: String, clients: usize, duration: u64) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (host, key, secret, stop) = (host.clone(), key.clone(), secret.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut api = Api::connect(&host, port, &key, &secret).await?;
            let mut h = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = r#"{"attributePayload":{"attributes":{"site":"new"}}}"#;
                let (status, us) = api.call("iot", "POST", &format!("/things/new-{c}-{n}-{}", std::process::id()), "", body).await?;
                if status != 200 {
                    bail!("CreateThing answered {status}");
                }
                h.record(us)?;
                n += 1;
            }
            anyhow::Ok(h)
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3)?;
    for t in tasks {
        total.add(t.await.context("client task")??)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("CreateThing: {clients} clients, {:.0} creates/s, p50 {} µs p99 {} µs", total.len() as f64 / secs, total.value_at_quantile(0.5), total.value_at_quantile(0.99));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Populate { sqlite, postgres, things, shadows } => {
            let store = match (sqlite, postgres) {
                (Some(path), None) => store::state::open_sqlite(&path, store::SyncMode::Off)?,
                (None, Some(url)) => store::state::connect_postgres(&url, 4).await?,
                _ => bail!("give --sqlite FILE or --postgres URL"),
            };
            populate(store, things, shadows).await
        }
        Command::Measure { host, port, key, secret, things, shadows, requests, clients, duration, writes_only } => {
            measure(host, port, key, secret, things, shadows, requests, clients, duration, writes_only).await
        }
    }
}
