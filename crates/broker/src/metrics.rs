//! Broker counters: what the logs tell, counted (exported by the HTTP server later).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Monotonic counters and gauges, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_current: AtomicI64,
    /// Of those, parked (idle, without a task).
    pub connections_parked: AtomicI64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub messages_received: [AtomicU64; 3],
    pub messages_sent: [AtomicU64; 3],
    pub dropped_queue_full: AtomicU64,
    pub dropped_qos0_offline: AtomicU64,
    pub dropped_expired: AtomicU64,
    pub dropped_too_large: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// Actions refused by authorization (connect, publish, subscribe, receive).
    pub denied: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
