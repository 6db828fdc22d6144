//! Waiting for a state store future from synchronous code (the registry's and the policy
//! service's blocking operations, tests without a runtime).

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
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

/// Takes a read lock whose writer (or a reader ahead of a queued writer) may be waiting for
/// the database: at once when it is free, else through [`blocking`] (as [`lock_waiting`]).
pub fn read_waiting<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    match l.try_read() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => blocking(|| l.read().unwrap_or_else(|e| e.into_inner())),
    }
}

/// Takes a write lock whose readers may be waiting for the database (as [`read_waiting`]).
pub fn write_waiting<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    match l.try_write() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => blocking(|| l.write().unwrap_or_else(|e| e.into_inner())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A lock held by a thread that waits for a task of the runtime (as a PostgreSQL call
    /// does), and a reader on the runtime's only worker: the reader must hand the worker back,
    /// or the task never runs and neither finishes.
    #[test]
    fn a_reader_on_the_only_worker_does_not_starve_the_task_the_holder_waits_for() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let lock = Arc::new(RwLock::new(0u32));
        let (held, is_held) = std::sync::mpsc::channel();
        let (l, h) = (lock.clone(), rt.handle().clone());
        let holder = std::thread::spawn(move || {
            let mut g = l.write().unwrap();
            held.send(()).unwrap();
            // Let the reader take the worker first.
            std::thread::sleep(Duration::from_millis(100));
            let task = h.spawn(async { 1 });
            *g += park_until(async { task.await.unwrap() });
        });
        is_held.recv().unwrap();
        let (done, is_done) = std::sync::mpsc::channel();
        let l = lock.clone();
        rt.spawn(async move {
            let v = *read_waiting(&l);
            done.send(v).unwrap();
        });
        assert_eq!(is_done.recv_timeout(Duration::from_secs(10)), Ok(1), "the reader and the holder are stuck");
        holder.join().unwrap();
        // The mutex flavour, likewise.
        let m = Arc::new(Mutex::new(()));
        let g = m.lock().unwrap();
        let m2 = m.clone();
        let (done, is_done) = std::sync::mpsc::channel();
        rt.spawn(async move {
            drop(lock_waiting(&m2));
            done.send(()).unwrap();
        });
        let task = rt.spawn(async { 2 });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(park_until(async { task.await.unwrap() }), 2);
        drop(g);
        assert!(is_done.recv_timeout(Duration::from_secs(10)).is_ok());
    }
}
