//! Tests only: a fresh PostgreSQL database for one test. With `FERRITE_TEST_POSTGRES_URL` set
//! (scripts/test starts one cluster for the whole run) the database is created on that cluster
//! and dropped at the end; without it a private cluster is started under a temporary directory
//! by `scripts/pg` and stopped at the end.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg")
}

/// A database that exists while this value lives.
#[derive(Debug)]
pub struct Database {
    url: String,
    admin: String,
    name: String,
    private_cluster: Option<PathBuf>,
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql]).output().expect("running psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn with_db(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => format!("{url} dbname={db}"),
    }
}

impl Database {
    /// A new, empty database.
    pub fn create() -> Database {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("ferrite_test_{}_{n}", std::process::id());
        let (admin, private_cluster) = match std::env::var("FERRITE_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let dir = std::env::temp_dir().join(format!("ferrite-pg-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let out = Command::new(script()).arg("start").arg(&dir).output().expect("running scripts/pg");
                assert!(out.status.success(), "scripts/pg start: {}", String::from_utf8_lossy(&out.stderr));
                (String::from_utf8_lossy(&out.stdout).trim().to_string(), Some(dir))
            }
        };
        psql(&admin, &format!("CREATE DATABASE {name}"));
        Database { url: with_db(&admin, &name), admin, name, private_cluster }
    }

    /// The database's URL (`postgres://user@host:port/name`).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        match &self.private_cluster {
            Some(dir) => {
                let _ = Command::new(script()).arg("stop").arg(dir).output();
            }
            None => {
                let _ = Command::new("psql").args([self.admin.as_str(), "-qtAc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)]).output();
            }
        }
    }
}
