//! The subscription trie: topic filters (plain and shared) → sessions, and matching of a
//! published topic against it.

use crate::session::Session;
use mqtt::{QoS, SubscriptionOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// One subscription held in the trie.
#[derive(Debug, Clone)]
pub struct SubEntry {
    pub session: Arc<Session>,
    pub opts: SubscriptionOptions,
    pub sub_id: Option<u32>,
}

#[derive(Debug, Default)]
struct SharedGroup {
    members: Vec<SubEntry>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subs: HashMap<Arc<str>, SubEntry>,
    shared: HashMap<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty() && self.shared.is_empty()
    }
}

/// Where one published message goes: a session, the QoS granted, and how to send it.
#[derive(Debug)]
pub struct Target {
    pub session: Arc<Session>,
    pub granted: QoS,
    pub retain_as_published: bool,
    pub sub_ids: Vec<u32>,
}

/// The subscription trie behind a read-write lock: publishes read, subscribes write.
#[derive(Debug, Default)]
pub struct Router {
    root: RwLock<Node>,
}

impl Router {
    /// Adds or replaces a subscription; returns true when it replaced an existing one.
    pub fn subscribe(&self, filter: &str, group: Option<&str>, entry: SubEntry) -> bool {
        let mut root = self.root.write().unwrap_or_else(|e| e.into_inner());
        let mut node = &mut *root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        match group {
            None => node.subs.insert(entry.session.client_id.clone(), entry).is_some(),
            Some(g) => {
                let group = node.shared.entry(g.into()).or_default();
                let id = &entry.session.client_id;
                if let Some(m) = group.members.iter_mut().find(|m| &m.session.client_id == id) {
                    *m = entry;
                    true
                } else {
                    group.members.push(entry);
                    false
                }
            }
        }
    }

    /// Removes a client's subscription; returns true when one existed.
    pub fn unsubscribe(&self, filter: &str, group: Option<&str>, client_id: &str) -> bool {
        let mut root = self.root.write().unwrap_or_else(|e| e.into_inner());
        let levels: Vec<&str> = filter.split('/').collect();
        remove(&mut root, &levels, group, client_id)
    }

    /// The sessions a message on `topic` goes to. Plain subscriptions of one session are merged
    /// into one target (highest QoS, all subscription ids); each shared group picks one member,
    /// preferring connected sessions, round robin.
    pub fn route(&self, topic: &str, publisher: Option<&str>) -> Vec<Target> {
        self.route_to(topic, publisher, None)
    }

    /// [`Router::route`], only to the session of client `only` when given (its own
    /// subscriptions, and a shared group's delivery goes to it when it is a member).
    pub fn route_to(&self, topic: &str, publisher: Option<&str>, only: Option<&str>) -> Vec<Target> {
        let root = self.root.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::new();
        let mut shared = Vec::new();
        collect(&root, topic, &mut found, &mut shared);
        let mut targets: Vec<Target> = Vec::with_capacity(found.len() + shared.len());
        found.retain(|e| !(e.opts.no_local && publisher == Some(&*e.session.client_id)));
        if let Some(only) = only {
            found.retain(|e| *e.session.client_id == *only);
        }
        if found.len() > 1 {
            found.sort_unstable_by_key(|e| Arc::as_ptr(&e.session));
        }
        for e in found {
            match targets.last_mut() {
                Some(t) if Arc::ptr_eq(&t.session, &e.session) => {
                    t.granted = t.granted.max(e.opts.qos);
                    t.retain_as_published |= e.opts.retain_as_published;
                    t.sub_ids.extend(e.sub_id);
                }
                _ => targets.push(Target {
                    session: e.session.clone(),
                    granted: e.opts.qos,
                    retain_as_published: e.opts.retain_as_published,
                    sub_ids: e.sub_id.into_iter().collect(),
                }),
            }
        }
        for g in shared {
            let chosen = match only {
                Some(only) => g.members.iter().find(|e| *e.session.client_id == *only),
                None => pick(g),
            };
            if let Some(e) = chosen {
                targets.push(Target {
                    session: e.session.clone(),
                    granted: e.opts.qos,
                    retain_as_published: e.opts.retain_as_published,
                    sub_ids: e.sub_id.into_iter().collect(),
                });
            }
        }
        targets
    }
}

