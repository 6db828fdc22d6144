//! The state store: documents with revisions, atomic batches checked against expectations,
//! point reads and paged scans, and a change log per domain in commit order with a wake-up.
//! One interface ([`Backend`]), two implementations: SQLite (embedded) and PostgreSQL.
//!
//! A *domain* is one service's state (`registry`, `authz`, `shadow`, ...). Every commit gets
//! the next sequence number of its domain, allocated inside the transaction, so the log of a
//! domain has no holes and follows commit order: a reader that has seen sequence `n` has seen
//! every commit before it. A document's revision is the sequence of the commit that last
//! wrote it, so a revision never repeats, even across a delete and a re-create.

mod block;
pub mod contract;
mod postgres;
mod sqlite;

pub use crate::SyncMode;
pub use block::{block_on, blocking, lock_waiting, read_waiting, write_waiting};
pub use postgres::{Postgres, check_postgres_url, connect as connect_postgres};
pub use sqlite::{Sqlite, open as open_sqlite};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A boxed future, so that [`Backend`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a state store call.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Changes kept per domain; a reader further behind than this reloads instead.
pub const KEPT_CHANGES: u64 = 100_000;

/// The largest batch one commit may carry.
pub const MAX_WRITES_PER_COMMIT: usize = 10_000;

/// A stored document and its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub value: String,
    pub rev: u64,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Anything, including nothing.
    Any,
    /// No document under the key.
    Absent,
    /// Some document, whatever its revision.
    Present,
    /// The document at exactly this revision.
    Rev(u64),
}

impl Expect {
    /// Whether a document at `found` (`None`: absent) meets the expectation.
    pub fn met_by(self, found: Option<u64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => found.is_none(),
            Expect::Present => found.is_some(),
            Expect::Rev(r) => found == Some(r),
        }
    }

    /// The expectation that a document is exactly as seen (`None`: not there).
    pub fn seen(rev: Option<u64>) -> Expect {
        rev.map_or(Expect::Absent, Expect::Rev)
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Any => f.write_str("anything"),
            Expect::Absent => f.write_str("no document"),
            Expect::Present => f.write_str("a document"),
            Expect::Rev(r) => write!(f, "revision {r}"),
        }
    }
}

/// What a write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Put(String),
    Delete,
    /// Only checks the expectation (a precondition on a document the batch does not change).
    Check,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub kind: String,
    pub key: String,
    pub action: Action,
    pub expect: Expect,
    /// For a put: the index terms the document is found by ([`StateStore::find`]), replacing
    /// the ones it had. A delete drops them; a check leaves them.
    pub terms: Vec<String>,
}

impl Write {
    pub fn put(kind: &str, key: impl Into<String>, value: impl Into<String>) -> Write {
        Write { kind: kind.to_string(), key: key.into(), action: Action::Put(value.into()), expect: Expect::Any, terms: Vec::new() }
    }

    pub fn delete(kind: &str, key: impl Into<String>) -> Write {
        Write { kind: kind.to_string(), key: key.into(), action: Action::Delete, expect: Expect::Any, terms: Vec::new() }
    }

    pub fn check(kind: &str, key: impl Into<String>, expect: Expect) -> Write {
        Write { kind: kind.to_string(), key: key.into(), action: Action::Check, expect, terms: Vec::new() }
    }

    /// The same write with an expectation.
    pub fn expect(mut self, expect: Expect) -> Write {
        self.expect = expect;
        self
    }

    /// The same write with index terms (see [`Write::terms`]).
    pub fn terms(mut self, terms: Vec<String>) -> Write {
        self.terms = terms;
        self
    }
}

/// Which index terms [`StateStore::find`] matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terms {
    /// Exactly this term.
    Exact(String),
    /// Every term that starts with this (non-empty) prefix.
    Prefix(String),
}

impl Terms {
    /// The half-open range `[low, high)` of the terms matched, in byte (code point) order.
    pub fn range(&self) -> (String, String) {
        match self {
            // Terms hold no NUL, so the only term in `[t, t + U+0001)` is `t`.
            Terms::Exact(t) => (t.clone(), format!("{t}\u{1}")),
            Terms::Prefix(p) => {
                let mut high: Vec<char> = p.chars().collect();
                // The prefix with its last character replaced by the next one bounds every
                // string that starts with it.
                while let Some(last) = high.pop() {
                    if let Some(next) = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32) {
                        high.push(next);
                        return (p.clone(), high.into_iter().collect());
                    }
                }
                (p.clone(), char::MAX.to_string().repeat(2))
            }
        }
    }
}

/// The most terms one document may carry.
pub const MAX_TERMS_PER_DOC: usize = 256;

/// A committed batch: its sequence in the domain (0 when it changed nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub seq: u64,
}

/// One entry of a domain's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub kind: String,
    pub key: String,
    /// The document after the commit; `None`: deleted.
    pub value: Option<String>,
}

