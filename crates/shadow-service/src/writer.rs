//! The shadows as the service sees them, and their group-commit writer.
//!
//! Committed shadows live in the state store's `shadow` domain and are read on demand through
//! a replica whose state is only a bounded cache ([`store::cache::Cache`]): nothing is loaded
//! at start, and changes committed by other nodes reach the cache through the change log.
//! Shadows applied but not yet durable are *pending*: pinned in memory (so the next request on
//! the same shadow builds on them) until their write commits.
//!
//! The writer commits the writes of many requests in one batch, in submission order, each
//! shadow expected at the revision its chain of pending writes started from (so a shadow
//! changed meanwhile on another node makes the batch conflict instead of being overwritten);
//! each submitter learns when its write is committed. Pending shadows are kept in lanes, one
//! per shard of the service runtime (a thing's shadows are all in its shard's lane), so shards
//! apply requests side by side. When a commit fails, the writer takes every lane — no request
//! can be applied meanwhile —, fails that batch and every write queued behind it (they may
//! build on it), and drops every pending shadow: the next request reads the store again. A
//! failure that is a conflict (another node committed one of the shadows first) is reported as
//! such, so the request can be applied again to what won.
//!
//! A write that answers a request of the durable intake records the request's position: each
//! batch also writes, per shard, the highest position below which every request is applied
//! (kind `shadow-intake`), in the same commit as the shadows, so that a request restored after
//! a crash is known to be applied already ([`Memory::applied_through`]). A request whose write
//! failed or conflicted is *retrying* until its write commits or it is given up
//! ([`Memory::given_up`]): the recorded position stays below it meanwhile, though later
//! requests of its shard commit before it.

use crate::{KIND, ShadowId, StoredShadow};

/// Per node and shard, the highest intake position whose write is committed.
const INTAKE_KIND: &str = "shadow-intake";
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use store::cache::Cache;
use store::replica::{Replica, Replicated};
use store::state::{Expect, StateError, Write};
use tokio::sync::oneshot;

/// How a queued write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Durable.
    Committed,
    /// Not written: a shadow of its batch was committed elsewhere first; applying the request
    /// again reads what won.
    Conflict,
    /// Not written: the store failed.
    Failed,
}

/// Resolves once the write is settled.
pub type Durable = oneshot::Receiver<Settled>;

/// The replica of the `shadow` domain: only a cache of committed shadows.
#[derive(Debug, Default)]
pub struct Committed {
    cache: Cache<Arc<StoredShadow>>,
}

impl Replicated for Committed {
    const DOMAIN: &'static str = "shadow";
    const KINDS: &'static [&'static str] = &[];

    fn apply_doc(&mut self, kind: &str, _key: &str, _value: Option<&str>) -> Result<(), String> {
        Err(format!("the shadow domain holds no {kind} documents in memory"))
    }

    fn apply_change(&mut self, seq: u64, kind: &str, key: &str, value: Option<&str>) -> Result<(), String> {
        if kind == INTAKE_KIND {
            return Ok(());
        }
        if kind != KIND {
            return Err(format!("the shadow domain keeps no {kind} documents"));
        }
        match value.map(serde_json::from_str::<StoredShadow>) {
            Some(Ok(s)) => self.cache.applied(key, (Some(Arc::new(s)), seq)),
            None => self.cache.applied(key, (None, 0)),
            Some(Err(e)) => {
                self.cache.forget(key);
                return Err(e.to_string());
            }
        }
        Ok(())
    }
}

/// What a write was computed from.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// A committed shadow, as read.
    Seen(Expect),
    /// A pending one: the previous write of its chain.
    Pending,
}

struct Pending {
    shadow: Arc<StoredShadow>,
    /// Writes of this shadow queued or being committed.
    in_flight: u32,
}

/// Shadows applied but not yet durable. Held while a request is applied, so requests are
/// applied one at a time, in arrival order.
#[derive(Default)]
pub struct Lane {
    pending: HashMap<ShadowId, Pending>,
}

