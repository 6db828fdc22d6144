//! Ferrite's MQTT 3.1.1/5.0 broker: listeners, sessions, the subscription router, retained
//! messages, wills, expiry timers and persistence.
//!
//! Layering (as in tokio's mini-redis): the pure `mqtt` codec → [`connection`] (framing, one
//! handler per packet) → [`Broker`] (shared state: sessions, router, retained store) →
//! [`server`] (accept loop, connection limit, structured shutdown). [`persist`] writes what must
//! survive a restart to the embedded store, in group commits.

pub mod auth;
pub mod config;
mod connection;
pub mod internal;
pub mod lifecycle;
mod limit;
pub mod message;
pub mod metrics;
pub mod persist;
pub mod reserved;
pub mod retained;
pub mod tap;
pub mod router;
pub mod server;
pub mod session;
pub mod tls;
pub mod ws;

pub use config::{BrokerConfig, QueueFull};
pub use message::{Delivery, Message};
pub use metrics::Metrics;

use message::unix_ms;
use mqtt::{QoS, SubscriptionOptions, topic};
use persist::Persister;
use router::{Router, SubEntry};
use session::{Enqueued, Inflight, Session, Stage};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Op, SyncMode};

/// Topics of AWS IoT Basic Ingest (`$aws/rules/{ruleName}/...`): delivered only to sessions
/// with `basic_ingest` set (the rules engine), never to subscribers, never retained.
pub const BASIC_INGEST_PREFIX: &str = "$aws/rules/";

/// Deliveries routed during one read of a connection, grouped by session so that each session's
/// queue is locked once per read rather than once per message.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    index: HashMap<usize, usize>,
    batches: Vec<(Arc<Session>, Vec<Delivery>)>,
}

impl Outbox {
    fn push(&mut self, session: Arc<Session>, d: Delivery) {
        let key = Arc::as_ptr(&session) as usize;
        match self.index.get(&key) {
            Some(&i) => self.batches[i].1.push(d),
            None => {
                self.index.insert(key, self.batches.len());
                self.batches.push((session, vec![d]));
            }
        }
    }
}

/// A handle to the broker's shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Broker {
    inner: Arc<BrokerInner>,
}

/// Shared state behind [`Broker`].
#[derive(Debug)]
pub struct BrokerInner {
    pub config: BrokerConfig,
    pub router: Router,
    pub retained: retained::Retained,
    pub metrics: Metrics,
    sessions: Mutex<session::SessionMap>,
    /// The client identifiers of the connections attached with each principal (kept under the
    /// session's lock as connections attach and end): what `disconnect_principal` visits.
    by_principal: Mutex<HashMap<Box<str>, std::collections::HashSet<Arc<str>>>>,
    generation: AtomicU64,
    /// Woken when a queue under pressure has drained to half its bound: publishers waiting for
    /// room check whether it was their subscriber's.
    pub(crate) room: tokio::sync::Notify,
    persist: Option<Persister>,
    /// The taps registered at wiring time.
    taps: std::sync::RwLock<Vec<Arc<dyn tap::Tap>>>,
    /// Bytes of packets still arriving, all connections together
    /// ([`BrokerConfig::max_partial_packet_bytes`]).
    pub(crate) partial_bytes: std::sync::atomic::AtomicUsize,
}

/// What a restart found in the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct Restored {
    pub retained: usize,
    pub sessions: usize,
    pub messages: usize,
}

impl Broker {
    /// An in-memory broker with the given limits and no listeners yet (see [`server::serve_tcp`]).
    pub fn new(config: BrokerConfig) -> Broker {
        Broker::build(config, None)
    }

    fn build(config: BrokerConfig, persist: Option<Persister>) -> Broker {
        Broker {
            inner: Arc::new(BrokerInner {
                config,
                router: Router::default(),
                retained: Default::default(),
                metrics: Metrics::default(),
                sessions: Mutex::default(),
                by_principal: Mutex::default(),
                generation: AtomicU64::new(1),
                room: tokio::sync::Notify::new(),
                partial_bytes: Default::default(),
                taps: Default::default(),
                persist,
            }),
        }
    }

