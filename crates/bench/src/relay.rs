//! `ferrite-relay`: the least an MQTT server can do, as the ceiling the brokers are measured
//! against. It answers CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ, acknowledges QoS 1 and 2
//! publications, and forwards every PUBLISH frame verbatim (packet id and all) to the connections
//! that subscribed to exactly its topic name. No wildcards, no shared subscriptions, no sessions,
//! no retained messages, no topic aliases; consecutive PUBLISH frames of one topic in a read are
//! forwarded with one copy, and nothing is allocated per message.
//!
//! Each connection has an outbox (a byte buffer behind a mutex) drained by its own writer task;
//! a publisher whose subscriber has more than [`HIGH_WATER`] bytes waiting stops reading until
//! the writer catches up, so the relay loses nothing and TCP slows the publishers down.

use bytes::{Buf, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Bytes queued for a subscriber beyond which its publishers wait.
pub const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Largest read (the buffer starts at 1 KiB and grows while reads fill it).
const MAX_READ: usize = 256 * 1024;

/// Accepts connections until the listener fails for good.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, registry.clone()));
            }
            // Out of file descriptors and the like: wait for connections to close.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Topic name → outboxes of the connections subscribed to it.
#[derive(Default)]
struct Registry {
    topics: RwLock<HashMap<Vec<u8>, Vec<Arc<Outbox>>>>,
    /// Bumped on every change, so that publishers know when their cached lookup is stale.
    version: AtomicU64,
}

impl Registry {
    fn change(&self, f: impl FnOnce(&mut HashMap<Vec<u8>, Vec<Arc<Outbox>>>)) {
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        f(&mut topics);
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// Bytes waiting to be written to one connection.
#[derive(Default)]
struct Outbox {
    buf: Mutex<Vec<u8>>,
    /// Data was appended (a stored permit: the writer never misses one).
    ready: Notify,
    /// The writer took the buffer.
    drained: Notify,
    closed: AtomicBool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the connection's own responses, without waiting.
    fn push(&self, bytes: &[u8]) {
        if !self.closed.load(Ordering::Acquire) {
            self.lock().extend_from_slice(bytes);
            self.ready.notify_one();
        }
    }

    /// Appends forwarded messages, waiting while the connection is [`HIGH_WATER`] behind.
    async fn forward(&self, bytes: &[u8]) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut buf = self.lock();
                if self.closed.load(Ordering::Acquire) {
                    return;
                }
                if buf.len() < HIGH_WATER {
                    buf.extend_from_slice(bytes);
                    break;
                }
            }
            drained.await;
        }
        self.ready.notify_one();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.drained.notify_waiters();
        self.ready.notify_one();
    }
}

async fn writer(mut wr: OwnedWriteHalf, out: Arc<Outbox>) {
    let mut local = Vec::new();
    loop {
        std::mem::swap(&mut *out.lock(), &mut local);
        if local.is_empty() {
            if out.closed.load(Ordering::Acquire) {
                break;
            }
            out.ready.notified().await;
            continue;
        }
        out.drained.notify_waiters();
        if wr.write_all(&local).await.is_err() {
            out.close();
            break;
        }
        local.clear();
    }
    let _ = wr.shutdown().await;
}

/// A packet id and topic filters, each with the byte that follows it (subscription options).
type Filters = (u16, Vec<(Vec<u8>, u8)>);

/// The subscribers of the topic last published to, valid while the registry version holds.
struct Cache {
    topic: Vec<u8>,
    version: u64,
    subs: Vec<Arc<Outbox>>,
}

struct Conn {
    registry: Arc<Registry>,
    out: Arc<Outbox>,
    v5: bool,
    filters: Vec<Vec<u8>>,
    cache: Option<Cache>,
}

impl Conn {
    /// Forwards `frames` (whole PUBLISH frames, all to `topic`) to the topic's subscribers.
    async fn forward(&mut self, topic: &[u8], frames: &[u8]) {
        let version = self.registry.version.load(Ordering::Acquire);
        let fresh = matches!(&self.cache, Some(c) if c.version == version && c.topic == topic);
        if !fresh {
            let topics = self.registry.topics.read().unwrap_or_else(|e| e.into_inner());
            let subs = topics.get(topic).cloned().unwrap_or_default();
            drop(topics);
            self.cache = Some(Cache { topic: topic.to_vec(), version, subs });
        }
        if let Some(cache) = &self.cache {
            for out in &cache.subs {
                out.forward(frames).await;
            }
        }
    }

