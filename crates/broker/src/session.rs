//! Sessions: the state a client identifier keeps across connections (subscriptions, queued and
//! in-flight messages, QoS 2 receive state), shared between its connection and the router.

use crate::message::Delivery;
use mqtt::{Protocol, QoS, SubscriptionOptions};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use store::{Op, QueuedRow};
use tokio::sync::Notify;

/// One session. The router holds `Arc<Session>` in its trie; the live connection (if any)
/// drains `queue` when its attachment's `wake` fires.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
}

/// Sessions by client identifier: a set of sessions keyed by their own `client_id`, one
/// pointer per entry (memory per connection).
#[derive(Debug, Default)]
pub(crate) struct SessionMap(std::collections::HashSet<ById>);

#[derive(Debug)]
struct ById(Arc<Session>);

impl std::hash::Hash for ById {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it.
        (*self.0.client_id).hash(h)
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.client_id == other.0.client_id
    }
}

impl Eq for ById {}

impl std::borrow::Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

impl SessionMap {
    pub(crate) fn get(&self, client_id: &str) -> Option<&Arc<Session>> {
        self.0.get(client_id).map(|e| &e.0)
    }

    /// Adds a session; returns the one it replaced (same client identifier).
    pub(crate) fn insert(&mut self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.0.replace(ById(session)).map(|e| e.0)
    }

    pub(crate) fn remove(&mut self, client_id: &str) -> Option<Arc<Session>> {
        self.0.take(client_id).map(|e| e.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.0.iter().map(|e| &e.0)
    }
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubComp,
}

impl Stage {
    /// The stage as stored (0 means queued, not yet sent).
    pub fn code(self) -> u8 {
        match self {
            Stage::AwaitPubAck => 1,
            Stage::AwaitPubRec => 2,
            Stage::AwaitPubComp => 3,
        }
    }

    /// The stage for a stored code.
    pub fn from_code(c: u8) -> Option<Stage> {
        match c {
            1 => Some(Stage::AwaitPubAck),
            2 => Some(Stage::AwaitPubRec),
            3 => Some(Stage::AwaitPubComp),
            _ => None,
        }
    }
}

/// An outgoing message the client has not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub stage: Stage,
}

/// The live connection attached to a session.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub generation: u64,
    /// Notified when a message is queued, and when the connection must close (taken over,
    /// kicked with `kick_reason`, session ended): one wake-up per connection.
    pub wake: Arc<Notify>,
    /// Set while the connection is parked (idle, without a task): waking it resumes it.
    pub(crate) parked: Option<crate::connection::Unpark>,
}

impl Attachment {
    /// A new attachment for connection `generation`, woken through `wake`.
    pub fn new(generation: u64, wake: Arc<Notify>) -> Attachment {
        Attachment { generation, wake, parked: None }
    }

    /// Wakes the connection (resuming it first if it is parked): it then drains the queue and
    /// checks whether it must close.
    pub fn wake(&self) {
        self.wake.notify_one();
        if let Some(u) = &self.parked {
            u.wake();
        }
    }
}

