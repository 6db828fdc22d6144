//! The registry's event sink over the broker: events are queued (bounded) in commit order and
//! published by one task as QoS 1 messages on their `$aws/events/...` topics, the path every
//! message takes, so MQTT subscribers (and later the rules engine) receive them.

use broker::{Broker, Message};
use bytes::Bytes;
use mqtt::{MqttStr, QoS};
use registry::{Event, EventSink};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// Events waiting to be published; beyond this, new events are dropped and counted.
const QUEUE: usize = 10_000;

/// Publishes registry events through the broker.
pub struct BrokerEvents {
    tx: mpsc::Sender<Event>,
    dropped: AtomicU64,
}

impl BrokerEvents {
    /// Starts the publishing task (call inside the Tokio runtime).
    pub fn start(broker: Broker) -> Arc<BrokerEvents> {
        let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                broker.publish(message(e)).await;
            }
        });
        Arc::new(BrokerEvents { tx, dropped: AtomicU64::new(0) })
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn message(e: Event) -> Message {
    let publish = mqtt::Publish { qos: QoS::AtLeastOnce, topic: MqttStr::from(e.topic), payload: Bytes::from(e.payload), ..Default::default() };
    Message::from_publish(publish, None, Instant::now())
}

impl EventSink for BrokerEvents {
    fn publish(&self, event: Event) {
        if let Err(e) = self.tx.try_send(event) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped_total = n, error = %e, "registry event dropped: the event queue is full or closed");
        }
    }
}

impl crate::MetricsSource for BrokerEvents {
    fn render(&self, out: &mut String) {
        out.push_str("# HELP ferrite_registry_events_dropped_total Registry events dropped because the event queue was full.\n");
        out.push_str("# TYPE ferrite_registry_events_dropped_total counter\n");
        out.push_str(&format!("ferrite_registry_events_dropped_total {}\n", self.dropped()));
    }
}
