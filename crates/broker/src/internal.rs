//! In-process clients: Ferrite's own services (shadows, rules, jobs, ...) subscribe and publish
//! on the same topics devices use, through the same router, as the design asks ("one path, one
//! behaviour"). An internal client is a session that no socket owns; its queue is drained by
//! [`InternalClient::recv`].
//!
//! A *durable* client ([`Broker::durable_client`]) is a persistent session like a device's
//! with a clean-start-false connection: a QoS 1 request routed to it is stored before the
//! device's PUBACK, stays stored until the service acknowledges it ([`InternalClient::ack`],
//! usually together with its replies in [`InternalClient::publish_all`]), and is delivered again
//! after a restart. Its session never expires. Client ids under [`INTERNAL_PREFIX`] are
//! Ferrite's own: a network client cannot take one.

use crate::message::{Delivery, Message};
use crate::session::{Attachment, Session};
use crate::{Broker, BrokerInner};
use mqtt::topic::{FilterError, parse_filter};
use mqtt::{QoS, SubscriptionOptions};
use std::sync::Arc;
use store::Op;
use tokio::sync::Notify;

/// Messages an internal client may have waiting before more are dropped (and counted).
pub const INTERNAL_QUEUE: usize = 100_000;

/// The client ids of Ferrite's own in-process clients (refused at CONNECT).
pub const INTERNAL_PREFIX: &str = "$ferrite/";

/// The session expiry of a durable client: MQTT's "never".
const NEVER: u32 = u32::MAX;

/// A client living inside Ferrite.
#[derive(Debug)]
pub struct InternalClient {
    broker: Arc<BrokerInner>,
    session: Arc<Session>,
    /// Notified when a message is queued.
    wake: Arc<Notify>,
    /// A persistent session: kept when the client is dropped.
    durable: bool,
}

impl Broker {
    /// Creates (or replaces) the in-process client `client_id`. Its session is never persisted.
    pub fn internal_client(&self, client_id: &str) -> InternalClient {
        let inner = self.inner().clone();
        let id: Arc<str> = client_id.into();
        let (session, _) = inner.open_session(&id, true, mqtt::Protocol::V5, None);
        let wake = Arc::new(Notify::new());
        {
            let mut st = session.lock();
            st.attached = Some(Attachment::new(inner.next_generation(), wake.clone()));
            st.max_queued = std::num::NonZeroU32::new(INTERNAL_QUEUE as u32);
        }
        InternalClient { broker: inner, session, wake, durable: false }
    }

    /// Opens (or resumes, with what it had queued) the durable in-process client `client_id`.
    /// Stored queue positions continue after `min_seq` at least (a service that records which
    /// requests it applied passes the highest it recorded, so that positions never repeat).
    /// Without a store it is an ordinary internal client.
    pub fn durable_client(&self, client_id: &str, min_seq: u64) -> InternalClient {
        let inner = self.inner().clone();
        let id: Arc<str> = client_id.into();
        let (session, _) = inner.open_session(&id, false, mqtt::Protocol::V5, None);
        let wake = Arc::new(Notify::new());
        let durable = inner.has_store();
        {
            let mut st = session.lock();
            let generation = inner.next_generation();
            st.attached = Some(Attachment::new(generation, wake.clone()));
            st.max_queued = std::num::NonZeroU32::new(INTERNAL_QUEUE as u32);
            st.generation = generation;
            if durable {
                st.persistent = true;
                st.expiry_secs = NEVER;
                st.next_seq = st.next_seq.max(min_seq.saturating_add(1));
            }
        }
        if durable {
            inner.persist(vec![Op::PutSession { client_id: client_id.to_string(), protocol: 5, expiry_secs: NEVER, principal: None }]);
        }
        InternalClient { broker: inner, session, wake, durable }
    }
}