    /// Handles one frame other than PUBLISH; false to close the connection.
    fn control(&mut self, first: u8, b: &[u8]) -> bool {
        match first >> 4 {
            1 => {
                // CONNECT: protocol name, then the level.
                let Some(name_len) = b.get(..2).map(|n| u16::from_be_bytes([n[0], n[1]]) as usize) else { return false };
                let Some(&level) = b.get(2 + name_len) else { return false };
                self.v5 = level == 5;
                self.out.push(if self.v5 { &[0x20, 3, 0, 0, 0] } else { &[0x20, 2, 0, 0] });
            }
            5 => self.ack(0x62, b), // PUBREC from a subscriber of a forwarded QoS 2 message
            6 => self.ack(0x70, b), // PUBREL from a publisher
            8 => return self.subscribe(b),
            10 => return self.unsubscribe(b),
            12 => self.out.push(&[0xD0, 0]),
            14 => return false,
            _ => {} // PUBACK, PUBCOMP of forwarded messages
        }
        true
    }

    fn ack(&self, first: u8, b: &[u8]) {
        if let [hi, lo, ..] = *b {
            self.out.push(&[first, 2, hi, lo]);
        }
    }

    /// The topic filters of a SUBSCRIBE or UNSUBSCRIBE body, each with the byte after it.
    fn filters(&self, b: &[u8], with_options: bool) -> Option<Filters> {
        let pid = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let mut p = 2;
        if self.v5 {
            let (len, n) = varint(b.get(p..)?)?;
            p += n + len;
        }
        let mut out = Vec::new();
        while p < b.len() {
            let len = u16::from_be_bytes([*b.get(p)?, *b.get(p + 1)?]) as usize;
            let f = b.get(p + 2..p + 2 + len)?.to_vec();
            p += 2 + len;
            let opts = if with_options {
                p += 1;
                *b.get(p - 1)?
            } else {
                0
            };
            out.push((f, opts));
        }
        Some((pid, out))
    }

    fn subscribe(&mut self, b: &[u8]) -> bool {
        let Some((pid, filters)) = self.filters(b, true) else { return false };
        let mut ack = vec![0x90, 0];
        ack.extend_from_slice(&pid.to_be_bytes());
        if self.v5 {
            ack.push(0);
        }
        for (f, opts) in filters {
            ack.push((opts & 3).min(2));
            if !self.filters.contains(&f) {
                let out = self.out.clone();
                self.registry.change(|t| t.entry(f.clone()).or_default().push(out));
                self.filters.push(f);
            }
        }
        ack[1] = (ack.len() - 2) as u8;
        self.out.push(&ack);
        true
    }

    fn unsubscribe(&mut self, b: &[u8]) -> bool {
        let Some((pid, filters)) = self.filters(b, false) else { return false };
        let mut ack = vec![0xB0, 0];
        ack.extend_from_slice(&pid.to_be_bytes());
        if self.v5 {
            ack.push(0);
            ack.extend(filters.iter().map(|_| 0u8));
        }
        for (f, _) in &filters {
            self.drop_filter(f);
            self.filters.retain(|g| g != f);
        }
        ack[1] = (ack.len() - 2) as u8;
        self.out.push(&ack);
        true
    }

    fn drop_filter(&self, f: &[u8]) {
        self.registry.change(|t| {
            if let Some(subs) = t.get_mut(f) {
                subs.retain(|o| !Arc::ptr_eq(o, &self.out));
                if subs.is_empty() {
                    t.remove(f);
                }
            }
        });
    }
}

/// The next whole frame at the front of `buf`: first byte, body start, total length.
fn frame(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, ()> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((first, 2 + i, 2 + i + len)));
        }
    }
    Err(())
}

fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for i in 0..4 {
        let x = *b.get(i)?;
        v |= ((x & 0x7F) as usize) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

async fn connection(stream: TcpStream, registry: Arc<Registry>) {
    let (mut rd, wr) = stream.into_split();
    let out = Arc::new(Outbox::default());
    let writer = tokio::spawn(writer(wr, out.clone()));
    let mut c = Conn { registry, out, v5: false, filters: Vec::new(), cache: None };
    // Small until reads fill it: idle connections cost little.
    let mut rbuf = BytesMut::with_capacity(1024);
    let mut chunk = 1024;
    'read: loop {
        if rbuf.capacity() - rbuf.len() < chunk / 2 {
            rbuf.reserve(chunk);
        }
        let spare = rbuf.capacity() - rbuf.len();
        match rd.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => break,
            Ok(n) if n == spare => chunk = (chunk * 4).min(MAX_READ),
            Ok(_) => {}
        }
        let mut at = 0;
        // A run of consecutive PUBLISH frames to one topic: (start, end, topic start, topic end).
        let mut run: Option<(usize, usize, usize, usize)> = None;
        loop {
            let (first, body, end) = match frame(&rbuf[at..]) {
                Ok(Some((f, b, e))) if rbuf.len() - at >= e => (f, b, e),
                Ok(_) => break,
                Err(()) => break 'read,
            };
            let (b0, b1) = (at + body, at + end);
            if first >> 4 == 3 {
                let b = &rbuf[b0..b1];
                let Some(tl) = b.get(..2).map(|t| u16::from_be_bytes([t[0], t[1]]) as usize) else { break 'read };
                let qos = (first >> 1) & 3;
                if qos > 0 {
                    let Some(&[hi, lo]) = b.get(2 + tl..4 + tl) else { break 'read };
                    c.out.push(&[if qos == 1 { 0x40 } else { 0x50 }, 2, hi, lo]);
                }
                let topic = (b0 + 2, b0 + 2 + tl);
                match run {
                    Some((s, e, t0, t1)) if e == at && rbuf[t0..t1] == rbuf[topic.0..topic.1] => run = Some((s, b1, t0, t1)),
                    _ => {
                        if let Some((s, e, t0, t1)) = run {
                            c.forward(&rbuf[t0..t1], &rbuf[s..e]).await;
                        }
                        run = Some((at, b1, topic.0, topic.1));
                    }
                }
            } else {
                if let Some((s, e, t0, t1)) = run.take() {
                    c.forward(&rbuf[t0..t1], &rbuf[s..e]).await;
                }
                if !c.control(first, &rbuf[b0..b1]) {
                    break 'read;
                }
            }
            at = b1;
        }
        if let Some((s, e, t0, t1)) = run {
            c.forward(&rbuf[t0..t1], &rbuf[s..e]).await;
        }
        rbuf.advance(at);
    }
    for f in std::mem::take(&mut c.filters) {
        c.drop_filter(&f);
    }
    c.out.close();
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        s.read_exact(&mut v).await.expect("read");
        v
    }

    #[tokio::test]
    async fn forwards_publish_frames_to_subscribers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener));
        let connect = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0];
        let mut sub = TcpStream::connect(addr).await.expect("connect");
        sub.write_all(&connect).await.expect("write");
        assert_eq!(read_exact(&mut sub, 4).await, [0x20, 2, 0, 0]);
        sub.write_all(&[0x82, 6, 0, 1, 0, 1, b't', 1]).await.expect("write");
        assert_eq!(read_exact(&mut sub, 5).await, [0x90, 3, 0, 1, 1]);
        let mut publ = TcpStream::connect(addr).await.expect("connect");
        publ.write_all(&connect).await.expect("write");
        assert_eq!(read_exact(&mut publ, 4).await, [0x20, 2, 0, 0]);
        let qos0 = [0x30, 5, 0, 1, b't', b'h', b'i'];
        let qos1 = [0x32, 7, 0, 1, b't', 0, 9, b'h', b'o'];
        let other = [0x30, 5, 0, 1, b'u', b'n', b'o'];
        let mut all = Vec::new();
        all.extend_from_slice(&qos0);
        all.extend_from_slice(&other);
        all.extend_from_slice(&qos1);
        all.extend_from_slice(&qos0);
        publ.write_all(&all).await.expect("write");
        assert_eq!(read_exact(&mut publ, 4).await, [0x40, 2, 0, 9]);
        let mut want = Vec::new();
        want.extend_from_slice(&qos0);
        want.extend_from_slice(&qos1);
        want.extend_from_slice(&qos0);
        assert_eq!(read_exact(&mut sub, want.len()).await, want);
    }
}
