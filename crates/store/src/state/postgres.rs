//! The state store on PostgreSQL (`tokio-postgres` through a `deadpool` pool). The change log
//! is the truth: a commit locks its domain's head row, so sequences are allocated inside the
//! transaction in commit order and a reader never skips a row; `LISTEN/NOTIFY` only wakes
//! readers up (and a reconnected listener wakes them once, for whatever it may have missed).

use super::{Action, Backend, BoxFuture, Change, ChangePage, Committed, Doc, KEPT_CHANGES, Result, StateError, Terms, Wakeups, Write};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

const CHANNEL: &str = "ferrite_changes";
const SCHEMA_VERSION: i32 = 2;
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ferrite_docs (
    kind TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, rev BIGINT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS ferrite_changes (
    domain TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, n INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
    PRIMARY KEY (domain, seq, n));
CREATE TABLE IF NOT EXISTS ferrite_heads (domain TEXT COLLATE "C" PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ferrite_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ferrite_terms (
    kind TEXT COLLATE "C" NOT NULL, term TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (kind, term, key));
CREATE INDEX IF NOT EXISTS ferrite_terms_by_key ON ferrite_terms (kind, key);
"#;

fn err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StateError {
    move |e| StateError::Backend { backend: "postgres", what, detail: e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()) }
}

fn pool_err(what: &'static str) -> impl FnOnce(deadpool_postgres::PoolError) -> StateError {
    move |e| StateError::Backend { backend: "postgres", what, detail: e.to_string() }
}

/// The PostgreSQL state store.
pub struct Postgres {
    pool: Pool,
    /// Every call runs as a task on this runtime, so callers without one (blocking threads)
    /// still reach the pool's connections.
    runtime: tokio::runtime::Handle,
    wakeups: Arc<Wakeups>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects (`url`: `postgres://user:password@host:port/db` or `host=... user=...`),
    /// creates or migrates the schema, and starts the listener. Call inside a Tokio runtime.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Postgres> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| StateError::Backend { backend: "postgres", what: "parse store.postgres_url", detail: e.to_string() })?;
        let manager = Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| StateError::Backend { backend: "postgres", what: "pool", detail: e.to_string() })?;
        {
            let mut c = pool.get().await.map_err(pool_err("connect"))?;
            let tx = c.transaction().await.map_err(err("create schema"))?;
            // Nodes starting together create the schema one at a time.
            tx.execute("SELECT pg_advisory_xact_lock(72361913)", &[]).await.map_err(err("lock schema"))?;
            tx.batch_execute(SCHEMA).await.map_err(err("create schema"))?;
            let v: Option<i32> = tx.query_opt("SELECT max(version) FROM ferrite_schema", &[]).await.map_err(err("read schema"))?.and_then(|r| r.get(0));
            match v {
                None => {
                    tx.execute("INSERT INTO ferrite_schema (version) VALUES ($1)", &[&SCHEMA_VERSION]).await.map_err(err("write schema"))?;
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StateError::Backend {
                        backend: "postgres",
                        what: "open",
                        detail: format!("the database has schema version {v}, newer than this Ferrite's {SCHEMA_VERSION}"),
                    });
                }
                // Version 1 had no terms table; the schema above added it.
                Some(v) if v < SCHEMA_VERSION => {
                    tx.execute("UPDATE ferrite_schema SET version = $1", &[&SCHEMA_VERSION]).await.map_err(err("write schema"))?;
                }
                Some(_) => {}
            }
            tx.commit().await.map_err(err("create schema"))?;
        }
        let wakeups = Arc::new(Wakeups::default());
        tokio::spawn(listen(config, Arc::downgrade(&wakeups)));
        Ok(Postgres { pool, runtime: tokio::runtime::Handle::current(), wakeups })
    }

    /// Runs `f` over the pool as a task of the store's runtime.
    fn run<T, F, Fut>(&self, f: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let task = self.runtime.spawn(f(self.pool.clone()));
        Box::pin(async move {
            task.await.map_err(|e| StateError::Backend { backend: "postgres", what: "run", detail: e.to_string() })?
        })
    }

    async fn head_now(c: &deadpool_postgres::Client, domain: &str) -> Result<u64> {
        let row = c.query_opt("SELECT seq FROM ferrite_heads WHERE domain = $1", &[&domain]).await.map_err(err("read head"))?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }
}

