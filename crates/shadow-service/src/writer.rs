//! A group-commit writer for documents: writes from many requests are applied in one
//! transaction, in submission order, and each submitter learns when its write is committed.

use std::sync::{Arc, Mutex, mpsc};
use store::{DocOp, Documents, StoreError};
use tokio::sync::oneshot;

/// Resolves to true once the write is committed (false if the commit failed).
pub type Durable = oneshot::Receiver<bool>;

type Job = (Vec<DocOp>, oneshot::Sender<bool>);

/// The handle to the writer thread.
pub struct Writer {
    tx: Mutex<mpsc::Sender<Job>>,
}

impl Writer {
    /// Starts the writer thread over `docs`.
    pub fn start(docs: Arc<Documents>) -> Result<Writer, StoreError> {
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
                let ok = match docs.apply(&ops) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, "shadow store commit failed");
                        false
                    }
                };
                for d in done {
                    let _ = d.send(ok);
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
