//! Typed taps on connections: connectivity changes with their times, for the services that
//! watch devices (GetThingConnectivityData now; fleet indexing's connectivity fields and Device
//! Defender next), whether or not lifecycle events are switched on. Taps are registered at
//! wiring time ([`crate::Broker::add_tap`]) and called on the connection's task: keep them
//! short and lock-light.

use std::net::SocketAddr;

/// A connection accepted (CONNACK sent).
#[derive(Debug, Clone, Copy)]
pub struct Connected<'a> {
    pub client_id: &'a str,
    pub principal: Option<&'a str>,
    pub source: SocketAddr,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// The connection's generation: a later connection of the same client id has a higher one
    /// (a takeover's old connection ends after the new one connected).
    pub generation: u64,
}

/// A connection ended.
#[derive(Debug, Clone, Copy)]
pub struct Disconnected<'a> {
    pub client_id: &'a str,
    pub principal: Option<&'a str>,
    pub at_ms: i64,
    pub generation: u64,
    /// AWS's `disconnectReason` (`CLIENT_INITIATED_DISCONNECT`, `DUPLICATE_CLIENTID`, ...).
    pub reason: &'static str,
    pub client_initiated: bool,
}

/// What a service watches connections for.
pub trait Tap: Send + Sync + std::fmt::Debug + 'static {
    fn connected(&self, _c: &Connected<'_>) {}
    fn disconnected(&self, _d: &Disconnected<'_>) {}
}