    /// A broker backed by the store at `path`: retained messages and persistent sessions
    /// (subscriptions, queued and in-flight messages, QoS 2 state) are loaded from it, and kept
    /// in it from now on. Must run inside a tokio runtime (session expiry timers restart).
    pub fn open(config: BrokerConfig, path: &Path, sync: SyncMode) -> Result<(Broker, Restored), store::StoreError> {
        let (persister, snapshot) = Persister::open(path, sync, unix_ms())?;
        let broker = Broker::build(config, Some(persister));
        let restored = broker.inner.restore(snapshot);
        Ok((broker, restored))
    }

    /// Registers a tap: it hears every connection's connectivity changes from now on.
    pub fn add_tap(&self, tap: Arc<dyn tap::Tap>) {
        self.inner.taps.write().unwrap_or_else(|e| e.into_inner()).push(tap);
    }

    /// The shared state.
    pub fn inner(&self) -> &Arc<BrokerInner> {
        &self.inner
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Publishes a message from inside Ferrite (no client connection) and waits until it is
    /// stored for every persistent session it reaches; returns how many sessions it was offered to.
    pub async fn publish(&self, msg: Message) -> usize {
        let mut ops = Vec::new();
        let n = self.inner.publish(Arc::new(msg), &mut ops);
        if let Some(done) = self.inner.persist_durable(ops) {
            let _ = done.await;
        }
        n
    }

    /// Disconnects a connected client (AWS IoT's DeleteConnection): MQTT 5 clients get
    /// DISCONNECT 0x98 (administrative action). `clean_session` discards its session;
    /// `prevent_will` drops its will. False when no client with that id is connected.
    pub fn disconnect_client(&self, client_id: &str, clean_session: bool, prevent_will: bool) -> bool {
        let Some(session) = self.inner.session(client_id) else { return false };
        {
            let mut st = session.lock();
            if st.attached.is_none() {
                return false;
            }
            if clean_session {
                st.expiry_secs = 0;
            }
            st.suppress_will = prevent_will;
        }
        session.kick(mqtt::ReasonCode::ADMINISTRATIVE_ACTION);
        true
    }

    /// Disconnects every connection acting as `principal` (a certificate revoked or deactivated,
    /// ...): MQTT 5 clients get DISCONNECT 0x87. Returns how many were disconnected.
    pub fn disconnect_principal(&self, principal: &str) -> usize {
        let ids: Vec<Arc<str>> = self.inner.principals().get(principal).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let sessions: Vec<Arc<Session>> = {
            let map = self.inner.sessions();
            ids.iter().filter_map(|id| map.get(id).cloned()).collect()
        };
        let mut n = 0;
        for s in sessions {
            let hit = {
                let st = s.lock();
                st.attached.is_some() && st.principal.as_deref() == Some(principal)
            };
            if hit {
                s.kick(mqtt::ReasonCode::NOT_AUTHORIZED);
                n += 1;
            }
        }
        n
    }

    /// Gauges for the metrics endpoint: (sessions, connected sessions, queued messages, in-flight messages).
    pub fn session_gauges(&self) -> (usize, usize, usize, usize) {
        let sessions: Vec<Arc<Session>> = self.inner.sessions().values().cloned().collect();
        let (mut connected, mut queued, mut inflight) = (0, 0, 0);
        for s in &sessions {
            let st = s.lock();
            connected += usize::from(st.attached.is_some());
            queued += st.queue().len();
            inflight += st.inflight().len();
        }
        (sessions.len(), connected, queued, inflight)
    }

    /// Commits what is pending in the store and stops its writer (call after the listeners stop).
    pub async fn close_store(&self) {
        if let Some(p) = &self.inner.persist {
            p.stop().await;
        }
    }
}

impl BrokerInner {
    fn sessions(&self) -> std::sync::MutexGuard<'_, session::SessionMap> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn principals(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, std::collections::HashSet<Arc<str>>>> {
        self.by_principal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `client_id`'s connection is attached with `now` instead of `before` (call
    /// holding the session's lock, so that attaches and ends of one client apply in order).
    pub(crate) fn reattach_principal(&self, client_id: &Arc<str>, before: Option<&str>, now: Option<&str>) {
        if before == now && now.is_none() {
            return;
        }
        let mut index = self.principals();
        if let Some(p) = before
            && let Some(set) = index.get_mut(p)
        {
            set.remove(client_id);
            if set.is_empty() {
                index.remove(p);
            }
        }
        if let Some(p) = now {
            index.entry(p.into()).or_default().insert(client_id.clone());
        }
    }

    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Tells every tap.
    pub(crate) fn tap(&self, f: impl Fn(&dyn tap::Tap)) {
        for t in self.taps.read().unwrap_or_else(|e| e.into_inner()).iter() {
            f(&**t);
        }
    }

