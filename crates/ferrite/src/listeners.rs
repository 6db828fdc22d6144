//! Binding the configured MQTT listeners, with the TLS configuration they need (Ferrite's own CA
//! and server certificate, created on first start, or the configured files) and the client
//! certificate verifier that follows the registered CA and device certificates.

use crate::config::{ClientCerts, Config};
use anyhow::Context;
use broker::server::Transport;
use broker::tls::{ClientAuth, server_config, server_config_with_verifier};
use identity::Pki;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A bound listener and how it speaks.
pub struct Listener {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// Binds every listener that is not "off".
pub async fn bind(config: &Config, pki: &Pki, authz: &Arc<authz::Authz>) -> anyhow::Result<Vec<Listener>> {
    let tls_wanted = ["mqtt.tls_listen", "mqtt.wss_listen", "api.tls_listen"].iter().any(|w| matches!(config.listener(w), Ok(Some(_))));
    let acceptors = if tls_wanted { Some(tls_acceptors(config, pki, authz)?) } else { None };
    let mut out = Vec::new();
    for which in ["mqtt.listen", "mqtt.tls_listen", "mqtt.ws_listen", "mqtt.wss_listen"] {
        let Some(addr) = config.listener(which)? else { continue };
        let transport = match (which, &acceptors) {
            ("mqtt.listen", _) => Transport::Tcp,
            ("mqtt.ws_listen", _) => Transport::Ws,
            ("mqtt.tls_listen", Some(a)) => Transport::Tls(a.mqtts.clone()),
            (_, Some(a)) => Transport::Wss(a.wss.clone()),
            _ => continue,
        };
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {which} to {addr}"))?;
        let addr = listener.local_addr()?;
        out.push(Listener { listener, addr, transport });
    }
    Ok(out)
}

/// A bound API listener: plain HTTP, or HTTPS with its acceptor.
pub struct ApiListener {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub tls: Option<TlsAcceptor>,
}

/// Binds the API listeners that are not "off".
pub async fn bind_api(config: &Config, pki: &Pki, authz: &Arc<authz::Authz>) -> anyhow::Result<Vec<ApiListener>> {
    let mut out = Vec::new();
    for which in ["api.listen", "api.tls_listen"] {
        let Some(addr) = config.listener(which)? else { continue };
        let tls = if which == "api.tls_listen" { Some(tls_acceptors(config, pki, authz)?.https) } else { None };
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {which} to {addr}"))?;
        let addr = listener.local_addr()?;
        out.push(ApiListener { listener, addr, tls });
    }
    Ok(out)
}

/// TLS acceptors for each kind of listener.
struct Acceptors {
    mqtts: TlsAcceptor,
    wss: TlsAcceptor,
    https: TlsAcceptor,
}

/// Acceptors for MQTT over TLS (with ALPN), WebSocket over TLS and HTTPS (without).
fn tls_acceptors(config: &Config, pki: &Pki, authz: &Arc<authz::Authz>) -> anyhow::Result<Acceptors> {
    let dir = config.data_dir.join("certs");
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
    let verifier = |mandatory: bool| -> anyhow::Result<Arc<authz::verifier::DynamicClientVerifier>> {
        Ok(Arc::new(authz::verifier::DynamicClientVerifier::new(authz.clone(), roots.clone(), mandatory)?))
    };
    let (mqtts, wss) = if auth == ClientAuth::None {
        let none = |alpn| server_config(server.chain.clone(), server.key.clone_key(), &roots, ClientAuth::None, alpn);
        (none(true)?, none(false)?)
    } else {
        let mqtts = server_config_with_verifier(server.chain.clone(), server.key.clone_key(), verifier(auth == ClientAuth::Required)?, true)?;
        // Browsers cannot easily present client certificates: WebSocket over TLS asks but does not require.
        let wss = server_config_with_verifier(server.chain.clone(), server.key.clone_key(), verifier(false)?, false)?;
        (mqtts, wss)
    };
    let https = server_config(server.chain, server.key, &roots, ClientAuth::None, false)?;
    Ok(Acceptors { mqtts: TlsAcceptor::from(mqtts), wss: TlsAcceptor::from(wss), https: TlsAcceptor::from(https) })
}
