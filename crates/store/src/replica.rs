//! Replicas: a service's in-memory state kept as a replica of its domain in the state store.
//!
//! Readers take a shared lock and never wait on I/O or on a writer's commit. A writer takes the
//! domain's writer lock, catches up with the change log, computes its writes on the current
//! state (holding only a shared lock), commits them with expectations (the revisions it saw),
//! and then catches up again — which applies its own commit, and anything another node
//! committed before it, in log order. Changes committed elsewhere arrive through the store's
//! watch ([`Replica::follow`]) and are applied the same way. Every applied change is handed to
//! the subscribers ([`Replica::subscribe`]) once, after it is applied.

use crate::cache::{Cache, Entry};
use crate::state::{Action, Change, Expect, StateError, StateStore, Write};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// State that can be rebuilt from its documents.
pub trait Replicated: Default + Send + Sync + 'static {
    /// The domain (change log) the state is committed in.
    const DOMAIN: &'static str;
    /// The kinds of documents it holds in memory, in the order they are loaded (their
    /// revisions are tracked for [`WriteGuard::seen`]). Changes of the domain's other kinds
    /// (read on demand, behind a cache the state keeps) are applied too, but never loaded.
    const KINDS: &'static [&'static str];
    /// Applies a committed document (`None`: deleted), in log order. An error names what
    /// cannot be read.
    fn apply_doc(&mut self, kind: &str, key: &str, value: Option<&str>) -> Result<(), String>;
    /// [`Replicated::apply_doc`] with the sequence of the commit (the document's revision), for
    /// state that keeps revisions of its own (a cache of documents read on demand).
    fn apply_change(&mut self, seq: u64, kind: &str, key: &str, value: Option<&str>) -> Result<(), String> {
        let _ = seq;
        self.apply_doc(kind, key, value)
    }
}

/// A subscriber to applied changes.
pub type Subscriber = Box<dyn Fn(&[Change]) + Send + Sync>;

struct Shared<S> {
    state: S,
    revs: HashMap<(String, String), u64>,
    /// The last sequence of the domain applied.
    cursor: u64,
}

/// A replica of one domain.
pub struct Replica<S: Replicated> {
    store: StateStore,
    shared: RwLock<Shared<S>>,
    /// Held by the one writer of this process at a time.
    writer: Mutex<()>,
    /// Held while catching up, so that every change is applied (and announced) once.
    catching: Mutex<()>,
    subscribers: RwLock<Vec<Subscriber>>,
    /// Moves when the domain has commits this replica may not have applied yet.
    wake: Mutex<tokio::sync::watch::Receiver<u64>>,
}

impl<S: Replicated> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("domain", &S::DOMAIN).finish_non_exhaustive()
    }
}

