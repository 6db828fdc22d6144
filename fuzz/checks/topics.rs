//! The checks of the `topics` fuzz target, shared with its corpus replay test (`#[path]`-included by
//! both): topic names and filters from arbitrary bytes (cut in two at the first newline,
//! else in halves) through the mqtt topic functions, the reserved-topic table, the subscription
//! router and the retained store; none may panic, and the router and the retained store must
//! agree with `mqtt::topic::matches`.

use broker::Message;
use broker::reserved::{is_reserved, may_publish, may_receive, may_retain, may_subscribe};
use broker::retained::Retained;
use broker::router::{Router, SubEntry};
use broker::session::Session;
use bytes::Bytes;
use mqtt::topic::{has_wildcard, matches, parse_filter, valid_filter, valid_topic_name};
use mqtt::{Protocol, SubscriptionOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;


/// The two strings of an input: split at the first `\n` if there is one, else in halves (at a
/// character boundary), after replacing what is not UTF-8.
fn halves(data: &[u8]) -> [String; 2] {
    let text = String::from_utf8_lossy(data);
    if let Some((a, b)) = text.split_once('\n') {
        return [a.to_owned(), b.to_owned()];
    }
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid += 1;
    }
    let (a, b) = text.split_at(mid);
    [a.to_owned(), b.to_owned()]
}

pub fn check(data: &[u8]) {
    let strings = halves(data);
    for s in &strings {
        check_one(s);
    }
    let [a, b] = &strings;
    let _ = (matches(a, b), matches(b, a));
    check_router(&strings);
    check_retained(&strings);
}

/// The topic functions and the reserved-topic table on one string, with what must hold between them.
fn check_one(s: &str) {
    let name = valid_topic_name(s);
    let filter = valid_filter(s);
    let parsed = parse_filter(s);
    let _ = has_wildcard(s);
    if name {
        assert!(filter, "topic name {s:?} is not a valid filter");
        assert!(!has_wildcard(s), "topic name {s:?} has a wildcard");
        assert!(matches(s, s), "topic name {s:?} does not match itself");
    }
    if let Ok(p) = &parsed {
        assert!(valid_filter(p.filter), "parse_filter({s:?}) gave the invalid filter {:?}", p.filter);
        match p.share_group {
            None => assert_eq!(p.filter, s, "a plain filter is itself"),
            Some(g) => assert!(!g.is_empty() && !g.contains(['+', '#', '/']), "share group {g:?} of {s:?}"),
        }
    }
    if !s.starts_with("$share/") && s != "$share" {
        assert_eq!(parsed.is_ok(), filter, "parse_filter and valid_filter disagree on {s:?}");
    }
    let (publish, subscribe, receive, retain) = (may_publish(s), may_subscribe(s), may_receive(s), may_retain(s));
    assert_eq!(retain, !s.starts_with('$'), "may_retain({s:?})");
    if !is_reserved(s) {
        assert!(publish && subscribe && receive, "{s:?} is not reserved but refused");
    }
    if name {
        // A topic name is a filter that matches only itself.
        assert_eq!(subscribe, receive, "may_subscribe and may_receive disagree on the topic name {s:?}");
    }
}

/// One subscription of the model: (client id, filter, share group).
type Sub = (String, String, Option<String>);