    /// Whether sessions can be persisted at all.
    pub(crate) fn has_store(&self) -> bool {
        self.persist.is_some()
    }

    /// Queues store ops without waiting.
    pub(crate) fn persist(&self, ops: Vec<Op>) {
        if let Some(p) = &self.persist {
            p.submit(ops);
        }
    }

    /// Queues store ops; the promise resolves when they are committed. `None` when there is
    /// nothing to wait for.
    pub(crate) fn persist_durable(&self, ops: Vec<Op>) -> Option<persist::Durable> {
        match &self.persist {
            Some(p) if !ops.is_empty() => Some(p.submit_durable(ops)),
            _ => None,
        }
    }

    /// Stores a retained message if flagged, then offers the message to every matching
    /// subscription. Store ops it needs go to `ops`. Returns the number of sessions reached.
    pub fn publish(&self, msg: Arc<Message>, ops: &mut Vec<Op>) -> usize {
        self.publish_from(msg, ops, &mut None)
    }

    /// [`BrokerInner::publish`] for a connection: `pressure` is set to a session whose queue is
    /// full while its connection drains it, so the publisher can wait for room before reading on.
    pub(crate) fn publish_from(&self, msg: Arc<Message>, ops: &mut Vec<Op>, pressure: &mut Option<Arc<Session>>) -> usize {
        let mut outbox = Outbox::default();
        let n = self.route_into(msg, ops, &mut outbox);
        self.deliver(&mut outbox, ops, pressure);
        n
    }

    /// Stores a retained message if flagged and routes the message into `outbox` (delivered by
    /// [`BrokerInner::deliver`]); returns the number of sessions it goes to.
    pub(crate) fn route_into(&self, msg: Arc<Message>, ops: &mut Vec<Op>, outbox: &mut Outbox) -> usize {
        // Basic Ingest: `$aws/rules/{rule}/...` goes to the rules engine only, never retained.
        let ingest = msg.topic.starts_with(BASIC_INGEST_PREFIX);
        if msg.retain && self.config.retain_available && !ingest && msg.only_to.is_none() {
            self.retained.set(&msg);
            if self.has_store() {
                ops.push(if msg.payload.is_empty() {
                    Op::DeleteRetained(msg.topic.to_string())
                } else {
                    Op::PutRetained(msg.to_stored())
                });
            }
        }
        let mut targets = self.router.route_to(&msg.topic, msg.publisher.as_deref(), msg.only_to.as_deref());
        if ingest {
            targets.retain(|t| t.session.lock().basic_ingest);
        }
        let n = targets.len();
        for t in targets {
            let d = Delivery {
                qos: msg.qos.min(t.granted),
                retain: msg.retain && t.retain_as_published,
                subscription_ids: t.sub_ids,
                msg: msg.clone(),
                seq: 0,
            };
            outbox.push(t.session, d);
        }
        n
    }

    /// Queues what `outbox` holds: one lock and at most one wake-up per session, however many
    /// messages a connection routed to it in one read. Counts drops; sets `pressure` as
    /// [`BrokerInner::publish_from`] does.
    pub(crate) fn deliver(&self, outbox: &mut Outbox, ops: &mut Vec<Op>, pressure: &mut Option<Arc<Session>>) {
        let c = &self.config;
        for (session, ds) in outbox.batches.drain(..) {
            let (mut pressured, mut kick) = (false, false);
            // The session is locked while this runs: only count here, act after.
            session.enqueue_all(ds, c.max_queued_messages, c.queue_qos0_offline, ops, |e, qos| {
                let (p, k) = self.count(&session, e, qos);
                pressured |= p;
                kick |= k;
            });
            if kick {
                session.kick(mqtt::ReasonCode::QUOTA_EXCEEDED);
            }
            if pressured {
                *pressure = Some(session);
            }
        }
        outbox.index.clear();
    }

