//! A bounded cache of documents read on demand, kept coherent with a replica's change log.
//!
//! Entries come from two places. The replica applies every committed change of the cached
//! kind (its own and other nodes'), in log order, with [`Cache::applied`]: that entry is
//! always current. A reader that missed reads the store and offers what it read with
//! [`Cache::fill`], tagged with the [`Cache::epoch`] it saw before reading: if any change was
//! applied meanwhile, the offer is dropped, since what was read may already be older than what
//! was applied (then the next reader reads the store again). So an entry is never older than
//! the replica's cursor, and the cache never answers with a value the replica has seen
//! replaced. Absent documents are cached too (`None`), so that repeated lookups of names that
//! do not exist (client ids that are not things) do not reach the store.
//!
//! Eviction is by two generations: entries live in `hot` until it holds half the capacity;
//! then `hot` becomes `cold` (the old `cold` is dropped) and a hit in `cold` moves the entry
//! back to `hot`. Memory stays under the capacity, and recently used entries stay.

use std::collections::HashMap;
use std::sync::Mutex;

/// A cached document: its value (`None`: absent) and revision (0 when absent).
pub type Entry<V> = (Option<V>, u64);

struct Inner<V> {
    hot: HashMap<String, Entry<V>>,
    cold: HashMap<String, Entry<V>>,
    /// Moves with every applied change.
    epoch: u64,
}

/// A bounded, change-coherent cache (see the module documentation).
pub struct Cache<V> {
    inner: Mutex<Inner<V>>,
    /// Entries per generation.
    half: usize,
}

impl<V> std::fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("capacity", &(self.half * 2)).finish_non_exhaustive()
    }
}

impl<V: Clone> Cache<V> {
    /// A cache of at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Cache<V> {
        Cache { inner: Mutex::new(Inner { hot: HashMap::new(), cold: HashMap::new(), epoch: 0 }), half: (capacity / 2).max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached entry, if any.
    pub fn get(&self, key: &str) -> Option<Entry<V>> {
        let mut g = self.lock();
        if let Some(e) = g.hot.get(key) {
            return Some(e.clone());
        }
        let e = g.cold.remove(key)?;
        Self::insert(&mut g, self.half, key.to_string(), e.clone());
        Some(e)
    }

    /// The epoch to pass to [`Cache::fill`]: read it before reading the store.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Offers an entry read from the store after [`Cache::epoch`] returned `epoch`; kept only
    /// when no change was applied since.
    pub fn fill(&self, key: &str, entry: Entry<V>, epoch: u64) {
        let mut g = self.lock();
        if g.epoch == epoch {
            Self::insert(&mut g, self.half, key.to_string(), entry);
        }
    }

    /// Records a committed change (in log order).
    pub fn applied(&self, key: &str, entry: Entry<V>) {
        let mut g = self.lock();
        g.epoch += 1;
        g.cold.remove(key);
        Self::insert(&mut g, self.half, key.to_string(), entry);
    }

    /// Forgets one entry, as a change would (a committed document that cannot be read).
    pub fn forget(&self, key: &str) {
        let mut g = self.lock();
        g.epoch += 1;
        g.hot.remove(key);
        g.cold.remove(key);
    }

    /// Forgets everything (a replica reloading after falling behind the log).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.epoch += 1;
        g.hot.clear();
        g.cold.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.hot.len() + g.cold.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(g: &mut Inner<V>, half: usize, key: String, entry: Entry<V>) {
        if g.hot.len() >= half && !g.hot.contains_key(&key) {
            g.cold = std::mem::take(&mut g.hot);
            g.cold.remove(&key);
        }
        g.hot.insert(key, entry);
    }
}

impl<V: Clone> Default for Cache<V> {
    fn default() -> Cache<V> {
        Cache::new(DEFAULT_CAPACITY)
    }
}

/// Entries a cache holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_fill_after_an_applied_change_is_dropped() {
        let c: Cache<&str> = Cache::new(8);
        let epoch = c.epoch();
        // A reader read "old" from the store; meanwhile a change was applied.
        c.applied("k", (Some("new"), 2));
        c.fill("k", (Some("old"), 1), epoch);
        assert_eq!(c.get("k"), Some((Some("new"), 2)));
        // Even when the applied entry was evicted in between.
        let epoch = c.epoch();
        c.applied("other", (None, 3));
        c.fill("k2", (Some("stale"), 1), epoch);
        assert_eq!(c.get("k2"), None);
        let epoch = c.epoch();
        c.fill("k2", (None, 0), epoch);
        assert_eq!(c.get("k2"), Some((None, 0)), "absence is cached");
    }

    #[test]
    fn recently_used_entries_survive_a_generation() {
        let c: Cache<u32> = Cache::new(4);
        c.applied("a", (Some(1), 1));
        c.applied("b", (Some(2), 2));
        c.applied("c", (Some(3), 3)); // hot was full: a, b go cold
        assert_eq!(c.get("a"), Some((Some(1), 1)), "a hit in cold moves the entry back");
        c.applied("d", (Some(4), 4)); // hot {c, a} full: they go cold, b is dropped
        assert_eq!(c.get("b"), None);
        assert!(c.get("a").is_some() && c.get("c").is_some() && c.get("d").is_some());
    }

    proptest! {
        #[test]
        fn the_cache_stays_bounded_and_never_answers_with_a_replaced_value(
            ops in proptest::collection::vec((0u8..3, 0u8..20), 1..300),
            capacity in 2usize..16,
        ) {
            let c: Cache<u64> = Cache::new(capacity);
            let mut truth: HashMap<String, u64> = HashMap::new();
            for (i, (op, k)) in ops.into_iter().enumerate() {
                let key = format!("k{k}");
                match op {
                    0 => {
                        truth.insert(key.clone(), i as u64);
                        c.applied(&key, (Some(i as u64), i as u64));
                    }
                    1 => {
                        // A read of the store, with a change to another key applied in
                        // between half of the time.
                        let epoch = c.epoch();
                        let read = truth.get(&key).copied();
                        if i % 2 == 0 {
                            c.applied("elsewhere", (None, 0));
                        }
                        c.fill(&key, (read, read.unwrap_or(0)), epoch);
                    }
                    _ => {
                        if let Some((v, _)) = c.get(&key) {
                            prop_assert_eq!(v, truth.get(&key).copied());
                        }
                    }
                }
                prop_assert!(c.len() <= capacity.max(2));
            }
        }
    }
}
