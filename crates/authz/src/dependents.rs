//! Which connections' cached decisions depend on which documents: a connection's decision
//! context records the documents it was computed from (its certificate and CA, its thing, the
//! thing's groups, the attachment targets and the policies found), and an applied change of one
//! of them — committed here or on another node — marks exactly those contexts stale. A change of
//! any other thing or policy leaves every other connection's cache warm.
//!
//! A context is computed from state read before it is registered, so a change applied in
//! between would be missed; the last [`RECENT`] changed keys are kept with their sequence, and
//! registering checks them ([`Dependents::watch`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Changed keys remembered for contexts being computed while they changed.
const RECENT: usize = 4096;

/// A document key: `{kind}/{key}` of the store's document.
pub(crate) fn key(kind: &str, key: &str) -> String {
    format!("{kind}/{key}")
}

/// A context's mark: set when a document it depends on changes.
pub(crate) type Token = Arc<AtomicBool>;

#[derive(Default)]
struct Inner {
    /// Sequence of applied change batches.
    seq: u64,
    by_key: HashMap<String, Vec<Weak<AtomicBool>>>,
    /// The most recently changed keys with their batch sequence.
    recent: VecDeque<(u64, String)>,
    /// The highest sequence of a change no longer in `recent`.
    forgotten: u64,
    /// `by_key`'s size after its last sweep of contexts that are gone.
    swept: usize,
}

/// The dependency index.
#[derive(Default)]
pub(crate) struct Dependents {
    inner: Mutex<Inner>,
}

impl Dependents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence to pass to [`Dependents::watch`]: read it before reading the state a
    /// context is computed from.
    pub(crate) fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Registers a context computed from state read after `since` as depending on `keys`; it
    /// is marked stale at once when one of them changed after `since`.
    pub(crate) fn watch(&self, keys: &[String], token: &Token, since: u64) {
        let mut g = self.lock();
        for k in keys {
            let list = g.by_key.entry(k.clone()).or_default();
            // Contexts replaced or closed leave dead entries: drop them as the list doubles.
            if list.len() >= 8 && list.len().is_power_of_two() {
                list.retain(|w| w.strong_count() > 0);
            }
            list.push(Arc::downgrade(token));
        }
        if g.by_key.len() > 2 * g.swept.max(1024) {
            g.by_key.retain(|_, list| {
                list.retain(|w| w.strong_count() > 0);
                !list.is_empty()
            });
            g.swept = g.by_key.len();
        }
        let missed = g.forgotten > since
            || g.recent.iter().rev().take_while(|(s, _)| *s > since).any(|(_, k)| keys.contains(k));
        if missed {
            token.store(true, Ordering::Release);
        }
    }

    /// Marks stale every context depending on one of `keys`.
    pub(crate) fn changed(&self, keys: impl IntoIterator<Item = String>) {
        let mut g = self.lock();
        g.seq += 1;
        let seq = g.seq;
        for k in keys {
            if let Some(list) = g.by_key.remove(&k) {
                mark(list);
            }
            if g.recent.len() == RECENT
                && let Some((s, _)) = g.recent.pop_front()
            {
                g.forgotten = s;
            }
            g.recent.push_back((seq, k));
        }
    }
}

fn mark(list: Vec<Weak<AtomicBool>>) {
    for w in list {
        if let Some(t) = w.upgrade() {
            t.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Arc::new(AtomicBool::new(false))
    }

    #[test]
    fn only_contexts_of_a_changed_key_go_stale() {
        let d = Dependents::default();
        let (a, b) = (token(), token());
        d.watch(&["thing/a".into(), "policy/p".into()], &a, d.seq());
        d.watch(&["thing/b".into(), "policy/p".into()], &b, d.seq());
        d.changed(["thing/a".to_string()]);
        assert!(a.load(Ordering::Acquire) && !b.load(Ordering::Acquire));
        d.changed(["policy/p".to_string()]);
        assert!(b.load(Ordering::Acquire));
    }

    #[test]
    fn a_change_between_reading_and_registering_is_not_missed() {
        let d = Dependents::default();
        let since = d.seq();
        d.changed(["thing/a".to_string()]);
        d.changed(["thing/other".to_string()]);
        let (a, b) = (token(), token());
        d.watch(&["thing/a".into()], &a, since);
        d.watch(&["thing/b".into()], &b, since);
        assert!(a.load(Ordering::Acquire), "the change of thing/a after `since` marks it");
        assert!(!b.load(Ordering::Acquire), "changes of other keys do not");
        // Once more changes happened than are remembered, a late registration is stale.
        for i in 0..RECENT {
            d.changed([format!("thing/x{i}")]);
        }
        let c = token();
        d.watch(&["thing/b".into()], &c, since);
        assert!(c.load(Ordering::Acquire));
    }

    #[test]
    fn keys_of_contexts_that_are_gone_are_swept() {
        let d = Dependents::default();
        let a = token();
        d.watch(&["thing/a".into()], &a, d.seq());
        for i in 0..5000 {
            d.watch(&[format!("thing/t{i}")], &token(), d.seq());
        }
        assert!(d.lock().by_key.len() < 5000, "keys of contexts that are gone are swept");
        d.changed(["thing/a".to_string()]);
        assert!(a.load(Ordering::Acquire), "a live context is kept");
    }
}
