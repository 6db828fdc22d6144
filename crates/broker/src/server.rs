//! The accept loop: one task per connection, a connection limit, and structured shutdown
//! (stop accepting, tell every connection, wait for them to drain).

use crate::Broker;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

/// How long connections get to say goodbye when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Over-limit sockets being told "server busy" at once; beyond this they are just closed.
const MAX_REJECTING: usize = 64;

/// Serves MQTT over TCP on `listener` until `shutdown` turns true, then waits (bounded) for the
/// connections to close.
pub async fn serve_tcp(broker: Broker, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let inner = broker.inner().clone();
    let limit = Arc::new(Semaphore::new(inner.config.max_connections));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => r,
        };
        let (socket, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                let inner = inner.clone();
                let shutdown = shutdown.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    crate::connection::serve(socket, peer, inner, shutdown).await;
                    drop(permit);
                    drop(done);
                });
            }
            Err(_) => {
                Metrics::inc(&inner.metrics.connections_rejected);
                tracing::warn!(%peer, max = inner.config.max_connections, "connection limit reached");
                if let Ok(p) = rejecting.clone().try_acquire_owned() {
                    let timeout = inner.config.connect_timeout;
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(timeout, reject_busy(socket)).await;
                        drop(p);
                    });
                }
            }
        }
    }
    drop(done_tx);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv()).await;
}

/// Reads the start of a CONNECT and answers CONNACK "server busy" (MQTT 5: 0x89; 3.1.1: 3).
async fn reject_busy<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S) {
    let mut buf = [0u8; 16];
    let mut have = 0;
    while have < buf.len() {
        match socket.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
        if have >= 10 {
            break;
        }
    }
    let v5 = crate::connection::sniff_v5(&buf[..have]);
    let reply: &[u8] = if v5 { &[0x20, 3, 0, 0x89, 0] } else { &[0x20, 2, 0, 3] };
    let _ = socket.write_all(reply).await;
    let _ = socket.shutdown().await;
}
