//! One benchmark client per tokio task: connecting (CONNECT/CONNACK and SUBSCRIBE/SUBACK through
//! the `mqtt` codec), then the publisher, subscriber or idle loop.
//!
//! The loops avoid work per message: a publisher copies a PUBLISH encoded once and patches the
//! packet id and the payload header, fills a 64 KiB buffer and writes it at once; a subscriber
//! reads up to 256 KiB at a time, takes the clock once per read and parses frames in place.

use crate::payload::{self, Header};
use crate::stats::{histogram, Seen};
use crate::BenchError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use mqtt::{Connect, MqttStr, Packet, Properties, Protocol, Publish, QoS, Subscribe, SubscriptionOptions};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// Bytes a publisher buffers before writing.
const WRITE_BATCH: usize = 64 * 1024;
/// Bytes a subscriber reads at once (at most).
const READ_CHUNK: usize = 256 * 1024;
/// Keep alive announced in CONNECT; a client that wrote nothing for [`PING_EVERY`] sends PINGREQ.
const KEEP_ALIVE: u16 = 60;
const PING_EVERY: Duration = Duration::from_secs(30);
/// Time a client has to connect and get its CONNACK (and SUBACK).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest packet accepted during the handshake.
const MAX_PACKET: usize = 1024 * 1024;
/// Time a client takes at the end to flush its acks and say DISCONNECT.
const GOODBYE: Duration = Duration::from_millis(500);

const PINGREQ: [u8; 2] = [0xC0, 0];
const DISCONNECT: [u8; 2] = [0xE0, 0];

/// A connected client (CONNACK received, and SUBACK if it subscribed).
pub struct Conn {
    pub client_id: String,
    stream: TcpStream,
    rbuf: BytesMut,
    proto: Protocol,
}

/// Connects, optionally from `source` (to spread many clients over loopback addresses), and
/// waits for a successful CONNACK.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>, client_id: String, proto: Protocol) -> Result<Conn, BenchError> {
    let io_err = |source: std::io::Error| BenchError::Connect { client: client_id.clone(), addr, source };
    let handshake = async {
        let sock = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(io_err)?;
        if let Some(ip) = source {
            sock.bind(SocketAddr::new(ip, 0)).map_err(io_err)?;
        }
        let stream = sock.connect(addr).await.map_err(io_err)?;
        stream.set_nodelay(true).map_err(io_err)?;
        let mut conn = Conn { client_id: client_id.clone(), stream, rbuf: BytesMut::with_capacity(256), proto };
        let connect = Packet::Connect(Box::new(Connect {
            protocol: proto,
            clean_start: true,
            keep_alive: KEEP_ALIVE,
            client_id: client_id.clone(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }));
        conn.send(&connect).await.map_err(io_err)?;
        match conn.read_packet().await? {
            Packet::ConnAck(ack) if ack.reason.is_error() => {
                Err(BenchError::Refused { client: client_id.clone(), reason: ack.reason })
            }
            Packet::ConnAck(_) => Ok(conn),
            other => Err(conn.protocol_error(format!("expected CONNACK, got {}", other.name()))),
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(r) => r,
        Err(_) => Err(BenchError::Timeout { client: client_id.clone(), addr, secs: CONNECT_TIMEOUT.as_secs() }),
    }
}

impl Conn {
    async fn send(&mut self, p: &Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        p.encode(&mut out, self.proto);
        self.stream.write_all(&out).await
    }

    fn protocol_error(&self, detail: String) -> BenchError {
        BenchError::Protocol { client: self.client_id.clone(), detail }
    }

    /// The next whole packet, decoded by the `mqtt` codec.
    async fn read_packet(&mut self) -> Result<Packet, BenchError> {
        loop {
            match mqtt::decode(&mut self.rbuf, Some(self.proto), MAX_PACKET) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => return Err(self.protocol_error(format!("malformed packet from the broker: {e}"))),
            }
            self.rbuf.reserve(4096);
            match self.stream.read_buf(&mut self.rbuf).await {
                Ok(0) => return Err(self.protocol_error("the broker closed the connection".into())),
                Ok(_) => {}
                Err(e) => return Err(self.protocol_error(format!("read failed: {e}"))),
            }
        }
    }

    /// Subscribes to one filter and waits for a successful SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<(), BenchError> {
        let sub = Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            filters: vec![(
                filter.to_owned(),
                SubscriptionOptions { qos: QoS::from_u8(qos).unwrap_or_default(), ..Default::default() },
            )],
        });
        self.send(&sub).await.map_err(|e| self.protocol_error(format!("write failed: {e}")))?;
        loop {
            match self.read_packet().await? {
                Packet::SubAck(ack) if ack.packet_id == 1 => {
                    return match ack.reasons.first() {
                        Some(r) if r.is_error() => Err(BenchError::SubscribeRefused {
                            client: self.client_id.clone(),
                            filter: filter.to_owned(),
                            reason: *r,
                        }),
                        Some(_) => Ok(()),
                        None => Err(self.protocol_error("SUBACK without a reason code".into())),
                    };
                }
                Packet::PingResp => {}
                other => return Err(self.protocol_error(format!("expected SUBACK, got {}", other.name()))),
            }
        }
    }
}