/// A page of a domain's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePage {
    /// Whole commits after the cursor, in sequence order.
    pub changes: Vec<Change>,
    /// The sequence to continue from (the last commit read, or the cursor).
    pub next: u64,
    /// The domain's latest sequence when the page was read.
    pub head: u64,
    /// True when changes after the cursor are no longer kept: the reader must reload.
    pub gap: bool,
}

/// A state store failure.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An expectation was not met; nothing of the batch was written.
    #[error("conflict on {kind} {key:?}: expected {expected}, found {}", found.map_or("no document".to_string(), |r| format!("revision {r}")))]
    Conflict { kind: String, key: String, expected: Expect, found: Option<u64> },
    /// A batch the store refuses (too large, a key written twice).
    #[error("invalid batch: {0}")]
    Invalid(String),
    /// A stored document cannot be read back.
    #[error("stored {kind} document {key:?} is not valid: {detail}")]
    Corrupt { kind: String, key: String, detail: String },
    /// The database failed.
    #[error("state store ({backend}) {what}: {detail}")]
    Backend { backend: &'static str, what: &'static str, detail: String },
}

impl StateError {
    /// True for an unmet expectation.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StateError::Conflict { .. })
    }
}

/// A state store implementation.
pub trait Backend: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// One document.
    fn get<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Doc>>>;
    /// Up to `limit` documents of a kind whose keys sort after `after`, in key order.
    fn scan<'a>(&'a self, kind: &'a str, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>>;
    /// Up to `limit` documents of a kind having a term in `terms`, with keys after `after`,
    /// in key order, each once.
    fn find<'a>(&'a self, kind: &'a str, terms: &'a Terms, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>>;
    /// Replaces the terms of existing documents without a commit (a migration that indexes
    /// documents stored before their kind had terms); keys with no document are skipped.
    fn set_terms<'a>(&'a self, kind: &'a str, docs: Vec<(String, Vec<String>)>) -> BoxFuture<'a, Result<()>>;
    /// Applies the batch atomically in `domain`, or nothing of it (a conflict names the key).
    fn commit<'a>(&'a self, domain: &'a str, writes: Vec<Write>) -> BoxFuture<'a, Result<Committed>>;
    /// The commits of `domain` after sequence `after`, at most `max_commits` of them.
    fn changes<'a>(&'a self, domain: &'a str, after: u64, max_commits: u64) -> BoxFuture<'a, Result<ChangePage>>;
    /// The latest sequence of `domain` (0 before its first commit).
    fn head<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<u64>>;
    /// A counter that moves after every commit to `domain` seen (local, or notified by the
    /// database; when the backend cannot tell which domain changed, every counter moves).
    fn watch(&self, domain: &str) -> watch::Receiver<u64>;
}

/// The wake-up counters of the domains, created as they are asked for.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    by_domain: std::sync::Mutex<std::collections::HashMap<String, watch::Sender<u64>>>,
}

