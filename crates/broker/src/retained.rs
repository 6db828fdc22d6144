//! Retained messages: the last retained message of each topic, handed to new subscribers.
//! Indexed twice: by topic in order (lookups, pagination) and in a trie of topic levels, so a
//! subscription's retained messages are found by walking its filter — an exact filter is one
//! lookup per level, a wildcard walks only the branches it matches — never by scanning all.

use crate::message::Message;
use mqtt::MqttStr;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The retained store (kept in memory, persisted by the broker's store writer).
#[derive(Debug, Default)]
pub struct Retained {
    inner: RwLock<Index>,
}

#[derive(Debug, Default)]
struct Index {
    by_topic: BTreeMap<MqttStr, Arc<Message>>,
    trie: Level,
}

/// One topic level of the trie: the message retained on the topic ending here, and the levels below.
#[derive(Debug, Default)]
struct Level {
    msg: Option<Arc<Message>>,
    children: HashMap<Box<str>, Level>,
}

impl Drop for Level {
    /// Drops the subtree with an explicit stack instead of the recursive default.
    fn drop(&mut self) {
        let mut stack: Vec<Level> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut n) = stack.pop() {
            stack.extend(n.children.drain().map(|(_, c)| c));
        }
    }
}

impl Index {
    fn insert(&mut self, msg: &Arc<Message>) {
        let mut node = &mut self.trie;
        for level in msg.topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        node.msg = Some(msg.clone());
        self.by_topic.insert(msg.topic.clone(), msg.clone());
    }

    fn remove(&mut self, topic: &MqttStr) {
        if self.by_topic.remove(topic).is_none() {
            return;
        }
        let levels: Vec<&str> = topic.split('/').collect();
        let mut node = &mut self.trie;
        for level in &levels {
            match node.children.get_mut(*level) {
                Some(child) => node = child,
                None => return,
            }
        }
        node.msg = None;
        if !node.children.is_empty() {
            return;
        }
        // Prune the branch left empty: cut below the deepest node that keeps something else.
        let mut cut = 0;
        let mut node = &self.trie;
        for (depth, level) in levels.iter().enumerate() {
            if depth > 0 && (node.msg.is_some() || node.children.len() > 1) {
                cut = depth;
            }
            match node.children.get(*level) {
                Some(child) => node = child,
                None => return,
            }
        }
        let mut node = &mut self.trie;
        for level in &levels[..cut] {
            match node.children.get_mut(*level) {
                Some(child) => node = child,
                None => return,
            }
        }
        node.children.remove(levels[cut]);
    }

    /// Messages on topics matching `filter`, walking the trie with an explicit stack.
    fn matching(&self, filter: &str, now: Instant, out: &mut Vec<Arc<Message>>) {
        let mut keep = |m: &Option<Arc<Message>>| {
            if let Some(m) = m
                && !m.expired(now)
            {
                out.push(m.clone());
            }
        };
        // (node, the filter levels not yet matched (None: all matched), at the first level?)
        let mut stack: Vec<(&Level, Option<&str>, bool)> = vec![(&self.trie, Some(filter), true)];
        while let Some((node, rest, first)) = stack.pop() {
            let Some(rest) = rest else {
                keep(&node.msg);
                continue;
            };
            let (level, next) = match rest.split_once('/') {
                Some((l, n)) => (l, Some(n)),
                None => (rest, None),
            };
            // MQTT-4.7.2-1: a first-level wildcard does not match topics starting with `$`.
            let skip = |name: &str| first && name.starts_with('$');
            match level {
                "#" => {
                    // The parent level itself ("a/#" matches "a"), then the whole subtree.
                    if !first {
                        keep(&node.msg);
                    }
                    let mut all: Vec<&Level> = node.children.iter().filter(|(k, _)| !skip(k)).map(|(_, c)| c).collect();
                    while let Some(n) = all.pop() {
                        keep(&n.msg);
                        all.extend(n.children.values());
                    }
                }
                "+" => stack.extend(node.children.iter().filter(|(k, _)| !skip(k)).map(|(_, c)| (c, next, false))),
                _ => {
                    if let Some(c) = node.children.get(level) {
                        stack.push((c, next, false));
                    }
                }
            }
        }
    }
}

impl Retained {
    /// Stores `msg` as the topic's retained message, or clears it when the payload is empty.
    pub fn set(&self, msg: &Arc<Message>) {
        let mut index = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if msg.payload.is_empty() {
            index.remove(&msg.topic);
        } else {
            index.insert(msg);
        }
    }

    /// Unexpired retained messages whose topic matches `filter`, in topic order.
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let mut out = Vec::new();
        self.inner.read().unwrap_or_else(|e| e.into_inner()).matching(filter, now, &mut out);
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// The retained message of one topic.
    pub fn get(&self, topic: &str) -> Option<Arc<Message>> {
        let index = self.inner.read().unwrap_or_else(|e| e.into_inner());
        index.by_topic.get(&MqttStr::from(topic)).cloned()
    }

    /// Unexpired retained messages in topic order, starting after `after` (for pagination).
    pub fn list(&self, after: Option<&str>, limit: usize, now: Instant) -> Vec<Arc<Message>> {
        use std::ops::Bound;
        let index = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(MqttStr::from(a)));
        index.by_topic.range((from, Bound::Unbounded)).map(|(_, m)| m).filter(|m| !m.expired(now)).take(limit).cloned().collect()
    }

    /// How many topics have a retained message.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).by_topic.len()
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        let p = mqtt::Publish { topic: topic.into(), payload: Bytes::from_static(payload), retain: true, ..Default::default() };
        Arc::new(Message::from_publish(p, None, Instant::now()))
    }

    fn topics(r: &Retained, filter: &str) -> Vec<String> {
        r.matching(filter, Instant::now()).iter().map(|m| m.topic.to_string()).collect()
    }

    #[test]
    fn the_trie_agrees_with_the_spec_matcher() {
        let r = Retained::default();
        let all = ["a", "a/b", "a/b/c", "a/c", "b/b", "$SYS/x", "$aws/things/t/shadow", "a//c", "/a"];
        for t in all {
            r.set(&msg(t, b"x"));
        }
        for f in ["#", "+", "a/#", "a/+", "+/b", "+/+/c", "a/b/#", "$SYS/#", "+/#", "$aws/+/t/#", "a/+/c", "/#", "+/a", "x/#", "a/b/c/#"] {
            let mut want: Vec<String> = all.iter().filter(|t| mqtt::topic::matches(f, t)).map(|t| t.to_string()).collect();
            want.sort();
            assert_eq!(topics(&r, f), want, "filter {f}");
        }
    }

    #[test]
    fn clearing_prunes_and_keeps_neighbours() {
        let r = Retained::default();
        r.set(&msg("a/b/c", b"1"));
        r.set(&msg("a", b"2"));
        r.set(&msg("a/b/c", b""));
        assert_eq!(topics(&r, "#"), vec!["a"]);
        assert!(r.inner.read().unwrap().trie.children["a"].children.is_empty());
        r.set(&msg("a", b""));
        assert!(r.is_empty() && r.inner.read().unwrap().trie.children.is_empty());
        assert_eq!(r.list(None, 10, Instant::now()).len(), 0);
    }

    #[test]
    fn list_pages_in_topic_order() {
        let r = Retained::default();
        for t in ["c", "a", "b"] {
            r.set(&msg(t, b"x"));
        }
        let page: Vec<String> = r.list(Some("a"), 1, Instant::now()).iter().map(|m| m.topic.to_string()).collect();
        assert_eq!(page, vec!["b"]);
    }
}
