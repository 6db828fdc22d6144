//! Ferrite's embedded store: one SQLite database (WAL) under the data directory. Callers send
//! batches of [`Op`]s; each batch is applied in one transaction (group commit), and [`Store::load`]
//! reads everything back at start.
//!
//! This crate knows SQL and nothing about MQTT: messages, sessions and subscriptions arrive as
//! plain rows (properties as opaque bytes).

mod docs;
pub mod cache;
pub mod replica;
pub mod state;

pub use docs::{DOMAIN as DOCUMENTS_DOMAIN, DocOp, Documents};
pub use rusqlite::Error as SqlError;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// A store failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the store at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("store {what}: {source}")]
    Sql { what: &'static str, source: rusqlite::Error },
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// Opens a connection with Ferrite's settings: WAL, the sync mode, and a busy timeout so that
/// the broker's writer and the documents connection can share the file.
pub(crate) fn connect(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(open_err)?;
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
        SyncMode::Off => "OFF",
    };
    conn.execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};")).map_err(open_err)?;
    Ok(conn)
}

fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { what, source }
}

/// When a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync on every commit: survives power loss.
    Full,
    /// WAL without fsync per commit: survives a process crash (kill -9), not power loss.
    Normal,
    /// No fsync at all (tests and benchmarks only).
    Off,
}

/// A message as stored: for retained messages and for session queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// Encoded MQTT 5 properties (opaque here).
    pub props: Vec<u8>,
    /// Unix time in milliseconds after which the message is dropped.
    pub expires_at_ms: Option<i64>,
    /// Unix time in milliseconds when the message was published.
    pub created_ms: i64,
    /// The client id of its publisher (kept with queued messages: an in-process service
    /// answers a request restored after a restart to the client that sent it).
    pub publisher: Option<String>,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub filter: String,
    /// The subscription options byte as in SUBSCRIBE.
    pub options: u8,
    pub sub_id: Option<u32>,
}

/// One message queued for, or in flight to, a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRow {
    /// Position in the session's queue (increasing).
    pub seq: u64,
    /// 0 while queued; the packet identifier once sent.
    pub packet_id: u16,
    /// Caller-defined stage of an in-flight message (0 while queued).
    pub stage: u8,
    pub qos: u8,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    pub msg: Arc<StoredMessage>,
}

/// A session as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub client_id: String,
    pub protocol: u8,
    pub expiry_secs: u32,
    /// When the session's connection ended; `None` if it was connected when Ferrite stopped.
    pub disconnected_at_ms: Option<i64>,
    /// The principal (certificate id, authorizer principal) that owns the session; `None` for
    /// a session of an unauthenticated (loopback) client.
    pub principal: Option<String>,
    pub subscriptions: Vec<SubscriptionRow>,
    pub messages: Vec<QueuedRow>,
    pub incoming_qos2: Vec<u16>,
}

/// Everything [`Store::load`] returns.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub retained: Vec<StoredMessage>,
    pub sessions: Vec<SessionRow>,
}

