//! One client connection: framing over any byte stream, the read/dispatch/write loop, and what
//! happens when it ends (DISCONNECT reason, will message, session expiry).

mod connect;
mod inbound;
mod outbound;
mod park;
mod sock;

pub(crate) use park::{Parker, Unpark};
pub(crate) use sock::Sock;

use crate::message::Message;
use crate::metrics::Metrics;
use crate::server::PeerInfo;
use crate::session::Session;
use crate::BrokerInner;
use bytes::BytesMut;
use mqtt::{Disconnect, MqttStr, Packet, Protocol, ReasonCode, Will};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};

/// Stop moving queued messages into the write buffer past this many bytes; write first.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// A write buffer that grew past this is released after flushing.
const WRITE_BUF_KEEP: usize = 1024 * 1024;
/// The longest a publisher waits for room in a subscriber's queue before reading on.
const PRESSURE_WAIT: Duration = Duration::from_millis(50);
/// Messages routed before they are queued on their sessions in one go.
const OUTBOX_BATCH: usize = 256;
/// How much a busy connection reads per call.
const READ_CHUNK: usize = 16 * 1024;

/// Any byte stream a client can speak MQTT over (TCP now; TLS and WebSocket later).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Why the connection loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// DISCONNECT 0x00 (or any 3.1.1 DISCONNECT): the will is discarded.
    Normal,
    /// DISCONNECT 0x04: publish the will.
    WithWill,
    /// The client broke the protocol: send DISCONNECT with this reason (MQTT 5) and close.
    Error(ReasonCode),
    /// The socket closed or failed.
    Closed,
    /// Another connection took the session over.
    TakenOver,
    /// Nothing received for 1.5 × keep alive.
    KeepAlive,
    /// The server is stopping.
    Shutdown,
    /// Idle for the parking delay with nothing buffered: the connection can park.
    Idle,
}

impl Exit {
    /// The reason code of a protocol error.
    fn reason(self) -> Option<ReasonCode> {
        match self {
            Exit::Error(r) => Some(r),
            _ => None,
        }
    }
}

/// True when the bytes start a CONNECT of protocol level 5 (used to pick the CONNACK format
/// when the CONNECT itself cannot be decoded).
pub(crate) fn sniff_v5(buf: &[u8]) -> bool {
    if buf.first().is_none_or(|b| b >> 4 != 1) {
        return false;
    }
    let mut i = 1;
    while i < 5 && buf.get(i).is_some_and(|b| b & 0x80 != 0) {
        i += 1;
    }
    buf.get(i + 1..i + 8).is_some_and(|s| s == [0, 4, b'M', b'Q', b'T', b'T', 5])
}

/// The topic aliases of one connection, both ways.
#[derive(Default)]
pub(crate) struct Aliases {
    inbound: HashMap<u16, MqttStr>,
    outbound: HashMap<MqttStr, u16>,
}

/// A connected client after a successful CONNECT.
pub(crate) struct Conn<S> {
    io: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The last read was not tiny: keep a read buffer around.
    busy: bool,
    broker: Arc<BrokerInner>,
    peer: PeerInfo,
    protocol: Protocol,
    session: Arc<Session>,
    client_id: Arc<str>,
    generation: u64,
    kick: Arc<Notify>,
    /// 1.5 × the keep alive in force, or `None` for no keep-alive timeout.
    keep_alive: Option<Duration>,
    last_rx: Instant,
    /// When the connection last read bytes or had messages to send.
    last_active: Instant,
    /// Park after this long idle (TCP and TLS connections of a listener with a parker).
    idle_after: Option<Duration>,
    peer_max_packet: usize,
    peer_receive_max: u16,
    peer_alias_max: u16,
    /// Topic aliases (MQTT 5), allocated on first use: most connections never use them.
    aliases: Option<Box<Aliases>>,
    will: Option<Box<Will>>,
    /// What this connection may do.
    authz: Arc<dyn crate::auth::Authorization>,
    /// Messages routed in the current read, not yet queued on their sessions.
    outbox: crate::Outbox,
    outbox_len: usize,
    /// A subscriber's session whose full queue this connection's publishes met: reading pauses
    /// until it has room (or briefly, at most [`PRESSURE_WAIT`]).
    pressure: Option<Arc<Session>>,
    /// PUBLISH packets sent by QoS since the last drain (added to the shared counters in bulk).
    sent: [u64; 3],
    /// When the client connected, when lifecycle events are on for it.
    connected_ms: Option<std::num::NonZeroU64>,
    /// Limits PUBLISH packets read per second; reading pauses until `throttled_until`.
    publish_rate: crate::limit::Bucket,
    throttled_until: Option<tokio::time::Instant>,
    /// Store ops produced while handling the current batch of packets; committed before the
    /// responses to that batch are written (acknowledged means durable).
    ops: Vec<store::Op>,
    /// Since when a packet has been arriving (bytes in `rbuf` that are not a whole packet yet).
    partial_since: Option<Instant>,
    /// The bytes of that packet counted in the broker's `partial_bytes`.
    partial_held: usize,
    /// Retained messages new subscriptions are still owed, beyond what their queue could take.
    #[allow(clippy::box_collection, reason = "one pointer instead of a VecDeque's four words in every connection's future")]
    retained_backlog: Option<Box<std::collections::VecDeque<crate::message::Delivery>>>,
}