fn pick(g: &SharedGroup) -> Option<&SubEntry> {
    let n = g.members.len();
    if n == 0 {
        return None;
    }
    let start = g.next.fetch_add(1, Ordering::Relaxed);
    (0..n)
        .map(|i| &g.members[(start + i) % n])
        .find(|m| m.session.is_connected())
        .or_else(|| g.members.get(start % n))
}

/// Walks the trie along the topic's levels with an explicit stack (no recursion: a deep topic
/// or trie cannot exhaust a worker's stack).
fn collect<'a>(root: &'a Node, topic: &str, found: &mut Vec<&'a SubEntry>, shared: &mut Vec<&'a SharedGroup>) {
    let dollar = topic.starts_with('$');
    // (node, the topic levels not yet matched, `None` past the last level; at the first level?)
    let mut stack: Vec<(&'a Node, Option<&str>, bool)> = vec![(root, Some(topic), true)];
    while let Some((node, rest, first)) = stack.pop() {
        // MQTT: a filter starting with a wildcard does not match a topic starting with `$`.
        let wild_ok = !(first && dollar);
        if wild_ok && let Some(h) = node.children.get("#") {
            found.extend(h.subs.values());
            shared.extend(h.shared.values());
        }
        let Some(rest) = rest else {
            found.extend(node.subs.values());
            shared.extend(node.shared.values());
            continue;
        };
        let (level, next) = match rest.split_once('/') {
            Some((l, n)) => (l, Some(n)),
            None => (rest, None),
        };
        if wild_ok && let Some(p) = node.children.get("+") {
            stack.push((p, next, false));
        }
        if let Some(c) = node.children.get(level) {
            stack.push((c, next, false));
        }
    }
}

/// Removes a subscription at the end of `levels`, then the branch it leaves empty: two walks
/// down the path, no recursion.
fn remove(root: &mut Node, levels: &[&str], group: Option<&str>, client_id: &str) -> bool {
    let mut node = &mut *root;
    for level in levels {
        match node.children.get_mut(*level) {
            Some(child) => node = child,
            None => return false,
        }
    }
    let removed = match group {
        None => node.subs.remove(client_id).is_some(),
        Some(g) => {
            let Some(grp) = node.shared.get_mut(g) else { return false };
            let before = grp.members.len();
            grp.members.retain(|m| &*m.session.client_id != client_id);
            let removed = grp.members.len() != before;
            if grp.members.is_empty() {
                node.shared.remove(g);
            }
            removed
        }
    };
    if !node.is_empty() || levels.is_empty() {
        return removed;
    }
    // The highest node on the path below which nothing but the path is left: cut there.
    let mut cut = 0;
    let mut node = &*root;
    for (depth, level) in levels.iter().enumerate() {
        if depth > 0 && (!node.subs.is_empty() || !node.shared.is_empty() || node.children.len() > 1) {
            cut = depth;
        }
        match node.children.get(*level) {
            Some(child) => node = child,
            None => return removed,
        }
    }
    let mut node = &mut *root;
    for level in &levels[..cut] {
        match node.children.get_mut(*level) {
            Some(child) => node = child,
            None => return removed,
        }
    }
    node.children.remove(levels[cut]);
    removed
}

impl Drop for Node {
    /// Drops the subtree with an explicit stack instead of the recursive default.
    fn drop(&mut self) {
        let mut stack: Vec<Node> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut n) = stack.pop() {
            stack.extend(n.children.drain().map(|(_, c)| c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt::Protocol;

    fn entry(id: &str, qos: QoS, sub_id: Option<u32>) -> SubEntry {
        SubEntry {
            session: Arc::new(Session::new(id.into(), Protocol::V5)),
            opts: SubscriptionOptions { qos, ..Default::default() },
            sub_id,
        }
    }

    #[test]
    fn overlapping_subscriptions_merge_per_session() {
        let r = Router::default();
        let a = entry("a", QoS::AtMostOnce, Some(1));
        r.subscribe("x/+", None, a.clone());
        r.subscribe("x/#", None, SubEntry { opts: SubscriptionOptions { qos: QoS::ExactlyOnce, ..a.opts }, sub_id: Some(2), ..a });
        r.subscribe("x/y", None, entry("b", QoS::AtLeastOnce, None));
        let mut t = r.route("x/y", None);
        t.sort_by(|a, b| a.session.client_id.cmp(&b.session.client_id));
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].granted, QoS::ExactlyOnce);
        let mut ids = t[0].sub_ids.clone();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(t[1].granted, QoS::AtLeastOnce);
    }

    #[test]
    fn dollar_topics_skip_first_level_wildcards_and_unsubscribe_prunes() {
        let r = Router::default();
        r.subscribe("#", None, entry("a", QoS::AtMostOnce, None));
        r.subscribe("$SYS/#", None, entry("b", QoS::AtMostOnce, None));
        let t = r.route("$SYS/x", None);
        assert_eq!(t.len(), 1);
        assert_eq!(&*t[0].session.client_id, "b");
        assert!(r.unsubscribe("$SYS/#", None, "b"));
        assert!(!r.unsubscribe("$SYS/#", None, "b"));
        assert!(r.route("$SYS/x", None).is_empty());
    }

    #[test]
    fn shared_group_delivers_to_one_member() {
        let r = Router::default();
        r.subscribe("s/+", Some("g"), entry("a", QoS::AtMostOnce, None));
        r.subscribe("s/+", Some("g"), entry("b", QoS::AtMostOnce, None));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let t = r.route("s/1", None);
            assert_eq!(t.len(), 1);
            seen.push(t[0].session.client_id.to_string());
        }
        assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()));
    }

    #[test]
    fn unsubscribe_prunes_only_the_empty_branch() {
        let r = Router::default();
        r.subscribe("a/b/c/d", None, entry("x", QoS::AtMostOnce, None));
        r.subscribe("a/b", None, entry("y", QoS::AtMostOnce, None));
        r.subscribe("a/b/e", None, entry("z", QoS::AtMostOnce, None));
        assert!(r.unsubscribe("a/b/c/d", None, "x"));
        assert_eq!(r.route("a/b", None).len(), 1);
        assert_eq!(r.route("a/b/e", None).len(), 1);
        assert!(r.route("a/b/c/d", None).is_empty());
        let root = r.root.read().unwrap();
        let b = &root.children["a"].children["b"];
        assert!(!b.children.contains_key("c"), "the emptied branch is pruned");
        assert!(b.children.contains_key("e"));
        drop(root);
        assert!(r.unsubscribe("a/b/e", None, "z") && r.unsubscribe("a/b", None, "y"));
        assert!(r.root.read().unwrap().is_empty());
    }

    #[test]
    fn a_very_deep_filter_routes_unsubscribes_and_drops_without_recursion() {
        // Far deeper than any worker stack could recurse; run on a small stack to make sure.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let r = Router::default();
                let deep = format!("{}#", "+/".repeat(200_000));
                r.subscribe(&deep, None, entry("deep", QoS::AtMostOnce, None));
                let topic = "x/".repeat(200_001);
                assert_eq!(r.route(topic.trim_end_matches('/'), None).len(), 1);
                assert!(r.unsubscribe(&deep, None, "deep"));
                r.subscribe(&deep, None, entry("deep", QoS::AtMostOnce, None));
                drop(r);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