struct Job {
    id: ShadowId,
    lane: usize,
    value: String,
    terms: Vec<String>,
    base: Base,
    /// The intake shard and position of the request it answers.
    intake: Option<(usize, u64)>,
    done: oneshot::Sender<Settled>,
}

/// The shadows, committed and pending, and the handle to the writer thread.
pub struct Memory {
    replica: Arc<Replica<Committed>>,
    lanes: Arc<Vec<Mutex<Lane>>>,
    tx: Mutex<mpsc::Sender<Job>>,
    /// This node's intake positions' keys, one per shard.
    intake_keys: Arc<Vec<String>>,
    /// Intake (shard, position) of requests whose write failed and that are not settled yet.
    retrying: Arc<Mutex<BTreeSet<(usize, u64)>>>,
}

/// A lane held by a request: reads and writes shadows.
pub struct Held<'a> {
    memory: &'a Memory,
    index: usize,
    lane: MutexGuard<'a, Lane>,
}

impl Memory {
    /// Opens the `shadow` domain of the store with one lane per shard and starts the writer
    /// thread; `node` names this node's intake positions. Blocking.
    pub fn open(state: store::state::StateStore, shards: usize, node: &str) -> Result<Memory, StateError> {
        index_stored_shadows(&state)?;
        let replica = Replica::<Committed>::open(state)?;
        let shards = shards.max(1);
        let lanes: Arc<Vec<Mutex<Lane>>> = Arc::new((0..shards).map(|_| Mutex::new(Lane::default())).collect());
        let intake_keys: Arc<Vec<String>> = Arc::new((0..shards).map(|s| format!("{node}/{shards}/{s}")).collect());
        let (tx, rx) = mpsc::channel::<Job>();
        let retrying: Arc<Mutex<BTreeSet<(usize, u64)>>> = Arc::default();
        let (r, l, k, t) = (replica.clone(), lanes.clone(), intake_keys.clone(), retrying.clone());
        std::thread::Builder::new()
            .name("ferrite-shadows".into())
            .spawn(move || run(r, l, k, t, rx))
            .map_err(|e| StateError::Backend { backend: "shadow", what: "start writer", detail: e.to_string() })?;
        Ok(Memory { replica, lanes, tx: Mutex::new(tx), intake_keys, retrying })
    }

    /// A retrying request was given up (answered with a failure, not applied).
    pub fn given_up(&self, intake: (usize, u64)) {
        self.retrying.lock().unwrap_or_else(|e| e.into_inner()).remove(&intake);
    }

    /// Per shard, the highest intake position this node's committed writes answered (0: none).
    /// Blocking.
    pub fn applied_through(&self) -> Result<Vec<u64>, StateError> {
        let store = self.replica.store();
        self.intake_keys.iter().map(|k| Ok(store.get_blocking(INTAKE_KIND, k)?.and_then(|d| d.value.parse().ok()).unwrap_or(0))).collect()
    }

    /// The lane of a thing's shadows.
    pub fn lane_of(&self, thing: &str) -> usize {
        service_runtime::shard_of(thing, self.lanes.len())
    }

    /// The replica underneath ([`Replica::follow`] it to see other nodes' changes).
    pub fn replica(&self) -> &Arc<Replica<Committed>> {
        &self.replica
    }