/// What a connection keeps from its listener while it lives (and, parked, in its record).
pub(crate) struct Held {
    shutdown: watch::Receiver<bool>,
    /// The listener's connection-limit slot.
    permit: Option<OwnedSemaphorePermit>,
    parker: Option<Arc<Parker>>,
    /// The slot's permit was forgotten when the connection parked (a parked record holds
    /// nothing of it): it goes back to the parker's limit when the connection ends.
    owes_permit: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.owes_permit
            && let Some(p) = &self.parker
        {
            p.give_back_permit();
        }
    }
}

/// Serves one accepted connection from CONNECT to close (or until it parks).
pub(crate) fn serve<S: Stream>(io: S, peer: PeerInfo, ctx: crate::server::Ctx) -> impl std::future::Future<Output = ()> + Send {
    use futures_util::FutureExt;
    use futures_util::future::Either;
    let crate::server::Ctx { inner: broker, authn, shutdown, permit, parker } = ctx;
    let m = &broker.metrics;
    m.connections_current.fetch_add(1, Ordering::Relaxed);
    Metrics::inc(&m.connections_total);
    // Only TCP sockets (plain or under rustls) can leave tokio for the parker.
    let parker = parker.filter(|_| sock::is_parkable::<S>());
    let held = Held { shutdown, permit, parker, owes_permit: false };
    // The handshake is boxed: its state lives on the heap only while it runs, and the connected
    // client goes straight into `live` (chained, not awaited in an async fn that would keep a
    // second copy of it), so an idle connection's task holds just the read loop.
    Box::pin(connect::handshake(io, peer, broker.clone(), authn)).then(move |conn| match conn {
        Some(conn) => Either::Left(live(conn, held)),
        None => {
            broker.metrics.connections_current.fetch_sub(1, Ordering::Relaxed);
            Either::Right(std::future::ready(()))
        }
    })
}

/// Runs a connected client until it closes, or parks it whenever it has been idle long enough.
async fn live<S: Stream>(mut conn: Conn<S>, mut held: Held) {
    conn.idle_after = held.parker.as_ref().map(|p| p.idle_after());
    let exit = loop {
        let exit = if *held.shutdown.borrow_and_update() { Exit::Shutdown } else { conn.run(&mut held.shutdown).await };
        if exit != Exit::Idle {
            break exit;
        }
        let Some(parker) = held.parker.clone() else {
            conn.idle_after = None;
            continue;
        };
        // Idle but with messages it cannot send yet (a full in-flight window) or a kick on the
        // way: try again after another idle period (the parker checks again under its lock).
        if !conn.quiet() {
            conn.last_active = Instant::now();
            continue;
        }
        match parker.park(conn, held) {
            Ok(()) => return,
            Err(back) => {
                (conn, held) = *back;
                conn.idle_after = None;
            }
        }
    };
    tracing::debug!(client_id = %conn.client_id, peer = %conn.peer.addr, ?exit, "connection closed");
    Box::pin(conn.close(exit)).await;
    drop(held);
}

/// `a` as a `B`, when they are the same type (the connection code is generic over streams and
/// only TCP and TLS streams park).
fn cast<A: 'static, B: 'static>(a: A) -> Result<B, A> {
    let mut slot = Some(a);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>().and_then(Option::take) {
        Some(b) => Ok(b),
        None => Err(slot.unwrap_or_else(|| unreachable!("a failed downcast leaves the value in place"))),
    }
}

