//! Encoding packets into bytes. Lengths are computed first, so each packet is written once.

use crate::*;
use bytes::{BufMut, BytesMut};

/// Bytes a Variable Byte Integer takes.
pub(crate) fn varint_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

pub(crate) fn put_varint(out: &mut BytesMut, mut v: u32) {
    loop {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if v == 0 {
            break;
        }
    }
}

pub(crate) fn put_str(out: &mut BytesMut, s: &str) {
    put_bin(out, s.as_bytes());
}

pub(crate) fn put_bin(out: &mut BytesMut, b: &[u8]) {
    out.put_u16(b.len() as u16);
    out.put_slice(b);
}

fn props_len(v: Protocol, p: &Properties) -> usize {
    if v.is_v5() { p.encoded_len() } else { 0 }
}

fn put_props(out: &mut BytesMut, v: Protocol, p: &Properties) {
    if v.is_v5() {
        p.encode(out);
    }
}

fn header(out: &mut BytesMut, first: u8, body: usize) {
    out.reserve(5 + body);
    out.put_u8(first);
    put_varint(out, body as u32);
}

fn total(body: usize) -> usize {
    1 + varint_len(body as u32) + body
}

/// The size of the remaining-length part of a PUBLISH.
fn publish_body_len(p: &Publish, v: Protocol) -> usize {
    2 + p.topic.len() + if p.qos == QoS::AtMostOnce { 0 } else { 2 } + props_len(v, &p.properties) + p.payload.len()
}

/// The encoded size of a PUBLISH, to compare with a peer's maximum packet size.
pub fn publish_len(p: &Publish, v: Protocol) -> usize {
    total(publish_body_len(p, v))
}

/// Writes a PUBLISH (the hot path of the broker: one reservation, no temporary buffers).
pub fn encode_publish(out: &mut BytesMut, p: &Publish, v: Protocol) {
    let first = 0x30 | (p.dup as u8) << 3 | (p.qos as u8) << 1 | p.retain as u8;
    header(out, first, publish_body_len(p, v));
    put_str(out, &p.topic);
    if p.qos != QoS::AtMostOnce {
        out.put_u16(p.packet_id);
    }
    put_props(out, v, &p.properties);
    out.put_slice(&p.payload);
}

fn pub_resp_len(r: &PubResp, v: Protocol) -> usize {
    if !v.is_v5() || (r.reason == ReasonCode::SUCCESS && r.properties.is_empty()) {
        2
    } else if r.properties.is_empty() {
        3
    } else {
        3 + r.properties.encoded_len()
    }
}

fn encode_pub_resp(out: &mut BytesMut, first: u8, r: &PubResp, v: Protocol) {
    let len = pub_resp_len(r, v);
    header(out, first, len);
    out.put_u16(r.packet_id);
    if len > 2 {
        out.put_u8(r.reason.0);
    }
    if len > 3 {
        r.properties.encode(out);
    }
}

/// Reason code then properties, each omitted when it is the default (DISCONNECT and AUTH).
fn reason_props_len(reason: ReasonCode, p: &Properties, v: Protocol) -> usize {
    if !v.is_v5() {
        0
    } else if p.is_empty() {
        if reason == ReasonCode::SUCCESS { 0 } else { 1 }
    } else {
        1 + p.encoded_len()
    }
}

fn encode_reason_props(out: &mut BytesMut, first: u8, reason: ReasonCode, p: &Properties, v: Protocol) {
    let len = reason_props_len(reason, p, v);
    header(out, first, len);
    if len > 0 {
        out.put_u8(reason.0);
    }
    if len > 1 {
        p.encode(out);
    }
}

impl Packet {
    /// The number of bytes [`Packet::encode`] writes.
    pub fn encoded_len(&self, v: Protocol) -> usize {
        let mut buf = BytesMut::new();
        match self {
            Packet::Publish(p) => publish_len(p, v),
            _ => {
                self.encode(&mut buf, v);
                buf.len()
            }
        }
    }

