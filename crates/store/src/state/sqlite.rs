//! The state store on SQLite (WAL): one writer thread applies the commits waiting for it in one
//! transaction (group commit, each batch in its own savepoint so a conflict fails only its
//! batch); reads use their own connection and see only committed data.

use super::{Action, Backend, BoxFuture, Change, ChangePage, Committed, Doc, KEPT_CHANGES, Result, StateError, Terms, Wakeups, Write};
use crate::SyncMode;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{oneshot, watch};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, rev INTEGER NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    domain TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
    PRIMARY KEY (domain, seq, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (domain TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms (
    kind TEXT NOT NULL, term TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (kind, term, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS terms_by_key ON terms (kind, key);
";

/// Batches one writer transaction takes at most.
const GROUP: usize = 256;

/// Reader connections (reads of one connection run one at a time).
const READERS: usize = 4;

type Job = (String, Vec<Write>, oneshot::Sender<Result<Committed>>);

fn err(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StateError {
    move |e| StateError::Backend { backend: "sqlite", what, detail: e.to_string() }
}

/// The SQLite state store.
pub struct Sqlite {
    path: PathBuf,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    writer: Mutex<mpsc::Sender<Job>>,
    wakeups: Arc<Wakeups>,
}

impl Sqlite {
    /// Opens (creating if needed) the database file; starts the writer thread.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Sqlite> {
        let open = |e: crate::StoreError| StateError::Backend { backend: "sqlite", what: "open", detail: e.to_string() };
        let conn = crate::connect(path, sync).map_err(open)?;
        conn.execute_batch(SCHEMA).map_err(err("create schema"))?;
        let readers = (0..READERS).map(|_| crate::connect(path, sync).map(Mutex::new)).collect::<Result<Vec<_>, _>>().map_err(open)?;
        let wakeups = Arc::new(Wakeups::default());
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ferrite-state".into())
            .spawn({
                let wakeups = wakeups.clone();
                move || Writer { conn, heads: HashMap::new(), wakeups }.run(rx)
            })
            .map_err(|e| StateError::Backend { backend: "sqlite", what: "start writer", detail: e.to_string() })?;
        let poller = crate::connect(path, sync).map_err(open)?;
        std::thread::Builder::new()
            .name("ferrite-state-poll".into())
            .spawn({
                let wakeups = Arc::downgrade(&wakeups);
                move || poll_other_writers(poller, wakeups)
            })
            .map_err(|e| StateError::Backend { backend: "sqlite", what: "start poller", detail: e.to_string() })?;
        Ok(Sqlite { path: path.to_path_buf(), readers, next_reader: AtomicUsize::new(0), writer: Mutex::new(tx), wakeups })
    }

    /// Moves the documents of a data directory written before the state store (the
    /// `documents` table of `legacy`) in, at revision 1, and drops that table. Idempotent.
    pub fn import_legacy(&self, legacy: &Path) -> Result<usize> {
        let c = self.read();
        let same = legacy == self.path;
        if !same {
            if !legacy.exists() {
                return Ok(0);
            }
            c.execute("ATTACH DATABASE ?1 AS legacy", params![legacy.display().to_string()]).map_err(err("attach legacy"))?;
        }
        let schema = if same { "main" } else { "legacy" };
        let result = (|| {
            let has: bool = c
                .query_row(&format!("SELECT COUNT(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'documents'"), [], |r| r.get::<_, i64>(0))
                .map_err(err("read legacy"))?
                > 0;
            if !has {
                return Ok(0);
            }
            c.execute_batch("BEGIN IMMEDIATE").map_err(err("import legacy"))?;
            let n = c
                .execute(&format!("INSERT OR IGNORE INTO main.docs (kind, key, rev, value) SELECT kind, key, 1, value FROM {schema}.documents"), [])
                .map_err(err("import legacy"))?;
            c.execute_batch("COMMIT").map_err(err("import legacy"))?;
            c.execute_batch(&format!("DROP TABLE {schema}.documents")).map_err(err("drop legacy documents"))?;
            Ok(n)
        })();
        if !same {
            let _ = c.execute_batch("DETACH DATABASE legacy");
        }
        result
    }

    /// A free reader connection, or the next one in turn.
    fn read(&self) -> std::sync::MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(c) = r.try_lock() {
                return c;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn head_now(c: &Connection, domain: &str) -> Result<u64> {
        let h: Option<i64> = c
            .prepare_cached("SELECT seq FROM heads WHERE domain = ?1")
            .and_then(|mut s| s.query_row(params![domain], |r| r.get(0)).optional())
            .map_err(err("read head"))?;
        Ok(h.unwrap_or(0) as u64)
    }
}

impl Backend for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn get<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Doc>>> {
        Box::pin(async move {
            let c = self.read();
            c.prepare_cached("SELECT value, rev FROM docs WHERE kind = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![kind, key], |r| Ok(Doc { value: r.get(0)?, rev: r.get::<_, i64>(1)? as u64 })).optional())
                .map_err(err("get"))
        })
    }

    fn scan<'a>(&'a self, kind: &'a str, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>> {
        Box::pin(async move {
            let c = self.read();
            let mut st = c.prepare_cached("SELECT key, value, rev FROM docs WHERE kind = ?1 AND key > ?2 ORDER BY key LIMIT ?3").map_err(err("scan"))?;
            let rows = st
                .query_map(params![kind, after.unwrap_or(""), limit as i64], |r| Ok((r.get(0)?, Doc { value: r.get(1)?, rev: r.get::<_, i64>(2)? as u64 })))
                .map_err(err("scan"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err("scan"))
        })
    }

    fn find<'a>(&'a self, kind: &'a str, terms: &'a Terms, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>> {
        Box::pin(async move {
            let (low, high) = terms.range();
            let c = self.read();
            let sql = match terms {
                Terms::Exact(_) => {
                    "SELECT t.key, d.value, d.rev FROM terms t JOIN docs d ON d.kind = t.kind AND d.key = t.key \
                     WHERE t.kind = ?1 AND t.term >= ?2 AND t.term < ?3 AND t.key > ?4 ORDER BY t.key LIMIT ?5"
                }
                Terms::Prefix(_) => {
                    "SELECT t.key, d.value, d.rev FROM terms t JOIN docs d ON d.kind = t.kind AND d.key = t.key \
                     WHERE t.kind = ?1 AND t.term >= ?2 AND t.term < ?3 AND t.key > ?4 GROUP BY t.key ORDER BY t.key LIMIT ?5"
                }
            };
            let mut st = c.prepare_cached(sql).map_err(err("find"))?;
            let rows = st
                .query_map(params![kind, low, high, after.unwrap_or(""), limit as i64], |r| {
                    Ok((r.get(0)?, Doc { value: r.get(1)?, rev: r.get::<_, i64>(2)? as u64 }))
                })
                .map_err(err("find"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err("find"))
        })
    }

    fn set_terms<'a>(&'a self, kind: &'a str, docs: Vec<(String, Vec<String>)>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut c = self.read();
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err("set terms"))?;
            for (key, terms) in &docs {
                let exists: bool = tx
                    .prepare_cached("SELECT COUNT(*) FROM docs WHERE kind = ?1 AND key = ?2")
                    .and_then(|mut s| s.query_row(params![kind, key], |r| r.get::<_, i64>(0)))
                    .map_err(err("set terms"))?
                    > 0;
                if exists {
                    write_terms(&tx, kind, key, terms).map_err(err("set terms"))?;
                }
            }
            tx.commit().map_err(err("set terms"))
        })
    }

    fn commit<'a>(&'a self, domain: &'a str, writes: Vec<Write>) -> BoxFuture<'a, Result<Committed>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.writer.lock().unwrap_or_else(|e| e.into_inner()).send((domain.to_string(), writes, tx));
        Box::pin(async move {
            let gone = || StateError::Backend { backend: "sqlite", what: "commit", detail: "the writer thread has stopped".into() };
            sent.map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        })
    }

    fn changes<'a>(&'a self, domain: &'a str, after: u64, max_commits: u64) -> BoxFuture<'a, Result<ChangePage>> {
        Box::pin(async move {
            let c = self.read();
            let head = Self::head_now(&c, domain)?;
            let upto = head.min(after.saturating_add(max_commits));
            let mut st = c
                .prepare_cached("SELECT seq, kind, key, value FROM changes WHERE domain = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq, n")
                .map_err(err("read changes"))?;
            let rows = st
                .query_map(params![domain, after as i64, upto as i64], |r| {
                    Ok(Change { seq: r.get::<_, i64>(0)? as u64, kind: r.get(1)?, key: r.get(2)?, value: r.get(3)? })
                })
                .map_err(err("read changes"))?;
            let changes = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err("read changes"))?;
            let gap = after < head && changes.first().is_none_or(|c| c.seq > after + 1);
            Ok(ChangePage { next: if gap { after } else { upto.max(after) }, changes: if gap { Vec::new() } else { changes }, head, gap })
        })
    }

    fn head<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { Self::head_now(&self.read(), domain) })
    }

    fn watch(&self, domain: &str) -> watch::Receiver<u64> {
        self.wakeups.watch(domain)
    }
}