/// One change. Deletes may arrive before the insert they cancel (a subscriber can acknowledge a
/// message before the publisher's batch is written); the store remembers them and drops the
/// late insert.
#[derive(Debug, Clone)]
pub enum Op {
    PutRetained(Arc<StoredMessage>),
    DeleteRetained(String),
    PutSession { client_id: String, protocol: u8, expiry_secs: u32, principal: Option<String> },
    /// `at_ms: None` marks the session connected.
    SessionDisconnected { client_id: String, at_ms: Option<i64> },
    DeleteSession(String),
    PutSubscription { client_id: String, sub: SubscriptionRow },
    DeleteSubscription { client_id: String, filter: String },
    PutMessage { client_id: String, row: QueuedRow },
    SetStage { client_id: String, seq: u64, packet_id: u16, stage: u8 },
    DeleteMessage { client_id: String, seq: u64 },
    PutIncomingQos2 { client_id: String, packet_id: u16 },
    DeleteIncomingQos2 { client_id: String, packet_id: u16 },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS retained (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, props BLOB NOT NULL, expires_at INTEGER,
    created_ms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY, protocol INTEGER NOT NULL, expiry_secs INTEGER NOT NULL, disconnected_at INTEGER,
    principal TEXT);
CREATE TABLE IF NOT EXISTS subscriptions (
    client_id TEXT NOT NULL, filter TEXT NOT NULL, options INTEGER NOT NULL, sub_id INTEGER,
    PRIMARY KEY (client_id, filter));
CREATE TABLE IF NOT EXISTS messages (
    client_id TEXT NOT NULL, seq INTEGER NOT NULL, packet_id INTEGER NOT NULL, stage INTEGER NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, sub_ids TEXT NOT NULL, topic TEXT NOT NULL,
    payload BLOB NOT NULL, props BLOB NOT NULL, expires_at INTEGER, created_ms INTEGER NOT NULL DEFAULT 0,
    publisher TEXT, PRIMARY KEY (client_id, seq));
CREATE TABLE IF NOT EXISTS incoming_qos2 (
    client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, PRIMARY KEY (client_id, packet_id));
";

/// Brings a database of an earlier version up to [`SCHEMA`]: version 2 added the owner of a
/// session (`sessions.principal`), version 3 the publisher of a queued message
/// (`messages.publisher`).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_principal = conn.prepare("SELECT principal FROM sessions LIMIT 0").is_ok();
    if !has_principal {
        conn.execute_batch("ALTER TABLE sessions ADD COLUMN principal TEXT")?;
    }
    let has_publisher = conn.prepare("SELECT publisher FROM messages LIMIT 0").is_ok();
    if !has_publisher {
        conn.execute_batch("ALTER TABLE messages ADD COLUMN publisher TEXT")?;
    }
    conn.execute_batch("PRAGMA user_version = 3")
}

/// The open database plus the bookkeeping for out-of-order deletes.
pub struct Store {
    conn: Connection,
    tombstones: HashSet<(String, u64)>,
    early_stage: HashMap<(String, u64), (u16, u8)>,
}