impl InternalClient {
    /// Subscribes to a filter (`$share/...` allowed). Messages this client publishes itself are
    /// not delivered back to it (No Local).
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), FilterError> {
        let parsed = parse_filter(filter)?;
        let opts = SubscriptionOptions { qos, no_local: parsed.share_group.is_none(), ..Default::default() };
        self.session.lock().subscriptions.insert(filter.to_string(), (opts, None));
        self.broker.add_route(&self.session, parsed, opts, None);
        if self.durable {
            let sub = store::SubscriptionRow { filter: filter.to_string(), options: crate::session::options_to_byte(opts), sub_id: None };
            self.broker.persist(vec![Op::PutSubscription { client_id: self.session.client_id.to_string(), sub }]);
        }
        Ok(())
    }

    /// Lets this client receive Basic Ingest messages (`$aws/rules/...`) its subscriptions
    /// match; no other session ever receives them.
    pub fn receive_basic_ingest(&self) {
        self.session.lock().basic_ingest = true;
    }

    /// The next message delivered to this client.
    pub async fn recv(&self) -> Delivery {
        loop {
            if let Some(d) = self.session.lock().queue_mut().pop_front() {
                return d;
            }
            self.wake.notified().await;
        }
    }

    /// Up to `max` messages delivered to this client (at least one; waits for it).
    pub async fn recv_many(&self, max: usize) -> Vec<Delivery> {
        loop {
            {
                let mut st = self.session.lock();
                // Taking messages: a publisher meeting a full queue waits for room, not drops.
                st.drained_at = crate::session::ticks_ms();
                let q = st.queue_mut();
                if !q.is_empty() {
                    let n = q.len().min(max.max(1));
                    let taken: Vec<Delivery> = q.drain(..n).collect();
                    let bound = st.max_queued.map_or(self.broker.config.max_queued_messages, |m| m.get() as usize);
                    let room = st.pressure && st.queue().len() <= bound / 2;
                    if room {
                        st.pressure = false;
                        drop(st);
                        self.broker.room.notify_waiters();
                    }
                    return taken;
                }
            }
            self.wake.notified().await;
        }
    }

    /// Publishes as this client and waits until the message is stored for every persistent
    /// session it reaches; returns how many sessions it reached.
    pub async fn publish(&self, msg: Message) -> usize {
        self.publish_all(vec![Reply::all(msg)], &[]).await
    }

    /// Publishes messages as this client and acknowledges deliveries, in one store commit
    /// (the replies and the acknowledgements of the requests they answer are durable together),
    /// and waits for it; returns how many sessions the messages reached. False from the commit
    /// is logged: the acknowledged requests are delivered again after a restart.
    pub async fn publish_all(&self, replies: Vec<Reply>, acks: &[Delivery]) -> usize {
        let mut ops = Vec::new();
        let mut n = 0;
        for r in replies {
            let mut msg = r.msg;
            msg.publisher = Some(self.session.client_id.clone());
            msg.only_to = r.to;
            n += self.broker.publish(Arc::new(msg), &mut ops);
        }
        ops.extend(acks.iter().filter_map(|d| self.ack_op(d)));
        if let Some(done) = self.broker.persist_durable(ops)
            && !matches!(done.await, Ok(true))
        {
            tracing::error!(client_id = %self.session.client_id, "replies and acknowledgements were not stored");
        }
        n
    }

    /// Acknowledges a delivery without publishing anything (it is not delivered again).
    pub fn ack(&self, d: &Delivery) {
        if let Some(op) = self.ack_op(d) {
            self.broker.persist(vec![op]);
        }
    }

    fn ack_op(&self, d: &Delivery) -> Option<Op> {
        (self.durable && d.seq != 0).then(|| Op::DeleteMessage { client_id: self.session.client_id.to_string(), seq: d.seq })
    }

    /// This client's identifier.
    pub fn client_id(&self) -> &str {
        &self.session.client_id
    }
}

/// A message an internal client publishes, to every matching subscription or only to one
/// client's.
#[derive(Debug)]
pub struct Reply {
    pub msg: Message,
    /// Only the session of this client id receives it (when it subscribed to the topic).
    pub to: Option<Arc<str>>,
}

impl Reply {
    /// To every subscriber of its topic.
    pub fn all(msg: Message) -> Reply {
        Reply { msg, to: None }
    }

    /// Only to `client_id`'s session (fleet provisioning answers on topics that every device
    /// of one claim certificate subscribes to).
    pub fn only_to(msg: Message, client_id: Arc<str>) -> Reply {
        Reply { msg, to: Some(client_id) }
    }
}