    /// Offers messages to one session ahead of those queued after position `at` (see
    /// [`Session::enqueue_all_at`]); applies the queue-full policy.
    pub(crate) fn offer_at(&self, session: &Session, at: usize, ds: Vec<Delivery>, ops: &mut Vec<Op>) {
        let c = &self.config;
        let mut kick = false;
        session.enqueue_all_at(at, ds, c.max_queued_messages, c.queue_qos0_offline, ops, |e, qos| kick |= self.count(session, e, qos).1);
        if kick {
            session.kick(mqtt::ReasonCode::QUOTA_EXCEEDED);
        }
    }

    /// Counts what happened to one delivery (it may run under the session's lock, so it takes
    /// none): (the session is under pressure, the client must be disconnected by the queue-full policy).
    fn count(&self, session: &Session, e: Enqueued, qos: QoS) -> (bool, bool) {
        match e {
            Enqueued::Queued | Enqueued::Ended => (false, false),
            Enqueued::Pressure { dropped } => {
                if dropped {
                    Metrics::inc(&self.metrics.dropped_queue_full);
                }
                (true, false)
            }
            Enqueued::DroppedOffline => {
                Metrics::inc(&self.metrics.dropped_qos0_offline);
                (false, false)
            }
            Enqueued::DroppedFull => {
                Metrics::inc(&self.metrics.dropped_queue_full);
                tracing::debug!(client_id = %session.client_id, "session queue full, message dropped");
                (false, self.config.queue_full == QueueFull::Disconnect && qos != QoS::AtMostOnce)
            }
        }
    }

    /// The session of a client identifier, if one exists.
    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        self.sessions().get(client_id).cloned()
    }

    /// The session for a new connection acting as `principal`: the existing one unless `clean`,
    /// or a fresh one (ending the existing one). A session is resumed only by its own principal:
    /// a connection of another principal (a loopback client taking a device's client id, another
    /// certificate) starts afresh, so it never receives what was queued for someone else.
    pub(crate) fn open_session(&self, client_id: &Arc<str>, clean: bool, protocol: mqtt::Protocol, principal: Option<&str>) -> (Arc<Session>, bool) {
        let (fresh, old) = {
            let mut map = self.sessions();
            if !clean && let Some(s) = map.get(client_id) {
                let owner = s.lock().principal.clone();
                if owner.as_deref() == principal {
                    return (s.clone(), true);
                }
                tracing::info!(%client_id, "session of another principal not resumed: starting a new one");
            }
            let fresh = Arc::new(Session::new(client_id.clone(), protocol));
            let old = map.insert(fresh.clone());
            (fresh, old)
        };
        if let Some(old) = old {
            self.discard(&old);
        }
        (fresh, false)
    }

    /// Ends a session: takes it out of the session map (if it is still the one there), removes
    /// its subscriptions from the router, deletes it from the store, and marks it ended.
    pub(crate) fn discard(&self, session: &Arc<Session>) {
        {
            let mut map = self.sessions();
            if map.get(&session.client_id).is_some_and(|s| Arc::ptr_eq(s, session)) {
                map.remove(&session.client_id);
            }
        }
        let (subs, persistent) = {
            let mut st = session.lock();
            st.ended = true;
            if let Some(a) = st.attached.take() {
                a.wake();
                self.reattach_principal(&session.client_id, st.principal.as_deref(), None);
            }
            st.queue_mut().clear();
            st.inflight_mut().clear();
            (std::mem::take(&mut st.subscriptions).into_keys().collect::<Vec<_>>(), st.persistent)
        };
        if persistent {
            self.persist(vec![Op::DeleteSession(session.client_id.to_string())]);
        }
        for f in subs {
            if let Ok(p) = topic::parse_filter(&f) {
                self.router.unsubscribe(p.filter, p.share_group, &session.client_id);
            }
        }
    }

