//! CONNECT handling: read the first packet, validate it, open or resume the session, take over
//! an older connection, and answer CONNACK.

use super::{Conn, Stream, sniff_v5};
use crate::BrokerInner;
use crate::session::{Attachment, Stage, options_to_byte};
use store::{Op, SubscriptionRow};
use bytes::BytesMut;
use mqtt::{ConnAck, Connect, DecodeError, Packet, Properties, Protocol, PubResp, ReasonCode};
use crate::auth::{Authenticator, ConnectInfo};
use crate::server::PeerInfo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// Reads CONNECT within the connect timeout; answers CONNACK. `None` means the connection was
/// refused (and closed).
pub(super) async fn handshake<S: Stream>(
    mut io: S,
    peer: PeerInfo,
    broker: Arc<BrokerInner>,
    authn: Arc<dyn Authenticator>,
) -> Option<Conn<S>> {
    let cfg = &broker.config;
    let deadline = tokio::time::Instant::now() + cfg.connect_timeout;
    // Grows as needed (a CONNECT usually fits in the first 64 bytes).
    let mut rbuf = BytesMut::new();
    let connect = loop {
        let v5 = sniff_v5(&rbuf);
        match mqtt::decode(&mut rbuf, None, cfg.max_packet_size) {
            Ok(Some(Packet::Connect(c))) => break c,
            Ok(Some(other)) => {
                tracing::info!(peer = %peer.addr, packet = other.name(), "first packet is not CONNECT, closing");
                return None;
            }
            Ok(None) => match tokio::time::timeout_at(deadline, io.read_buf(&mut rbuf)).await {
                Ok(Ok(n)) if n > 0 => continue,
                _ => return None,
            },
            Err(e) => {
                tracing::info!(peer = %peer.addr, error = %e, "bad CONNECT, closing");
                let reply: Option<Vec<u8>> = match &e {
                    DecodeError::UnsupportedProtocol { name, .. } if name == "MQTT" || name == "MQIsdp" => {
                        Some(vec![0x20, 2, 0, 1])
                    }
                    DecodeError::UnsupportedProtocol { .. } => None,
                    _ if v5 => Some(vec![0x20, 3, 0, e.reason_code().0, 0]),
                    _ => None,
                };
                if let Some(r) = reply {
                    let _ = io.write_all(&r).await;
                }
                let _ = io.shutdown().await;
                return None;
            }
        }
    };
    accept(io, rbuf, peer, broker, authn, *connect).await
}

async fn refuse<S: Stream>(mut io: S, v: Protocol, reason: ReasonCode) -> Option<Conn<S>> {
    let mut out = BytesMut::new();
    Packet::ConnAck(ConnAck { session_present: false, reason, properties: Properties::default() }).encode(&mut out, v);
    let _ = io.write_all(&out).await;
    let _ = io.shutdown().await;
    None
}

