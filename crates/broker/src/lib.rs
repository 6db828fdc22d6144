//! Ferrite's MQTT 3.1.1/5.0 broker: listeners, sessions, the subscription router, retained
//! messages, wills and expiry timers.
//!
//! Layering (as in tokio's mini-redis): the pure `mqtt` codec → [`connection`] (framing, one
//! handler per packet) → [`Broker`] (shared state: sessions, router, retained store) →
//! [`server`] (accept loop, connection limit, structured shutdown).

pub mod config;
mod connection;
pub mod message;
pub mod metrics;
pub mod retained;
pub mod router;
pub mod server;
pub mod session;

pub use config::BrokerConfig;
pub use message::{Delivery, Message};
pub use metrics::Metrics;

use mqtt::{QoS, topic};
use router::{Router, SubEntry};
use session::{Enqueued, Session};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    generation: AtomicU64,
}

impl Broker {
    /// A broker with the given limits and no listeners yet (see [`server::serve`]).
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            inner: Arc::new(BrokerInner {
                config,
                router: Router::default(),
                retained: Default::default(),
                metrics: Metrics::default(),
                sessions: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(1),
            }),
        }
    }

    /// The shared state.
    pub fn inner(&self) -> &Arc<BrokerInner> {
        &self.inner
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Publishes a message from inside Ferrite (no client connection); returns how many
    /// sessions it was offered to.
    pub fn publish(&self, msg: Message) -> usize {
        self.inner.publish(Arc::new(msg))
    }
}

impl BrokerInner {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Stores a retained message if flagged, then offers the message to every matching
    /// subscription. Returns the number of sessions it was offered to.
    pub fn publish(&self, msg: Arc<Message>) -> usize {
        if msg.retain && self.config.retain_available {
            self.retained.set(&msg);
        }
        let targets = self.router.route(&msg.topic, msg.publisher.as_deref());
        let n = targets.len();
        for t in targets {
            let d = Delivery {
                qos: msg.qos.min(t.granted),
                retain: msg.retain && t.retain_as_published,
                subscription_ids: t.sub_ids,
                msg: msg.clone(),
            };
            self.offer(&t.session, d);
        }
        n
    }

    /// Queues one delivery on a session, counting drops.
    pub(crate) fn offer(&self, session: &Session, d: Delivery) {
        let c = &self.config;
        match session.enqueue(d, c.max_queued_messages, c.queue_qos0_offline) {
            Enqueued::Queued | Enqueued::Ended => {}
            Enqueued::DroppedOffline => Metrics::inc(&self.metrics.dropped_qos0_offline),
            Enqueued::DroppedFull => {
                Metrics::inc(&self.metrics.dropped_queue_full);
                tracing::debug!(client_id = %session.client_id, "session queue full, message dropped");
            }
        }
    }

    /// The session of a client identifier, if one exists.
    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        self.sessions().get(client_id).cloned()
    }

    /// Returns the existing session for `client_id` (unless `clean`), or a new one; an existing
    /// session replaced by a clean start is discarded. The bool is "session present".
    pub(crate) fn open_session(&self, client_id: &Arc<str>, clean: bool, protocol: mqtt::Protocol) -> (Arc<Session>, bool) {
        let old = {
            let mut map = self.sessions();
            if !clean && let Some(s) = map.get(client_id) {
                return (s.clone(), true);
            }
            let fresh = Arc::new(Session::new(client_id.clone(), protocol));
            let old = map.insert(client_id.clone(), fresh.clone());
            (fresh, old)
        };
        let (fresh, old) = old;
        if let Some(old) = old {
            self.discard(&old);
        }
        (fresh, false)
    }

    /// Ends a session: removes its subscriptions from the router and marks it ended. The caller
    /// has already taken it out of the session map, or does so here if it is still there.
    pub(crate) fn discard(&self, session: &Arc<Session>) {
        {
            let mut map = self.sessions();
            if map.get(&session.client_id).is_some_and(|s| Arc::ptr_eq(s, session)) {
                map.remove(&session.client_id);
            }
        }
        let subs: Vec<String> = {
            let mut st = session.lock();
            st.ended = true;
            if let Some(a) = st.attached.take() {
                a.kick.notify_one();
            }
            st.queue.clear();
            st.inflight.clear();
            st.subscriptions.drain().map(|(f, _)| f).collect()
        };
        for f in subs {
            if let Ok(p) = topic::parse_filter(&f) {
                self.router.unsubscribe(p.filter, p.share_group, &session.client_id);
            }
        }
    }

    /// Adds a subscription to the router (the session's own map is updated by the caller).
    pub(crate) fn add_route(&self, session: &Arc<Session>, filter: topic::ParsedFilter<'_>, opts: mqtt::SubscriptionOptions, sub_id: Option<u32>) -> bool {
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
}