/// What a session keeps; guarded by the session's mutex.
#[derive(Debug)]
pub struct SessionState {
    pub protocol: Protocol,
    /// Full filter text (including any `$share/{group}/` prefix) → options and subscription id.
    pub subscriptions: BTreeMap<String, (SubscriptionOptions, Option<u32>)>,
    /// Queued and in-flight messages, allocated with the first message (most sessions of an
    /// idle fleet have none; see [`SessionState::queue`]).
    queues: Option<Box<Queues>>,
    next_packet_id: u16,
    /// QoS 2 packet identifiers received and not yet released by PUBREL.
    pub incoming_qos2: BTreeSet<u16>,
    pub attached: Option<Attachment>,
    /// The generation of the latest connection; timers compare it to know they are stale.
    pub generation: u64,
    pub expiry_secs: u32,
    /// Set once the session is discarded; late deliveries are ignored.
    pub ended: bool,
    /// Kept in the store (a store is configured and the session expiry is not 0): its QoS 1/2
    /// messages, subscriptions and QoS 2 state are written there.
    pub persistent: bool,
    /// The next stored-queue position.
    pub next_seq: u64,
    /// Why the attached connection was told to close, when it was not a takeover.
    pub kick_reason: Option<mqtt::ReasonCode>,
    /// Set by an administrative disconnect that asked for the will not to be published.
    pub suppress_will: bool,
    /// A queue bound of its own (in-process clients); `None` uses the configured one.
    pub max_queued: Option<std::num::NonZeroU32>,
    /// The principal (certificate id, ...) of the attached connection.
    pub principal: Option<Box<str>>,
    /// Receives Basic Ingest messages (`$aws/rules/...`): only the rules engine's in-process
    /// sessions set it; no other session is ever delivered such a message.
    pub basic_ingest: bool,
    /// When the connection last took messages from the queue: a session that drains is slow,
    /// one that does not is stalled.
    pub drained_at: u32,
    /// A publisher was told to wait for room in this queue.
    pub pressure: bool,
}

/// The outcome of offering a message to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The queue is full but its connection is draining it: the publisher should wait for room.
    /// A QoS 1/2 message was still queued (up to twice the bound); a QoS 0 one was dropped.
    Pressure { dropped: bool },
    DroppedOffline,
    DroppedFull,
    Ended,
}

/// How recently (ms) a connection must have drained its queue to count as slow rather than stalled.
pub const ACTIVE_WITHIN_MS: u32 = 500;

/// Milliseconds since the process first asked, wrapping after about 49 days: tells "within the
/// last half second" in 4 bytes of session state.
pub fn ticks_ms() -> u32 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u32
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: Arc<str>, protocol: Protocol) -> Session {
        Session {
            client_id,
            state: Mutex::new(SessionState {
                protocol,
                subscriptions: BTreeMap::new(),
                queues: None,
                next_packet_id: 1,
                incoming_qos2: BTreeSet::new(),
                attached: None,
                generation: 0,
                expiry_secs: 0,
                ended: false,
                persistent: false,
                next_seq: 1,
                kick_reason: None,
                suppress_will: false,
                max_queued: None,
                principal: None,
                basic_ingest: false,
                drained_at: ticks_ms(),
                pressure: false,
            }),
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere) still yields the data: session
    /// state stays consistent per operation, and one bad task must not wedge the broker.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the attached connection (if any) to close with `reason`.
    pub fn kick(&self, reason: mqtt::ReasonCode) {
        let mut st = self.lock();
        if let Some(a) = &st.attached {
            // The connection needs this lock to look, so the order does not matter.
            a.wake();
            st.kick_reason = Some(reason);
        }
    }

    /// Whether a connection is attached.
    pub fn is_connected(&self) -> bool {
        self.lock().attached.is_some()
    }

    /// Offers several messages under one lock and with at most one wake-up, bounded by
    /// `max_queued`; `outcome` hears what happened to each (with its QoS). A QoS 1/2 message
    /// for a persistent session gets a queue position and a store op in `ops`.
    pub fn enqueue_all(
        &self,
        ds: impl IntoIterator<Item = Delivery>,
        max_queued: usize,
        queue_qos0_offline: bool,
        ops: &mut Vec<Op>,
        outcome: impl FnMut(Enqueued, QoS),
    ) {
        self.enqueue_all_at(usize::MAX, ds, max_queued, queue_qos0_offline, ops, outcome)
    }

    /// [`Session::enqueue_all`], the messages queued ahead of those after queue position `at`
    /// (a new subscription's retained messages go before live ones its route let in meanwhile).
    pub fn enqueue_all_at(
        &self,
        at: usize,
        ds: impl IntoIterator<Item = Delivery>,
        max_queued: usize,
        queue_qos0_offline: bool,
        ops: &mut Vec<Op>,
        mut outcome: impl FnMut(Enqueued, QoS),
    ) {
        {
            let mut st = self.lock();
            let was_empty = st.queue().is_empty();
            let before = st.queue().len();
            for d in ds {
                let qos = d.qos;
                let e = self.enqueue_locked(&mut st, d, max_queued, queue_qos0_offline, ops);
                outcome(e, qos);
            }
            let added = st.queue().len().saturating_sub(before);
            if added > 0 && at < before {
                st.queue_mut().make_contiguous()[at..].rotate_right(added);
            }
            // Only the empty → non-empty transition needs a wake-up: otherwise a wake-up is
            // already pending, or the connection is draining and will come back for the rest.
            if was_empty && !st.queue().is_empty() && let Some(a) = &st.attached {
                a.wake();
            }
        }
    }

    fn enqueue_locked(&self, st: &mut SessionState, mut d: Delivery, max_queued: usize, queue_qos0_offline: bool, ops: &mut Vec<Op>) -> Enqueued {
        if st.ended {
            return Enqueued::Ended;
        }
        if st.attached.is_none() && d.qos == QoS::AtMostOnce && !queue_qos0_offline {
            return Enqueued::DroppedOffline;
        }
        let bound = st.max_queued.map_or(max_queued, |m| m.get() as usize);
        if st.queue().len() >= bound {
            let draining = st.attached.is_some() && ticks_ms().wrapping_sub(st.drained_at) < ACTIVE_WITHIN_MS;
            if !draining {
                return Enqueued::DroppedFull;
            }
            st.pressure = true;
            if d.qos == QoS::AtMostOnce || st.queue().len() >= bound * 2 {
                return Enqueued::Pressure { dropped: true };
            }
            // Acknowledged to its publisher like any other: stored like any other.
            self.store_locked(st, &mut d, ops);
            st.queue_mut().push_back(d);
            return Enqueued::Pressure { dropped: false };
        }
        self.store_locked(st, &mut d, ops);
        st.queue_mut().push_back(d);
        Enqueued::Queued
    }

    /// Gives a QoS 1/2 message for a persistent session its queue position and store op.
    fn store_locked(&self, st: &mut SessionState, d: &mut Delivery, ops: &mut Vec<Op>) {
        if st.persistent && d.qos != QoS::AtMostOnce {
            d.seq = st.next_seq;
            st.next_seq += 1;
            ops.push(Op::PutMessage { client_id: self.client_id.to_string(), row: d.to_row(0, 0) });
        }
    }
}

