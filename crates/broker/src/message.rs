//! A routed application message, shared by every subscriber it goes to.

use bytes::Bytes;
use mqtt::{MqttStr, Properties, QoS};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::StoredMessage;

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

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
    /// Set by an in-process service answering one client: only that client's session gets
    /// it, and it is never retained.
    pub only_to: Option<Arc<str>>,
    /// Unix time in milliseconds when the message was published.
    pub created_ms: i64,
    /// The stored form, built once for however many sessions store the message.
    stored: OnceLock<Arc<StoredMessage>>,
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
        Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            publisher,
            only_to: None,
            created_ms: unix_ms(),
            stored: OnceLock::new(),
        }
    }

    /// The row the store keeps for this message.
    pub fn to_stored(&self) -> Arc<StoredMessage> {
        self.stored
            .get_or_init(|| {
                let now = Instant::now();
                Arc::new(StoredMessage {
                    topic: self.topic.to_string(),
                    payload: self.payload.to_vec(),
                    qos: self.qos as u8,
                    retain: self.retain,
                    props: if self.properties.is_empty() { Vec::new() } else { self.properties.to_bytes() },
                    expires_at_ms: self.expires_at.map(|e| unix_ms() + e.saturating_duration_since(now).as_millis() as i64),
                    created_ms: self.created_ms,
                    publisher: self.publisher.as_deref().map(str::to_string),
                })
            })
            .clone()
    }

    /// Rebuilds a message read from the store (`None` if its properties do not decode).
    pub fn from_stored(m: &Arc<StoredMessage>, now: Instant) -> Option<Message> {
        let now_ms = unix_ms();
        Some(Message {
            topic: MqttStr::from(m.topic.as_str()),
            payload: Bytes::copy_from_slice(&m.payload),
            qos: QoS::from_u8(m.qos)?,
            retain: m.retain,
            properties: Properties::from_bytes(&m.props).ok()?,
            expires_at: m.expires_at_ms.map(|e| now + Duration::from_millis(e.saturating_sub(now_ms).max(0) as u64)),
            publisher: m.publisher.as_deref().map(Arc::from),
            only_to: None,
            created_ms: m.created_ms,
            stored: OnceLock::from(m.clone()),
        })
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
    /// Position in the session's stored queue; 0 when not stored.
    pub seq: u64,
}
