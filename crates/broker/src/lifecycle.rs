//! AWS IoT lifecycle events: `$aws/events/presence/connected|disconnected/{clientId}` and
//! `$aws/events/subscriptions/subscribed|unsubscribed/{clientId}`, with AWS's payloads.

use crate::BrokerInner;
use crate::message::{Message, unix_ms};
use bytes::Bytes;
use mqtt::{MqttStr, QoS, ReasonCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Why a connection ended, as AWS names it in `disconnectReason`.
pub fn disconnect_reason(client_initiated: bool, reason: Option<ReasonCode>, lost: bool, taken_over: bool, keep_alive: bool) -> &'static str {
    if client_initiated {
        "CLIENT_INITIATED_DISCONNECT"
    } else if taken_over {
        "DUPLICATE_CLIENTID"
    } else if keep_alive {
        "MQTT_KEEP_ALIVE_TIMEOUT"
    } else if lost {
        "CONNECTION_LOST"
    } else {
        match reason {
            Some(ReasonCode::NOT_AUTHORIZED) => "FORBIDDEN_ACCESS",
            Some(ReasonCode::QUOTA_EXCEEDED | ReasonCode::MESSAGE_RATE_TOO_HIGH) => "THROTTLED",
            Some(ReasonCode::ADMINISTRATIVE_ACTION | ReasonCode::SERVER_SHUTTING_DOWN) => "SERVER_INITIATED_DISCONNECT",
            Some(_) => "CLIENT_ERROR",
            None => "UNKNOWN",
        }
    }
}

/// The fields every lifecycle event of one connection shares (borrowed from the connection,
/// which keeps only the time it connected for them).
#[derive(Debug, Clone, Copy)]
pub struct Presence<'a> {
    pub client_id: &'a str,
    pub principal: &'a str,
    /// The connection's generation (AWS's `versionNumber`).
    pub version: u64,
    pub connected_ms: u64,
}

impl Presence<'_> {
    /// Whether this client gets lifecycle events at all (AWS: not for ids with `#` or `+`).
    pub fn eligible(client_id: &str) -> bool {
        !client_id.contains(['#', '+'])
    }

    fn base(&self, event: &str) -> serde_json::Map<String, Value> {
        let v = json!({
            "clientId": self.client_id,
            "timestamp": unix_ms(),
            "eventType": event,
            "sessionIdentifier": format!("{:032x}", u128::from(self.version) ^ u128::from(self.connected_ms) << 64),
            "principalIdentifier": self.principal,
        });
        match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// The `connected` event.
    pub fn connected(&self, broker: &BrokerInner, ip: &str) {
        let mut m = self.base("connected");
        m.insert("ipAddress".into(), ip.into());
        m.insert("versionNumber".into(), self.version.into());
        publish(broker, format!("$aws/events/presence/connected/{}", self.client_id), Value::Object(m));
    }

    /// The `disconnected` event.
    pub fn disconnected(&self, broker: &BrokerInner, client_initiated: bool, reason: &str) {
        let mut m = self.base("disconnected");
        m.insert("clientInitiatedDisconnect".into(), client_initiated.into());
        m.insert("disconnectReason".into(), reason.into());
        m.insert("versionNumber".into(), self.version.into());
        publish(broker, format!("$aws/events/presence/disconnected/{}", self.client_id), Value::Object(m));
    }

    /// The `subscribed` / `unsubscribed` event for the filters that took effect.
    pub fn subscriptions(&self, broker: &BrokerInner, subscribed: bool, topics: &[String]) {
        if topics.is_empty() {
            return;
        }
        let event = if subscribed { "subscribed" } else { "unsubscribed" };
        let mut m = self.base(event);
        m.insert("topics".into(), topics.iter().map(|t| Value::String(t.clone())).collect());
        publish(broker, format!("$aws/events/subscriptions/{event}/{}", self.client_id), Value::Object(m));
    }
}

fn publish(broker: &BrokerInner, topic: String, payload: Value) {
    let p = mqtt::Publish { qos: QoS::AtLeastOnce, topic: MqttStr::from(topic), payload: Bytes::from(payload.to_string()), ..Default::default() };
    let mut ops = Vec::new();
    broker.publish(Arc::new(Message::from_publish(p, None, Instant::now())), &mut ops);
    broker.persist(ops);
}