/// A session's messages.
#[derive(Debug, Default)]
struct Queues {
    queue: VecDeque<Delivery>,
    inflight: VecDeque<Inflight>,
}

static NO_QUEUE: VecDeque<Delivery> = VecDeque::new();
static NO_INFLIGHT: VecDeque<Inflight> = VecDeque::new();

impl SessionState {
    /// Messages waiting to be sent.
    pub fn queue(&self) -> &VecDeque<Delivery> {
        self.queues.as_ref().map_or(&NO_QUEUE, |q| &q.queue)
    }

    pub fn queue_mut(&mut self) -> &mut VecDeque<Delivery> {
        &mut self.queues.get_or_insert_default().queue
    }

    /// Messages sent and not yet acknowledged.
    pub fn inflight(&self) -> &VecDeque<Inflight> {
        self.queues.as_ref().map_or(&NO_INFLIGHT, |q| &q.inflight)
    }

    pub fn inflight_mut(&mut self) -> &mut VecDeque<Inflight> {
        &mut self.queues.get_or_insert_default().inflight
    }

    /// Whether connection `generation` has nothing to do: the session is still its own and not
    /// ended, no kick is waiting and nothing is queued (it may then park).
    pub(crate) fn idle_for(&self, generation: u64) -> bool {
        self.generation == generation && !self.ended && self.kick_reason.is_none() && self.queue().is_empty()
    }

    /// Frees the message queues when they are empty (a connection parking gives them back).
    pub(crate) fn release_empty_queues(&mut self) {
        if self.queues.as_ref().is_some_and(|q| q.queue.is_empty() && q.inflight.is_empty()) {
            self.queues = None;
        }
    }

