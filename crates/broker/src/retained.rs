//! Retained messages: the last retained message of each topic, handed to new subscribers.

use crate::message::Message;
use mqtt::MqttStr;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The retained store (in memory; persistence arrives with the durability work).
#[derive(Debug, Default)]
pub struct Retained {
    map: RwLock<HashMap<MqttStr, Arc<Message>>>,
}

impl Retained {
    /// Stores `msg` as the topic's retained message, or clears it when the payload is empty.
    pub fn set(&self, msg: &Arc<Message>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if msg.payload.is_empty() {
            map.remove(&msg.topic);
        } else {
            map.insert(msg.topic.clone(), msg.clone());
        }
    }

    /// Unexpired retained messages whose topic matches `filter`.
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Arc<Message>> =
            map.values().filter(|m| !m.expired(now) && mqtt::topic::matches(filter, &m.topic)).cloned().collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// The retained message of one topic.
    pub fn get(&self, topic: &str) -> Option<Arc<Message>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&MqttStr::from(topic)).cloned()
    }

    /// Unexpired retained messages in topic order, starting after `after` (for pagination).
    pub fn list(&self, after: Option<&str>, limit: usize, now: Instant) -> Vec<Arc<Message>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<&Arc<Message>> = map.values().filter(|m| !m.expired(now) && after.is_none_or(|a| &*m.topic > a)).collect();
        all.sort_by(|a, b| a.topic.cmp(&b.topic));
        all.into_iter().take(limit).cloned().collect()
    }

    /// How many topics have a retained message.
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
