//! A benchmark run: connect the subscribers (each one SUBACKed), then the publishers; publish for
//! the duration; let the subscribers drain for up to `--drain` seconds; count.

use crate::client::{self, Clock, Conn, Counters, PubPlan, PubResult, SubResult, CONNECT_TIMEOUT};
use crate::report::{Latency, Report};
use crate::stats::{histogram, Seen};
use crate::{BenchError, Options, Scenario};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Runs the scenario of `opts` against the broker at `opts.host:opts.port`.
///
/// Fails if the options are invalid or any client cannot connect or subscribe; what happens
/// after that (losses, duplicates, clients the broker disconnects) is in the [`Report`].
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    opts.validate()?;
    let addr = resolve(&opts.host, opts.port).await?;
    match opts.scenario {
        Scenario::Connections => connections(opts, addr).await,
        _ => traffic(opts, addr).await,
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, BenchError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| BenchError::Resolve { host: host.to_owned(), source })?
        .collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().ok_or_else(|| BenchError::NoAddress { host: host.to_owned() })
}

/// A name unique to this run, so that topics and client ids never meet an earlier run's.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    format!("{:x}", nanos ^ ((std::process::id() as u64) << 40))
}

/// Who publishes where and who listens.
struct Plan {
    pubs: Vec<PubPlan>,
    /// Filter and receiving unit of each subscriber.
    subs: Vec<(String, usize)>,
    /// For each receiving unit (a subscriber, or the whole shared group), the publishers it hears.
    units: Vec<Vec<u32>>,
}

fn plan(opts: &Options, prefix: &str) -> Plan {
    let n = opts.clients;
    let publisher = |id: usize, topic: String, count: usize| PubPlan {
        id: id as u32,
        topic,
        qos: opts.qos,
        payload: opts.payload,
        rate: opts.rate as f64 / count as f64,
        window: opts.inflight,
    };
    let topic = format!("{prefix}/{}", opts.scenario.name());
    match opts.scenario {
        Scenario::FanIn => Plan {
            pubs: (0..n).map(|i| publisher(i, topic.clone(), n)).collect(),
            subs: vec![(topic, 0)],
            units: vec![(0..n as u32).collect()],
        },
        Scenario::FanOut => Plan {
            pubs: vec![publisher(0, topic.clone(), 1)],
            subs: (0..n).map(|i| (topic.clone(), i)).collect(),
            units: vec![vec![0]; n],
        },
        Scenario::P2p => Plan {
            pubs: (0..n).map(|i| publisher(i, format!("{topic}/{i}"), n)).collect(),
            subs: (0..n).map(|i| (format!("{topic}/{i}"), i)).collect(),
            units: (0..n as u32).map(|i| vec![i]).collect(),
        },
        Scenario::Shared => Plan {
            pubs: (0..n).map(|i| publisher(i, topic.clone(), n)).collect(),
            subs: (0..opts.subscribers).map(|_| (format!("$share/g/{topic}"), 0)).collect(),
            units: vec![(0..n as u32).collect()],
        },
        Scenario::Connections => Plan { pubs: Vec::new(), subs: Vec::new(), units: Vec::new() },
    }
}

/// Clients per loopback source address. Linux picks the source port of a connection by scanning
/// the ephemeral range for a free one, which gets slow as the range fills (connecting 19,000
/// clients from one address runs at a third of the rate of the first 10,000); so beyond this
/// many clients, client `i` binds to 127.0.0.(1 + i / PER_SOURCE), which keeps every address's
/// range mostly free.
const PER_SOURCE: usize = 5_000;

/// The source address of client `i` of `n`, when the clients are spread over loopback addresses.
fn source(addr: SocketAddr, i: usize, n: usize) -> Option<IpAddr> {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() && n > PER_SOURCE => {
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE).min(253) as u8)))
        }
        _ => None,
    }
}

