//! Waiting for a state store future from synchronous code (the registry's and the policy
//! service's blocking operations, tests without a runtime).

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn park_until<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs a future to completion on this thread. On a Tokio worker thread the worker is handed
/// back to the runtime first (`block_in_place`), so other tasks — the database connection
/// among them — keep running.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| park_until(fut)),
        _ => park_until(fut),
    }
}

/// Runs blocking work (a lock another thread may hold while it waits for the database, a
/// synchronous store call). On a Tokio worker thread the worker is handed back to the runtime
/// first, so that the tasks queued on it — the database calls the lock holder waits for among
/// them — keep running.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Takes a lock whose holder may be waiting for the database: at once when it is free, else
/// through [`blocking`], so that a Tokio worker waiting for it does not stall the database
/// calls the holder waits for. A poisoned lock is taken as it is.
pub fn lock_waiting<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => blocking(|| m.lock().unwrap_or_else(|e| e.into_inner())),
    }
}