impl Store {
    /// Opens (creating if needed) the database file and migrates its schema.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
        let conn = connect(path, sync)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        migrate(&conn).map_err(open_err)?;
        Ok(Store { conn, tombstones: HashSet::new(), early_stage: HashMap::new() })
    }

    /// Applies a batch in one transaction.
    pub fn apply(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        for op in ops {
            match op {
                Op::PutRetained(m) => {
                    tx.prepare_cached("INSERT OR REPLACE INTO retained VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                        .and_then(|mut s| s.execute(params![m.topic, m.payload, m.qos, m.props, m.expires_at_ms, m.created_ms]))
                        .map_err(sql("put retained"))?;
                }
                Op::DeleteRetained(topic) => {
                    tx.prepare_cached("DELETE FROM retained WHERE topic = ?1")
                        .and_then(|mut s| s.execute(params![topic]))
                        .map_err(sql("delete retained"))?;
                }
                Op::PutSession { client_id, protocol, expiry_secs, principal } => {
                    tx.prepare_cached(
                        "INSERT INTO sessions (client_id, protocol, expiry_secs, disconnected_at, principal) \
                         VALUES (?1, ?2, ?3, NULL, ?4) ON CONFLICT(client_id) DO UPDATE SET \
                         protocol = ?2, expiry_secs = ?3, disconnected_at = NULL, principal = ?4",
                    )
                    .and_then(|mut s| s.execute(params![client_id, protocol, expiry_secs, principal]))
                    .map_err(sql("put session"))?;
                }
                Op::SessionDisconnected { client_id, at_ms } => {
                    tx.prepare_cached("UPDATE sessions SET disconnected_at = ?2 WHERE client_id = ?1")
                        .and_then(|mut s| s.execute(params![client_id, at_ms]))
                        .map_err(sql("mark session"))?;
                }
                Op::DeleteSession(client_id) => {
                    for table in ["sessions", "subscriptions", "messages", "incoming_qos2"] {
                        tx.prepare_cached(&format!("DELETE FROM {table} WHERE client_id = ?1"))
                            .and_then(|mut s| s.execute(params![client_id]))
                            .map_err(sql("delete session"))?;
                    }
                    self.tombstones.retain(|(c, _)| c != client_id);
                    self.early_stage.retain(|(c, _), _| c != client_id);
                }
                Op::PutSubscription { client_id, sub } => {
                    tx.prepare_cached("INSERT OR REPLACE INTO subscriptions VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut s| s.execute(params![client_id, sub.filter, sub.options, sub.sub_id]))
                        .map_err(sql("put subscription"))?;
                }
                Op::DeleteSubscription { client_id, filter } => {
                    tx.prepare_cached("DELETE FROM subscriptions WHERE client_id = ?1 AND filter = ?2")
                        .and_then(|mut s| s.execute(params![client_id, filter]))
                        .map_err(sql("delete subscription"))?;
                }
                Op::PutMessage { client_id, row } => {
                    let key = (client_id.clone(), row.seq);
                    if self.tombstones.remove(&key) {
                        continue;
                    }
                    let (packet_id, stage) = self.early_stage.remove(&key).unwrap_or((row.packet_id, row.stage));
                    let m = &row.msg;
                    let sub_ids = row.sub_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO messages (client_id, seq, packet_id, stage, qos, retain, sub_ids, topic, payload, props, \
                         expires_at, created_ms, publisher) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            client_id, row.seq as i64, packet_id, stage, row.qos, row.retain, sub_ids, m.topic, m.payload,
                            m.props, m.expires_at_ms, m.created_ms, m.publisher
                        ])
                    })
                        .map_err(sql("put message"))?;
                }
                Op::SetStage { client_id, seq, packet_id, stage } => {
                    let n = tx
                        .prepare_cached("UPDATE messages SET packet_id = ?3, stage = ?4 WHERE client_id = ?1 AND seq = ?2")
                        .and_then(|mut s| s.execute(params![client_id, *seq as i64, packet_id, stage]))
                        .map_err(sql("set message stage"))?;
                    if n == 0 {
                        self.early_stage.insert((client_id.clone(), *seq), (*packet_id, *stage));
                    }
                }
                Op::DeleteMessage { client_id, seq } => {
                    let n = tx
                        .prepare_cached("DELETE FROM messages WHERE client_id = ?1 AND seq = ?2")
                        .and_then(|mut s| s.execute(params![client_id, *seq as i64]))
                        .map_err(sql("delete message"))?;
                    let key = (client_id.clone(), *seq);
                    self.early_stage.remove(&key);
                    if n == 0 {
                        self.tombstones.insert(key);
                    }
                }
                Op::PutIncomingQos2 { client_id, packet_id } => {
                    tx.prepare_cached("INSERT OR REPLACE INTO incoming_qos2 VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![client_id, packet_id]))
                        .map_err(sql("put qos2 id"))?;
                }
                Op::DeleteIncomingQos2 { client_id, packet_id } => {
                    tx.prepare_cached("DELETE FROM incoming_qos2 WHERE client_id = ?1 AND packet_id = ?2")
                        .and_then(|mut s| s.execute(params![client_id, packet_id]))
                        .map_err(sql("delete qos2 id"))?;
                }
            }
        }
        tx.commit().map_err(sql("commit"))
    }

    /// Purges what expired by `now_ms`, then reads every retained message and session.
    pub fn load(&mut self, now_ms: i64) -> Result<Snapshot, StoreError> {
        self.purge_expired(now_ms)?;
        let c = &self.conn;
        let mut snap = Snapshot::default();
        let mut st = c.prepare("SELECT topic, payload, qos, props, expires_at, created_ms FROM retained ORDER BY topic").map_err(sql("load retained"))?;
        let rows = st
            .query_map([], |r| {
                Ok(StoredMessage {
                    topic: r.get(0)?,
                    payload: r.get(1)?,
                    qos: r.get(2)?,
                    retain: true,
                    props: r.get(3)?,
                    expires_at_ms: r.get(4)?,
                    created_ms: r.get(5)?,
                    publisher: None,
                })
            })
            .map_err(sql("load retained"))?;
        for row in rows {
            snap.retained.push(row.map_err(sql("load retained"))?);
        }
        let mut sessions: HashMap<String, SessionRow> = HashMap::new();
        let mut st = c.prepare("SELECT client_id, protocol, expiry_secs, disconnected_at, principal FROM sessions").map_err(sql("load sessions"))?;
        let rows = st
            .query_map([], |r| {
                Ok(SessionRow {
                    client_id: r.get(0)?,
                    protocol: r.get(1)?,
                    expiry_secs: r.get(2)?,
                    disconnected_at_ms: r.get(3)?,
                    principal: r.get(4)?,
                    subscriptions: Vec::new(),
                    messages: Vec::new(),
                    incoming_qos2: Vec::new(),
                })
            })
            .map_err(sql("load sessions"))?;
        for row in rows {
            let s = row.map_err(sql("load sessions"))?;
            sessions.insert(s.client_id.clone(), s);
        }
        let mut st = c.prepare("SELECT client_id, filter, options, sub_id FROM subscriptions").map_err(sql("load subscriptions"))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, SubscriptionRow { filter: r.get(1)?, options: r.get(2)?, sub_id: r.get(3)? })))
            .map_err(sql("load subscriptions"))?;
        for row in rows {
            let (id, sub) = row.map_err(sql("load subscriptions"))?;
            if let Some(s) = sessions.get_mut(&id) {
                s.subscriptions.push(sub);
            }
        }
        let mut st = c
            .prepare(
                "SELECT client_id, seq, packet_id, stage, qos, retain, sub_ids, topic, payload, props, expires_at, created_ms, \
                 publisher FROM messages ORDER BY client_id, seq",
            )
            .map_err(sql("load messages"))?;
        let rows = st
            .query_map([], |r| {
                let sub_ids: String = r.get(6)?;
                let msg = StoredMessage {
                    topic: r.get(7)?,
                    payload: r.get(8)?,
                    qos: r.get(4)?,
                    retain: r.get(5)?,
                    props: r.get(9)?,
                    expires_at_ms: r.get(10)?,
                    created_ms: r.get(11)?,
                    publisher: r.get(12)?,
                };
                Ok((
                    r.get::<_, String>(0)?,
                    QueuedRow {
                        seq: r.get::<_, i64>(1)? as u64,
                        packet_id: r.get(2)?,
                        stage: r.get(3)?,
                        qos: r.get(4)?,
                        retain: r.get(5)?,
                        sub_ids: sub_ids.split(',').filter_map(|s| s.parse().ok()).collect(),
                        msg: Arc::new(msg),
                    },
                ))
            })
            .map_err(sql("load messages"))?;
        for row in rows {
            let (id, m) = row.map_err(sql("load messages"))?;
            if let Some(s) = sessions.get_mut(&id) {
                s.messages.push(m);
            }
        }
        let mut st = c.prepare("SELECT client_id, packet_id FROM incoming_qos2").map_err(sql("load qos2 ids"))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?))).map_err(sql("load qos2 ids"))?;
        for row in rows {
            let (id, pid) = row.map_err(sql("load qos2 ids"))?;
            if let Some(s) = sessions.get_mut(&id) {
                s.incoming_qos2.push(pid);
            }
        }
        let mut v: Vec<SessionRow> = sessions.into_values().collect();
        v.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        snap.sessions = v;
        Ok(snap)
    }

    /// Deletes expired retained messages, queued messages and sessions. A session that was
    /// connected when Ferrite stopped counts as disconnected at `now_ms`.
    pub fn purge_expired(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin purge"))?;
        tx.execute("UPDATE sessions SET disconnected_at = ?1 WHERE disconnected_at IS NULL", params![now_ms])
            .map_err(sql("purge"))?;
        tx.execute_batch(&format!(
            "DELETE FROM retained WHERE expires_at IS NOT NULL AND expires_at <= {now_ms};
             DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= {now_ms};
             CREATE TEMP TABLE IF NOT EXISTS gone (client_id TEXT PRIMARY KEY);
             DELETE FROM gone;
             INSERT INTO gone SELECT client_id FROM sessions WHERE disconnected_at + expiry_secs * 1000 <= {now_ms};
             DELETE FROM sessions WHERE client_id IN gone;
             DELETE FROM subscriptions WHERE client_id IN gone;
             DELETE FROM messages WHERE client_id IN gone;
             DELETE FROM incoming_qos2 WHERE client_id IN gone;"
        ))
        .map_err(sql("purge"))?;
        tx.commit().map_err(sql("commit purge"))
    }

    /// The stored expiry of a session, for tests and tools.
    pub fn session_expiry(&self, client_id: &str) -> Result<Option<u32>, StoreError> {
        self.conn
            .query_row("SELECT expiry_secs FROM sessions WHERE client_id = ?1", params![client_id], |r| r.get(0))
            .optional()
            .map_err(sql("read session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ferrite-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("ferrite.db")
    }

    fn msg(topic: &str, expires: Option<i64>) -> Arc<StoredMessage> {
        Arc::new(StoredMessage { topic: topic.into(), payload: b"p".to_vec(), qos: 1, retain: false, props: vec![], expires_at_ms: expires, created_ms: 0, publisher: None })
    }

    fn row(seq: u64, m: Arc<StoredMessage>) -> QueuedRow {
        QueuedRow { seq, packet_id: 0, stage: 0, qos: 1, retain: false, sub_ids: vec![3, 4], msg: m }
    }

    #[test]
    fn sessions_survive_reopen_with_their_messages() {
        let path = tmp("reopen");
        {
            let mut s = Store::open(&path, SyncMode::Full).unwrap();
            s.apply(&[
                Op::PutSession { client_id: "c".into(), protocol: 5, expiry_secs: 100, principal: None },
                Op::PutSubscription { client_id: "c".into(), sub: SubscriptionRow { filter: "a/#".into(), options: 1, sub_id: Some(7) } },
                Op::PutMessage { client_id: "c".into(), row: row(1, msg("a/1", None)) },
                Op::PutMessage { client_id: "c".into(), row: row(2, msg("a/2", None)) },
                Op::SetStage { client_id: "c".into(), seq: 1, packet_id: 9, stage: 1 },
                Op::PutIncomingQos2 { client_id: "c".into(), packet_id: 5 },
                Op::PutRetained(msg("r", None)),
            ])
            .unwrap();
        }
        let mut s = Store::open(&path, SyncMode::Full).unwrap();
        let snap = s.load(1_000).unwrap();
        assert_eq!(snap.retained.len(), 1);
        let c = &snap.sessions[0];
        assert_eq!(c.subscriptions[0].sub_id, Some(7));
        assert_eq!(c.messages.len(), 2);
        assert_eq!((c.messages[0].packet_id, c.messages[0].stage), (9, 1));
        assert_eq!(c.messages[0].sub_ids, vec![3, 4]);
        assert_eq!(c.incoming_qos2, vec![5]);
        assert_eq!(c.disconnected_at_ms, Some(1_000));
    }

    #[test]
    fn a_delete_before_its_insert_cancels_it() {
        let mut s = Store::open(&tmp("early"), SyncMode::Off).unwrap();
        s.apply(&[Op::PutSession { client_id: "c".into(), protocol: 5, expiry_secs: 100, principal: None }]).unwrap();
        s.apply(&[Op::DeleteMessage { client_id: "c".into(), seq: 1 }, Op::SetStage { client_id: "c".into(), seq: 2, packet_id: 4, stage: 2 }])
            .unwrap();
        s.apply(&[Op::PutMessage { client_id: "c".into(), row: row(1, msg("x", None)) }, Op::PutMessage { client_id: "c".into(), row: row(2, msg("y", None)) }])
            .unwrap();
        let snap = s.load(0).unwrap();
        let m = &snap.sessions[0].messages;
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].seq, m[0].packet_id, m[0].stage), (2, 4, 2));
    }

    #[test]
    fn expired_things_are_purged() {
        let mut s = Store::open(&tmp("purge"), SyncMode::Off).unwrap();
        s.apply(&[
            Op::PutSession { client_id: "old".into(), protocol: 4, expiry_secs: 1, principal: None },
            Op::SessionDisconnected { client_id: "old".into(), at_ms: Some(0) },
            Op::PutSession { client_id: "new".into(), protocol: 4, expiry_secs: 100, principal: None },
            Op::PutMessage { client_id: "new".into(), row: row(1, msg("gone", Some(500))) },
            Op::PutMessage { client_id: "new".into(), row: row(2, msg("kept", Some(5_000))) },
            Op::PutRetained(msg("r-gone", Some(10))),
        ])
        .unwrap();
        let snap = s.load(2_000).unwrap();
        assert!(snap.retained.is_empty());
        assert_eq!(snap.sessions.len(), 1);
        assert_eq!(snap.sessions[0].messages.len(), 1);
        assert_eq!(snap.sessions[0].messages[0].msg.topic, "kept");
    }
}