impl<S: Replicated> Shared<S> {
    /// Applies one change, tracking the revisions of the kinds held in memory.
    fn apply(&mut self, seq: u64, kind: &str, key: &str, value: Option<&str>) {
        if let Err(e) = self.state.apply_change(seq, kind, key, value) {
            tracing::error!(domain = S::DOMAIN, kind, key, error = %e, "a committed document cannot be applied; skipped");
        }
        if S::KINDS.contains(&kind) {
            match value {
                Some(_) => self.revs.insert((kind.to_string(), key.to_string()), seq),
                None => self.revs.remove(&(kind.to_string(), key.to_string())),
            };
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Replicated> Replica<S> {
    /// Loads every document of the domain's kinds, then follows the log from where the load
    /// began. Blocking.
    pub fn open(store: StateStore) -> Result<Arc<Replica<S>>, StateError> {
        let wake = Mutex::new(store.watch(S::DOMAIN));
        let shared = Self::load(&store)?;
        let r = Arc::new(Replica { store, shared: RwLock::new(shared), writer: Mutex::new(()), catching: Mutex::new(()), subscribers: RwLock::new(Vec::new()), wake });
        r.catch_up()?;
        Ok(r)
    }

    fn load(store: &StateStore) -> Result<Shared<S>, StateError> {
        // The head first: whatever commits during the scan is applied again from the log.
        let cursor = store.head_blocking(S::DOMAIN)?;
        let mut state = S::default();
        let mut revs = HashMap::new();
        for kind in S::KINDS {
            for (key, doc) in store.scan_all_blocking(kind)? {
                state.apply_doc(kind, &key, Some(&doc.value)).map_err(|e| StateError::Corrupt { kind: kind.to_string(), key: key.clone(), detail: e })?;
                revs.insert((kind.to_string(), key), doc.rev);
            }
        }
        Ok(Shared { state, revs, cursor })
    }

    /// The state store underneath.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Reads the state (never waits on I/O itself). A writer holds the state's lock while it
    /// waits for the database, so a contended read hands a Tokio worker back to the runtime
    /// first ([`crate::state::read_waiting`]): readers on every worker must not starve the
    /// database call the writer waits for.
    pub fn read(&self) -> ReadGuard<'_, S> {
        ReadGuard(crate::state::read_waiting(&self.shared))
    }

    /// A document through one of the state's caches: the cached entry, or `load` it from the
    /// store and offer it to the cache, tagged with the epoch seen before reading (so a change
    /// applied meanwhile wins; see [`crate::cache`]). Blocking on a miss.
    pub fn read_through<V: Clone, E>(
        &self,
        key: &str,
        cache: impl Fn(&S) -> &Cache<V>,
        load: impl FnOnce(&StateStore) -> Result<Entry<V>, E>,
    ) -> Result<Entry<V>, E> {
        let epoch = {
            let st = self.read();
            let c = cache(&st);
            if let Some(entry) = c.get(key) {
                return Ok(entry);
            }
            c.epoch()
        };
        let entry = load(&self.store)?;
        cache(&self.read()).fill(key, entry.clone(), epoch);
        Ok(entry)
    }

    /// Becomes this process's writer of the domain, caught up with the log as far as this node
    /// knows (a commit it has not heard of yet makes the commit conflict instead). Blocking.
    pub fn write(&self) -> Result<WriteGuard<'_, S>, StateError> {
        let writer = crate::state::lock_waiting(&self.writer);
        if lock(&self.wake).has_changed().unwrap_or(true) {
            self.catch_up()?;
        }
        Ok(WriteGuard { replica: self, _writer: writer, read: Some(self.read()) })
    }

    /// Calls `f` with every change applied from now on (from this node or another), after it
    /// is applied. `f` runs on the applying thread (a blocking one, holding this replica's
    /// catch-up lock): keep it short; it may commit to another domain, never to this one.
    pub fn subscribe(&self, f: Subscriber) {
        self.subscribers.write().unwrap_or_else(|e| e.into_inner()).push(f);
    }

    /// Applies what the log holds after the cursor. Blocking.
    pub fn catch_up(&self) -> Result<(), StateError> {
        crate::state::blocking(|| self.catch_up_now())
    }

    fn catch_up_now(&self) -> Result<(), StateError> {
        self.catch_up_through(None)
    }

    /// Catches up; with `through`, only as long as that sequence is not applied yet.
    fn catch_up_through(&self, through: Option<u64>) -> Result<(), StateError> {
        let _one = crate::state::lock_waiting(&self.catching);
        if through.is_some_and(|seq| self.read().0.cursor >= seq) {
            return Ok(());
        }
        // Seen before reading: a commit announced from now on is read by a later catch-up.
        lock(&self.wake).borrow_and_update();
        loop {
            let cursor = self.read().0.cursor;
            let page = self.store.changes_blocking(S::DOMAIN, cursor, 1000)?;
            if page.gap {
                tracing::warn!(domain = S::DOMAIN, cursor, head = page.head, "replica fell behind the kept change log: reloading");
                let fresh = Self::load(&self.store)?;
                *crate::state::write_waiting(&self.shared) = fresh;
                continue;
            }
            if page.next == cursor {
                return Ok(());
            }
            {
                let mut g = crate::state::write_waiting(&self.shared);
                for c in &page.changes {
                    g.apply(c.seq, &c.kind, &c.key, c.value.as_deref());
                }
                g.cursor = page.next;
            }
            self.announce(&page.changes);
            if page.next >= page.head {
                return Ok(());
            }
        }
    }

    fn announce(&self, changes: &[Change]) {
        if !changes.is_empty() {
            for s in self.subscribers.read().unwrap_or_else(|e| e.into_inner()).iter() {
                s(changes);
            }
        }
    }

    /// Commits writes without becoming the domain's writer — for writes whose expectations
    /// cover everything they were computed from, so that concurrent callers commit together
    /// (one group commit) — then applies them (and whatever the log holds before them).
    /// Blocking.
    pub fn commit(&self, writes: Vec<Write>) -> Result<u64, StateError> {
        let writes = last_writes(writes);
        if writes.is_empty() {
            return Ok(0);
        }
        let result = self.store.commit_blocking(S::DOMAIN, writes.clone());
        match &result {
            Ok(c) if c.seq == 0 => {}
            Ok(c) => {
                if !self.apply_own(c.seq, &writes) {
                    crate::state::blocking(|| self.catch_up_through(Some(c.seq)))?;
                }
            }
            // Catch up with what conflicted, so that the caller computes again on it.
            Err(e) if e.is_conflict() => self.catch_up()?,
            Err(_) => {}
        }
        Ok(result?.seq)
    }

    /// Applies this node's own commit `seq` straight from its writes when it directly follows
    /// what is applied (no other commit in between); false when it does not.
    fn apply_own(&self, seq: u64, writes: &[Write]) -> bool {
        let _one = crate::state::lock_waiting(&self.catching);
        let changes: Vec<Change> = {
            let mut g = crate::state::write_waiting(&self.shared);
            if g.cursor >= seq {
                // Applied already, by a catch-up that read it from the log.
                return true;
            }
            if g.cursor + 1 != seq {
                return false;
            }
            let changes: Vec<Change> = writes
                .iter()
                .filter_map(|w| match &w.action {
                    Action::Put(v) => Some(Change { seq, kind: w.kind.clone(), key: w.key.clone(), value: Some(v.clone()) }),
                    Action::Delete => Some(Change { seq, kind: w.kind.clone(), key: w.key.clone(), value: None }),
                    Action::Check => None,
                })
                .collect();
            for c in &changes {
                g.apply(seq, &c.kind, &c.key, c.value.as_deref());
            }
            g.cursor = seq;
            changes
        };
        // The wake-up of this commit is this node's own.
        lock(&self.wake).borrow_and_update();
        self.announce(&changes);
        true
    }

    /// Applies changes committed elsewhere as the store announces them, until the runtime
    /// stops. Call inside a Tokio runtime.
    pub fn follow(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let mut watch = self.store.watch(S::DOMAIN);
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let Some(r) = me.upgrade() else { return };
                match tokio::task::spawn_blocking(move || r.catch_up()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(domain = S::DOMAIN, error = %e, "replica could not catch up; retrying on the next change"),
                    Err(e) => tracing::error!(domain = S::DOMAIN, error = %e, "replica catch-up failed"),
                }
            }
        });
    }
}

