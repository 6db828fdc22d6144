//! Black-box tests of the TLS and WebSocket listeners: mosquitto clients and rumqttc over TLS
//! with client certificates (and AWS IoT's ALPN), paho-mqtt over WebSocket and WebSocket over TLS.
//! Certificates come from `ferrite certs issue-client` and are registered through the API with a
//! policy allowing everything: an unregistered certificate cannot connect.

mod common;

use common::{Server, WAIT};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const ALL_LISTENERS: &[&str] = &["mqtt.tls_listen=127.0.0.1:0", "mqtt.ws_listen=127.0.0.1:0", "mqtt.wss_listen=127.0.0.1:0"];

/// Issues a client certificate with the binary's admin command and registers it (ACTIVE, with a
/// policy allowing everything); returns (cert, key) paths.
fn issue(server: &Server, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = issue_unregistered(server, cn);
    server.register_allow_all(&std::fs::read_to_string(&cert).expect("read certificate"));
    (cert, key)
}

/// Issues a client certificate without registering it.
fn issue_unregistered(server: &Server, cn: &str) -> (PathBuf, PathBuf) {
    let cert = server.dir.join(format!("{cn}.pem"));
    let key = server.dir.join(format!("{cn}.key"));
    let out = Command::new(env!("CARGO_BIN_EXE_ferrite"))
        .args(["certs", "issue-client", "--cn", cn, "--data-dir"])
        .arg(&server.dir)
        .arg("--cert-out")
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .output()
        .expect("run ferrite certs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn ca(server: &Server) -> PathBuf {
    server.dir.join("certs").join("ca.pem")
}

fn mosquitto(cmd: &str, args: &[&str]) -> std::process::Output {
    assert!(common::have(cmd), "{cmd} is not installed (scripts/test installs mosquitto-clients)");
    Command::new(cmd).args(args).output().expect("run mosquitto client")
}

#[test]
fn mosquitto_clients_over_tls_with_a_client_certificate() {
    let server = Server::start_with(ALL_LISTENERS);
    let port = server.ports["mqtts"].to_string();
    let (cert, key) = issue(&server, "device-1");
    let (ca, cert, key) = (ca(&server), cert.display().to_string(), key.display().to_string());
    let ca = ca.display().to_string();
    let tls = ["-h", "localhost", "-p", &port, "--cafile", &ca, "--cert", &cert, "--key", &key];
    let retained = mosquitto("mosquitto_pub", &[&tls[..], &["-t", "tls/r", "-m", "secret", "-r", "-q", "1"]].concat());
    assert!(retained.status.success(), "{}", String::from_utf8_lossy(&retained.stderr));
    let sub = mosquitto("mosquitto_sub", &[&tls[..], &["-t", "tls/#", "-C", "1", "-W", "10", "-v"]].concat());
    assert_eq!(String::from_utf8_lossy(&sub.stdout).trim(), "tls/r secret");

    // Without a client certificate the handshake fails.
    let denied = mosquitto("mosquitto_pub", &["-h", "localhost", "-p", &port, "--cafile", &ca, "-t", "x", "-m", "x"]);
    assert!(!denied.status.success());

    // A certificate of Ferrite's CA that was never registered passes the handshake and is refused
    // on CONNECT (not authorized).
    let (cert, key) = issue_unregistered(&server, "device-unregistered");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let tls = ["-h", "localhost", "-p", &port, "--cafile", &ca, "--cert", &cert, "--key", &key];
    let refused = mosquitto("mosquitto_pub", &[&tls[..], &["-t", "x", "-m", "x", "-V", "mqttv5"]].concat());
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).to_lowercase().contains("not authorized"), "{}", String::from_utf8_lossy(&refused.stderr));
}