/// Wakes readers when another process (`ferrite keys`, `ferrite functions`) commits to the
/// file: SQLite's `data_version` moves on every commit by another connection (this process's
/// writer included); then the domains whose head moved are woken.
fn poll_other_writers(conn: Connection, wakeups: std::sync::Weak<Wakeups>) {
    let version = |c: &Connection| c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)).ok();
    let heads = |c: &Connection| -> HashMap<String, i64> {
        c.prepare("SELECT domain, seq FROM heads")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .unwrap_or_default()
    };
    let mut last = version(&conn);
    let mut seen = heads(&conn);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let Some(wakeups) = wakeups.upgrade() else { return };
        let now = version(&conn);
        if now != last {
            last = now;
            let current = heads(&conn);
            for (domain, seq) in &current {
                if seen.get(domain) != Some(seq) {
                    wakeups.wake(domain);
                }
            }
            seen = current;
        }
    }
}

/// Replaces a document's terms.
fn write_terms(c: &Connection, kind: &str, key: &str, terms: &[String]) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM terms WHERE kind = ?1 AND key = ?2")?.execute(params![kind, key])?;
    let mut insert = c.prepare_cached("INSERT OR IGNORE INTO terms (kind, term, key) VALUES (?1, ?2, ?3)")?;
    for t in terms {
        insert.execute(params![kind, t, key])?;
    }
    Ok(())
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// The sequence per domain within the open transaction (read from `heads` in it: another
    /// process may have committed since the last one).
    heads: HashMap<String, u64>,
    wakeups: Arc<Wakeups>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            self.group(jobs);
        }
    }

    fn group(&mut self, jobs: Vec<Job>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            for (_, _, done) in jobs {
                let _ = done.send(Err(StateError::Backend { backend: "sqlite", what: "begin", detail: e.to_string() }));
            }
            return;
        }
        self.heads.clear();
        let mut results = Vec::with_capacity(jobs.len());
        for (domain, writes, done) in jobs {
            let r = self.conn.execute_batch("SAVEPOINT batch").map_err(err("savepoint")).and_then(|()| self.batch(&domain, &writes));
            match &r {
                Ok(_) => {
                    let _ = self.conn.execute_batch("RELEASE batch");
                }
                Err(_) => {
                    let _ = self.conn.execute_batch("ROLLBACK TO batch; RELEASE batch");
                    // The batch's sequence was not used: read the head again, as rolled back.
                    self.heads.remove(&domain);
                }
            }
            results.push((domain, r, done));
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.heads.clear();
            tracing::error!(error = %e, "state store commit failed");
            for (_, _, done) in results {
                let _ = done.send(Err(StateError::Backend { backend: "sqlite", what: "commit", detail: e.to_string() }));
            }
            return;
        }
        for (domain, r, done) in results {
            if matches!(r, Ok(Committed { seq }) if seq > 0) {
                self.wakeups.wake(&domain);
            }
            let _ = done.send(r);
        }
    }

    fn head(&mut self, domain: &str) -> Result<u64> {
        if let Some(h) = self.heads.get(domain) {
            return Ok(*h);
        }
        let h = Sqlite::head_now(&self.conn, domain)?;
        self.heads.insert(domain.to_string(), h);
        Ok(h)
    }

    fn batch(&mut self, domain: &str, writes: &[Write]) -> Result<Committed> {
        for w in writes {
            let found: Option<i64> = self
                .conn
                .prepare_cached("SELECT rev FROM docs WHERE kind = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![w.kind, w.key], |r| r.get(0)).optional())
                .map_err(err("check"))?;
            let found = found.map(|r| r as u64);
            if !w.expect.met_by(found) {
                return Err(StateError::Conflict { kind: w.kind.clone(), key: w.key.clone(), expected: w.expect, found });
            }
        }
        if writes.iter().all(|w| w.action == Action::Check) {
            return Ok(Committed { seq: 0 });
        }
        let seq = self.head(domain)? + 1;
        let c = &self.conn;
        for (n, w) in writes.iter().enumerate() {
            let value = match &w.action {
                Action::Check => continue,
                Action::Put(v) => {
                    c.prepare_cached("INSERT OR REPLACE INTO docs (kind, key, rev, value) VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut s| s.execute(params![w.kind, w.key, seq as i64, v]))
                        .map_err(err("put"))?;
                    write_terms(c, &w.kind, &w.key, &w.terms).map_err(err("index"))?;
                    Some(v.as_str())
                }
                Action::Delete => {
                    c.prepare_cached("DELETE FROM docs WHERE kind = ?1 AND key = ?2")
                        .and_then(|mut s| s.execute(params![w.kind, w.key]))
                        .map_err(err("delete"))?;
                    write_terms(c, &w.kind, &w.key, &[]).map_err(err("index"))?;
                    None
                }
            };
            c.prepare_cached("INSERT INTO changes (domain, seq, n, kind, key, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .and_then(|mut s| s.execute(params![domain, seq as i64, n as i64, w.kind, w.key, value]))
                .map_err(err("log change"))?;
        }
        c.prepare_cached("INSERT OR REPLACE INTO heads (domain, seq) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![domain, seq as i64]))
            .map_err(err("advance head"))?;
        if seq % 1024 == 0 && seq > KEPT_CHANGES {
            c.prepare_cached("DELETE FROM changes WHERE domain = ?1 AND seq <= ?2")
                .and_then(|mut s| s.execute(params![domain, (seq - KEPT_CHANGES) as i64]))
                .map_err(err("trim changes"))?;
        }
        self.heads.insert(domain.to_string(), seq);
        Ok(Committed { seq })
    }
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Opens a SQLite state store as a shared handle.
pub fn open(path: &Path, sync: SyncMode) -> Result<super::StateStore> {
    Ok(super::StateStore::new(Arc::new(Sqlite::open(path, sync)?)))
}
