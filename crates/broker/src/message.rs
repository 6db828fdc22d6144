//! A routed application message, shared by every subscriber it goes to.

use bytes::Bytes;
use mqtt::{MqttStr, Properties, QoS};
use std::sync::Arc;
use std::time::Instant;

/// One published message. Built once per PUBLISH and shared (`Arc`) by all deliveries.
#[derive(Debug)]
pub struct Message {
    pub topic: MqttStr,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Forwarded properties only: payload format, content type, response topic, correlation
    /// data, user properties. Topic alias, subscription ids and expiry are set per delivery.
    pub properties: Properties,
    /// When the Message Expiry Interval runs out.
    pub expires_at: Option<Instant>,
    /// Client identifier of the publisher, for No Local.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    /// Builds a message from a received PUBLISH (topic already resolved from any alias).
    pub fn from_publish(p: mqtt::Publish, publisher: Option<Arc<str>>, now: Instant) -> Message {
        let mut properties = p.properties;
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|s| now + std::time::Duration::from_secs(s as u64));
        properties.topic_alias = None;
        properties.subscription_identifiers.clear();
        Message { topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, properties, expires_at, publisher }
    }

    /// True once the message expiry interval has passed.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Seconds of expiry left, rounded up, to forward as Message Expiry Interval.
    pub fn remaining_expiry_secs(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|e| {
            let d = e.saturating_duration_since(now);
            (d.as_secs() + u64::from(d.subsec_nanos() > 0)).min(u32::MAX as u64) as u32
        })
    }
}

/// One message on its way to one session: the QoS and flags it is sent with.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
}
