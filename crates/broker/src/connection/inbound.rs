//! Handlers for packets a client sends after CONNECT: PUBLISH and its acknowledgements,
//! SUBSCRIBE, UNSUBSCRIBE and DISCONNECT.

use super::{Conn, Exit, Stream};
use crate::message::{Delivery, Message};
use crate::metrics::Metrics;
use crate::session::{Stage, options_to_byte};
use store::{Op, SubscriptionRow};
use mqtt::topic::{self, FilterError};
use mqtt::{Disconnect, Packet, PubResp, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe};
use std::sync::Arc;
use std::time::Instant;

/// [`Conn::may_publish`] for any connection's rights.
pub(super) fn may_publish(authz: &dyn crate::auth::Authorization, topic: &str, retain: bool) -> bool {
    use crate::reserved;
    reserved::may_publish(topic) && authz.can_publish(topic) && (!retain || (reserved::may_retain(topic) && authz.can_retain(topic)))
}

impl<S: Stream> Conn<S> {
    pub(super) fn on_publish(&mut self, mut p: Publish) -> Option<Exit> {
        let cfg = &self.broker.config;
        if let Some(alias) = p.properties.topic_alias {
            if alias > cfg.topic_alias_maximum {
                return Some(Exit::Error(ReasonCode::TOPIC_ALIAS_INVALID));
            }
            if p.topic.is_empty() {
                match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                    Some(t) => p.topic = t.clone(),
                    None => return Some(Exit::Error(ReasonCode::PROTOCOL_ERROR)),
                }
            } else {
                self.aliases.get_or_insert_default().inbound.insert(alias, p.topic.clone());
            }
        } else if p.topic.is_empty() {
            return Some(Exit::Error(ReasonCode::PROTOCOL_ERROR));
        }
        if !cfg.topic_within_limits(&p.topic) {
            tracing::info!(client_id = %self.client_id, topic_bytes = p.topic.len(), "topic name past mqtt.max_topic_levels or max_topic_length_bytes");
            return Some(Exit::Error(ReasonCode::TOPIC_NAME_INVALID));
        }
        if p.qos as u8 > cfg.maximum_qos {
            return Some(Exit::Error(ReasonCode::QOS_NOT_SUPPORTED));
        }
        if p.retain && !cfg.retain_available {
            return Some(Exit::Error(ReasonCode::RETAIN_NOT_SUPPORTED));
        }
        Metrics::inc(&self.broker.metrics.messages_received[p.qos as usize]);
        if !self.may_publish(&p.topic, p.retain) {
            return self.publish_denied(&p);
        }
        let owed = self.publish_rate.take_or_owe();
        if !owed.is_zero() {
            self.throttled_until = Some(tokio::time::Instant::now() + owed);
        }
        let bad_format = self.protocol.is_v5()
            && p.properties.payload_format_indicator == Some(1)
            && std::str::from_utf8(&p.payload).is_err();
        let packet_id = p.packet_id;
        match p.qos {
            QoS::AtMostOnce => {
                if !bad_format {
                    self.route(p);
                }
            }
            QoS::AtLeastOnce => {
                let reason = if bad_format { ReasonCode::PAYLOAD_FORMAT_INVALID } else { self.route(p) };
                self.send(&Packet::PubAck(PubResp { packet_id, reason, ..Default::default() }));
            }
            QoS::ExactlyOnce => {
                let (seen, pending) = {
                    let st = self.session.lock();
                    (st.incoming_qos2.contains(&packet_id), st.incoming_qos2.len())
                };
                let mut reason = ReasonCode::SUCCESS;
                if !seen {
                    if bad_format {
                        reason = ReasonCode::PAYLOAD_FORMAT_INVALID;
                    } else {
                        if pending >= self.broker.config.receive_maximum as usize {
                            return Some(Exit::Error(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED));
                        }
                        reason = self.route(p);
                        let persistent = {
                            let mut st = self.session.lock();
                            st.incoming_qos2.insert(packet_id);
                            st.persistent
                        };
                        if persistent {
                            self.ops.push(Op::PutIncomingQos2 { client_id: self.client_id.to_string(), packet_id });
                        }
                    }
                }
                self.send(&Packet::PubRec(PubResp { packet_id, reason, ..Default::default() }));
            }
        }
        None
    }

    /// AWS IoT's answer to an unauthorized PUBLISH: MQTT 3.1.1 clients are disconnected; MQTT 5
    /// clients get PUBACK/PUBREC 0x87 (QoS 1/2) or have the message dropped (QoS 0).
    /// Whether this client may publish to `topic` (with RETAIN when `retain`): the reserved-topic
    /// table first, whatever the policy says, then the connection's policy. Asked for every
    /// PUBLISH and for the will, at CONNECT and again when it is sent.
    pub(super) fn may_publish(&self, topic: &str, retain: bool) -> bool {
        may_publish(&*self.authz, topic, retain)
    }

    fn publish_denied(&mut self, p: &Publish) -> Option<Exit> {
        self.authz.denied("publish");
        Metrics::inc(&self.broker.metrics.denied);
        tracing::info!(client_id = %self.client_id, topic = %p.topic, "publish not authorized");
        if !self.protocol.is_v5() {
            return Some(Exit::Error(ReasonCode::NOT_AUTHORIZED));
        }
        let resp = PubResp { packet_id: p.packet_id, reason: ReasonCode::NOT_AUTHORIZED, ..Default::default() };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(resp)),
            QoS::ExactlyOnce => self.send(&Packet::PubRec(resp)),
        }
        None
    }

    /// Routes a received PUBLISH; the reason code for its acknowledgement.
    fn route(&mut self, p: Publish) -> ReasonCode {
        let msg = Arc::new(Message::from_publish(p, Some(self.client_id.clone()), Instant::now()));
        self.outbox_len += 1;
        if self.broker.route_into(msg, &mut self.ops, &mut self.outbox) == 0 { ReasonCode::NO_MATCHING_SUBSCRIBERS } else { ReasonCode::SUCCESS }
    }

    pub(super) fn on_puback(&mut self, r: PubResp) -> Option<Exit> {
        self.complete(r.packet_id, Stage::AwaitPubAck);
        None
    }

    /// Removes the in-flight message `packet_id` if it is at `stage`, and from the store.
    fn complete(&mut self, packet_id: u16, stage: Stage) {
        let mut st = self.session.lock();
        if let Some(i) = st.find_inflight(packet_id)
            && st.inflight()[i].stage == stage
            && let Some(f) = st.inflight_mut().remove(i)
            && f.delivery.seq != 0
        {
            self.ops.push(Op::DeleteMessage { client_id: self.client_id.to_string(), seq: f.delivery.seq });
        }
    }

    pub(super) fn on_pubrec(&mut self, r: PubResp) -> Option<Exit> {
        let reply = {
            let mut st = self.session.lock();
            match st.find_inflight(r.packet_id) {
                Some(i) if st.inflight()[i].stage == Stage::AwaitPubAck => None,
                Some(i) if r.reason.is_error() => {
                    if let Some(f) = st.inflight_mut().remove(i)
                        && f.delivery.seq != 0
                    {
                        self.ops.push(Op::DeleteMessage { client_id: self.client_id.to_string(), seq: f.delivery.seq });
                    }
                    None
                }
                Some(i) => {
                    let f = &mut st.inflight_mut()[i];
                    if f.stage != Stage::AwaitPubComp {
                        f.stage = Stage::AwaitPubComp;
                        if f.delivery.seq != 0 {
                            let (client_id, seq, packet_id, stage) =
                                (self.client_id.to_string(), f.delivery.seq, f.packet_id, Stage::AwaitPubComp.code());
                            self.ops.push(Op::SetStage { client_id, seq, packet_id, stage });
                        }
                    }
                    Some(ReasonCode::SUCCESS)
                }
                None => Some(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
            }
        };
        if let Some(reason) = reply {
            self.send(&Packet::PubRel(PubResp { packet_id: r.packet_id, reason, ..Default::default() }));
        }
        None
    }

    pub(super) fn on_pubcomp(&mut self, r: PubResp) -> Option<Exit> {
        self.complete(r.packet_id, Stage::AwaitPubComp);
        None
    }

    pub(super) fn on_pubrel(&mut self, r: PubResp) -> Option<Exit> {
        let (released, persistent) = {
            let mut st = self.session.lock();
            (st.incoming_qos2.remove(&r.packet_id), st.persistent)
        };
        if released && persistent {
            self.ops.push(Op::DeleteIncomingQos2 { client_id: self.client_id.to_string(), packet_id: r.packet_id });
        }
        let reason = if released { ReasonCode::SUCCESS } else { ReasonCode::PACKET_IDENTIFIER_NOT_FOUND };
        self.send(&Packet::PubComp(PubResp { packet_id: r.packet_id, reason, ..Default::default() }));
        None
    }

    pub(super) fn on_subscribe(&mut self, s: Subscribe) -> Option<Exit> {
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let now = Instant::now();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        // Live messages the new routes let in before the retained ones are queued wait behind
        // them: only this connection takes from its queue, so this position stays put.
        let live_from = self.session.lock().queue().len();
        for (filter, opts) in &s.filters {
            let parsed = match topic::parse_filter(filter) {
                Ok(p) => p,
                Err(FilterError::Invalid | FilterError::BadShare) => {
                    reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                    continue;
                }
            };
            if parsed.share_group.is_some() && opts.no_local {
                return Some(Exit::Error(ReasonCode::PROTOCOL_ERROR));
            }
            if !self.broker.config.topic_within_limits(parsed.filter) || filter.len() > self.broker.config.max_topic_length {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            }
            if !crate::reserved::may_subscribe(parsed.filter) || !self.authz.can_subscribe(filter) {
                self.authz.denied("subscribe");
                Metrics::inc(&self.broker.metrics.denied);
                tracing::info!(client_id = %self.client_id, %filter, "subscribe not authorized");
                reasons.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            let opts = SubscriptionOptions { qos: self.broker.cap_qos(opts.qos), ..*opts };
            let (existed, persistent) = {
                let mut st = self.session.lock();
                let max = self.broker.config.max_subscriptions_per_session;
                if st.subscriptions.len() >= max && !st.subscriptions.contains_key(filter) {
                    drop(st);
                    tracing::info!(client_id = %self.client_id, %filter, max, "subscription refused: mqtt.max_subscriptions_per_session reached");
                    reasons.push(ReasonCode::QUOTA_EXCEEDED);
                    continue;
                }
                (st.subscriptions.insert(filter.clone(), (opts, sub_id)).is_some(), st.persistent)
            };
            if persistent {
                let sub = SubscriptionRow { filter: filter.clone(), options: options_to_byte(opts), sub_id };
                self.ops.push(Op::PutSubscription { client_id: self.client_id.to_string(), sub });
            }
            self.broker.add_route(&self.session, parsed.clone(), opts, sub_id);
            reasons.push(ReasonCode(opts.qos as u8));
            let wants_retained = opts.retain_handling == 0 || (opts.retain_handling == 1 && !existed);
            if parsed.share_group.is_none() && wants_retained {
                for m in self.broker.retained.matching(parsed.filter, now) {
                    retained.push(Delivery {
                        qos: m.qos.min(opts.qos),
                        retain: true,
                        subscription_ids: sub_id.into_iter().collect(),
                        msg: m,
                        seq: 0,
                    });
                }
            }
        }
        if let Some(p) = self.presence() {
            let granted: Vec<String> = s.filters.iter().zip(&reasons).filter(|(_, r)| !r.is_error()).map(|((f, _), _)| f.clone()).collect();
            p.subscriptions(&self.broker, true, &granted);
        }
        self.send(&Packet::SubAck(SubAck { packet_id: s.packet_id, reasons, ..Default::default() }));
        if !retained.is_empty() {
            // As many as the queue has room for now, ahead of live messages; the rest follow
            // under flow control as the client takes them ([`Conn::refill_retained`]).
            let room = self.queue_bound().saturating_sub(self.session.lock().queue().len()).max(1);
            if retained.len() > room {
                let rest = retained.split_off(room);
                self.retained_backlog.get_or_insert_default().extend(rest);
            }
            self.broker.offer_at(&self.session, live_from, retained, &mut self.ops);
        }
        None
    }

    pub(super) fn on_unsubscribe(&mut self, u: Unsubscribe) -> Option<Exit> {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            let (existed, persistent) = {
                let mut st = self.session.lock();
                (st.subscriptions.remove(f).is_some(), st.persistent)
            };
            if existed && persistent {
                self.ops.push(Op::DeleteSubscription { client_id: self.client_id.to_string(), filter: f.clone() });
            }
            if existed && let Ok(p) = topic::parse_filter(f) {
                self.broker.router.unsubscribe(p.filter, p.share_group, &self.client_id);
            }
            reasons.push(if existed { ReasonCode::SUCCESS } else { ReasonCode::NO_SUBSCRIPTION_EXISTED });
        }
        if let Some(p) = self.presence() {
            let removed: Vec<String> = u.filters.iter().zip(&reasons).filter(|(_, r)| **r == ReasonCode::SUCCESS).map(|(f, _)| f.clone()).collect();
            p.subscriptions(&self.broker, false, &removed);
        }
        self.send(&Packet::UnsubAck(UnsubAck { packet_id: u.packet_id, reasons, ..Default::default() }));
        None
    }

    pub(super) fn on_disconnect(&mut self, d: Disconnect) -> Option<Exit> {
        if let Some(e) = d.properties.session_expiry_interval {
            let mut st = self.session.lock();
            if st.expiry_secs == 0 && e > 0 {
                return Some(Exit::Error(ReasonCode::PROTOCOL_ERROR));
            }
            st.expiry_secs = e.min(self.broker.config.max_session_expiry_secs);
            if st.expiry_secs > 0 && !st.persistent && self.broker.has_store() {
                st.persistent = true;
            }
        }
        Some(if d.reason == ReasonCode::DISCONNECT_WITH_WILL { Exit::WithWill } else { Exit::Normal })
    }
}
