//! The state store contract (`store::state::contract`) against SQLite and a real PostgreSQL.

use store::state::{StateStore, SyncMode, contract};

fn sqlite() -> (StateStore, std::path::PathBuf) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("ferrite-contract-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (store::state::open_sqlite(&dir.join("state.db"), SyncMode::Off).unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_meets_the_contract() {
    for check in contract::CHECKS {
        let (s, dir) = sqlite();
        contract::run(check, &s).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_meets_the_contract() {
    for check in contract::CHECKS {
        let db = testpg::Database::create();
        let s = store::state::connect_postgres(db.url(), 8).await.unwrap();
        contract::run(check, &s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wakes_a_second_node() {
    let db = testpg::Database::create();
    let a = store::state::connect_postgres(db.url(), 4).await.unwrap();
    let b = store::state::connect_postgres(db.url(), 4).await.unwrap();
    let mut w = b.watch("d");
    // The listener may still be connecting: wait for its first wake-up before committing.
    tokio::time::timeout(std::time::Duration::from_secs(5), w.changed()).await.unwrap().unwrap();
    w.borrow_and_update();
    a.commit("d", vec![store::state::Write::put("k", "a", "1")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), w.changed()).await.expect("b is notified of a's commit").unwrap();
    assert_eq!(b.changes("d", 0, 10).await.unwrap().changes.len(), 1);
}

#[test]
fn a_legacy_documents_table_is_imported_once() {
    let (s, dir) = sqlite();
    drop(s);
    let legacy = dir.join("ferrite.db");
    {
        let c = rusqlite::Connection::open(&legacy).unwrap();
        c.execute_batch("CREATE TABLE documents (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key)); INSERT INTO documents VALUES ('thing', 't1', '{}'), ('setting', 'account-id', '1');").unwrap();
    }
    let sq = store::state::Sqlite::open(&dir.join("state.db"), SyncMode::Off).unwrap();
    assert_eq!(sq.import_legacy(&legacy).unwrap(), 2);
    assert_eq!(sq.import_legacy(&legacy).unwrap(), 0);
    let s = StateStore::new(std::sync::Arc::new(sq));
    assert_eq!(s.get_blocking("setting", "account-id").unwrap().unwrap().value, "1");
    let _ = std::fs::remove_dir_all(dir);
}