    /// Discards the session after `secs` unless a connection (generation) has taken it since.
    pub(crate) fn schedule_expiry(self: &Arc<Self>, session: Arc<Session>, generation: u64, secs: u64) {
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let expired = {
                let st = session.lock();
                st.generation == generation && st.attached.is_none() && !st.ended
            };
            if expired {
                tracing::debug!(client_id = %session.client_id, "session expired");
                broker.discard(&session);
            }
        });
    }

    /// Adds a subscription to the router (the session's own map is updated by the caller).
    pub(crate) fn add_route(&self, session: &Arc<Session>, filter: topic::ParsedFilter<'_>, opts: SubscriptionOptions, sub_id: Option<u32>) -> bool {
        let entry = SubEntry { session: session.clone(), opts, sub_id };
        self.router.subscribe(filter.filter, filter.share_group, entry)
    }

    /// Number of sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// QoS granted for a requested QoS, capped by the configured maximum.
    pub(crate) fn cap_qos(&self, q: QoS) -> QoS {
        q.min(QoS::from_u8(self.config.maximum_qos.min(2)).unwrap_or(QoS::ExactlyOnce))
    }

    /// Rebuilds retained messages and sessions from a store snapshot.
    fn restore(self: &Arc<Self>, snap: store::Snapshot) -> Restored {
        let now = Instant::now();
        let now_ms = unix_ms();
        let mut restored = Restored::default();
        for m in &snap.retained {
            if let Some(msg) = Message::from_stored(&Arc::new(m.clone()), now) {
                self.retained.set(&Arc::new(msg));
                restored.retained += 1;
            }
        }
        for row in snap.sessions {
            let protocol = match row.protocol {
                5 => mqtt::Protocol::V5,
                3 => mqtt::Protocol::V31,
                _ => mqtt::Protocol::V311,
            };
            let client_id: Arc<str> = row.client_id.as_str().into();
            let session = Arc::new(Session::new(client_id.clone(), protocol));
            let generation = self.next_generation();
            {
                let mut st = session.lock();
                st.generation = generation;
                st.expiry_secs = row.expiry_secs;
                st.principal = row.principal.map(Into::into);
                st.persistent = true;
                st.incoming_qos2 = row.incoming_qos2.iter().copied().collect();
                for m in &row.messages {
                    let Some(msg) = Message::from_stored(&m.msg, now) else { continue };
                    let d = Delivery {
                        msg: Arc::new(msg),
                        qos: QoS::from_u8(m.qos).unwrap_or(QoS::AtLeastOnce),
                        retain: m.retain,
                        subscription_ids: m.sub_ids.clone(),
                        seq: m.seq,
                    };
                    st.next_seq = st.next_seq.max(m.seq + 1);
                    restored.messages += 1;
                    match Stage::from_code(m.stage) {
                        Some(stage) if m.packet_id != 0 => st.inflight_mut().push_back(Inflight { packet_id: m.packet_id, delivery: d, stage }),
                        _ => st.queue_mut().push_back(d),
                    }
                }
            }
            for sub in &row.subscriptions {
                let Ok(parsed) = topic::parse_filter(&sub.filter) else { continue };
                if !self.config.topic_within_limits(parsed.filter) {
                    tracing::warn!(client_id = %client_id, filter_bytes = sub.filter.len(), "stored subscription past the topic limits: not restored");
                    continue;
                }
                let opts = session::options_from_byte(sub.options);
                session.lock().subscriptions.insert(sub.filter.clone(), (opts, sub.sub_id));
                self.add_route(&session, parsed, opts, sub.sub_id);
            }
            self.sessions().insert(session.clone());
            if row.expiry_secs == u32::MAX {
                // Never expires (Ferrite's durable in-process clients).
                restored.sessions += 1;
                continue;
            }
            let left_ms = row.disconnected_at_ms.unwrap_or(now_ms) + row.expiry_secs as i64 * 1000 - now_ms;
            self.schedule_expiry(session, generation, (left_ms.max(0) as u64).div_ceil(1000));
            restored.sessions += 1;
        }
        restored
    }
}