/// Subscribes each valid filter for its own session and once more for a session "x" that holds
/// both; every topic name must then reach exactly the sessions the model says, and after the
/// unsubscribes nothing.
fn check_router(strings: &[String; 2]) {
    let router = Router::default();
    let sessions: BTreeMap<&str, Arc<Session>> =
        ["s0", "s1", "x"].into_iter().map(|id| (id, Arc::new(Session::new(id.into(), Protocol::V5)))).collect();
    let entry = |id: &str| SubEntry { session: sessions[id].clone(), opts: SubscriptionOptions::default(), sub_id: None };
    let mut model: BTreeSet<Sub> = BTreeSet::new();
    for (i, s) in strings.iter().enumerate() {
        let Ok(p) = parse_filter(s) else { continue };
        let own = ["s0", "s1"][i];
        for id in [own, "x"] {
            let sub = (id.to_owned(), p.filter.to_owned(), p.share_group.map(str::to_owned));
            let replaced = router.subscribe(p.filter, p.share_group, entry(id));
            assert_eq!(replaced, !model.insert(sub), "subscribe({s:?}) for {id} says replaced={replaced}");
        }
    }
    let topics: Vec<&str> = strings.iter().map(String::as_str).filter(|t| valid_topic_name(t)).collect();
    let agree = |model: &BTreeSet<Sub>| {
        for t in &topics {
            let targets = router.route(t, None);
            let plain: BTreeSet<&str> =
                model.iter().filter(|(_, f, g)| g.is_none() && matches(f, t)).map(|(id, _, _)| id.as_str()).collect();
            let mut groups: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
            for (id, f, g) in model {
                if let Some(g) = g
                    && matches(f, t)
                {
                    groups.entry((g.as_str(), f.as_str())).or_default().insert(id.as_str());
                }
            }
            let got: Vec<&str> = targets.iter().map(|t| &*t.session.client_id).collect();
            assert_eq!(got.len(), plain.len() + groups.len(), "route({t:?}) gave {got:?}; subscriptions {model:?}");
            for id in &plain {
                assert!(got.contains(id), "route({t:?}) misses {id}: {got:?}; subscriptions {model:?}");
            }
            for id in &got {
                assert!(
                    plain.contains(id) || groups.values().any(|m| m.contains(id)),
                    "route({t:?}) gave {id}, which no matching subscription holds; subscriptions {model:?}"
                );
            }
        }
    };
    agree(&model);
    // Unsubscribing s0 leaves the rest; a second unsubscribe finds nothing.
    if let Ok(p) = parse_filter(&strings[0]) {
        assert!(router.unsubscribe(p.filter, p.share_group, "s0"), "unsubscribe({:?}) for s0 found nothing", strings[0]);
        assert!(!router.unsubscribe(p.filter, p.share_group, "s0"), "second unsubscribe({:?}) for s0", strings[0]);
        model.retain(|(id, _, _)| id != "s0");
        agree(&model);
    }
    // Unsubscribing what was never subscribed (the raw strings, any group) finds nothing.
    for s in strings {
        if !model.iter().any(|(_, f, g)| f == s && g.is_none()) {
            assert!(!router.unsubscribe(s, None, "x"), "unsubscribe({s:?}) of nothing");
        }
    }
    for (id, f, g) in std::mem::take(&mut model) {
        assert!(router.unsubscribe(&f, g.as_deref(), &id), "unsubscribe({f:?}, {g:?}) for {id}");
    }
    agree(&model);
    for t in &topics {
        assert!(router.route(t, None).is_empty(), "route({t:?}) after every unsubscribe");
    }
    // Whatever the strings, routing them does not panic.
    for s in strings {
        let _ = router.route(s, Some("x"));
    }
}

fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
    let p = mqtt::Publish { topic: topic.into(), payload: Bytes::from_static(payload), retain: true, ..Default::default() };
    Arc::new(Message::from_publish(p, None, Instant::now()))
}

/// Retains a message on each topic name among the strings, then checks that every valid filter
/// finds exactly the retained topics it matches, before and after clearing the first.
fn check_retained(strings: &[String; 2]) {
    let retained = Retained::default();
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    for t in strings.iter().filter(|t| valid_topic_name(t)) {
        retained.set(&message(t, b"x"));
        kept.insert(t);
    }
    let agree = |kept: &BTreeSet<&str>| {
        assert_eq!(retained.len(), kept.len());
        for t in kept {
            assert!(retained.get(t).is_some(), "{t:?} is not retained");
        }
        for s in strings {
            // Whatever the string, looking it up does not panic.
            let _ = retained.matching(s, Instant::now());
            if let Ok(p) = parse_filter(s) {
                let found: Vec<String> = retained.matching(p.filter, Instant::now()).iter().map(|m| m.topic.to_string()).collect();
                let want: Vec<String> = kept.iter().filter(|t| matches(p.filter, t)).map(|t| t.to_string()).collect();
                assert_eq!(found, want, "retained messages matching {:?}", p.filter);
            }
        }
    };
    agree(&kept);
    if valid_topic_name(&strings[0]) {
        retained.set(&message(&strings[0], b""));
        kept.remove(strings[0].as_str());
        agree(&kept);
    }
    let _ = retained.list(None, 10, Instant::now());
}