/// Shared access to a replica's state.
pub struct ReadGuard<'a, S>(RwLockReadGuard<'a, Shared<S>>);

impl<S> ReadGuard<'_, S> {
    /// The revision of a document of a kind held in memory (`None`: absent).
    pub fn rev(&self, kind: &str, key: &str) -> Option<u64> {
        self.0.revs.get(&(kind.to_string(), key.to_string())).copied()
    }

    /// The expectation that a document of a kind held in memory is as this replica has it.
    pub fn seen(&self, kind: &str, key: &str) -> Expect {
        Expect::seen(self.rev(kind, key))
    }
}

impl<S> Deref for ReadGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0.state
    }
}

/// The writer of a domain: reads the state as of its last catch-up and commits.
pub struct WriteGuard<'a, S: Replicated> {
    replica: &'a Replica<S>,
    _writer: MutexGuard<'a, ()>,
    /// Shared access to the state, let go only while committing.
    read: Option<ReadGuard<'a, S>>,
}

impl<S: Replicated> Deref for WriteGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        match &self.read {
            Some(r) => r,
            // `commit` takes the guard back before it returns, and nothing reads in between.
            None => unreachable!("a writer's state is read only outside commit"),
        }
    }
}

impl<S: Replicated> WriteGuard<'_, S> {
    /// The revision of a document as this replica has it (`None`: absent).
    pub fn rev(&self, kind: &str, key: &str) -> Option<u64> {
        self.read.as_ref().and_then(|r| r.rev(kind, key))
    }

    /// The expectation that a document is as this replica has it.
    pub fn seen(&self, kind: &str, key: &str) -> Expect {
        Expect::seen(self.rev(kind, key))
    }

    /// Commits documents, each of a kind held in memory expected to be as this replica has it
    /// (see [`WriteGuard::commit`]); documents of other kinds are written whatever they are.
    pub fn commit_docs(&mut self, ops: &[crate::DocOp]) -> Result<u64, StateError> {
        let writes = ops
            .iter()
            .map(|op| {
                let (crate::DocOp::Put { kind, key, .. } | crate::DocOp::Delete { kind, key }) = op;
                // A kind not held in memory has no revision here to expect.
                op.write().expect(if S::KINDS.contains(kind) { self.seen(kind, key) } else { Expect::Any })
            })
            .collect();
        self.commit(writes)
    }

    /// Commits the writes (the last write to a key counts) and applies them; readers are not
    /// held up meanwhile. On a conflict nothing is written, and the replica has caught up with
    /// what conflicted: compute again. Blocking.
    pub fn commit(&mut self, writes: Vec<Write>) -> Result<u64, StateError> {
        let writes = last_writes(writes);
        if writes.is_empty() {
            return Ok(0);
        }
        self.read = None;
        let result = self.replica.store.commit_blocking(S::DOMAIN, writes.clone());
        let caught = match &result {
            Ok(c) if c.seq == 0 || self.replica.apply_own(c.seq, &writes) => Ok(()),
            _ => self.replica.catch_up(),
        };
        self.read = Some(self.replica.read());
        let seq = result?.seq;
        caught?;
        Ok(seq)
    }
}