/// Connects `clients` (client id, and the filter to subscribe to if any), at most
/// `concurrency` at a time; returns them in order with their CONNECT→CONNACK time.
async fn connect_many(
    addr: SocketAddr,
    opts: &Options,
    clients: Vec<(String, Option<String>)>,
    connected: Arc<AtomicU64>,
) -> Result<Vec<(Conn, Duration)>, BenchError> {
    let n = clients.len();
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency));
    let (proto, qos) = (opts.protocol(), opts.qos);
    let mut set = JoinSet::new();
    for (i, (id, filter)) in clients.into_iter().enumerate() {
        let (sem, connected) = (sem.clone(), connected.clone());
        let src = source(addr, i, n);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| BenchError::Task(e.to_string()))?;
            let t0 = Instant::now();
            let mut conn = client::connect(addr, src, id.clone(), proto).await?;
            let took = t0.elapsed();
            if let Some(f) = filter {
                match tokio::time::timeout(CONNECT_TIMEOUT, conn.subscribe(&f, qos)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(BenchError::Protocol { client: id, detail: format!("no SUBACK for {f} within {CONNECT_TIMEOUT:?}") });
                    }
                }
            }
            connected.fetch_add(1, Relaxed);
            Ok((i, conn, took))
        });
    }
    let mut out: Vec<Option<(Conn, Duration)>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        // An error drops `set`, which aborts the other clients.
        let (i, conn, took) = joined.map_err(|e| BenchError::Task(e.to_string()))??;
        out[i] = Some((conn, took));
    }
    Ok(out.into_iter().flatten().collect())
}

/// Prints one progress line a second on stderr until aborted.
fn progress(counters: Arc<Counters>, connected: Arc<AtomicU64>, start: Instant, idle: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
        let (mut sent, mut received) = (0, 0);
        loop {
            tick.tick().await;
            let secs = start.elapsed().as_secs_f64();
            if idle {
                eprintln!("[{secs:5.1}s] connections open {}", connected.load(Relaxed));
                continue;
            }
            let (s, r) = (counters.sent.load(Relaxed), counters.received.load(Relaxed));
            eprintln!(
                "[{secs:5.1}s] sent {:>9} msg/s  received {:>9} msg/s  (total sent {s}, received {r})",
                s - sent,
                r - received
            );
            (sent, received) = (s, r);
        }
    })
}

async fn traffic(opts: &Options, addr: SocketAddr) -> Result<Report, BenchError> {
    let base = Instant::now();
    let id = run_id();
    let plan = plan(opts, &format!("ferrite-bench/{id}"));
    let connected = Arc::new(AtomicU64::new(0));
    let sub_clients = plan.subs.iter().enumerate().map(|(i, (f, _))| (format!("fb-{id}-s{i}"), Some(f.clone()))).collect();
    let subs = connect_many(addr, opts, sub_clients, connected.clone()).await?;
    let pub_clients = (0..plan.pubs.len()).map(|i| (format!("fb-{id}-p{i}"), None)).collect();
    let pubs = connect_many(addr, opts, pub_clients, connected.clone()).await?;

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let drain = Duration::from_secs_f64(opts.drain);
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(opts.duration);
    let clock = Clock { base, start, stop_at, hard_stop: stop_at + drain };
    let distinct: Vec<Arc<AtomicU64>> = subs.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let sub_tasks: Vec<JoinHandle<SubResult>> = subs
        .into_iter()
        .zip(&distinct)
        .map(|((conn, _), d)| {
            tokio::spawn(client::subscriber(conn, plan.pubs.len(), clock, counters.clone(), d.clone(), stop_rx.clone()))
        })
        .collect();
    let pub_tasks: Vec<JoinHandle<PubResult>> = pubs
        .into_iter()
        .zip(&plan.pubs)
        .map(|((conn, _), p)| tokio::spawn(client::publisher(conn, p.clone(), clock, counters.clone())))
        .collect();
    let ticker = (!opts.quiet).then(|| progress(counters.clone(), connected, start, false));

    let mut pub_results = Vec::with_capacity(pub_tasks.len());
    for t in pub_tasks {
        pub_results.push(t.await.map_err(|e| BenchError::Task(e.to_string()))?);
    }
    let expected_by_unit: Vec<u64> =
        plan.units.iter().map(|ps| ps.iter().map(|&p| pub_results[p as usize].sent).sum()).collect();
    let expected: u64 = expected_by_unit.iter().sum();
    let drain_until = Instant::now() + drain;
    while distinct.iter().map(|d| d.load(Relaxed)).sum::<u64>() < expected && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    let mut sub_results = Vec::with_capacity(sub_tasks.len());
    for t in sub_tasks {
        sub_results.push(t.await.map_err(|e| BenchError::Task(e.to_string()))?);
    }
    if let Some(t) = ticker {
        t.abort();
    }

    let mut latency = histogram();
    let mut lost = 0;
    let mut distinct_total = 0;
    for (unit, want) in expected_by_unit.iter().enumerate() {
        let mut seen = Seen::new(plan.pubs.len());
        for (s, _) in sub_results.iter().zip(&plan.subs).filter(|(_, (_, u))| *u == unit) {
            seen.union(&s.seen);
        }
        let got = seen.count();
        distinct_total += got;
        lost += want.saturating_sub(got);
    }
    for s in &sub_results {
        latency.add(&s.latency).map_err(|e| BenchError::Task(format!("merging histograms: {e:?}")))?;
    }
    let received: u64 = sub_results.iter().map(|s| s.received).sum();
    let sent: u64 = pub_results.iter().map(|p| p.sent).sum();
    let start_ns = start.duration_since(base).as_nanos() as u64;
    let last_ns = sub_results.iter().map(|s| s.last_ns).max().unwrap_or(0);
    let receive_secs = if last_ns > start_ns { (last_ns - start_ns) as f64 / 1e9 } else { opts.duration };
    Ok(Report {
        scenario: opts.scenario,
        mqtt: opts.mqtt,
        qos: opts.qos,
        payload: opts.payload,
        rate: opts.rate,
        duration_s: opts.duration,
        publishers: plan.pubs.len(),
        subscribers: plan.subs.len(),
        sent,
        acked: pub_results.iter().map(|p| p.acked).sum(),
        rejected: pub_results.iter().map(|p| p.rejected).sum(),
        unacked: pub_results.iter().map(|p| p.unacked).sum(),
        expected,
        received,
        distinct: distinct_total,
        lost,
        duplicates: sub_results.iter().map(|s| s.duplicates).sum(),
        foreign: sub_results.iter().map(|s| s.foreign).sum(),
        sent_per_sec: sent as f64 / opts.duration,
        received_per_sec: received as f64 / receive_secs,
        latency: Latency::of(&latency),
        connections: 0,
        connect_secs: 0.0,
        connect_per_sec: 0.0,
        disconnects: pub_results.iter().filter(|p| p.disconnected).count()
            + sub_results.iter().filter(|s| s.disconnected).count(),
    })
}