/// Keeps a `LISTEN` connection open, waking readers on every notification; reconnects.
async fn listen(config: tokio_postgres::Config, wakeups: std::sync::Weak<Wakeups>) {
    loop {
        if wakeups.strong_count() == 0 {
            return;
        }
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let w = wakeups.clone();
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(m) = messages.next().await {
                        match m {
                            // The payload is the domain committed to.
                            Ok(AsyncMessage::Notification(n)) => match w.upgrade() {
                                Some(w) => w.wake(n.payload()),
                                None => break,
                            },
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "state store listener lost its connection");
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    tracing::warn!(error = %e, "state store listener could not LISTEN");
                } else if let Some(w) = wakeups.upgrade() {
                    // Whatever was committed while not listening.
                    w.wake_all();
                }
                let _ = driver.await;
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "state store listener could not connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn get<'a>(&'a self, kind: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Doc>>> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.run(move |pool| async move {
            let c = pool.get().await.map_err(pool_err("get"))?;
            let row = c.query_opt("SELECT value, rev FROM ferrite_docs WHERE kind = $1 AND key = $2", &[&kind, &key]).await.map_err(err("get"))?;
            Ok(row.map(|r| Doc { value: r.get(0), rev: r.get::<_, i64>(1) as u64 }))
        })
    }

    fn scan<'a>(&'a self, kind: &'a str, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>> {
        let (kind, after) = (kind.to_string(), after.unwrap_or("").to_string());
        self.run(move |pool| async move {
            let c = pool.get().await.map_err(pool_err("scan"))?;
            let rows = c
                .query("SELECT key, value, rev FROM ferrite_docs WHERE kind = $1 AND key > $2 ORDER BY key LIMIT $3", &[&kind, &after, &(limit as i64)])
                .await
                .map_err(err("scan"))?;
            Ok(rows.into_iter().map(|r| (r.get(0), Doc { value: r.get(1), rev: r.get::<_, i64>(2) as u64 })).collect())
        })
    }

    fn find<'a>(&'a self, kind: &'a str, terms: &'a Terms, after: Option<&'a str>, limit: usize) -> BoxFuture<'a, Result<Vec<(String, Doc)>>> {
        let (kind, after) = (kind.to_string(), after.unwrap_or("").to_string());
        let (low, high) = terms.range();
        let exact = matches!(terms, Terms::Exact(_));
        self.run(move |pool| async move {
            let c = pool.get().await.map_err(pool_err("find"))?;
            let sql = if exact {
                "SELECT t.key, d.value, d.rev FROM ferrite_terms t JOIN ferrite_docs d ON d.kind = t.kind AND d.key = t.key \
                 WHERE t.kind = $1 AND t.term >= $2 AND t.term < $3 AND t.key > $4 ORDER BY t.key LIMIT $5"
            } else {
                "SELECT DISTINCT ON (t.key) t.key, d.value, d.rev FROM ferrite_terms t JOIN ferrite_docs d ON d.kind = t.kind AND d.key = t.key \
                 WHERE t.kind = $1 AND t.term >= $2 AND t.term < $3 AND t.key > $4 ORDER BY t.key LIMIT $5"
            };
            let rows = c.query(sql, &[&kind, &low, &high, &after, &(limit as i64)]).await.map_err(err("find"))?;
            Ok(rows.into_iter().map(|r| (r.get(0), Doc { value: r.get(1), rev: r.get::<_, i64>(2) as u64 })).collect())
        })
    }

    fn set_terms<'a>(&'a self, kind: &'a str, docs: Vec<(String, Vec<String>)>) -> BoxFuture<'a, Result<()>> {
        let kind = kind.to_string();
        self.run(move |pool| async move {
            let mut c = pool.get().await.map_err(pool_err("set terms"))?;
            let tx = c.transaction().await.map_err(err("set terms"))?;
            let keys: Vec<&str> = docs.iter().map(|(k, _)| k.as_str()).collect();
            let (tk, tt): (Vec<&str>, Vec<&str>) = docs.iter().flat_map(|(k, ts)| ts.iter().map(move |t| (k.as_str(), t.as_str()))).unzip();
            tx.execute("DELETE FROM ferrite_terms WHERE kind = $1 AND key = ANY($2::text[])", &[&kind, &keys]).await.map_err(err("set terms"))?;
            tx.execute(
                "INSERT INTO ferrite_terms (kind, term, key) SELECT $1, w.term, w.key FROM unnest($2::text[], $3::text[]) AS w(key, term) \
                 JOIN ferrite_docs d ON d.kind = $1 AND d.key = w.key ON CONFLICT DO NOTHING",
                &[&kind, &tk, &tt],
            )
            .await
            .map_err(err("set terms"))?;
            tx.commit().await.map_err(err("set terms"))
        })
    }

    fn commit<'a>(&'a self, domain: &'a str, writes: Vec<Write>) -> BoxFuture<'a, Result<Committed>> {
        let domain = domain.to_string();
        let wakeups = self.wakeups.clone();
        self.run(move |pool| async move {
            let mut c = pool.get().await.map_err(pool_err("commit"))?;
            let tx = c.transaction().await.map_err(err("begin"))?;
            let changing = writes.iter().any(|w| w.action != Action::Check);
            let head: i64 = if changing {
                tx.execute("INSERT INTO ferrite_heads (domain, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING", &[&domain]).await.map_err(err("create head"))?;
                // Held until commit: one writer per domain at a time, sequences in commit order.
                tx.query_one("SELECT seq FROM ferrite_heads WHERE domain = $1 FOR UPDATE", &[&domain]).await.map_err(err("lock head"))?.get(0)
            } else {
                0
            };
            let kinds: Vec<&str> = writes.iter().map(|w| w.kind.as_str()).collect();
            let keys: Vec<&str> = writes.iter().map(|w| w.key.as_str()).collect();
            let found = tx
                .query(
                    "SELECT d.kind, d.key, d.rev FROM ferrite_docs d JOIN unnest($1::text[], $2::text[]) AS w(kind, key) \
                     ON d.kind = w.kind AND d.key = w.key FOR UPDATE OF d",
                    &[&kinds, &keys],
                )
                .await
                .map_err(err("check"))?;
            let found: std::collections::HashMap<(String, String), u64> =
                found.into_iter().map(|r| ((r.get::<_, String>(0), r.get::<_, String>(1)), r.get::<_, i64>(2) as u64)).collect();
            for w in &writes {
                let rev = found.get(&(w.kind.clone(), w.key.clone())).copied();
                if !w.expect.met_by(rev) {
                    return Err(StateError::Conflict { kind: w.kind.clone(), key: w.key.clone(), expected: w.expect, found: rev });
                }
            }
            if !changing {
                return Ok(Committed { seq: 0 });
            }
            let seq = head + 1;
            let (mut pk, mut pkey, mut pval) = (Vec::new(), Vec::new(), Vec::new());
            let (mut dk, mut dkey) = (Vec::new(), Vec::new());
            let (mut cn, mut ck, mut ckey, mut cval) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (n, w) in writes.iter().enumerate() {
                let value = match &w.action {
                    Action::Check => continue,
                    Action::Put(v) => {
                        pk.push(w.kind.as_str());
                        pkey.push(w.key.as_str());
                        pval.push(v.as_str());
                        Some(v.as_str())
                    }
                    Action::Delete => {
                        dk.push(w.kind.as_str());
                        dkey.push(w.key.as_str());
                        None
                    }
                };
                cn.push(n as i32);
                ck.push(w.kind.as_str());
                ckey.push(w.key.as_str());
                cval.push(value);
            }
            // Every put or delete replaces the document's terms.
            let (ik, ikey): (Vec<&str>, Vec<&str>) = writes.iter().filter(|w| w.action != Action::Check).map(|w| (w.kind.as_str(), w.key.as_str())).unzip();
            tx.execute("DELETE FROM ferrite_terms t USING unnest($1::text[], $2::text[]) AS w(kind, key) WHERE t.kind = w.kind AND t.key = w.key", &[&ik, &ikey])
                .await
                .map_err(err("index"))?;
            let (mut tk, mut tkey, mut tterm) = (Vec::new(), Vec::new(), Vec::new());
            for w in writes.iter().filter(|w| matches!(w.action, Action::Put(_))) {
                for t in &w.terms {
                    tk.push(w.kind.as_str());
                    tkey.push(w.key.as_str());
                    tterm.push(t.as_str());
                }
            }
            if !tk.is_empty() {
                tx.execute(
                    "INSERT INTO ferrite_terms (kind, term, key) SELECT kind, term, key FROM unnest($1::text[], $2::text[], $3::text[]) AS w(kind, key, term) ON CONFLICT DO NOTHING",
                    &[&tk, &tkey, &tterm],
                )
                .await
                .map_err(err("index"))?;
            }
            if !dk.is_empty() {
                tx.execute("DELETE FROM ferrite_docs d USING unnest($1::text[], $2::text[]) AS w(kind, key) WHERE d.kind = w.kind AND d.key = w.key", &[&dk, &dkey])
                    .await
                    .map_err(err("delete"))?;
            }
            if !pk.is_empty() {
                tx.execute(
                    "INSERT INTO ferrite_docs (kind, key, rev, value) SELECT kind, key, $4, value FROM unnest($1::text[], $2::text[], $3::text[]) AS w(kind, key, value) \
                     ON CONFLICT (kind, key) DO UPDATE SET rev = EXCLUDED.rev, value = EXCLUDED.value",
                    &[&pk, &pkey, &pval, &seq],
                )
                .await
                .map_err(err("put"))?;
            }
            tx.execute(
                "INSERT INTO ferrite_changes (domain, seq, n, kind, key, value) SELECT $1, $2, n, kind, key, value \
                 FROM unnest($3::int[], $4::text[], $5::text[], $6::text[]) AS w(n, kind, key, value)",
                &[&domain, &seq, &cn, &ck, &ckey, &cval],
            )
            .await
            .map_err(err("log change"))?;
            tx.execute("UPDATE ferrite_heads SET seq = $2 WHERE domain = $1", &[&domain, &seq]).await.map_err(err("advance head"))?;
            if seq % 1024 == 0 && seq as u64 > KEPT_CHANGES {
                tx.execute("DELETE FROM ferrite_changes WHERE domain = $1 AND seq <= $2", &[&domain, &(seq - KEPT_CHANGES as i64)]).await.map_err(err("trim changes"))?;
            }
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &domain]).await.map_err(err("notify"))?;
            tx.commit().await.map_err(err("commit"))?;
            wakeups.wake(&domain);
            Ok(Committed { seq: seq as u64 })
        })
    }

    fn changes<'a>(&'a self, domain: &'a str, after: u64, max_commits: u64) -> BoxFuture<'a, Result<ChangePage>> {
        let domain = domain.to_string();
        self.run(move |pool| async move {
            let c = pool.get().await.map_err(pool_err("read changes"))?;
            let head = Self::head_now(&c, &domain).await?;
            let upto = head.min(after.saturating_add(max_commits));
            let rows = c
                .query(
                    "SELECT seq, kind, key, value FROM ferrite_changes WHERE domain = $1 AND seq > $2 AND seq <= $3 ORDER BY seq, n",
                    &[&domain, &(after as i64), &(upto as i64)],
                )
                .await
                .map_err(err("read changes"))?;
            let changes: Vec<Change> = rows.into_iter().map(|r| Change { seq: r.get::<_, i64>(0) as u64, kind: r.get(1), key: r.get(2), value: r.get(3) }).collect();
            let gap = after < head && changes.first().is_none_or(|c| c.seq > after + 1);
            Ok(ChangePage { next: if gap { after } else { upto.max(after) }, changes: if gap { Vec::new() } else { changes }, head, gap })
        })
    }

    fn head<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<u64>> {
        let domain = domain.to_string();
        self.run(move |pool| async move {
            let c = pool.get().await.map_err(pool_err("read head"))?;
            Self::head_now(&c, &domain).await
        })
    }

    fn watch(&self, domain: &str) -> watch::Receiver<u64> {
        self.wakeups.watch(domain)
    }
}

/// Checks a connection string without connecting.
pub fn check_postgres_url(url: &str) -> std::result::Result<(), String> {
    url.parse::<tokio_postgres::Config>().map(|_| ()).map_err(|e| e.to_string())
}

/// Connects a PostgreSQL state store as a shared handle.
pub async fn connect(url: &str, max_connections: usize) -> Result<super::StateStore> {
    Ok(super::StateStore::new(Arc::new(Postgres::connect(url, max_connections).await?)))
}
