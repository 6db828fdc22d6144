//! Binding the configured MQTT listeners, with the TLS configuration they need (Ferrite's own CA
//! and server certificate, created on first start, or the configured files).

use crate::config::{ClientCerts, Config};
use anyhow::Context;
use broker::server::Transport;
use broker::tls::{ClientAuth, server_config};
use identity::Pki;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A bound listener and how it speaks.
pub struct Listener {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// Binds every listener that is not "off".
pub async fn bind(config: &Config) -> anyhow::Result<Vec<Listener>> {
    let tls_wanted = config.listener("tls_listen")?.is_some() || config.listener("wss_listen")?.is_some();
    let acceptors = if tls_wanted { Some(tls_acceptors(config)?) } else { None };
    let mut out = Vec::new();
    for which in ["listen", "tls_listen", "ws_listen", "wss_listen"] {
        let Some(addr) = config.listener(which)? else { continue };
        let transport = match (which, &acceptors) {
            ("listen", _) => Transport::Tcp,
            ("ws_listen", _) => Transport::Ws,
            ("tls_listen", Some((mqtts, _))) => Transport::Tls(mqtts.clone()),
            (_, Some((_, wss))) => Transport::Wss(wss.clone()),
            _ => continue,
        };
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding mqtt.{which} to {addr}"))?;
        let addr = listener.local_addr()?;
        out.push(Listener { listener, addr, transport });
    }
    Ok(out)
}

/// Acceptors for MQTT over TLS (with ALPN) and WebSocket over TLS (without).
fn tls_acceptors(config: &Config) -> anyhow::Result<(TlsAcceptor, TlsAcceptor)> {
    let dir = config.data_dir.join("certs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (pki, created) = Pki::load_or_create(&dir)?;
    if created {
        tracing::info!(ca = %dir.join("ca.pem").display(), "created Ferrite's certificate authority");
    }
    let t = &config.tls;
    let server = if t.cert_file.is_empty() {
        pki.server_cert(&dir, &t.server_names)?
    } else {
        Pki::files(t.cert_file.as_ref(), t.key_file.as_ref())?
    };
    let mut roots = vec![pki.ca_der.clone()];
    for f in &t.ca_files {
        roots.extend(identity::load_certs(f.as_ref())?);
    }
    let auth = match t.client_certs {
        ClientCerts::Required => ClientAuth::Required,
        ClientCerts::Optional => ClientAuth::Optional,
        ClientCerts::None => ClientAuth::None,
    };
    let mqtts = server_config(server.chain.clone(), server.key.clone_key(), &roots, auth, true)?;
    // Browsers cannot easily present client certificates: WebSocket over TLS asks but does not require.
    let wss_auth = if auth == ClientAuth::None { ClientAuth::None } else { ClientAuth::Optional };
    let wss = server_config(server.chain, server.key, &roots, wss_auth, false)?;
    Ok((TlsAcceptor::from(mqtts), TlsAcceptor::from(wss)))
}
