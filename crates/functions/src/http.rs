//! A small HTTP/1.1 client over hyper's pooled client: plain HTTP and HTTPS (rustls with the
//! system's root certificates), one POST at a time with a deadline and a cap on the response
//! body (a longer body is cut and flagged). Shared by webhook functions and the rules engine's `http` action.
//!
//! Egress is checked where the connection is made: the host is resolved, and unless private
//! targets are allowed an address that is loopback, private, link-local (the cloud metadata
//! service at 169.254.169.254), shared, unspecified or multicast is refused; the connection goes
//! to the very address that was checked (no second lookup to rebind).

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    /// A header name or value that HTTP does not allow.
    #[error("invalid header {0:?}")]
    BadHeader(String),
    /// No complete response within the deadline.
    #[error("no response within {0} ms")]
    Timeout(u64),
    /// Connecting, TLS, or the exchange failed.
    #[error("request failed: {0}")]
    Failed(String),
}

/// A response: its status and (bounded) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// At most the `max_body` bytes asked for.
    pub body: Bytes,
    /// The body was longer than `max_body` (the rest was not read).
    pub truncated: bool,
}

/// The client; cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl HttpClient {
    /// A client trusting the system's root certificates for HTTPS; it connects only to public
    /// addresses unless `allow_private` ([`is_public`]).
    pub fn new(allow_private: bool) -> HttpClient {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => {
                let mut c = b.with_root_certificates(roots).with_no_client_auth();
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(tokio_rustls::TlsConnector::from(Arc::new(c)))
            }
            Err(e) => {
                tracing::error!(error = %e, "HTTPS is unavailable: no usable TLS configuration");
                None
            }
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .build(Connector { tls, allow_private });
        HttpClient { client }
    }

    /// POSTs `body` to `url` with `headers`; the whole exchange (connect, send, read the body)
    /// must finish within `timeout`, and the body may hold at most `max_body` bytes.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Bytes, timeout: Duration, max_body: usize) -> Result<HttpResponse, HttpError> {
        let uri = parse_url(url)?;
        let mut builder = http::Request::post(uri);
        for (k, v) in headers {
            let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| HttpError::BadHeader(k.clone()))?;
            let value = http::HeaderValue::from_str(v).map_err(|_| HttpError::BadHeader(format!("{k}: {v}")))?;
            builder = builder.header(name, value);
        }
        let request = builder.body(Full::new(body)).map_err(|e| HttpError::Failed(e.to_string()))?;
        let exchange = async {
            let resp = self.client.request(request).await.map_err(|e| HttpError::Failed(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let mut incoming = resp.into_body();
            let mut body = bytes::BytesMut::new();
            let mut truncated = false;
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| HttpError::Failed(error_chain(&e)))?;
                if let Ok(data) = frame.into_data() {
                    let room = max_body - body.len();
                    if data.len() > room {
                        body.extend_from_slice(&data[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&data);
                }
            }
            Ok(HttpResponse { status, body: body.freeze(), truncated })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout(timeout.as_millis() as u64)),
        }
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub fn parse_url(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::BadUrl(url.to_string()))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(uri),
        _ => Err(HttpError::BadUrl(url.to_string())),
    }
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Opens TCP (and TLS for `https`) connections for the pooled client.
#[derive(Clone)]
struct Connector {
    tls: Option<tokio_rustls::TlsConnector>,
    allow_private: bool,
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, fc00::/7),
/// link-local, shared (100.64.0.0/10), unspecified, broadcast, documentation, benchmarking or
/// multicast (IPv4-mapped IPv6 addresses are judged as IPv4).
pub fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80)
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
            let https = uri.scheme_str() == Some("https");
            let host = uri.host().ok_or_else(|| bad("URL without a host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let mut refused = None;
            let mut target = None;
            for addr in tokio::net::lookup_host((host.as_str(), port)).await? {
                if allow_private || is_public(addr.ip()) {
                    target = Some(addr);
                    break;
                }
                refused = Some(addr.ip());
            }
            let Some(target) = target else {
                let why = match refused {
                    Some(ip) => format!("{host} is {ip}, a private, loopback or link-local address (functions.allow_private_targets is off)"),
                    None => format!("{host} has no address"),
                };
                return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
            };
            let tcp = TcpStream::connect(target).await?;
            let _ = tcp.set_nodelay(true);
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let tls = tls.ok_or_else(|| bad("HTTPS is unavailable"))?;
            let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| bad("invalid server name"))?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A client connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one request per connection with `status` and `body`, returning what it read.
    async fn one_shot(status: u16, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
                        .unwrap_or(0);
                    if got.len() >= i + 4 + len {
                        break;
                    }
                }
            }
            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        (url, task)
    }

    #[tokio::test]
    async fn posts_with_headers_and_reads_the_response() {
        let (url, server) = one_shot(201, "{\"ok\":true}").await;
        let c = HttpClient::new(true);
        let r = c
            .post(&url, &[("x-test".into(), "1".into())], Bytes::from_static(b"{\"a\":1}"), Duration::from_secs(5), 1024)
            .await
            .unwrap();
        assert_eq!((r.status, r.truncated), (201, false));
        assert_eq!(&r.body[..], b"{\"ok\":true}");
        let req = server.await.unwrap();
        assert!(req.starts_with("POST /hook HTTP/1.1"), "{req}");
        assert!(req.contains("x-test: 1"), "{req}");
        assert!(req.ends_with("{\"a\":1}"), "{req}");
    }

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        let (url, _server) = one_shot(200, "secret").await;
        let c = HttpClient::new(false);
        for target in [url.as_str(), "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/", "http://10.1.2.3:9/", "http://localhost:9/"] {
            let e = c.post(target, &[], Bytes::new(), Duration::from_secs(5), 64).await.unwrap_err();
            assert!(e.to_string().contains("functions.allow_private_targets"), "{target}: {e}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "224.0.0.1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn limits_timeouts_and_bad_urls_are_errors() {
        let (url, _server) = one_shot(200, "0123456789").await;
        let c = HttpClient::new(true);
        let r = c.post(&url, &[], Bytes::new(), Duration::from_secs(5), 4).await.unwrap();
        assert_eq!((&r.body[..], r.truncated), (&b"0123"[..], true));
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        assert_eq!(c.post(&url, &[], Bytes::new(), Duration::from_millis(100), 4).await, Err(HttpError::Timeout(100)));
        assert!(matches!(c.post("ftp://x/", &[], Bytes::new(), Duration::from_secs(1), 4).await, Err(HttpError::BadUrl(_))));
        assert!(matches!(c.post("http://127.0.0.1:1/", &[], Bytes::new(), Duration::from_secs(5), 4).await, Err(HttpError::Failed(_))));
    }
}