/// Keeps the last write to each document, in order.
pub fn last_writes(writes: Vec<Write>) -> Vec<Write> {
    let mut last: HashMap<(String, String), usize> = HashMap::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        last.insert((w.kind.clone(), w.key.clone()), i);
    }
    writes.into_iter().enumerate().filter(|(i, w)| last.get(&(w.kind.clone(), w.key.clone())) == Some(i)).map(|(_, w)| w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Names(BTreeMap<String, String>);

    impl Replicated for Names {
        const DOMAIN: &'static str = "names";
        const KINDS: &'static [&'static str] = &["name"];
        fn apply_doc(&mut self, _kind: &str, key: &str, value: Option<&str>) -> Result<(), String> {
            match value {
                Some(v) => self.0.insert(key.to_string(), v.to_string()),
                None => self.0.remove(key),
            };
            Ok(())
        }
    }

    fn value(names: &Names, key: &str) -> Option<String> {
        names.0.get(key).cloned()
    }

    #[test]
    fn replicas_on_one_store_converge_and_a_stale_write_conflicts() {
        let dir = std::env::temp_dir().join(format!("ferrite-replica-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Two handles on one file, as two processes would have: b hears of a's commits only
        // through the file (its poller), so right after a commit its state is stale.
        let a = Replica::<Names>::open(crate::state::open_sqlite(&dir.join("state.db"), crate::SyncMode::Off).unwrap()).unwrap();
        let b = Replica::<Names>::open(crate::state::open_sqlite(&dir.join("state.db"), crate::SyncMode::Off).unwrap()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        b.subscribe(Box::new(move |changes| s.lock().unwrap().extend(changes.iter().map(|c| c.value.clone()))));
        {
            let mut w = a.write().unwrap();
            let e = w.seen("name", "x");
            w.commit(vec![Write::put("name", "x", "1").expect(e)]).unwrap();
            assert_eq!(value(&w, "x").as_deref(), Some("1"), "the writer reads its own commit");
        }
        {
            let mut w = b.write().unwrap();
            assert_eq!(w.seen("name", "x"), Expect::Absent, "b has not heard of a's commit yet");
            let conflict = w.commit(vec![Write::put("name", "x", "2").expect(Expect::Absent)]).unwrap_err();
            assert!(conflict.is_conflict(), "{conflict}");
            assert_eq!(value(&w, "x").as_deref(), Some("1"), "after a conflict the writer has caught up");
            let e = w.seen("name", "x");
            w.commit(vec![Write::put("name", "x", "3").expect(e)]).unwrap();
        }
        a.catch_up().unwrap();
        assert_eq!(value(&a.read(), "x").as_deref(), Some("3"));
        assert_eq!(seen.lock().unwrap().clone(), vec![Some("1".to_string()), Some("3".to_string())], "each change announced once, in order");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
