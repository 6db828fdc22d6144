//! TLS for the MQTT listeners: the rustls server configuration (TLS 1.2 and 1.3, one crypto
//! provider: ring) with optional or required client certificates — verified against fixed roots,
//! or by a verifier the caller supplies (Ferrite's consults the registered CA and device
//! certificates as they change) — and ALPN as AWS IoT offers it.

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use std::sync::Arc;

/// Whether TLS clients present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asked for.
    None,
    /// Asked for and verified when presented; connections without one are allowed.
    Optional,
    /// Connections without a certificate that chains to a trusted CA fail the handshake.
    Required,
}

/// A TLS configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// ALPN protocol names accepted: AWS IoT's for MQTT on port 443, and plain `mqtt`.
pub const ALPN: &[&[u8]] = &[b"x-amzn-mqtt-ca", b"mqtt"];

/// Builds the server configuration. `client_roots` are the CAs client certificates must chain to;
/// `alpn` offers [`ALPN`] (MQTT over TLS), or nothing (WebSocket over TLS, where browsers offer
/// `http/1.1`).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: &[CertificateDer<'static>],
    auth: ClientAuth,
    alpn: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut roots = RootCertStore::empty();
            for c in client_roots {
                roots.add(c.clone())?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::Optional { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build()?)
        }
    };
    finish(builder.with_single_cert(chain, key)?, alpn)
}

/// Builds the server configuration with a client certificate verifier of the caller's (it says
/// itself whether a certificate is required).
pub fn server_config_with_verifier(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<dyn ClientCertVerifier>,
    alpn: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier);
    finish(builder.with_single_cert(chain, key)?, alpn)
}

fn finish(mut config: rustls::ServerConfig, alpn: bool) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    if alpn {
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    }
    Ok(Arc::new(config))
}