fn rustls_client(ca: &Path, cert: &Path, key: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).expect("cert").map(|c| c.expect("cert")).collect();
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects with rumqttc over TLS, subscribes, publishes at QoS 1 and returns the payload received.
async fn rumqttc_roundtrip(port: u16, config: Arc<rustls::ClientConfig>, id: &str) -> String {
    let mut opts = MqttOptions::new(id, "localhost", port);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    let (client, mut events) = AsyncClient::new(opts, 10);
    client.subscribe("tls/rumqttc", QoS::AtLeastOnce).await.expect("subscribe");
    let run = async {
        loop {
            match events.poll().await.expect("event loop") {
                Event::Incoming(Packet::SubAck(_)) => {
                    client.publish("tls/rumqttc", QoS::AtLeastOnce, false, "over rustls").await.expect("publish");
                }
                Event::Incoming(Packet::Publish(p)) => return String::from_utf8_lossy(&p.payload).into_owned(),
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, run).await.expect("round trip timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_over_rustls_with_client_certificate_and_aws_alpn() {
    let server = Server::start_with(ALL_LISTENERS);
    let (cert, key) = issue(&server, "device-2");
    let port = server.ports["mqtts"];
    let plain = rustls_client(&ca(&server), &cert, &key, &[]);
    assert_eq!(rumqttc_roundtrip(port, plain, "rustls-plain").await, "over rustls");
    let aws = rustls_client(&ca(&server), &cert, &key, &[b"x-amzn-mqtt-ca"]);
    assert_eq!(rumqttc_roundtrip(port, aws, "rustls-alpn").await, "over rustls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let server = Server::start_with(ALL_LISTENERS);
    let other = Server::start_with(ALL_LISTENERS);
    let (cert, key) = issue(&other, "stranger");
    // Trust the real server's CA, but present a certificate of the other Ferrite's CA.
    let config = rustls_client(&ca(&server), &cert, &key, &[]);
    let mut opts = MqttOptions::new("stranger", "localhost", server.ports["mqtts"]);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    let (_client, mut events) = AsyncClient::new(opts, 10);
    let first = tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("no outcome");
    assert!(!first, "a certificate from an unknown CA was accepted");
}

fn paho(args: &[String]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ws_roundtrip.py");
    let out = Command::new("python3").arg(script).args(args).output().expect("run python3");
    assert!(
        out.status.success(),
        "paho-mqtt failed (scripts/test installs paho-mqtt): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn paho_over_websocket() {
    let server = Server::start_with(ALL_LISTENERS);
    assert_eq!(paho(&[server.ports["ws"].to_string()]), "hello over websocket");
}

#[test]
fn paho_over_websocket_with_tls() {
    let server = Server::start_with(ALL_LISTENERS);
    let (cert, key) = issue(&server, "browser");
    let args = [server.ports["wss"].to_string(), ca(&server).display().to_string(), cert.display().to_string(), key.display().to_string()];
    assert_eq!(paho(&args), "hello over websocket");
}

/// An idle TLS connection parks (its rustls state kept, its socket out of tokio's reactor) and
/// goes on where it left off: a message published meanwhile arrives over the same TLS session,
/// and the client's own publish after that is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tls_connection_parks_and_carries_on() {
    let server = Server::start_with(&["mqtt.tls_listen=127.0.0.1:0", "mqtt.park_idle_after_ms=100"]);
    let (cert, key) = issue(&server, "parked-device");
    let mut opts = MqttOptions::new("tls-parked", "localhost", server.ports["mqtts"]);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(rustls_client(&ca(&server), &cert, &key, &[]))));
    let (client, mut events) = AsyncClient::new(opts, 10);
    client.subscribe("parked/tls", QoS::AtLeastOnce).await.expect("subscribe");
    let suback = async {
        while !matches!(events.poll().await.expect("event loop"), Event::Incoming(Packet::SubAck(_))) {}
    };
    tokio::time::timeout(WAIT, suback).await.expect("SUBACK");
    let server = tokio::task::spawn_blocking(move || {
        server.wait_for_metric("ferrite_mqtt_connections_parked", 1.0);
        let (mut publisher, _) = common::Raw::connect(server.port, mqtt::Protocol::V311, "plain-publisher");
        publisher.send(&mqtt::Packet::Publish(mqtt::Publish {
            qos: mqtt::QoS::AtLeastOnce,
            topic: "parked/tls".into(),
            packet_id: 1,
            payload: bytes::Bytes::from_static(b"while parked"),
            ..Default::default()
        }));
        assert!(matches!(publisher.recv(), Some(mqtt::Packet::PubAck(_))));
        server
    })
    .await
    .expect("publisher");
    let received = async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.expect("event loop") {
                return p.payload;
            }
        }
    };
    assert_eq!(&tokio::time::timeout(WAIT, received).await.expect("message to the parked TLS client")[..], b"while parked");
    client.publish("parked/tls", QoS::AtLeastOnce, false, "echo").await.expect("publish");
    let echoed = async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.expect("event loop") {
                return p.payload;
            }
        }
    };
    assert_eq!(&tokio::time::timeout(WAIT, echoed).await.expect("own publish after resuming")[..], b"echo");
    drop(server);
}