    /// Takes the lane of a thing's shadows (its holder may be waiting for the database: see
    /// [`store::state::lock_waiting`]).
    pub fn hold(&self, thing: &str) -> Held<'_> {
        let index = self.lane_of(thing);
        Held { memory: self, index, lane: store::state::lock_waiting(&self.lanes[index]) }
    }

    /// A committed shadow: from the cache, or read from the store. Blocking on a miss.
    fn committed(&self, id: &ShadowId) -> Result<(Option<Arc<StoredShadow>>, Expect), StateError> {
        let key = id.key();
        let (shadow, rev) = self.replica.read_through(&key, |c| &c.cache, |store| {
            Ok::<_, StateError>(match store.get_blocking(KIND, &key)? {
                Some(doc) => {
                    let s = serde_json::from_str::<StoredShadow>(&doc.value).map_err(|e| StateError::Corrupt { kind: KIND.into(), key: key.clone(), detail: e.to_string() })?;
                    (Some(Arc::new(s)), doc.rev)
                }
                None => (None, 0),
            })
        })?;
        let expect = expect_of(shadow.is_some(), rev);
        Ok((shadow, expect))
    }

    /// Up to `limit` live named shadows of a thing after `after`, from the store (committed
    /// ones: the HTTP API answers only once a write is durable).
    pub fn named(&self, thing: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>, StateError> {
        let after = after.map(|a| ShadowId { thing: thing.to_string(), name: a.to_string() }.key());
        let found = self.replica.store().find_blocking(KIND, &store::state::Terms::Exact(named_term(thing)), after.as_deref(), limit)?;
        Ok(found.into_iter().filter_map(|(k, _)| ShadowId::from_key(&k)).map(|id| id.name).collect())
    }
}

fn expect_of(present: bool, rev: u64) -> Expect {
    if present { Expect::Rev(rev) } else { Expect::Absent }
}

/// The term a live named shadow is found by among its thing's.
fn named_term(thing: &str) -> String {
    format!("n\u{1}{thing}")
}

fn terms_of(id: &ShadowId, s: &StoredShadow) -> Vec<String> {
    if !id.name.is_empty() && s.live().is_some() { vec![named_term(&id.thing)] } else { Vec::new() }
}

impl Held<'_> {
    /// The shadow as the next request sees it: pending, else committed.
    pub fn current(&self, id: &ShadowId) -> Result<Option<Arc<StoredShadow>>, StateError> {
        if let Some(p) = self.lane.pending.get(id) {
            return Ok(Some(p.shadow.clone()));
        }
        Ok(self.memory.committed(id)?.0)
    }

    /// Makes a shadow pending and queues its write (answering the intake request at `intake`,
    /// shard and position, if any).
    pub fn write(&mut self, id: &ShadowId, shadow: StoredShadow, intake: Option<(usize, u64)>) -> Result<Durable, StateError> {
        let base = match self.lane.pending.get(id) {
            Some(_) => Base::Pending,
            None => Base::Seen(self.memory.committed(id)?.1),
        };
        let value = serde_json::to_string(&shadow).map_err(|e| StateError::Corrupt { kind: KIND.into(), key: id.key(), detail: e.to_string() })?;
        let terms = terms_of(id, &shadow);
        let p = self.lane.pending.entry(id.clone()).or_insert_with(|| Pending { shadow: Arc::new(shadow.clone()), in_flight: 0 });
        p.shadow = Arc::new(shadow);
        p.in_flight += 1;
        let (done, rx) = oneshot::channel();
        let job = Job { id: id.clone(), lane: self.index, value, terms, base, intake, done };
        let _ = self.memory.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        Ok(rx)
    }
}