/// What a parked connection keeps: [`Conn`] without its socket, buffers and per-read state.
pub(crate) struct Idle {
    protocol: Protocol,
    peer_receive_max: u16,
    peer_alias_max: u16,
    peer_max_packet: u32,
    /// 1.5 × keep alive in milliseconds; 0: none.
    keep_alive_ms: u32,
    /// When the last packet came in ([`crate::session::ticks_ms`]).
    last_rx_ms: u32,
    generation: u64,
    session: Arc<Session>,
    kick: Arc<Notify>,
    aliases: Option<Box<Aliases>>,
    will: Option<Box<Will>>,
    authz: Arc<dyn crate::auth::Authorization>,
    connected_ms: Option<std::num::NonZeroU64>,
    /// Its listener-limit permit was forgotten when it parked (see [`Held`]).
    owes_permit: bool,
}

impl Idle {
    /// Whether the keep-alive deadline has passed at `now_ms` ([`crate::session::ticks_ms`]).
    fn keep_alive_due(&self, now_ms: u32) -> bool {
        self.keep_alive_ms > 0 && now_ms.wrapping_sub(self.last_rx_ms) >= self.keep_alive_ms
    }
}

impl<S: sock::Parkable> Conn<S> {
    /// Takes the socket out of tokio and keeps the rest compact. `Err` gives the connection
    /// back (if its socket was lost on the way, its next read fails and it closes).
    fn into_idle(mut self) -> Result<(sock::ParkedIo, Idle), Box<Conn<S>>> {
        if let Err(e) = self.io.sock().park() {
            tracing::warn!(peer = %self.peer.addr, error = %e, "parking a connection failed");
            return Err(Box::new(self));
        }
        let Conn { io, broker, idle_after, protocol, session, generation, kick, keep_alive, last_rx, peer_max_packet, peer_receive_max, peer_alias_max, aliases, will, authz, connected_ms, .. } = self;
        let idle = Idle {
            protocol,
            peer_receive_max,
            peer_alias_max,
            peer_max_packet: peer_max_packet.min(u32::MAX as usize) as u32,
            keep_alive_ms: keep_alive.map_or(0, |k| k.as_millis().clamp(1, u32::MAX as u128) as u32),
            last_rx_ms: crate::session::ticks_ms().wrapping_sub(last_rx.elapsed().as_millis().min(u32::MAX as u128) as u32),
            generation,
            session,
            kick,
            aliases,
            will,
            authz,
            connected_ms,
            owes_permit: false,
        };
        match io.into_parked() {
            Ok(io) => Ok((io, idle)),
            // Not reached (the socket was just parked): the connection goes on.
            Err(io) => Err(Box::new(Conn::from_idle(idle, io, broker, idle_after))),
        }
    }

    /// A parked connection again, its socket back in tokio (if that fails, its first read
    /// fails and it closes).
    fn from_idle(idle: Idle, mut io: S, broker: Arc<BrokerInner>, idle_after: Option<Duration>) -> Conn<S> {
        let addr = io.sock_ref().peer_addr();
        if let Err(e) = io.sock().resume() {
            tracing::warn!(peer = %addr, error = %e, "resuming a parked connection failed");
        }
        let now = Instant::now();
        Conn {
            io,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            busy: false,
            publish_rate: crate::limit::Bucket::new(broker.config.max_publish_per_sec),
            broker,
            peer: PeerInfo { addr, transport: S::TRANSPORT, cert: None, server_name: None },
            protocol: idle.protocol,
            client_id: idle.session.client_id.clone(),
            session: idle.session,
            generation: idle.generation,
            kick: idle.kick,
            keep_alive: (idle.keep_alive_ms > 0).then(|| Duration::from_millis(idle.keep_alive_ms as u64)),
            last_rx: now.checked_sub(Duration::from_millis(crate::session::ticks_ms().wrapping_sub(idle.last_rx_ms) as u64)).unwrap_or(now),
            last_active: now,
            idle_after,
            peer_max_packet: if idle.peer_max_packet == u32::MAX { usize::MAX } else { idle.peer_max_packet as usize },
            peer_receive_max: idle.peer_receive_max,
            peer_alias_max: idle.peer_alias_max,
            aliases: idle.aliases,
            will: idle.will,
            authz: idle.authz,
            outbox: Default::default(),
            outbox_len: 0,
            pressure: None,
            sent: [0; 3],
            connected_ms: idle.connected_ms,
            throttled_until: None,
            partial_since: None,
            partial_held: 0,
            retained_backlog: None,
            ops: Vec::new(),
        }
    }
}

