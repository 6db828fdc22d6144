//! The errors that stop a benchmark run: bad options, and clients that cannot connect or subscribe.

use std::net::SocketAddr;

/// Why a run could not be carried out. Messages lost or clients disconnected in the middle of a
/// run are not errors: they are counted in the [`Report`](crate::Report).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option: {0}")]
    Option(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("client {client}: cannot connect to {addr}: {source}")]
    Connect { client: String, addr: SocketAddr, source: std::io::Error },
    #[error("client {client}: no CONNACK from {addr} within {secs} s")]
    Timeout { client: String, addr: SocketAddr, secs: u64 },
    #[error("client {client}: connection refused by the broker: {reason}")]
    Refused { client: String, reason: mqtt::ReasonCode },
    #[error("client {client}: subscription to {filter} refused: {reason}")]
    SubscribeRefused { client: String, filter: String, reason: mqtt::ReasonCode },
    #[error("client {client}: {detail}")]
    Protocol { client: String, detail: String },
    #[error("a client task failed: {0}")]
    Task(String),
}
