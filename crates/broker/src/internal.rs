//! In-process clients: Ferrite's own services (shadows, rules, jobs, ...) subscribe and publish
//! on the same topics devices use, through the same router, as the design asks ("one path, one
//! behaviour"). An internal client is a session that no socket owns; its queue is drained by
//! [`InternalClient::recv`].

use crate::message::{Delivery, Message};
use crate::session::{Attachment, Session};
use crate::{Broker, BrokerInner};
use mqtt::topic::{FilterError, parse_filter};
use mqtt::{QoS, SubscriptionOptions};
use std::sync::Arc;
use tokio::sync::Notify;

/// Messages an internal client may have waiting before more are dropped (and counted).
pub const INTERNAL_QUEUE: usize = 100_000;

/// A client living inside Ferrite.
#[derive(Debug)]
pub struct InternalClient {
    broker: Arc<BrokerInner>,
    session: Arc<Session>,
    /// Notified when a message is queued.
    wake: Arc<Notify>,
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
        InternalClient { broker: inner, session, wake }
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

    /// Publishes as this client and waits until the message is stored for every persistent
    /// session it reaches; returns how many sessions it reached.
    pub async fn publish(&self, mut msg: Message) -> usize {
        msg.publisher = Some(self.session.client_id.clone());
        let mut ops = Vec::new();
        let n = self.broker.publish(Arc::new(msg), &mut ops);
        if let Some(done) = self.broker.persist_durable(ops) {
            let _ = done.await;
        }
        n
    }

    /// This client's identifier.
    pub fn client_id(&self) -> &str {
        &self.session.client_id
    }
}

impl Drop for InternalClient {
    fn drop(&mut self) {
        self.broker.discard(&self.session);
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
