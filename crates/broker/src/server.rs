//! The accept loops: one task per connection, per-listener connection limits and connection
//! rate, the transport (TCP, TLS, WebSocket, WebSocket over TLS), and structured shutdown
//! (stop accepting, tell every connection, wait for them to drain).

use crate::Broker;
use crate::BrokerInner;
use crate::auth::Authenticator;
use crate::limit::Bucket;
use crate::metrics::Metrics;
use identity::CertFacts;
use mqtt::ReasonCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use crate::connection::{Parker, Sock};
use tokio_rustls::TlsAcceptor;
use futures_util::FutureExt;
use futures_util::future::Either;
use std::future::Future;

/// How long connections get to say goodbye when the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Over-limit sockets being told "server busy" at once; beyond this they are just closed.
const MAX_REJECTING: usize = 64;

/// How bytes reach the MQTT codec on a listener.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    Tls(TlsAcceptor),
    /// WebSocket on path `/mqtt`.
    Ws,
    /// WebSocket over TLS.
    Wss(TlsAcceptor),
}

impl Transport {
    /// A short name for logs: `mqtt`, `mqtts`, `ws`, `wss`.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Tls(_) => "mqtts",
            Transport::Ws => "ws",
            Transport::Wss(_) => "wss",
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    pub transport: &'static str,
    /// The verified client certificate, on TLS listeners that asked for one.
    pub cert: Option<Box<CertFacts>>,
    /// The server name the client asked for in TLS (SNI): AWS's `iot:DomainName`.
    pub server_name: Option<Box<str>>,
}

/// Serves MQTT over TCP on `listener`, allowing every client (tests and local development).
pub async fn serve_tcp(broker: Broker, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    serve(broker, listener, Transport::Tcp, Arc::new(crate::auth::AllowAll), shutdown).await
}

/// Serves MQTT on `listener` with the given transport until `shutdown` turns true, then waits
/// (bounded) for its connections to close.
pub async fn serve(
    broker: Broker,
    listener: TcpListener,
    transport: Transport,
    authn: Arc<dyn Authenticator>,
    mut shutdown: watch::Receiver<bool>,
) {
    let inner = broker.inner().clone();
    let limit = Arc::new(Semaphore::new(inner.config.max_connections));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let mut rate = Bucket::new(inner.config.max_connections_per_sec);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    // Idle connections park, plain or TLS (WebSocket state stays with its task).
    let parker = match (&transport, inner.config.park_idle_after) {
        (Transport::Tcp | Transport::Tls(_), Some(after)) => match Parker::start(inner.clone(), after, shutdown.clone(), done_tx.clone(), limit.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "cannot park idle connections on this listener");
                None
            }
        },
        _ => None,
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => r,
        };
        let (socket, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let admitted = if rate.take() { limit.clone().try_acquire_owned().map_err(|_| ReasonCode::SERVER_BUSY) } else { Err(ReasonCode::CONNECTION_RATE_EXCEEDED) };
        match admitted {
            Ok(permit) => {
                let (inner, shutdown, done, transport) = (inner.clone(), shutdown.clone(), done_tx.clone(), transport.clone());
                let (authn, parker) = (authn.clone(), parker.clone());
                tokio::spawn(async move {
                    handle(socket, addr, transport, Ctx { inner, authn, shutdown, permit: Some(permit), parker }).await;
                    drop(done);
                });
            }
            Err(reason) => {
                Metrics::inc(&inner.metrics.connections_rejected);
                tracing::warn!(peer = %addr, ?reason, "connection refused");
                // Plain TCP gets a CONNACK saying why; other transports are just closed.
                if matches!(transport, Transport::Tcp)
                    && let Ok(p) = rejecting.clone().try_acquire_owned()
                {
                    let timeout = inner.config.connect_timeout;
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(timeout, refuse(socket, reason)).await;
                        drop(p);
                    });
                }
            }
        }
    }
    drop((done_tx, parker));
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, done_rx.recv()).await;
}

/// What a connection needs from its listener.
pub(crate) struct Ctx {
    pub inner: Arc<BrokerInner>,
    pub authn: Arc<dyn Authenticator>,
    pub shutdown: watch::Receiver<bool>,
    /// The listener's connection-limit slot, released when the connection closes.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Where idle connections of this listener park.
    pub parker: Option<Arc<Parker>>,
}

