//! Measures the memory an idle MQTT connection costs the broker: a counting allocator wraps
//! jemalloc (configured as the `ferrite` binary configures it), N plain-TCP clients connect
//! (blocking std sockets, which allocate nothing per connection) and stay idle until they park,
//! and the live allocations that appeared are printed by size, with the RSS growth.
//! BENCHMARKS.md measures the whole `ferrite` process; this says what it is made of.
//!
//! `cargo run --release -p broker --example idle_memory -- [connections] [park_idle_after_ms]`
//! (park_idle_after_ms 0: connections never park).

use std::alloc::{GlobalAlloc, Layout};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use tikv_jemallocator::Jemalloc;

const CLASSES: usize = 1024;
static LIVE: [AtomicI64; CLASSES] = [const { AtomicI64::new(0) }; CLASSES];
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

/// The same options as the `ferrite` binary.
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() });

/// Allocation sizes in 16-byte classes (the last class holds everything larger).
fn class(size: usize) -> usize {
    (size / 16).min(CLASSES - 1)
}

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE[class(l.size())].fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { Jemalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE[class(l.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { Jemalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE[class(l.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE[class(new)].fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        unsafe { Jemalloc.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> (i64, Vec<i64>) {
    (LIVE_BYTES.load(Ordering::Relaxed), LIVE.iter().map(|c| c.load(Ordering::Relaxed)).collect())
}

fn rss_kib() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()).map_or(0, |p| p * 4)
}

/// A minimal MQTT 3.1.1 CONNECT (clean session, keep alive 60 s) for `id`.
fn connect_packet(id: &str) -> Vec<u8> {
    let mut v = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, id.len() as u8];
    v.extend_from_slice(id.as_bytes());
    let mut p = vec![0x10, v.len() as u8];
    p.extend(v);
    p
}

fn open(addr: std::net::SocketAddr, from: usize, count: usize, clients: &mut Vec<std::net::TcpStream>) -> std::io::Result<()> {
    for i in from..from + count {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.write_all(&connect_packet(&format!("idle-{i:06}")))?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack)?;
        clients.push(s);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let park_ms: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(500);
    let park = (park_ms > 0).then(|| std::time::Duration::from_millis(park_ms));
    // Parking, plus the background purge of freed pages.
    let settle = std::time::Duration::from_millis(2500 + park_ms);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let config = broker::BrokerConfig { max_connections: n + 200, park_idle_after: park, ..Default::default() };
    let broker = rt.block_on(async { broker::Broker::new(config) });
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(broker::server::serve_tcp(broker.clone(), listener, stop_rx));

    // Warm up: the first connections create the maps and pools every later one shares.
    let mut clients = Vec::with_capacity(n + 100);
    open(addr, 0, 100, &mut clients)?;
    std::thread::sleep(settle);
    let (bytes0, classes0) = snapshot();
    let rss0 = rss_kib();
    open(addr, 100, n, &mut clients)?;
    let rss_live = rss_kib();
    std::thread::sleep(settle);
    let (bytes1, classes1) = snapshot();
    let rss1 = rss_kib();

    let per_kib = |rss: i64| (rss - rss0) as f64 / n as f64;
    println!("{n} connections: RSS +{:.2} KiB per connection just connected, +{:.2} KiB idle", per_kib(rss_live), per_kib(rss1));
    println!("idle: live heap +{:.0} B per connection", (bytes1 - bytes0) as f64 / n as f64);
    let mut rows: Vec<(usize, f64)> =
        classes0.iter().zip(&classes1).enumerate().map(|(c, (a, b))| (c, (b - a) as f64 / n as f64)).filter(|(_, d)| d.abs() >= 0.05).collect();
    rows.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    println!("allocations per connection by size:");
    for (c, d) in rows.iter().take(30) {
        let range = if *c == CLASSES - 1 { format!(">= {} B", c * 16) } else { format!("{}..{} B", c * 16, c * 16 + 15) };
        println!("  {d:>6.2} x {range}");
    }
    drop(clients);
    Ok(())
}