/// The next whole frame at the front of `buf`: its first byte, where its body starts and its
/// total length; `None` if `buf` does not hold all of it yet.
fn frame(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, &'static str> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        len |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            let total = 2 + i + len;
            return Ok(if buf.len() >= total { Some((first, 2 + i, total)) } else { None });
        }
    }
    Err("bad remaining length")
}

/// A Variable Byte Integer at the front of `b`: value and bytes taken.
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

fn packet_id(body: &[u8]) -> Result<u16, &'static str> {
    match body {
        [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err("acknowledgement without a packet id"),
    }
}

/// Makes room for a large read when little is left.
fn reserve_read(rbuf: &mut BytesMut, chunk: usize) {
    if rbuf.capacity() - rbuf.len() < chunk / 4 {
        rbuf.reserve(chunk);
    }
}

/// A PUBLISH encoded once by the codec; each message is a copy with the packet id and the
/// payload header patched.
pub struct Template {
    bytes: Vec<u8>,
    payload_at: usize,
    packet_id_at: Option<usize>,
}

impl Template {
    pub fn new(topic: &str, qos: u8, payload_len: usize, proto: Protocol) -> Template {
        let qos = QoS::from_u8(qos).unwrap_or_default();
        let p = Publish {
            qos,
            topic: MqttStr::from(topic),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            payload: Bytes::from(vec![b'x'; payload_len]),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        mqtt::encode_publish(&mut out, &p, proto);
        let bytes = out.to_vec();
        // Fixed header: one byte, then the remaining length (1 to 4 bytes, last one < 0x80).
        let body_at = 1 + bytes[1..].iter().position(|b| b & 0x80 == 0).map_or(1, |i| i + 1);
        let packet_id_at = (qos != QoS::AtMostOnce).then_some(body_at + 2 + topic.len());
        Template { payload_at: bytes.len() - payload_len, bytes, packet_id_at }
    }

    /// Bytes of one message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends one message.
    pub fn append(&self, out: &mut BytesMut, packet_id: u16, h: Header) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        let f = &mut out[at..];
        if let Some(i) = self.packet_id_at {
            f[i..i + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        payload::write(&mut f[self.payload_at..], h);
    }
}

/// Counters every client adds to, read by the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// The instants of a run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Timestamps in payloads are nanoseconds since this instant.
    pub base: Instant,
    /// Publishing starts.
    pub start: Instant,
    /// Publishing stops.
    pub stop_at: Instant,
    /// Publishers give up waiting for acknowledgements.
    pub hard_stop: Instant,
}

impl Clock {
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// What one publisher does.
#[derive(Debug, Clone)]
pub struct PubPlan {
    pub id: u32,
    pub topic: String,
    pub qos: u8,
    pub payload: usize,
    /// Messages per second (0: as fast as possible).
    pub rate: f64,
    /// QoS 1/2 messages it may leave unacknowledged.
    pub window: usize,
}

/// What one publisher did.
#[derive(Debug, Default, Clone)]
pub struct PubResult {
    /// Messages written (sequence numbers 0..sent).
    pub sent: u64,
    /// QoS 1/2 messages acknowledged (PUBACK, PUBCOMP).
    pub acked: u64,
    /// QoS 1/2 messages the broker refused (MQTT 5 reason code ≥ 0x80).
    pub rejected: u64,
    /// QoS 1/2 messages still unacknowledged when the publisher gave up.
    pub unacked: u64,
    /// The broker closed the connection (or it failed) before the publisher was done.
    pub disconnected: bool,
}

/// Publishes from `clock.start` until `clock.stop_at`, then waits for the outstanding
/// acknowledgements until `clock.hard_stop`.
pub async fn publisher(conn: Conn, plan: PubPlan, clock: Clock, counters: Arc<Counters>) -> PubResult {
    let Conn { mut stream, mut rbuf, proto, .. } = conn;
    let tpl = Template::new(&plan.topic, plan.qos, plan.payload, proto);
    let batch_max = (WRITE_BATCH / tpl.len()).max(1);
    let mut wbuf = BytesMut::with_capacity(WRITE_BATCH + tpl.len() + 64);
    let window = if plan.qos == 0 { 0 } else { plan.window.min(65_535) };
    let mut free: Vec<u16> = (1..=window as u16).rev().collect();
    let mut seq: u64 = 0;
    let mut res = PubResult::default();
    let mut last_write = Instant::now();
    let (mut rd, mut wr) = stream.split();
    loop {
        let now = Instant::now();
        let sending = now < clock.stop_at;
        if sending && wbuf.len() < WRITE_BATCH {
            let mut n = batch_max;
            if plan.rate > 0.0 {
                let due = ((now - clock.start).as_secs_f64() * plan.rate) as u64 + 1;
                n = n.min(due.saturating_sub(seq) as usize);
            }
            if window > 0 {
                n = n.min(free.len());
            }
            for _ in 0..n {
                let packet_id = free.pop().unwrap_or(0);
                tpl.append(&mut wbuf, packet_id, Header { sent_ns: clock.now_ns(), publisher: plan.id, seq: seq as u32 });
                seq += 1;
            }
            if n > 0 {
                res.sent += n as u64;
                counters.sent.fetch_add(n as u64, Relaxed);
            }
        }
        let inflight = window - free.len();
        if (!sending && wbuf.is_empty() && inflight == 0) || now >= clock.hard_stop {
            break;
        }
        let ping_at = last_write + PING_EVERY;
        if wbuf.is_empty() && now >= ping_at {
            wbuf.put_slice(&PINGREQ);
        }
        let wake = if !wbuf.is_empty() {
            clock.hard_stop
        } else if !sending || (window > 0 && free.is_empty()) {
            clock.hard_stop.min(ping_at)
        } else if plan.rate > 0.0 {
            (clock.start + Duration::from_secs_f64(seq as f64 / plan.rate)).min(clock.stop_at)
        } else {
            continue;
        };
        reserve_read(&mut rbuf, 16 * 1024);
        tokio::select! {
            biased;
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(n) if n > 0 => {
                    if on_acks(&mut rbuf, proto.is_v5(), &mut free, &mut wbuf, &mut res).is_err() {
                        res.disconnected = true;
                        break;
                    }
                }
                _ => {
                    res.disconnected = true;
                    break;
                }
            },
            w = wr.write_buf(&mut wbuf), if !wbuf.is_empty() => match w {
                Ok(n) if n > 0 => last_write = Instant::now(),
                _ => {
                    res.disconnected = true;
                    break;
                }
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    if plan.qos == 0 {
        // Whole messages still buffered were not sent (the broker stopped reading).
        let unsent = (wbuf.len().div_ceil(tpl.len()) as u64).min(res.sent);
        res.sent -= unsent;
    }
    res.unacked = (window - free.len()) as u64;
    if !res.disconnected {
        let _ = tokio::time::timeout(GOODBYE, async {
            wr.write_all(&DISCONNECT).await?;
            wr.shutdown().await
        })
        .await;
    }
    res
}

/// Handles the acknowledgements a publisher receives; `Err` when the broker said DISCONNECT or
/// sent garbage.
fn on_acks(rbuf: &mut BytesMut, v5: bool, free: &mut Vec<u16>, wbuf: &mut BytesMut, res: &mut PubResult) -> Result<(), &'static str> {
    let mut at = 0;
    while let Some((first, body, end)) = frame(&rbuf[at..])? {
        let b = &rbuf[at + body..at + end];
        let failed = v5 && b.len() > 2 && b[2] >= 0x80;
        match first >> 4 {
            4 => {
                free.push(packet_id(b)?);
                res.acked += 1;
                res.rejected += failed as u64;
            }
            5 if failed => {
                free.push(packet_id(b)?);
                res.rejected += 1;
            }
            5 => {
                let [hi, lo] = packet_id(b)?.to_be_bytes();
                wbuf.put_slice(&[0x62, 2, hi, lo]);
            }
            7 => {
                free.push(packet_id(b)?);
                res.acked += 1;
            }
            14 => return Err("DISCONNECT from the broker"),
            _ => {}
        }
        at += end;
    }
    rbuf.advance(at);
    Ok(())
}

/// What one subscriber received.
#[derive(Debug, Clone)]
pub struct SubResult {
    /// PUBLISH packets carrying a benchmark payload.
    pub received: u64,
    /// Messages received more than once (same publisher and sequence number).
    pub duplicates: u64,
    /// PUBLISH packets whose payload is not from this run.
    pub foreign: u64,
    pub seen: Seen,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// When the last message arrived (nanoseconds since `clock.base`).
    pub last_ns: u64,
    pub disconnected: bool,
}

/// Receives until `stop` turns true, acknowledging QoS 1 and 2.
pub async fn subscriber(
    conn: Conn,
    publishers: usize,
    clock: Clock,
    counters: Arc<Counters>,
    distinct: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let Conn { mut stream, mut rbuf, proto, .. } = conn;
    let mut res = SubResult {
        received: 0,
        duplicates: 0,
        foreign: 0,
        seen: Seen::new(publishers),
        latency: histogram(),
        last_ns: 0,
        disconnected: false,
    };
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut last_write = Instant::now();
    let (mut rd, mut wr) = stream.split();
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        reserve_read(&mut rbuf, READ_CHUNK);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(n) if n > 0 => {
                    let now_ns = clock.now_ns();
                    let before = res.received;
                    if on_messages(&mut rbuf, proto.is_v5(), now_ns, &mut wbuf, &mut res).is_err() {
                        res.disconnected = true;
                        break;
                    }
                    if res.received > before {
                        res.last_ns = now_ns;
                        counters.received.fetch_add(res.received - before, Relaxed);
                        distinct.store(res.received - res.duplicates, Relaxed);
                    }
                }
                _ => {
                    res.disconnected = true;
                    break;
                }
            },
            w = wr.write_buf(&mut wbuf), if !wbuf.is_empty() => match w {
                Ok(n) if n > 0 => last_write = Instant::now(),
                _ => {
                    res.disconnected = true;
                    break;
                }
            },
            _ = tokio::time::sleep_until((last_write + PING_EVERY).into()) => {
                wbuf.put_slice(&PINGREQ);
                last_write = Instant::now();
            }
        }
    }
    if !res.disconnected {
        let _ = tokio::time::timeout(GOODBYE, async {
            wr.write_all(&wbuf).await?;
            wr.write_all(&DISCONNECT).await?;
            wr.shutdown().await
        })
        .await;
    }
    res
}