async fn accept<S: Stream>(io: S, rbuf: BytesMut, peer: PeerInfo, broker: Arc<BrokerInner>, authn: Arc<dyn Authenticator>, c: Connect) -> Option<Conn<S>> {
    let cfg = &broker.config;
    let v = c.protocol;
    let mut assigned = None;
    let client_id = if c.client_id.is_empty() {
        if !v.is_v5() && !c.clean_start {
            return refuse(io, v, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID).await;
        }
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id = format!("ferrite-{:x}{:x}", nanos & 0xFFFF_FFFF_FFFF, broker.next_generation());
        assigned = Some(id.clone());
        id
    } else {
        c.client_id
    };
    if client_id.len() > cfg.max_client_id_len {
        return refuse(io, v, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID).await;
    }
    if client_id.starts_with(crate::internal::INTERNAL_PREFIX) {
        tracing::info!(peer = %peer.addr, %client_id, "client id of Ferrite's own services refused");
        return refuse(io, v, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID).await;
    }
    if c.properties.authentication_method.is_some() {
        return refuse(io, v, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
    }
    if let Some(w) = &c.will {
        if !cfg.topic_within_limits(&w.topic) {
            return refuse(io, v, ReasonCode::TOPIC_NAME_INVALID).await;
        }
        if w.qos as u8 > cfg.maximum_qos {
            return refuse(io, v, ReasonCode::QOS_NOT_SUPPORTED).await;
        }
        if w.retain && !cfg.retain_available {
            return refuse(io, v, ReasonCode::RETAIN_NOT_SUPPORTED).await;
        }
        if w.properties.payload_format_indicator == Some(1) && std::str::from_utf8(&w.payload).is_err() {
            return refuse(io, v, ReasonCode::PAYLOAD_FORMAT_INVALID).await;
        }
    }

    let info = ConnectInfo { peer: &peer, client_id: &client_id, username: c.username.as_deref(), password: c.password.as_deref() };
    let authz = match authn.connect(info).await {
        Ok(a) => a,
        Err(reason) => {
            tracing::info!(%client_id, peer = %peer.addr, ?reason, "connection not authorized");
            return refuse(io, v, reason).await;
        }
    };
    // As AWS IoT: a will needs iot:Publish on its topic (and iot:RetainPublish when retained),
    // and never goes to a reserved topic a client may not publish to.
    if let Some(w) = &c.will
        && !super::inbound::may_publish(&*authz, &w.topic, w.retain)
    {
        authz.denied("publish");
        tracing::info!(%client_id, peer = %peer.addr, topic = %w.topic, "will not authorized: connection refused");
        return refuse(io, v, ReasonCode::NOT_AUTHORIZED).await;
    }
    let mut server_keep_alive = None;
    let keep_alive = if v.is_v5() && c.keep_alive > cfg.max_keep_alive_secs && cfg.max_keep_alive_secs > 0 {
        server_keep_alive = Some(cfg.max_keep_alive_secs);
        cfg.max_keep_alive_secs
    } else {
        c.keep_alive
    };
    let requested_expiry = match (v.is_v5(), c.clean_start) {
        (true, _) => c.properties.session_expiry_interval.unwrap_or(0),
        (false, true) => 0,
        (false, false) => cfg.max_session_expiry_secs,
    };
    let expiry = requested_expiry.min(cfg.max_session_expiry_secs);

    let client_id: Arc<str> = client_id.into();
    let (session, present) = broker.open_session(&client_id, c.clean_start, v, authz.principal());
    let generation = broker.next_generation();
    let kick = Arc::new(Notify::new());
    let mut ops = Vec::new();
    {
        let mut st = session.lock();
        let taken_over = st.attached.replace(Attachment::new(generation, kick.clone()));
        if let Some(old) = &taken_over {
            tracing::info!(%client_id, "session taken over by a new connection");
            old.wake();
        }
        st.generation = generation;
        st.kick_reason = None;
        st.suppress_will = false;
        // The connection taken over was indexed under its principal; a resumed one was not.
        let before = if taken_over.is_some() { st.principal.take() } else { None };
        broker.reattach_principal(&client_id, before.as_deref(), authz.principal());
        st.principal = authz.principal().map(Into::into);
        st.expiry_secs = expiry;
        st.protocol = v;
        if broker.has_store() && expiry > 0 {
            ops.push(Op::PutSession { client_id: client_id.to_string(), protocol: v.level(), expiry_secs: expiry, principal: authz.principal().map(str::to_string) });
            if !st.persistent {
                // A live session becoming persistent: store what it has.
                for (filter, (opts, sub_id)) in &st.subscriptions {
                    let sub = SubscriptionRow { filter: filter.clone(), options: options_to_byte(*opts), sub_id: *sub_id };
                    ops.push(Op::PutSubscription { client_id: client_id.to_string(), sub });
                }
                st.persistent = true;
            }
        }
    }

    let mut props = Properties::default();
    if v.is_v5() {
        props.session_expiry_interval = (expiry != requested_expiry).then_some(expiry);
        props.receive_maximum = (cfg.receive_maximum != u16::MAX).then_some(cfg.receive_maximum);
        props.maximum_qos = (cfg.maximum_qos < 2).then_some(cfg.maximum_qos);
        props.retain_available = (!cfg.retain_available).then_some(0);
        props.maximum_packet_size = Some(cfg.max_packet_size.min(mqtt::MAX_VARINT as usize + 5) as u32);
        props.assigned_client_identifier = assigned;
        props.topic_alias_maximum = (cfg.topic_alias_maximum > 0).then_some(cfg.topic_alias_maximum);
        props.server_keep_alive = server_keep_alive;
    }
    let connected_ms = (cfg.lifecycle_events && crate::lifecycle::Presence::eligible(&client_id))
        .then(|| std::num::NonZeroU64::new(crate::message::unix_ms().max(1) as u64))
        .flatten();
    let mut conn = Conn {
        io,
        rbuf,
        wbuf: BytesMut::new(),
        busy: false,
        peer,
        protocol: v,
        session,
        client_id,
        generation,
        kick,
        keep_alive: (keep_alive > 0).then(|| Duration::from_millis(keep_alive as u64 * 1500)),
        last_rx: Instant::now(),
        last_active: Instant::now(),
        idle_after: None,
        peer_max_packet: c.properties.maximum_packet_size.map_or(usize::MAX, |m| m as usize),
        peer_receive_max: c.properties.receive_maximum.unwrap_or(u16::MAX),
        peer_alias_max: c.properties.topic_alias_maximum.unwrap_or(0),
        aliases: None,
        will: c.will.map(Box::new),
        broker: broker.clone(),
        ops,
        publish_rate: crate::limit::Bucket::new(cfg.max_publish_per_sec),
        connected_ms,
        authz,
        sent: [0; 3],
        pressure: None,
        outbox: Default::default(),
        outbox_len: 0,
        throttled_until: None,
        partial_since: None,
        partial_held: 0,
        retained_backlog: None,
    };
    tracing::debug!(
        client_id = %conn.client_id,
        peer = %conn.peer.addr,
        transport = conn.peer.transport,
        cert = conn.peer.cert.as_ref().map(|c| c.subject.as_str()),
        protocol = ?v,
        present,
        "client connected"
    );
    // The certificate and server name served authentication; the connection keeps neither
    // (memory per connection: a certificate's DER is about a kilobyte).
    conn.peer.cert = None;
    conn.peer.server_name = None;
    conn.send(&Packet::ConnAck(ConnAck { session_present: present, reason: ReasonCode::SUCCESS, properties: props }));
    if present {
        conn.resend_inflight();
    }
    if let Some(p) = conn.presence() {
        p.connected(&broker, &conn.peer.addr.ip().to_string());
    }
    let connected = crate::tap::Connected {
        client_id: &conn.client_id,
        principal: conn.authz.principal(),
        source: conn.peer.addr,
        at_ms: crate::message::unix_ms(),
        generation: conn.generation,
    };
    broker.tap(|t| t.connected(&connected));
    Some(conn)
}

impl<S: Stream> Conn<S> {
    /// After resuming a session: resend unacknowledged PUBLISH packets with DUP, and PUBREL for
    /// QoS 2 messages awaiting PUBCOMP, in their original order. A message the new connection may
    /// not receive (another principal's policy, a reserved topic) is dropped, not resent.
    fn resend_inflight(&mut self) {
        let session = self.session.clone();
        let mut st = session.lock();
        let now = Instant::now();
        let mut refused = Vec::new();
        for f in st.inflight().iter() {
            match f.stage {
                Stage::AwaitPubComp => self.send(&Packet::PubRel(PubResp::new(f.packet_id))),
                _ if !self.may_receive(&f.delivery.msg.topic) => refused.push(f.packet_id),
                _ => {
                    self.encode_delivery(&f.delivery, f.packet_id, true, now);
                }
            }
        }
        if refused.is_empty() {
            return;
        }
        let mut kept = std::collections::VecDeque::new();
        for f in std::mem::take(st.inflight_mut()) {
            if refused.contains(&f.packet_id) {
                self.forget(&f.delivery);
            } else {
                kept.push_back(f);
            }
        }
        *st.inflight_mut() = kept;
    }
}
