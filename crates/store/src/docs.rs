//! Documents: a small key-value table of JSON documents by kind, for control-plane state
//! (registry entities, access keys, settings). Every `apply` is one committed transaction.

use crate::{StoreError, SyncMode, sql};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

/// One change to the documents table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOp {
    Put { kind: &'static str, key: String, value: String },
    Delete { kind: &'static str, key: String },
}

/// A connection to the documents table (the same database file as the broker's tables).
#[derive(Debug)]
pub struct Documents {
    conn: Mutex<Connection>,
}

impl Documents {
    /// Opens the database file (creating the table if needed).
    pub fn open(path: &Path, sync: SyncMode) -> Result<Documents, StoreError> {
        let conn = crate::connect(path, sync)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS documents (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key));")
            .map_err(sql("create documents"))?;
        Ok(Documents { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every document of a kind, ordered by key.
    pub fn load(&self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        let c = self.lock();
        let mut st = c.prepare_cached("SELECT key, value FROM documents WHERE kind = ?1 ORDER BY key").map_err(sql("load documents"))?;
        let rows = st.query_map(params![kind], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql("load documents"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql("load documents"))
    }

    /// One document.
    pub fn get(&self, kind: &str, key: &str) -> Result<Option<String>, StoreError> {
        let c = self.lock();
        c.query_row("SELECT value FROM documents WHERE kind = ?1 AND key = ?2", params![kind, key], |r| r.get(0))
            .optional()
            .map_err(sql("get document"))
    }

    /// Applies the changes in one transaction.
    pub fn apply(&self, ops: &[DocOp]) -> Result<(), StoreError> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(sql("begin"))?;
        for op in ops {
            match op {
                DocOp::Put { kind, key, value } => tx
                    .prepare_cached("INSERT OR REPLACE INTO documents VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![kind, key, value]))
                    .map_err(sql("put document"))?,
                DocOp::Delete { kind, key } => tx
                    .prepare_cached("DELETE FROM documents WHERE kind = ?1 AND key = ?2")
                    .and_then(|mut s| s.execute(params![kind, key]))
                    .map_err(sql("delete document"))?,
            };
        }
        tx.commit().map_err(sql("commit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_share_the_file_with_the_broker_tables() {
        let dir = std::env::temp_dir().join(format!("ferrite-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ferrite.db");
        let _broker = crate::Store::open(&path, SyncMode::Off).unwrap();
        let d = Documents::open(&path, SyncMode::Off).unwrap();
        d.apply(&[
            DocOp::Put { kind: "thing", key: "b".into(), value: "{\"n\":2}".into() },
            DocOp::Put { kind: "thing", key: "a".into(), value: "{\"n\":1}".into() },
            DocOp::Put { kind: "other", key: "a".into(), value: "x".into() },
        ])
        .unwrap();
        d.apply(&[DocOp::Delete { kind: "thing", key: "b".into() }]).unwrap();
        let again = Documents::open(&path, SyncMode::Off).unwrap();
        assert_eq!(again.load("thing").unwrap(), vec![("a".to_string(), "{\"n\":1}".to_string())]);
        assert_eq!(again.get("other", "a").unwrap().as_deref(), Some("x"));
        assert_eq!(again.get("other", "b").unwrap(), None);
    }
}