impl<S: Stream> Conn<S> {
    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> Exit {
        loop {
            // While throttled or waiting for room, packets already read wait in the buffer too.
            let mut exit = None;
            while exit.is_none() && self.throttled_until.is_none() && self.pressure.is_none() {
                match mqtt::decode(&mut self.rbuf, Some(self.protocol), self.broker.config.max_packet_size) {
                    Ok(Some(p)) => {
                        self.last_rx = Instant::now();
                        exit = self.handle(p);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        Metrics::inc(&self.broker.metrics.protocol_errors);
                        tracing::info!(client_id = %self.client_id, peer = %self.peer.addr, error = %e, "bad packet, closing");
                        exit = Some(Exit::Error(e.reason_code()));
                    }
                }
                // A read's worth of messages goes out together (one lock and one wake-up per
                // subscriber); a pressured subscriber pauses reading before the next batch.
                if self.outbox_len >= OUTBOX_BATCH {
                    self.deliver_outbox();
                }
            }
            self.deliver_outbox();
            if let Some(exit) = exit {
                return exit;
            }
            self.drain();
            if !self.ops.is_empty() {
                let ops = std::mem::take(&mut self.ops);
                if let Some(done) = self.broker.persist_durable(ops)
                    && !matches!(done.await, Ok(true))
                {
                    // Acknowledged means durable: the answers to what was not committed (a
                    // persistent session's CONNACK, PUBACKs, SUBACKs) are never sent.
                    tracing::warn!(client_id = %self.client_id, "store commit failed: answers withheld, closing");
                    self.wbuf.clear();
                    return Exit::Error(ReasonCode::UNSPECIFIED_ERROR);
                }
            }
            if self.flush().await.is_err() {
                return Exit::Closed;
            }
            // Buffers cost memory only while a connection is busy: an idle connection holds none
            // (the read below then asks for at most 64 bytes), a busy one reads 16 KiB at a time.
            if self.rbuf.is_empty() && !self.busy {
                self.rbuf = BytesMut::new();
            } else if self.busy && self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
                self.rbuf.reserve(READ_CHUNK);
            }
            if let Some(exit) = self.account_partial() {
                return exit;
            }
            // One timer for the keep-alive deadline, the end of a publish-rate pause, the time
            // a started packet has to arrive and the time to park (only with nothing half-read
            // and nobody to wait for).
            let keep_alive = self.keep_alive.map(|ka| tokio::time::Instant::from_std(self.last_rx + ka));
            let packet_due = self.partial_since.map(|t| tokio::time::Instant::from_std(t + self.broker.config.packet_timeout));
            let park_at = self
                .idle_after
                .filter(|_| self.rbuf.is_empty() && self.pressure.is_none() && self.throttled_until.is_none() && self.retained_backlog.is_none())
                .map(|d| tokio::time::Instant::from_std(self.last_active + d));
            let deadline = [keep_alive, self.throttled_until, park_at, packet_due].into_iter().flatten().min();
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Exit::Shutdown,
                _ = self.kick.notified() => {
                    if let Some(exit) = self.kicked() {
                        return exit;
                    }
                    self.last_active = Instant::now();
                }
                _ = wait_for_room(&self.broker.room, self.pressure.clone()), if self.pressure.is_some() => self.pressure = None,
                r = self.io.read_buf(&mut self.rbuf), if self.throttled_until.is_none() && self.pressure.is_none() => match r {
                    Ok(0) | Err(_) => return Exit::Closed,
                    Ok(n) => {
                        self.busy = n >= 64;
                        self.last_active = Instant::now();
                        self.broker.metrics.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let now = tokio::time::Instant::now();
                    if self.throttled_until.is_some_and(|t| t <= now) {
                        self.throttled_until = None;
                    }
                    if keep_alive.is_some_and(|k| k <= now) {
                        return Exit::KeepAlive;
                    }
                    if packet_due.is_some_and(|p| p <= now) && self.throttled_until.is_none() && self.pressure.is_none() {
                        tracing::info!(client_id = %self.client_id, peer = %self.peer.addr, bytes = self.rbuf.len(), "packet not completed within mqtt.packet_timeout_secs, closing");
                        return Exit::Error(ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
                    }
                    if park_at.is_some_and(|p| p <= now) {
                        return Exit::Idle;
                    }
                }
            }
        }
    }