impl Drop for InternalClient {
    fn drop(&mut self) {
        if self.durable {
            // Kept, with what it has queued, for the next start (unless a newer client has it).
            let mut st = self.session.lock();
            if st.attached.as_ref().is_some_and(|a| Arc::ptr_eq(&a.wake, &self.wake)) {
                st.attached = None;
            }
        } else {
            self.broker.discard(&self.session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Instant;

    fn msg(topic: &str, payload: &'static [u8]) -> Message {
        let p = mqtt::Publish { topic: topic.into(), payload: Bytes::from_static(payload), qos: QoS::AtLeastOnce, ..Default::default() };
        Message::from_publish(p, None, Instant::now())
    }

    #[tokio::test]
    async fn internal_clients_talk_through_the_router() {
        let broker = Broker::new(Default::default());
        let service = broker.internal_client("svc");
        service.subscribe("$aws/things/+/shadow/update", QoS::AtLeastOnce).unwrap();
        let device = broker.internal_client("device");
        device.subscribe("$aws/things/t1/shadow/update/#", QoS::AtLeastOnce).unwrap();
        assert_eq!(device.publish(msg("$aws/things/t1/shadow/update", b"req")).await, 1);
        let got = service.recv().await;
        assert_eq!(&*got.msg.topic, "$aws/things/t1/shadow/update");
        assert_eq!(got.msg.publisher.as_deref(), Some("device"));
        service.publish(msg("$aws/things/t1/shadow/update/accepted", b"ok")).await;
        assert_eq!(&device.recv().await.msg.payload[..], b"ok");
        // No Local: the service does not hear itself.
        service.subscribe("echo", QoS::AtMostOnce).unwrap();
        assert_eq!(service.publish(msg("echo", b"x")).await, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_durable_client_keeps_requests_until_acknowledged_across_restarts() {
        let dir = std::env::temp_dir().join(format!("ferrite-durable-client-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broker.db");
        let open = || Broker::open(Default::default(), &path, store::SyncMode::Off).unwrap().0;
        let (seq_a, seq_b) = {
            let broker = open();
            let svc = broker.durable_client("$ferrite/svc", 41);
            svc.subscribe("req/+", QoS::AtLeastOnce).unwrap();
            let device = broker.internal_client("device");
            device.subscribe("req/+/reply", QoS::AtLeastOnce).unwrap();
            device.publish(msg("req/a", b"1")).await;
            device.publish(msg("req/b", b"2")).await;
            let got = svc.recv_many(10).await;
            assert_eq!(got.iter().map(|d| &*d.msg.topic).collect::<Vec<_>>(), ["req/a", "req/b"]);
            assert!(got[0].seq > 41, "positions continue after min_seq");
            // Only the first is answered (and so acknowledged) before the "crash".
            let reply = Reply::only_to(msg("req/a/reply", b"ok"), "device".into());
            assert_eq!(svc.publish_all(vec![reply], &got[..1]).await, 1);
            assert_eq!(&device.recv().await.msg.payload[..], b"ok");
            (got[0].seq, got[1].seq)
        };
        let broker = open();
        let svc = broker.durable_client("$ferrite/svc", 0);
        let again = svc.recv_many(10).await;
        assert_eq!(again.iter().map(|d| (&*d.msg.topic, d.seq)).collect::<Vec<_>>(), [("req/b", seq_b)], "only the unacknowledged request ({seq_a} was)");
        assert_eq!(again[0].msg.publisher.as_deref(), Some("device"), "a restored request still names its sender");
        // Still subscribed after the restart; new positions follow the restored ones.
        let device = broker.internal_client("device2");
        device.publish(msg("req/c", b"3")).await;
        let next = svc.recv_many(10).await;
        assert!(next[0].seq > seq_b);
        svc.publish_all(Vec::new(), &[again[0].clone(), next[0].clone()]).await;
        drop((svc, device, broker));
        let broker = open();
        let svc = broker.durable_client("$ferrite/svc", 0);
        assert!(svc.session.lock().queue().is_empty(), "every request was acknowledged");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_reply_to_one_client_reaches_only_it_and_is_not_retained() {
        let broker = Broker::new(Default::default());
        let svc = broker.internal_client("$ferrite/svc");
        let (a, b) = (broker.internal_client("a"), broker.internal_client("b"));
        for c in [&a, &b] {
            c.subscribe("shared/reply", QoS::AtLeastOnce).unwrap();
        }
        let mut m = msg("shared/reply", b"for a");
        m.retain = true;
        assert_eq!(svc.publish_all(vec![Reply::only_to(m, "a".into())], &[]).await, 1);
        assert_eq!(&a.recv().await.msg.payload[..], b"for a");
        assert!(b.session.lock().queue().is_empty());
        assert!(broker.inner().retained.get("shared/reply").is_none());
        // In a shared group too: the reply goes to that member, whichever is next in turn.
        for c in [&a, &b] {
            c.subscribe("$share/g/group/reply", QoS::AtLeastOnce).unwrap();
        }
        for _ in 0..3 {
            assert_eq!(svc.publish_all(vec![Reply::only_to(msg("group/reply", b"to b"), "b".into())], &[]).await, 1);
            assert_eq!(&b.recv().await.msg.payload[..], b"to b");
        }
        assert!(a.session.lock().queue().is_empty());
    }

    #[tokio::test]
    async fn basic_ingest_reaches_only_flagged_sessions_and_is_never_retained() {
        let broker = Broker::new(Default::default());
        let rule = broker.internal_client("rule");
        rule.subscribe("$aws/rules/r1/#", QoS::AtLeastOnce).unwrap();
        rule.receive_basic_ingest();
        let snoop = broker.internal_client("snoop");
        snoop.subscribe("$aws/rules/r1/#", QoS::AtLeastOnce).unwrap();
        let device = broker.internal_client("device");
        let mut m = msg("$aws/rules/r1/a/b", b"x");
        m.retain = true;
        assert_eq!(device.publish(m).await, 1);
        assert_eq!(&*rule.recv().await.msg.topic, "$aws/rules/r1/a/b");
        assert!(snoop.session.lock().queue().is_empty());
        assert!(broker.inner().retained.get("$aws/rules/r1/a/b").is_none());
    }
}