/// Completes the transport handshake (bounded by the connect timeout), then serves MQTT. Each
/// transport's work is boxed on its own, so the task of a plain TCP connection is not sized for
/// the TLS and WebSocket states it never has (memory per idle connection).
async fn handle(socket: TcpStream, addr: SocketAddr, transport: Transport, ctx: Ctx) {
    let served: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = match transport {
        Transport::Tcp => Box::pin(crate::connection::serve(Sock::Live(socket), PeerInfo { addr, transport: "mqtt", cert: None, server_name: None }, ctx)),
        Transport::Tls(acceptor) => Box::pin(serve_tls(socket, addr, acceptor, ctx)),
        Transport::Ws => Box::pin(serve_ws(socket, addr, ctx)),
        Transport::Wss(acceptor) => Box::pin(serve_wss(socket, addr, acceptor, ctx)),
    };
    served.await
}

// Each transport's handshake is chained to the MQTT connection it yields (`then`, not an
// `await` in an async fn): the task holds the handshake's state or the connection's, never
// both, and no second box (memory per TLS connection: rustls's state is large).

fn serve_tls(socket: TcpStream, addr: SocketAddr, acceptor: TlsAcceptor, ctx: Ctx) -> impl Future<Output = ()> + Send {
    tokio::time::timeout(ctx.inner.config.connect_timeout, acceptor.accept(Sock::Live(socket))).then(move |r| match r {
        Ok(Ok(tls)) => {
            let cert = peer_cert(tls.get_ref().1);
            let server_name = tls.get_ref().1.server_name().map(Into::into);
            Either::Left(crate::connection::serve(tls, PeerInfo { addr, transport: "mqtts", cert, server_name }, ctx))
        }
        Ok(Err(e)) => handshake_failed(addr, "TLS handshake failed", &e.to_string()),
        Err(_) => handshake_failed(addr, "TLS handshake timed out", ""),
    })
}

fn serve_ws(socket: TcpStream, addr: SocketAddr, ctx: Ctx) -> impl Future<Output = ()> + Send {
    let max_frame = ctx.inner.config.max_packet_size.saturating_add(16);
    let origins = ctx.inner.config.ws_allowed_origins.clone();
    tokio::time::timeout(ctx.inner.config.connect_timeout, async move { crate::ws::accept(socket, max_frame, &origins).await }).then(move |r| match r {
        Ok(Ok(ws)) => Either::Left(crate::connection::serve(ws, PeerInfo { addr, transport: "ws", cert: None, server_name: None }, ctx)),
        Ok(Err(e)) => handshake_failed(addr, "WebSocket handshake failed", &e.to_string()),
        Err(_) => handshake_failed(addr, "WebSocket handshake timed out", ""),
    })
}

fn serve_wss(socket: TcpStream, addr: SocketAddr, acceptor: TlsAcceptor, ctx: Ctx) -> impl Future<Output = ()> + Send {
    let max_frame = ctx.inner.config.max_packet_size.saturating_add(16);
    let handshake = async move {
        let tls = acceptor.accept(socket).await.map_err(|e| e.to_string())?;
        let cert = peer_cert(tls.get_ref().1);
        let server_name: Option<Box<str>> = tls.get_ref().1.server_name().map(Into::into);
        // Browsers on WebSocket/TLS present a certificate (or, later, a signature): any origin.
        let ws = crate::ws::accept(tls, max_frame, &None).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((ws, cert, server_name))
    };
    tokio::time::timeout(ctx.inner.config.connect_timeout, handshake).then(move |r| match r {
        Ok(Ok((ws, cert, server_name))) => Either::Left(crate::connection::serve(ws, PeerInfo { addr, transport: "wss", cert, server_name }, ctx)),
        Ok(Err(e)) => handshake_failed(addr, "TLS/WebSocket handshake failed", &e),
        Err(_) => handshake_failed(addr, "TLS/WebSocket handshake timed out", ""),
    })
}

/// Logs a failed transport handshake; the connection just ends.
fn handshake_failed<L>(addr: SocketAddr, what: &'static str, error: &str) -> Either<L, std::future::Ready<()>> {
    tracing::info!(%addr, error, "{what}");
    Either::Right(std::future::ready(()))
}

fn peer_cert(conn: &rustls::ServerConnection) -> Option<Box<CertFacts>> {
    conn.peer_certificates().and_then(|c| c.first()).and_then(|c| CertFacts::from_der(c)).map(Box::new)
}

/// Reads the start of a CONNECT and answers CONNACK with `reason` (3.1.1: "server unavailable").
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S, reason: ReasonCode) {
    let mut buf = [0u8; 16];
    let mut have = 0;
    while have < 10 {
        match socket.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    let v5 = crate::connection::sniff_v5(&buf[..have]);
    let reply: &[u8] = if v5 { &[0x20, 3, 0, reason.0, 0] } else { &[0x20, 2, 0, 3] };
    let _ = socket.write_all(reply).await;
    let _ = socket.shutdown().await;
}
