//! Moving queued messages into the write buffer: the in-flight window, packet identifiers,
//! per-delivery properties, outgoing topic aliases and the client's maximum packet size.

use super::{Conn, Stream, WRITE_HIGH_WATER};
use crate::message::Delivery;
use crate::metrics::Metrics;
use crate::session::{Inflight, Stage};
use mqtt::{Properties, Publish, QoS};
use std::time::Instant;
use store::Op;

impl<S: Stream> Conn<S> {
    /// Moves queued messages into the write buffer, within the in-flight window and up to the
    /// write high-water mark (then wakes itself to continue after the write).
    pub(super) fn drain(&mut self) {
        let session = self.session.clone();
        let mut st = session.lock();
        if st.generation != self.generation {
            return; // taken over: the new connection owns the queue now
        }
        let window = self.peer_receive_max.min(self.broker.config.max_inflight).max(1) as usize;
        let now = Instant::now();
        let queued_before = st.queue().len();
        while self.wbuf.len() < WRITE_HIGH_WATER {
            let Some(front) = st.queue().front() else { break };
            if front.qos != QoS::AtMostOnce && st.inflight().len() >= window {
                break;
            }
            let Some(d) = st.queue_mut().pop_front() else { break };
            if d.msg.expired(now) {
                Metrics::inc(&self.broker.metrics.dropped_expired);
                self.forget(&d);
                continue;
            }
            if !self.may_receive(&d.msg.topic) {
                self.forget(&d);
                continue;
            }
            let packet_id = if d.qos == QoS::AtMostOnce { 0 } else { st.alloc_packet_id() };
            if !self.encode_delivery(&d, packet_id, false, now) {
                self.forget(&d);
                continue;
            }
            if d.qos != QoS::AtMostOnce {
                let stage = if d.qos == QoS::AtLeastOnce { Stage::AwaitPubAck } else { Stage::AwaitPubRec };
                if d.seq != 0 {
                    let client_id = self.client_id.to_string();
                    self.ops.push(Op::SetStage { client_id, seq: d.seq, packet_id, stage: stage.code() });
                }
                st.inflight_mut().push_back(Inflight { packet_id, delivery: d, stage });
            }
        }
        let more = !st.queue().is_empty() && self.wbuf.len() >= WRITE_HIGH_WATER;
        // Only taking messages counts as draining (a full in-flight window is not).
        if st.queue().len() < queued_before {
            st.drained_at = crate::session::ticks_ms();
        }
        let bound = st.max_queued.map_or(self.broker.config.max_queued_messages, |m| m.get() as usize);
        let room = st.pressure && st.queue().len() <= bound / 2;
        if room {
            st.pressure = false;
        }
        drop(st);
        if room {
            self.broker.room.notify_waiters();
        }
        // Counted once per drain rather than once per message: the counters are shared by every core.
        for (q, n) in self.sent.iter_mut().enumerate() {
            if *n > 0 {
                self.broker.metrics.messages_sent[q].fetch_add(std::mem::take(n), std::sync::atomic::Ordering::Relaxed);
            }
        }
        let refilled = self.refill_retained();
        if more || refilled {
            self.kick.notify_one();
        }
    }

    /// The queue bound of this connection's session.
    pub(super) fn queue_bound(&self) -> usize {
        self.session.lock().max_queued.map_or(self.broker.config.max_queued_messages, |m| m.get() as usize)
    }

    /// Moves retained messages a subscription is still owed into the queue as it has room
    /// (a subscription matching more retained messages than the queue holds gets them all, at
    /// the pace the client takes them). Returns whether it moved any.
    fn refill_retained(&mut self) -> bool {
        if self.retained_backlog.is_none() {
            return false;
        }
        let bound = self.queue_bound();
        let room = bound.saturating_sub(self.session.lock().queue().len());
        let Some(backlog) = self.retained_backlog.as_mut() else { return false };
        if room < bound / 2 && room < backlog.len() {
            return false; // wait for half the queue, so refills come in batches
        }
        let batch: Vec<_> = backlog.drain(..room.min(backlog.len())).collect();
        if backlog.is_empty() {
            self.retained_backlog = None;
        }
        if batch.is_empty() {
            return false;
        }
        self.broker.offer_at(&self.session, usize::MAX, batch, &mut self.ops);
        true
    }

    /// Deletes a stored delivery that will never be sent.
    /// Whether a message on `topic` may reach this client (reserved topics, then `iot:Receive`);
    /// counts a denial. Asked for every delivery, first sends and resends alike.
    pub(super) fn may_receive(&self, topic: &str) -> bool {
        if crate::reserved::may_receive(topic) && self.authz.can_receive(topic) {
            return true;
        }
        self.authz.denied("receive");
        Metrics::inc(&self.broker.metrics.denied);
        false
    }

    pub(super) fn forget(&mut self, d: &Delivery) {
        if d.seq != 0 {
            self.ops.push(Op::DeleteMessage { client_id: self.client_id.to_string(), seq: d.seq });
        }
    }

    /// Writes one PUBLISH for a delivery. Returns false (and counts the drop) when it would
    /// exceed the client's Maximum Packet Size.
    pub(super) fn encode_delivery(&mut self, d: &Delivery, packet_id: u16, dup: bool, now: Instant) -> bool {
        let v5 = self.protocol.is_v5();
        let mut properties = if v5 { d.msg.properties.clone() } else { Properties::default() };
        if v5 {
            properties.subscription_identifiers.clone_from(&d.subscription_ids);
            properties.message_expiry_interval = d.msg.remaining_expiry_secs(now);
        }
        let mut p = Publish {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic: d.msg.topic.clone(),
            packet_id,
            properties,
            payload: d.msg.payload.clone(),
        };
        if mqtt::publish_len(&p, self.protocol) > self.peer_max_packet {
            Metrics::inc(&self.broker.metrics.dropped_too_large);
            return false;
        }
        if v5 && self.peer_alias_max > 0 {
            let aliases = &mut self.aliases.get_or_insert_default().outbound;
            if let Some(&alias) = aliases.get(&p.topic) {
                p.properties.topic_alias = Some(alias);
                p.topic = Default::default();
            } else if aliases.len() < self.peer_alias_max as usize {
                let alias = aliases.len() as u16 + 1;
                aliases.insert(p.topic.clone(), alias);
                p.properties.topic_alias = Some(alias);
            }
        }
        mqtt::encode_publish(&mut self.wbuf, &p, self.protocol);
        self.sent[d.qos as usize] += 1;
        true
    }
}