/// Counts the messages in `rbuf` and queues their acknowledgements.
fn on_messages(rbuf: &mut BytesMut, v5: bool, now_ns: u64, wbuf: &mut BytesMut, res: &mut SubResult) -> Result<(), &'static str> {
    let mut at = 0;
    while let Some((first, body, end)) = frame(&rbuf[at..])? {
        let b = &rbuf[at + body..at + end];
        match first >> 4 {
            3 => {
                let qos = (first >> 1) & 3;
                let topic_len = packet_id(b)? as usize;
                let mut p = 2 + topic_len;
                if qos > 0 {
                    let [hi, lo] = packet_id(b.get(p..).ok_or("PUBLISH too short")?)?.to_be_bytes();
                    wbuf.put_slice(&[if qos == 1 { 0x40 } else { 0x50 }, 2, hi, lo]);
                    p += 2;
                }
                if v5 {
                    let (len, n) = varint(b.get(p..).ok_or("PUBLISH too short")?).ok_or("bad property length")?;
                    p += n + len;
                }
                match b.get(p..).and_then(payload::read) {
                    Some(h) => match res.seen.insert(h.publisher, h.seq) {
                        Some(new) => {
                            res.received += 1;
                            res.duplicates += !new as u64;
                            let us = now_ns.saturating_sub(h.sent_ns) / 1000;
                            res.latency.saturating_record(us.max(1));
                        }
                        None => res.foreign += 1,
                    },
                    None => res.foreign += 1,
                }
            }
            6 => {
                let [hi, lo] = packet_id(b)?.to_be_bytes();
                wbuf.put_slice(&[0x70, 2, hi, lo]);
            }
            14 => return Err("DISCONNECT from the broker"),
            _ => {}
        }
        at += end;
    }
    rbuf.advance(at);
    Ok(())
}

