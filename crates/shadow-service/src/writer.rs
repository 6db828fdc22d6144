//! A group-commit writer for shadows: writes from many requests are applied in one
//! transaction, in submission order, and each submitter learns when its write is committed.
//!
//! Requests are applied to memory before their write is durable (so the next request on the
//! same shadow builds on it), and answered only once it is. When a commit fails, the writer
//! takes the shadows' lock — no request can be applied meanwhile —, fails that batch and every
//! write queued behind it (they may build on it), and puts the shadows they touched back to
//! what the store holds.

use crate::{ShadowId, StoredShadow};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use store::{DocOp, Documents, StoreError};
use tokio::sync::oneshot;

/// Resolves to true once the write is committed (false if the commit failed).
pub type Durable = oneshot::Receiver<bool>;

type Job = (Vec<DocOp>, oneshot::Sender<bool>);

/// The shadows in memory, shared with the service.
pub(crate) type Memory = Arc<Mutex<BTreeMap<ShadowId, StoredShadow>>>;

/// The handle to the writer thread.
pub struct Writer {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl Writer {
    /// Starts the writer thread over `docs`; `memory` is restored from it when a commit fails.
    pub(crate) fn start(docs: Arc<Documents>, memory: Memory) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("ferrite-shadows".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut ops = first.0;
                let mut done = vec![first.1];
                while let Ok((more, d)) = rx.try_recv() {
                    ops.extend(more);
                    done.push(d);
                    if ops.len() > 10_000 {
                        break;
                    }
                }
                match docs.apply(&ops) {
                    Ok(()) => {
                        for d in done {
                            let _ = d.send(true);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "shadow store commit failed; the shadows it touched are restored from the store");
                        let mut mem = memory.lock().unwrap_or_else(|e| e.into_inner());
                        while let Ok((more, d)) = rx.try_recv() {
                            ops.extend(more);
                            done.push(d);
                        }
                        restore(&docs, &mut mem, &ops);
                        for d in done {
                            let _ = d.send(false);
                        }
                    }
                }
            }
        })?;
        Ok(Writer { tx: Mutex::new(tx) })
    }

    /// Queues a write.
    pub fn write(&self, ops: Vec<DocOp>) -> Durable {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.lock().unwrap_or_else(|e| e.into_inner()).send((ops, tx));
        rx
    }
}

/// Puts the shadows named by `ops` back to their stored state (absent if not stored).
fn restore(docs: &Documents, mem: &mut BTreeMap<ShadowId, StoredShadow>, ops: &[DocOp]) {
    for op in ops {
        let (DocOp::Put { key, .. } | DocOp::Delete { key, .. }) = op;
        let Some(id) = ShadowId::from_key(key) else { continue };
        match docs.get(crate::KIND, key) {
            Ok(Some(v)) => match serde_json::from_str::<StoredShadow>(&v) {
                Ok(s) => {
                    mem.insert(id, s);
                }
                Err(e) => tracing::error!(key = %key, error = %e, "stored shadow unreadable"),
            },
            Ok(None) => {
                mem.remove(&id);
            }
            // The store cannot be read either: drop the shadow from memory rather than keep a
            // state that was never stored; it is read again at the next start.
            Err(e) => {
                tracing::error!(key = %key, error = %e, "stored shadow cannot be read back");
                mem.remove(&id);
            }
        }
    }
}