async fn connections(opts: &Options, addr: SocketAddr) -> Result<Report, BenchError> {
    let id = run_id();
    let n = opts.clients;
    let connected = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let ticker = (!opts.quiet).then(|| progress(Arc::new(Counters::default()), connected.clone(), t0, true));
    let clients = (0..n).map(|i| (format!("fb-{id}-c{i}"), None)).collect();
    let result = connect_many(addr, opts, clients, connected.clone()).await;
    let connect_secs = t0.elapsed().as_secs_f64();
    let conns = match result {
        Ok(c) => c,
        Err(e) => {
            if let Some(t) = ticker {
                t.abort();
            }
            return Err(e);
        }
    };
    let mut latency = histogram();
    for (_, took) in &conns {
        latency.saturating_record((took.as_micros() as u64).max(1));
    }
    if !opts.quiet {
        eprintln!(
            "connected {n} clients in {connect_secs:.2} s ({:.0}/s); holding them for {} s",
            n as f64 / connect_secs,
            opts.duration
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks: Vec<JoinHandle<bool>> =
        conns.into_iter().map(|(c, _)| tokio::spawn(client::idle(c, connected.clone(), stop_rx.clone()))).collect();
    tokio::time::sleep(Duration::from_secs_f64(opts.duration)).await;
    if let Some(t) = ticker {
        t.abort();
    }
    let _ = stop_tx.send(true);
    let mut closed = 0;
    for t in tasks {
        closed += t.await.map_err(|e| BenchError::Task(e.to_string()))? as usize;
    }
    Ok(Report {
        scenario: opts.scenario,
        mqtt: opts.mqtt,
        qos: opts.qos,
        payload: opts.payload,
        rate: opts.rate,
        duration_s: opts.duration,
        connections: n,
        connect_secs,
        connect_per_sec: n as f64 / connect_secs,
        latency: Latency::of(&latency),
        disconnects: closed,
        ..Report::default()
    })
}