/// Holds a connection open, answering keep alive, until `stop` turns true; then says DISCONNECT
/// and resets the socket (no TIME_WAIT left behind). True if the broker closed it first (then
/// `open` is decremented).
pub async fn idle(conn: Conn, open: Arc<AtomicU64>, mut stop: watch::Receiver<bool>) -> bool {
    let Conn { mut stream, mut rbuf, .. } = conn;
    let mut ping_at = Instant::now() + PING_EVERY;
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        reserve_read(&mut rbuf, 256);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = stream.read_buf(&mut rbuf) => match r {
                Ok(n) if n > 0 => {
                    // PINGRESP; a DISCONNECT is followed by the close.
                    rbuf.clear();
                }
                _ => {
                    open.fetch_sub(1, Relaxed);
                    return true;
                }
            },
            _ = tokio::time::sleep_until(ping_at.into()) => {
                if stream.write_all(&PINGREQ).await.is_err() {
                    open.fetch_sub(1, Relaxed);
                    return true;
                }
                ping_at = Instant::now() + PING_EVERY;
            }
        }
    }
    let _ = tokio::time::timeout(GOODBYE, stream.write_all(&DISCONNECT)).await;
    let _ = stream.set_zero_linger();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_through_the_codec() {
        for proto in [Protocol::V311, Protocol::V5] {
            for qos in 0..=2u8 {
                let tpl = Template::new("a/b", qos, 40, proto);
                let mut out = BytesMut::new();
                let h = Header { sent_ns: 99, publisher: 3, seq: 7 };
                tpl.append(&mut out, 513, h);
                let Ok(Some(Packet::Publish(p))) = mqtt::decode(&mut out, Some(proto), 1 << 20) else {
                    panic!("template does not decode")
                };
                assert_eq!(p.topic.as_str(), "a/b");
                assert_eq!(p.qos as u8, qos);
                assert_eq!(p.packet_id, if qos == 0 { 0 } else { 513 });
                assert_eq!(payload::read(&p.payload), Some(h));
                assert_eq!(p.payload.len(), 40);
            }
        }
    }

    #[test]
    fn subscriber_parses_publishes_and_acks() {
        for proto in [Protocol::V311, Protocol::V5] {
            let tpl = Template::new("t", 2, 16, proto);
            let mut rbuf = BytesMut::new();
            tpl.append(&mut rbuf, 5, Header { sent_ns: 0, publisher: 0, seq: 0 });
            tpl.append(&mut rbuf, 6, Header { sent_ns: 0, publisher: 0, seq: 0 });
            rbuf.put_slice(&[0x62, 2, 0, 5]);
            let partial = rbuf.len();
            tpl.append(&mut rbuf, 7, Header { sent_ns: 0, publisher: 0, seq: 1 });
            rbuf.truncate(partial + 3);
            let mut res = SubResult {
                received: 0,
                duplicates: 0,
                foreign: 0,
                seen: Seen::new(1),
                latency: histogram(),
                last_ns: 0,
                disconnected: false,
            };
            let mut wbuf = BytesMut::new();
            on_messages(&mut rbuf, proto.is_v5(), 5_000, &mut wbuf, &mut res).expect("parse");
            assert_eq!((res.received, res.duplicates, res.foreign), (2, 1, 0));
            assert_eq!(&wbuf[..], &[0x50, 2, 0, 5, 0x50, 2, 0, 6, 0x70, 2, 0, 5]);
            assert_eq!(rbuf.len(), 3, "the partial frame stays buffered");
        }
    }
}
