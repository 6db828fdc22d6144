//! Sessions: the state a client identifier keeps across connections (subscriptions, queued and
//! in-flight messages, QoS 2 receive state), shared between its connection and the router.

use crate::message::Delivery;
use mqtt::{Protocol, QoS, SubscriptionOptions};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// One session. The router holds `Arc<Session>` in its trie; the live connection (if any)
/// drains `queue` when `notify` fires.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
    /// Woken when a message is queued.
    pub notify: Notify,
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
    /// Notified to make the connection close with "session taken over".
    pub kick: Arc<Notify>,
}

/// What a session keeps; guarded by the session's mutex.
#[derive(Debug)]
pub struct SessionState {
    pub protocol: Protocol,
    /// Full filter text (including any `$share/{group}/` prefix) → options and subscription id.
    pub subscriptions: HashMap<String, (SubscriptionOptions, Option<u32>)>,
    pub queue: VecDeque<Delivery>,
    pub inflight: VecDeque<Inflight>,
    next_packet_id: u16,
    /// QoS 2 packet identifiers received and not yet released by PUBREL.
    pub incoming_qos2: HashSet<u16>,
    pub attached: Option<Attachment>,
    /// The generation of the latest connection; timers compare it to know they are stale.
    pub generation: u64,
    pub expiry_secs: u32,
    /// Set once the session is discarded; late deliveries are ignored.
    pub ended: bool,
}

/// The outcome of offering a message to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    DroppedOffline,
    DroppedFull,
    Ended,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: Arc<str>, protocol: Protocol) -> Session {
        Session {
            client_id,
            state: Mutex::new(SessionState {
                protocol,
                subscriptions: HashMap::new(),
                queue: VecDeque::new(),
                inflight: VecDeque::new(),
                next_packet_id: 1,
                incoming_qos2: HashSet::new(),
                attached: None,
                generation: 0,
                expiry_secs: 0,
                ended: false,
            }),
            notify: Notify::new(),
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere) still yields the data: session
    /// state stays consistent per operation, and one bad task must not wedge the broker.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a connection is attached.
    pub fn is_connected(&self) -> bool {
        self.lock().attached.is_some()
    }

    /// Offers a message; bounded by `max_queued`. Wakes the connection when queued.
    pub fn enqueue(&self, d: Delivery, max_queued: usize, queue_qos0_offline: bool) -> Enqueued {
        {
            let mut st = self.lock();
            if st.ended {
                return Enqueued::Ended;
            }
            if st.attached.is_none() && d.qos == QoS::AtMostOnce && !queue_qos0_offline {
                return Enqueued::DroppedOffline;
            }
            if st.queue.len() >= max_queued {
                return Enqueued::DroppedFull;
            }
            st.queue.push_back(d);
        }
        self.notify.notify_one();
        Enqueued::Queued
    }
}

impl SessionState {
    /// A packet identifier not used by any in-flight message. The in-flight window is at most
    /// 65,535 (Receive Maximum is a u16), so one is always free.
    pub fn alloc_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.inflight.iter().any(|f| f.packet_id == id) {
                return id;
            }
        }
    }

    /// The position of the in-flight message with this packet identifier.
    pub fn find_inflight(&self, packet_id: u16) -> Option<usize> {
        self.inflight.iter().position(|f| f.packet_id == packet_id)
    }
}