    /// Appends the packet's bytes to `out`, in the encoding of protocol level `v`
    /// (for CONNECT, the packet's own level).
    pub fn encode(&self, out: &mut BytesMut, v: Protocol) {
        match self {
            Packet::Connect(c) => encode_connect(out, c),
            Packet::ConnAck(c) => {
                let len = 2 + props_len(v, &c.properties);
                header(out, 0x20, len);
                out.put_u8(c.session_present as u8);
                out.put_u8(if v.is_v5() { c.reason.0 } else { c.reason.to_v3_connack() });
                put_props(out, v, &c.properties);
            }
            Packet::Publish(p) => encode_publish(out, p, v),
            Packet::PubAck(r) => encode_pub_resp(out, 0x40, r, v),
            Packet::PubRec(r) => encode_pub_resp(out, 0x50, r, v),
            Packet::PubRel(r) => encode_pub_resp(out, 0x62, r, v),
            Packet::PubComp(r) => encode_pub_resp(out, 0x70, r, v),
            Packet::Subscribe(s) => {
                let len = 2 + props_len(v, &s.properties) + s.filters.iter().map(|(f, _)| 3 + f.len()).sum::<usize>();
                header(out, 0x82, len);
                out.put_u16(s.packet_id);
                put_props(out, v, &s.properties);
                for (f, o) in &s.filters {
                    put_str(out, f);
                    let mut b = o.qos as u8;
                    if v.is_v5() {
                        b |= (o.no_local as u8) << 2 | (o.retain_as_published as u8) << 3 | o.retain_handling << 4;
                    }
                    out.put_u8(b);
                }
            }
            Packet::SubAck(s) => {
                let len = 2 + props_len(v, &s.properties) + s.reasons.len();
                header(out, 0x90, len);
                out.put_u16(s.packet_id);
                put_props(out, v, &s.properties);
                for r in &s.reasons {
                    out.put_u8(if !v.is_v5() && r.is_error() { 0x80 } else { r.0 });
                }
            }
            Packet::Unsubscribe(u) => {
                let len = 2 + props_len(v, &u.properties) + u.filters.iter().map(|f| 2 + f.len()).sum::<usize>();
                header(out, 0xA2, len);
                out.put_u16(u.packet_id);
                put_props(out, v, &u.properties);
                for f in &u.filters {
                    put_str(out, f);
                }
            }
            Packet::UnsubAck(u) => {
                let len = if v.is_v5() { 2 + u.properties.encoded_len() + u.reasons.len() } else { 2 };
                header(out, 0xB0, len);
                out.put_u16(u.packet_id);
                if v.is_v5() {
                    u.properties.encode(out);
                    for r in &u.reasons {
                        out.put_u8(r.0);
                    }
                }
            }
            Packet::PingReq => out.put_slice(&[0xC0, 0]),
            Packet::PingResp => out.put_slice(&[0xD0, 0]),
            Packet::Disconnect(d) => encode_reason_props(out, 0xE0, d.reason, &d.properties, v),
            Packet::Auth(a) => encode_reason_props(out, 0xF0, a.reason, &a.properties, Protocol::V5),
        }
    }
}

fn encode_connect(out: &mut BytesMut, c: &Connect) {
    let v = c.protocol;
    let name: &str = if v == Protocol::V31 { "MQIsdp" } else { "MQTT" };
    let mut len = 2 + name.len() + 1 + 1 + 2 + props_len(v, &c.properties) + 2 + c.client_id.len();
    if let Some(w) = &c.will {
        len += props_len(v, &w.properties) + 2 + w.topic.len() + 2 + w.payload.len();
    }
    len += c.username.as_ref().map_or(0, |u| 2 + u.len());
    len += c.password.as_ref().map_or(0, |p| 2 + p.len());
    header(out, 0x10, len);
    put_str(out, name);
    out.put_u8(v.level());
    let mut flags = (c.clean_start as u8) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3 | (w.retain as u8) << 5;
    }
    flags |= (c.password.is_some() as u8) << 6 | (c.username.is_some() as u8) << 7;
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    put_props(out, v, &c.properties);
    put_str(out, &c.client_id);
    if let Some(w) = &c.will {
        put_props(out, v, &w.properties);
        put_str(out, &w.topic);
        put_bin(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(out, u);
    }
    if let Some(p) = &c.password {
        put_bin(out, p);
    }
}