    /// Notes a packet still arriving (its start time, its bytes in the broker-wide count);
    /// `Some` closes a connection whose partial packet takes the total past the budget.
    fn account_partial(&mut self) -> Option<Exit> {
        // Bytes read while throttled or pressured are whole packets waiting: not partial.
        let waiting = self.throttled_until.is_some() || self.pressure.is_some();
        let now_held = if waiting { 0 } else { self.rbuf.len() };
        if now_held == 0 {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(Instant::now());
        }
        let total = &self.broker.partial_bytes;
        if now_held >= self.partial_held {
            let after = total.fetch_add(now_held - self.partial_held, Ordering::Relaxed) + now_held - self.partial_held;
            self.partial_held = now_held;
            if now_held > mqtt::RESERVE_AHEAD && after > self.broker.config.max_partial_packet_bytes {
                tracing::warn!(client_id = %self.client_id, peer = %self.peer.addr, bytes = now_held, "bytes of packets still arriving past mqtt.max_partial_packet_bytes_total, closing");
                return Some(Exit::Error(ReasonCode::QUOTA_EXCEEDED));
            }
        } else {
            total.fetch_sub(self.partial_held - now_held, Ordering::Relaxed);
            self.partial_held = now_held;
        }
        None
    }

    /// Dispatches one packet; `Some` ends the connection.
    fn handle(&mut self, p: Packet) -> Option<Exit> {
        match p {
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(r) => self.on_puback(r),
            Packet::PubRec(r) => self.on_pubrec(r),
            Packet::PubRel(r) => self.on_pubrel(r),
            Packet::PubComp(r) => self.on_pubcomp(r),
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(u),
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                None
            }
            Packet::Disconnect(d) => self.on_disconnect(d),
            other => {
                tracing::info!(client_id = %self.client_id, packet = other.name(), "unexpected packet from client");
                Metrics::inc(&self.broker.metrics.protocol_errors);
                Some(Exit::Error(ReasonCode::PROTOCOL_ERROR))
            }
        }
    }

    /// Whether the session has nothing for this connection to do: still its own, nothing
    /// queued, no kick.
    fn quiet(&self) -> bool {
        self.session.lock().idle_for(self.generation)
    }

    /// Whether the wake-up said to close: the session was taken over or ended, or the
    /// connection was kicked (`kick_reason`).
    fn kicked(&self) -> Option<Exit> {
        let mut st = self.session.lock();
        if st.generation != self.generation {
            return Some(Exit::TakenOver);
        }
        match st.kick_reason.take() {
            Some(reason) => Some(Exit::Error(reason)),
            None if st.ended => Some(Exit::TakenOver),
            None => None,
        }
    }

    /// What this connection's lifecycle events say about it, when it gets them.
    fn presence(&self) -> Option<crate::lifecycle::Presence<'_>> {
        let connected_ms = self.connected_ms?.get();
        Some(crate::lifecycle::Presence { client_id: &self.client_id, principal: self.authz.principal().unwrap_or(""), version: self.generation, connected_ms })
    }

    fn send(&mut self, p: &Packet) {
        p.encode(&mut self.wbuf, self.protocol);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        let n = self.wbuf.len();
        self.broker.metrics.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        self.wbuf.clear();
        // A small write means a quiet connection: give the buffer back.
        if self.wbuf.capacity() > WRITE_BUF_KEEP || n < 1024 {
            self.wbuf = BytesMut::new();
        }
        Ok(())
    }

    fn deliver_outbox(&mut self) {
        if self.outbox_len > 0 {
            self.broker.deliver(&mut self.outbox, &mut self.ops, &mut self.pressure);
            self.outbox_len = 0;
        }
    }

    /// Sends the DISCONNECT the exit calls for, closes the socket, then settles the session
    /// (detach, expiry) and the will.
    async fn close(mut self, exit: Exit) {
        self.broker.metrics.connections_current.fetch_sub(1, Ordering::Relaxed);
        self.broker.partial_bytes.fetch_sub(std::mem::take(&mut self.partial_held), Ordering::Relaxed);
        let reason = match exit {
            Exit::Error(r) => Some(r),
            Exit::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
            Exit::KeepAlive => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            Exit::Shutdown => Some(ReasonCode::SERVER_SHUTTING_DOWN),
            _ => None,
        };
        if let (Some(reason), true) = (reason, self.protocol.is_v5()) {
            self.send(&Packet::Disconnect(Disconnect { reason, ..Default::default() }));
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.flush().await;
            let _ = self.io.shutdown().await;
        })
        .await;

        let broker = self.broker.clone();
        let session = self.session.clone();
        let generation = self.generation;
        // `Some(expiry)` while this connection still owns the session; `None` once a newer
        // connection resumed it (`resumed`) or it ended.
        let mut resumed = false;
        let ours = {
            let mut st = session.lock();
            if st.ended || st.generation != generation {
                resumed = !st.ended;
                None
            } else {
                st.attached = None;
                self.broker.reattach_principal(&self.client_id, st.principal.as_deref(), None);
                if st.persistent && st.expiry_secs > 0 {
                    let client_id = self.client_id.to_string();
                    let protocol = self.protocol.level();
                    let principal = st.principal.as_deref().map(str::to_string);
                    self.ops.push(store::Op::PutSession { client_id: client_id.clone(), protocol, expiry_secs: st.expiry_secs, principal });
                    self.ops.push(store::Op::SessionDisconnected { client_id, at_ms: Some(crate::message::unix_ms()) });
                }
                Some(st.expiry_secs)
            }
        };
        match ours {
            Some(0) => broker.discard(&session),
            Some(secs) => broker.schedule_expiry(session.clone(), generation, secs as u64),
            None => {}
        }
        broker.persist(std::mem::take(&mut self.ops));

        let client = matches!(exit, Exit::Normal | Exit::WithWill);
        let why = crate::lifecycle::disconnect_reason(client, exit.reason(), exit == Exit::Closed, exit == Exit::TakenOver, exit == Exit::KeepAlive);
        let disconnected = crate::tap::Disconnected {
            client_id: &self.client_id,
            principal: self.authz.principal(),
            at_ms: crate::message::unix_ms(),
            generation,
            reason: why,
            client_initiated: client,
        };
        broker.tap(|t| t.disconnected(&disconnected));
        if session.lock().suppress_will {
            return;
        }
        if let Some(p) = self.presence() {
            p.disconnected(&broker, client, why);
        }
        let Some(will) = self.will.take() else { return };
        let requested_delay = will.properties.will_delay_interval.unwrap_or(0);
        let delay = requested_delay.min(ours.unwrap_or(0));
        let publish = match exit {
            Exit::Normal | Exit::Shutdown => false,
            // A new connection for the client id came before any delay could run out.
            Exit::TakenOver => requested_delay == 0,
            _ if resumed => requested_delay == 0,
            _ => true,
        };
        if !publish {
            return;
        }
        let msg = will_message(*will, self.client_id.clone());
        let authz = self.authz.clone();
        let client_id = self.client_id.clone();
        // Checked again when it is sent: the policies may have changed, the certificate may have
        // been revoked since CONNECT.
        let send = move || {
            if !inbound::may_publish(&*authz, &msg.topic, msg.retain) {
                authz.denied("publish");
                Metrics::inc(&broker.metrics.denied);
                tracing::info!(%client_id, topic = %msg.topic, "will not authorized any more: not sent");
                return;
            }
            let mut ops = Vec::new();
            broker.publish(Arc::new(msg), &mut ops);
            broker.persist(ops);
        };
        if delay == 0 {
            send();
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(delay as u64)).await;
            let reconnected = {
                let st = session.lock();
                st.generation != generation && !st.ended
            };
            if !reconnected {
                send();
            }
        });
    }
}