/// The writer thread: batches, commits, and settles the pending shadows.
fn run(
    replica: Arc<Replica<Committed>>,
    lanes: Arc<Vec<Mutex<Lane>>>,
    intake_keys: Arc<Vec<String>>,
    retrying: Arc<Mutex<BTreeSet<(usize, u64)>>>,
    rx: mpsc::Receiver<Job>,
) {
    // The revision each shadow with writes in flight was last committed at.
    let mut committed: HashMap<String, Expect> = HashMap::new();
    // Per intake shard, the highest position committed by this process, and the position
    // recorded (below every retrying request; never moved back).
    let mut high: HashMap<usize, u64> = HashMap::new();
    let mut written: HashMap<usize, u64> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < 10_000 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        // One write per shadow: the last value, expected as its first write found it.
        let mut expect: HashMap<String, Expect> = HashMap::new();
        let mut writes: Vec<Write> = Vec::with_capacity(jobs.len());
        for j in &jobs {
            let key = j.id.key();
            let e = match j.base {
                Base::Seen(e) => e,
                Base::Pending => committed.get(&key).copied().unwrap_or(Expect::Any),
            };
            expect.entry(key.clone()).or_insert(e);
            writes.push(Write::put(KIND, key, j.value.clone()).terms(j.terms.clone()));
        }
        let mut writes: Vec<Write> = store::replica::last_writes(writes)
            .into_iter()
            .map(|w| {
                let e = expect.get(&w.key).copied().unwrap_or(Expect::Any);
                w.expect(e)
            })
            .collect();
        // The intake positions these writes answer, committed with them: per shard the highest
        // committed, kept below any request still retrying (other than this batch's own).
        let positions: BTreeSet<(usize, u64)> = jobs.iter().filter_map(|j| j.intake).collect();
        let mut new_high: HashMap<usize, u64> = HashMap::new();
        for (shard, pos) in &positions {
            let h = new_high.entry(*shard).or_insert_with(|| high.get(shard).copied().unwrap_or(0));
            *h = (*h).max(*pos);
        }
        let mut through: HashMap<usize, u64> = HashMap::new();
        {
            let r = retrying.lock().unwrap_or_else(|e| e.into_inner());
            for (shard, h) in &new_high {
                let first_retrying = r.range((*shard, 0)..(*shard + 1, 0)).map(|(_, p)| *p).find(|p| !positions.contains(&(*shard, *p)));
                let capped = first_retrying.map_or(*h, |p| (*h).min(p - 1));
                through.insert(*shard, capped.max(written.get(shard).copied().unwrap_or(0)));
            }
        }
        for (shard, pos) in &through {
            if let Some(key) = intake_keys.get(*shard) {
                writes.push(Write::put(INTAKE_KIND, key.clone(), pos.to_string()));
            }
        }
        match replica.commit(writes) {
            Ok(seq) => {
                written.extend(through);
                high.extend(new_high);
                {
                    let mut r = retrying.lock().unwrap_or_else(|e| e.into_inner());
                    for p in &positions {
                        r.remove(p);
                    }
                }
                for j in jobs {
                    let key = j.id.key();
                    committed.insert(key.clone(), Expect::Rev(seq));
                    let mut l = lanes[j.lane].lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(p) = l.pending.get_mut(&j.id) {
                        p.in_flight -= 1;
                        if p.in_flight == 0 {
                            l.pending.remove(&j.id);
                            committed.remove(&key);
                        }
                    }
                    drop(l);
                    let _ = j.done.send(Settled::Committed);
                }
            }
            Err(e) => {
                let settled = if e.is_conflict() {
                    tracing::info!(error = %e, "shadow changed elsewhere first; pending shadows are read again from the store");
                    Settled::Conflict
                } else {
                    tracing::error!(error = %e, "shadow store commit failed; pending shadows are dropped and read again from the store");
                    Settled::Failed
                };
                // Every lane, in order (the writer is the only one that takes more than one).
                let mut held: Vec<_> = lanes.iter().map(|l| l.lock().unwrap_or_else(|e| e.into_inner())).collect();
                while let Ok(j) = rx.try_recv() {
                    jobs.push(j);
                }
                {
                    let c = replica.read();
                    for l in &mut held {
                        for id in l.pending.keys() {
                            c.cache.forget(&id.key());
                        }
                        l.pending.clear();
                    }
                }
                committed.clear();
                // Applied again (after a conflict) or given up: either way, not applied yet.
                retrying.lock().unwrap_or_else(|e| e.into_inner()).extend(jobs.iter().filter_map(|j| j.intake));
                for j in jobs {
                    let _ = j.done.send(settled);
                }
            }
        }
    }
}

/// Gives live named shadows stored before shadows had index terms their terms, once per store.
fn index_stored_shadows(store: &store::state::StateStore) -> Result<(), StateError> {
    store.index_once("shadow.terms.1", KIND, |k, v| Some(terms_of(&ShadowId::from_key(k)?, &serde_json::from_str::<StoredShadow>(v).ok()?)))?;
    Ok(())
}
