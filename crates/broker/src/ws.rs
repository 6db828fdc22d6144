//! MQTT over WebSocket: the handshake (path `/mqtt`, subprotocol `mqtt`) and an adaptor that
//! turns binary WebSocket frames into a byte stream for the connection.

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The path MQTT clients connect to.
pub const PATH: &str = "/mqtt";

/// Which web pages may open a WebSocket: `None` any; `Some(list)` a request without `Origin`
/// (not a browser), a loopback origin (`http(s)://localhost`, `127.x.x.x`, `[::1]`, any port),
/// or one of `list` exactly (`*` in it allows any).
pub type Origins = Option<std::sync::Arc<[String]>>;

/// Whether `origin` is a loopback origin or in `allowed`.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else { return false };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.rsplit_once(':').map_or(rest, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { rest }),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Performs the server side of the WebSocket handshake; refuses other paths with 404, an
/// origin `origins` does not allow with 403, and picks the `mqtt` subprotocol when offered.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(io: S, max_frame: usize, origins: &Origins) -> Result<WsStream<S>, WsError> {
    // The callback's shape (and its large error type) is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() != PATH {
            let mut e = ErrorResponse::new(Some(format!("MQTT is served on {PATH}")));
            *e.status_mut() = StatusCode::NOT_FOUND;
            return Err(e);
        }
        if let (Some(allowed), Some(origin)) = (origins, req.headers().get("origin")) {
            let origin = origin.to_str().unwrap_or("");
            if !origin_allowed(origin, allowed) {
                tracing::info!(origin, "WebSocket upgrade from a web page of another origin refused (mqtt.ws_allowed_origins)");
                let mut e = ErrorResponse::new(Some(format!("Origin {origin} is not allowed")));
                *e.status_mut() = StatusCode::FORBIDDEN;
                return Err(e);
            }
        }
        let offered = req.headers().get_all("sec-websocket-protocol").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        let mut offered = offered.map(str::trim);
        if let Some(p) = offered.find(|p| *p == "mqtt" || *p == "mqttv3.1")
            && let Ok(v) = HeaderValue::from_str(p) {
                resp.headers_mut().insert("sec-websocket-protocol", v);
            }
        Ok(resp)
    };
    let mut config = WebSocketConfig::default();
    config.max_frame_size = Some(max_frame);
    config.max_message_size = Some(max_frame);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(config)).await?;
    Ok(WsStream { ws, pending: Bytes::new() })
}

/// A WebSocket carrying MQTT bytes in binary frames.
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    pending: Bytes,
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::other(e),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(b))) => self.pending = b,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "MQTT over WebSocket needs binary frames")));
                }
                Some(Ok(_)) => {} // ping/pong are answered by tungstenite
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut self.ws).start_send(Message::Binary(Bytes::copy_from_slice(buf))).map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(to_io)
    }
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn loopback_origins_and_the_list_are_allowed() {
        for o in ["http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://[::1]:80", "http://127.9.9.9"] {
            assert!(origin_allowed(o, &[]), "{o}");
        }
        for o in ["https://evil.example.com", "http://localhost.evil.com", "null", "file://", "http://10.0.0.1", "http://127.0.0.1.evil.com"] {
            assert!(!origin_allowed(o, &[]), "{o}");
        }
        assert!(origin_allowed("https://app.example.com", &["https://app.example.com".into()]));
        assert!(origin_allowed("https://anything", &["*".into()]));
    }
}
