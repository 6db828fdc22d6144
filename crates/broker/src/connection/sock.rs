//! The streams a connection can park with: [`Sock`], a TCP socket that can leave tokio's reactor
//! and come back, alone (plain MQTT) or under rustls (MQTT over TLS, whose whole state is kept
//! while parked); and [`ParkedIo`], what a parked record keeps of either.

use super::Stream;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A TCP socket in tokio's reactor (`Live`) or out of it while its connection is parked.
#[derive(Debug)]
pub(crate) enum Sock {
    Live(TcpStream),
    Parked(std::net::TcpStream),
    /// Lost while moving between the two: every read and write fails, so the connection closes.
    Gone,
}

fn not_live() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket is parked or lost")
}

impl Sock {
    /// Takes the socket out of tokio's reactor; returns its descriptor for the parker's epoll set.
    pub(crate) fn park(&mut self) -> io::Result<RawFd> {
        match std::mem::replace(self, Sock::Gone) {
            Sock::Live(s) => {
                let std = s.into_std()?;
                let fd = std.as_raw_fd();
                *self = Sock::Parked(std);
                Ok(fd)
            }
            other => {
                *self = other;
                Err(not_live())
            }
        }
    }

    /// Gives the socket back to tokio's reactor.
    pub(crate) fn resume(&mut self) -> io::Result<()> {
        match std::mem::replace(self, Sock::Gone) {
            Sock::Parked(std) => {
                *self = Sock::Live(TcpStream::from_std(std)?);
                Ok(())
            }
            other => {
                *self = other;
                Err(not_live())
            }
        }
    }

    /// The peer's address (the unspecified address once it is gone).
    pub(crate) fn peer_addr(&self) -> std::net::SocketAddr {
        let addr = match self {
            Sock::Live(s) => s.peer_addr(),
            Sock::Parked(s) => s.peer_addr(),
            Sock::Gone => Err(not_live()),
        };
        addr.unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

impl AsyncRead for Sock {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Sock::Live(s) => Pin::new(s).poll_read(cx, buf),
            _ => Poll::Ready(Err(not_live())),
        }
    }
}

impl AsyncWrite for Sock {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Sock::Live(s) => Pin::new(s).poll_write(cx, buf),
            _ => Poll::Ready(Err(not_live())),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Sock::Live(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            _ => Poll::Ready(Err(not_live())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Sock::Live(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Err(not_live())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Sock::Live(s) => Pin::new(s).poll_shutdown(cx),
            _ => Poll::Ready(Err(not_live())),
        }
    }
}

/// What a parked connection keeps of its stream.
pub(crate) enum ParkedIo {
    Tcp(std::net::TcpStream),
    /// rustls's whole state, around a socket out of tokio.
    Tls(Box<TlsStream<Sock>>),
}

impl ParkedIo {
    /// The descriptor the parker watches.
    pub(crate) fn fd(&self) -> Option<RawFd> {
        match self {
            ParkedIo::Tcp(s) => Some(s.as_raw_fd()),
            ParkedIo::Tls(t) => match &t.get_ref().0 {
                Sock::Parked(s) => Some(s.as_raw_fd()),
                _ => None,
            },
        }
    }
}

/// Whether connections over `S` can park (`S` is one of the [`Parkable`] streams).
pub(crate) fn is_parkable<S: 'static>() -> bool {
    let s = std::any::TypeId::of::<S>();
    s == std::any::TypeId::of::<Sock>() || s == std::any::TypeId::of::<TlsStream<Sock>>()
}

/// A stream whose connection can park: its socket leaves tokio and the rest is kept as
/// [`ParkedIo`].
pub(crate) trait Parkable: Stream + Sized {
    /// The transport's name in logs (`mqtt`, `mqtts`).
    const TRANSPORT: &'static str;
    /// The socket under the stream.
    fn sock(&mut self) -> &mut Sock;
    fn sock_ref(&self) -> &Sock;
    /// What the parked record keeps (the socket already out of tokio); `Err` gives it back.
    fn into_parked(self) -> Result<ParkedIo, Self>;
}

impl Parkable for Sock {
    const TRANSPORT: &'static str = "mqtt";
    fn sock(&mut self) -> &mut Sock {
        self
    }
    fn sock_ref(&self) -> &Sock {
        self
    }
    fn into_parked(self) -> Result<ParkedIo, Self> {
        match self {
            Sock::Parked(s) => Ok(ParkedIo::Tcp(s)),
            other => Err(other),
        }
    }
}

impl Parkable for TlsStream<Sock> {
    const TRANSPORT: &'static str = "mqtts";
    fn sock(&mut self) -> &mut Sock {
        self.get_mut().0
    }
    fn sock_ref(&self) -> &Sock {
        self.get_ref().0
    }
    fn into_parked(self) -> Result<ParkedIo, Self> {
        Ok(ParkedIo::Tls(Box::new(self)))
    }
}
