//! Documents: the state store seen as a plain key-value table of JSON documents by kind, for
//! services not yet moved onto replicas of their own domain (they write with no expectations,
//! in the domain `documents`). Synchronous: call from blocking threads, not async tasks.

use crate::StoreError;
use crate::state::{StateStore, Write};
use crate::SyncMode;
use std::path::Path;

/// The domain the plain documents are logged in.
pub const DOMAIN: &str = "documents";

/// One change to the documents table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOp {
    Put { kind: &'static str, key: String, value: String },
    Delete { kind: &'static str, key: String },
}

impl DocOp {
    /// The state store write (no expectation).
    pub fn write(&self) -> Write {
        match self {
            DocOp::Put { kind, key, value } => Write::put(kind, key.clone(), value.clone()),
            DocOp::Delete { kind, key } => Write::delete(kind, key.clone()),
        }
    }
}

/// Documents over a state store.
#[derive(Debug, Clone)]
pub struct Documents {
    state: StateStore,
}

impl Documents {
    /// A SQLite state store at `path` (tests and tools).
    pub fn open(path: &Path, sync: SyncMode) -> Result<Documents, StoreError> {
        Ok(Documents { state: crate::state::open_sqlite(path, sync)? })
    }

    pub fn new(state: StateStore) -> Documents {
        Documents { state }
    }

    /// The state store underneath.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// Every document of a kind, ordered by key.
    pub fn load(&self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.state.scan_all_blocking(kind)?.into_iter().map(|(k, d)| (k, d.value)).collect())
    }

    /// One document.
    pub fn get(&self, kind: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state.get_blocking(kind, key)?.map(|d| d.value))
    }

    /// Applies the changes in one transaction, in order (of two writes to one document, the
    /// later one counts).
    pub fn apply(&self, ops: &[DocOp]) -> Result<(), StoreError> {
        let writes = crate::replica::last_writes(ops.iter().map(DocOp::write).collect());
        for chunk in writes.chunks(crate::state::MAX_WRITES_PER_COMMIT) {
            self.state.commit_blocking(DOMAIN, chunk.to_vec())?;
        }
        Ok(())
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
        d.apply(&[DocOp::Put { kind: "other", key: "b".into(), value: "1".into() }, DocOp::Delete { kind: "other", key: "b".into() }]).unwrap();
        let again = Documents::open(&path, SyncMode::Off).unwrap();
        assert_eq!(again.load("thing").unwrap(), vec![("a".to_string(), "{\"n\":1}".to_string())]);
        assert_eq!(again.get("other", "a").unwrap().as_deref(), Some("x"));
        assert_eq!(again.get("other", "b").unwrap(), None);
    }
}