impl Wakeups {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, watch::Sender<u64>>> {
        self.by_domain.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn watch(&self, domain: &str) -> watch::Receiver<u64> {
        self.map().entry(domain.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    pub(crate) fn wake(&self, domain: &str) {
        if let Some(tx) = self.map().get(domain) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    pub(crate) fn wake_all(&self) {
        for tx in self.map().values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// Checks a batch before it reaches a backend: bounded, and each key at most once.
pub(crate) fn check_batch(writes: &[Write]) -> Result<()> {
    if writes.len() > MAX_WRITES_PER_COMMIT {
        return Err(StateError::Invalid(format!("{} writes in one batch (at most {MAX_WRITES_PER_COMMIT})", writes.len())));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for w in writes {
        check_terms(&w.kind, &w.key, &w.terms)?;
        if !seen.insert((w.kind.as_str(), w.key.as_str())) {
            return Err(StateError::Invalid(format!("{} {:?} written twice in one batch", w.kind, w.key)));
        }
    }
    Ok(())
}

/// Checks one document's terms: bounded in number, and free of NUL (which PostgreSQL's text
/// cannot hold).
pub(crate) fn check_terms(kind: &str, key: &str, terms: &[String]) -> Result<()> {
    if terms.len() > MAX_TERMS_PER_DOC {
        return Err(StateError::Invalid(format!("{kind} {key:?} has {} index terms (at most {MAX_TERMS_PER_DOC})", terms.len())));
    }
    if let Some(t) = terms.iter().find(|t| t.contains('\0')) {
        return Err(StateError::Invalid(format!("index term {t:?} of {kind} {key:?} holds a NUL character")));
    }
    Ok(())
}

/// The shared handle to the state store.
#[derive(Clone)]
pub struct StateStore(Arc<dyn Backend>);

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateStore({})", self.0.name())
    }
}

impl StateStore {
    pub fn new(backend: Arc<dyn Backend>) -> StateStore {
        StateStore(backend)
    }

    /// The backend's name (`sqlite`, `postgres`).
    pub fn backend(&self) -> &'static str {
        self.0.name()
    }

    pub async fn get(&self, kind: &str, key: &str) -> Result<Option<Doc>> {
        self.0.get(kind, key).await
    }

    pub async fn scan(&self, kind: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Doc)>> {
        self.0.scan(kind, after, limit).await
    }

    /// Every document of a kind, read page by page.
    pub async fn scan_all(&self, kind: &str) -> Result<Vec<(String, Doc)>> {
        let mut out: Vec<(String, Doc)> = Vec::new();
        loop {
            let after = out.last().map(|(k, _)| k.clone());
            let page = self.0.scan(kind, after.as_deref(), 1000).await?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// Documents of a kind by index term (see [`Backend::find`]).
    pub async fn find(&self, kind: &str, terms: &Terms, after: Option<&str>, limit: usize) -> Result<Vec<(String, Doc)>> {
        if matches!(terms, Terms::Prefix(p) if p.is_empty()) {
            return Err(StateError::Invalid("an empty term prefix".into()));
        }
        self.0.find(kind, terms, after, limit).await
    }

    /// Replaces the terms of existing documents (see [`Backend::set_terms`]).
    pub async fn set_terms(&self, kind: &str, docs: Vec<(String, Vec<String>)>) -> Result<()> {
        for (key, terms) in &docs {
            check_terms(kind, key, terms)?;
        }
        self.0.set_terms(kind, docs).await
    }

    pub async fn commit(&self, domain: &str, writes: Vec<Write>) -> Result<Committed> {
        check_batch(&writes)?;
        self.0.commit(domain, writes).await
    }

    pub async fn changes(&self, domain: &str, after: u64, max_commits: u64) -> Result<ChangePage> {
        self.0.changes(domain, after, max_commits).await
    }

    pub async fn head(&self, domain: &str) -> Result<u64> {
        self.0.head(domain).await
    }

    /// Moves after every commit to `domain` (see [`Backend::watch`]).
    pub fn watch(&self, domain: &str) -> watch::Receiver<u64> {
        self.0.watch(domain)
    }

    /// [`StateStore::get`] for synchronous callers (not on an async worker thread).
    pub fn get_blocking(&self, kind: &str, key: &str) -> Result<Option<Doc>> {
        block_on(self.get(kind, key))
    }

    /// [`StateStore::scan`] for synchronous callers.
    pub fn scan_blocking(&self, kind: &str, after: Option<&str>, limit: usize) -> Result<Vec<(String, Doc)>> {
        block_on(self.scan(kind, after, limit))
    }

    /// [`StateStore::find`] for synchronous callers.
    pub fn find_blocking(&self, kind: &str, terms: &Terms, after: Option<&str>, limit: usize) -> Result<Vec<(String, Doc)>> {
        block_on(self.find(kind, terms, after, limit))
    }

    /// [`StateStore::set_terms`] for synchronous callers.
    pub fn set_terms_blocking(&self, kind: &str, docs: Vec<(String, Vec<String>)>) -> Result<()> {
        block_on(self.set_terms(kind, docs))
    }

    /// A forward migration run once per store: gives every stored document of `kind` the
    /// terms `terms_of` computes (`None`: leave it), page by page, then records `mark` as
    /// done. Blocking. Returns the documents given terms.
    pub fn index_once(&self, mark: &str, kind: &str, terms_of: impl Fn(&str, &str) -> Option<Vec<String>>) -> Result<usize> {
        if self.get_blocking("schema", mark)?.is_some() {
            return Ok(0);
        }
        let (mut after, mut indexed) = (None::<String>, 0);
        loop {
            let page = self.scan_blocking(kind, after.as_deref(), 1000)?;
            let done = page.len() < 1000;
            after = page.last().map(|(k, _)| k.clone());
            let docs: Vec<(String, Vec<String>)> = page.into_iter().filter_map(|(k, d)| terms_of(&k, &d.value).map(|t| (k, t))).collect();
            indexed += docs.len();
            self.set_terms_blocking(kind, docs)?;
            if done {
                break;
            }
        }
        match self.commit_blocking("schema", vec![Write::put("schema", mark, "done").expect(Expect::Absent)]) {
            Err(e) if !e.is_conflict() => Err(e),
            _ => Ok(indexed),
        }
    }

    /// [`StateStore::scan_all`] for synchronous callers.
    pub fn scan_all_blocking(&self, kind: &str) -> Result<Vec<(String, Doc)>> {
        block_on(self.scan_all(kind))
    }

    /// [`StateStore::commit`] for synchronous callers.
    pub fn commit_blocking(&self, domain: &str, writes: Vec<Write>) -> Result<Committed> {
        block_on(self.commit(domain, writes))
    }

    /// [`StateStore::changes`] for synchronous callers.
    pub fn changes_blocking(&self, domain: &str, after: u64, max_commits: u64) -> Result<ChangePage> {
        block_on(self.changes(domain, after, max_commits))
    }

    /// [`StateStore::head`] for synchronous callers.
    pub fn head_blocking(&self, domain: &str) -> Result<u64> {
        block_on(self.head(domain))
    }
}