fn will_message(w: Will, client_id: Arc<str>) -> Message {
    let publish = mqtt::Publish {
        qos: w.qos,
        retain: w.retain,
        topic: w.topic,
        properties: mqtt::Properties { will_delay_interval: None, ..w.properties },
        payload: w.payload,
        ..Default::default()
    };
    Message::from_publish(publish, Some(client_id), Instant::now())
}

/// Waits until a pressured queue has room again, at most [`PRESSURE_WAIT`].
async fn wait_for_room(room: &Notify, session: Option<Arc<Session>>) {
    let Some(s) = session else { return };
    let deadline = tokio::time::Instant::now() + PRESSURE_WAIT;
    loop {
        let notified = room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !s.lock().pressure || tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod size_tests {
    /// Every idle connection holds one of these futures: its size is most of the memory an idle
    /// connection costs, so it is kept in check here (BENCHMARKS.md measures the whole).
    #[tokio::test]
    async fn an_idle_connection_future_stays_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let b = crate::Broker::new(Default::default());
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let ctx = crate::server::Ctx { inner: b.inner().clone(), authn: std::sync::Arc::new(crate::auth::AllowAll), shutdown: rx, permit: None, parker: None };
        let peer = crate::server::PeerInfo { addr, transport: "mqtt", cert: None, server_name: None };
        let f = super::serve(s, peer, ctx);
        assert!(std::mem::size_of_val(&f) <= 2048, "connection future grew to {} bytes", std::mem::size_of_val(&f));
    }
}