    /// A packet identifier not used by any in-flight message. The in-flight window is at most
    /// 65,535 (Receive Maximum is a u16), so one is always free.
    pub fn alloc_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.inflight().iter().any(|f| f.packet_id == id) {
                return id;
            }
        }
    }

    /// The position of the in-flight message with this packet identifier.
    pub fn find_inflight(&self, packet_id: u16) -> Option<usize> {
        self.inflight().iter().position(|f| f.packet_id == packet_id)
    }
}

impl Delivery {
    /// The stored row for this delivery.
    pub fn to_row(&self, packet_id: u16, stage: u8) -> QueuedRow {
        QueuedRow {
            seq: self.seq,
            packet_id,
            stage,
            qos: self.qos as u8,
            retain: self.retain,
            sub_ids: self.subscription_ids.clone(),
            msg: self.msg.to_stored(),
        }
    }
}

/// The SUBSCRIBE options byte for stored subscriptions.
pub fn options_to_byte(o: SubscriptionOptions) -> u8 {
    o.qos as u8 | (o.no_local as u8) << 2 | (o.retain_as_published as u8) << 3 | o.retain_handling << 4
}

/// Reads back [`options_to_byte`].
pub fn options_from_byte(b: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::from_u8(b & 3).unwrap_or(QoS::AtMostOnce),
        no_local: b & 4 != 0,
        retain_as_published: b & 8 != 0,
        retain_handling: (b >> 4) & 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn delivery(topic: &str) -> Delivery {
        let p = mqtt::Publish { qos: QoS::AtLeastOnce, topic: topic.into(), ..Default::default() };
        Delivery { msg: Arc::new(Message::from_publish(p, None, std::time::Instant::now())), qos: QoS::AtLeastOnce, retain: true, subscription_ids: vec![], seq: 0 }
    }

    fn topics(s: &Session) -> Vec<String> {
        s.lock().queue().iter().map(|d| d.msg.topic.to_string()).collect()
    }

    #[test]
    fn a_message_queued_past_the_bound_of_a_draining_persistent_session_is_stored_too() {
        let s = Session::new("p".into(), Protocol::V5);
        {
            let mut st = s.lock();
            st.persistent = true;
            st.attached = Some(Attachment::new(1, Arc::new(Notify::new())));
            st.drained_at = ticks_ms();
        }
        let mut ops = Vec::new();
        let mut outcomes = Vec::new();
        s.enqueue_all([delivery("a"), delivery("b")], 1, false, &mut ops, |e, _| outcomes.push(e));
        assert_eq!(outcomes, [Enqueued::Queued, Enqueued::Pressure { dropped: false }]);
        let stored: Vec<u64> = ops.iter().filter_map(|o| if let Op::PutMessage { row, .. } = o { Some(row.seq) } else { None }).collect();
        assert_eq!(stored, [1, 2], "both acknowledged messages are stored, with their own positions");
    }

    #[test]
    fn messages_queued_at_a_position_go_ahead_of_those_after_it() {
        let s = Session::new("c".into(), mqtt::Protocol::V5);
        let mut ops = Vec::new();
        s.enqueue_all([delivery("old")], 10, false, &mut ops, |_, _| {});
        let mark = s.lock().queue().len();
        s.enqueue_all([delivery("live-1"), delivery("live-2")], 10, false, &mut ops, |_, _| {});
        s.enqueue_all_at(mark, [delivery("retained-1"), delivery("retained-2")], 10, false, &mut ops, |_, _| {});
        assert_eq!(topics(&s), ["old", "retained-1", "retained-2", "live-1", "live-2"]);
        // Past the end (or with nothing after the mark) they are simply appended.
        s.enqueue_all_at(99, [delivery("last")], 10, false, &mut ops, |_, _| {});
        assert_eq!(topics(&s).last().map(String::as_str), Some("last"));
        // What the bound drops is not moved.
        s.enqueue_all_at(0, [delivery("x"), delivery("y"), delivery("z"), delivery("w"), delivery("v")], 8, false, &mut ops, |_, _| {});
        assert_eq!(topics(&s)[..2], ["x", "y"]);
        assert_eq!(s.lock().queue().len(), 8);
    }
}
