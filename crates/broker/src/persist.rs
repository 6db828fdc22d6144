//! The store writer: one thread that applies batches of store ops with group commit, and tells
//! each submitter when its ops are durable.

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;
use store::{Op, Snapshot, Store, StoreError, SyncMode};
use tokio::sync::oneshot;

/// Ops gathered into one transaction at most.
const MAX_BATCH_OPS: usize = 20_000;

enum Job {
    Ops { ops: Vec<Op>, done: Option<oneshot::Sender<bool>> },
    Stop(oneshot::Sender<()>),
}

/// Handle to the writer thread.
#[derive(Debug)]
pub struct Persister {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// A promise that submitted ops are committed: resolves to false if the commit failed.
pub type Durable = oneshot::Receiver<bool>;

impl Persister {
    /// Opens the store, reads its snapshot and starts the writer thread.
    pub fn open(path: &Path, sync: SyncMode, now_ms: i64) -> Result<(Persister, Snapshot), StoreError> {
        let mut store = Store::open(path, sync)?;
        let snapshot = store.load(now_ms)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ferrite-store".into())
            .spawn(move || writer(store, rx))?;
        Ok((Persister { tx: Mutex::new(tx) }, snapshot))
    }

    fn send(&self, job: Job) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job).is_ok()
    }

    /// Queues ops for the next commit, without waiting.
    pub fn submit(&self, ops: Vec<Op>) {
        if !ops.is_empty() {
            self.send(Job::Ops { ops, done: None });
        }
    }

    /// Queues ops and returns a promise of their commit.
    pub fn submit_durable(&self, ops: Vec<Op>) -> Durable {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Ops { ops, done: Some(tx) });
        rx
    }

    /// Commits everything submitted so far and stops the writer.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Job::Stop(tx)) {
            let _ = rx.await;
        }
    }
}

fn writer(mut store: Store, rx: mpsc::Receiver<Job>) {
    let mut stop = None;
    while stop.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut ops = Vec::new();
        let mut dones = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Ops { ops: o, done } => {
                    ops.extend(o);
                    dones.extend(done);
                }
                Job::Stop(s) => {
                    stop = Some(s);
                    break;
                }
            }
            if ops.len() < MAX_BATCH_OPS {
                next = rx.try_recv().ok();
            }
        }
        let ok = ops.is_empty()
            || match store.apply(&ops) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, ops = ops.len(), "store commit failed; nothing in this batch is acknowledged");
                    false
                }
            };
        for d in dones {
            let _ = d.send(ok);
        }
    }
    if let Some(s) = stop {
        let _ = s.send(());
    }
}
