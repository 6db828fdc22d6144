//! Decoding packets from bytes, strictly per the MQTT 3.1.1 and 5.0 specifications.

use crate::packet::allowed;
use crate::props::PropCtx;
use crate::topic::valid_topic_name;
use crate::*;
use bytes::{Buf, Bytes, BytesMut};

const SHORT: DecodeError = DecodeError::Malformed("packet is shorter than its fields");

/// A cursor over one packet's bytes; every read is bounds-checked.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.buf.is_empty() {
            return Err(SHORT);
        }
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        if self.buf.len() < 2 {
            return Err(SHORT);
        }
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        if self.buf.len() < 4 {
            return Err(SHORT);
        }
        Ok(self.buf.get_u32())
    }

    /// A Variable Byte Integer, at most four bytes, minimally encoded.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= ((b & 0x7F) as u32) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::Malformed("variable byte integer is not minimally encoded"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed("variable byte integer longer than four bytes"))
    }

    /// Takes the next `len` bytes as a reader of their own.
    pub(crate) fn sub(&mut self, len: usize) -> Result<Reader, DecodeError> {
        if self.buf.len() < len {
            return Err(SHORT);
        }
        Ok(Reader { buf: self.buf.split_to(len) })
    }

    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()? as usize;
        if self.buf.len() < len {
            return Err(SHORT);
        }
        Ok(self.buf.split_to(len))
    }

    pub(crate) fn mqtt_str(&mut self) -> Result<MqttStr, DecodeError> {
        let b = self.binary()?;
        if b.contains(&0) {
            return Err(DecodeError::BadUtf8);
        }
        MqttStr::from_utf8(b).map_err(|_| DecodeError::BadUtf8)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        Ok(self.mqtt_str()?.as_str().to_owned())
    }

    fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() { Ok(()) } else { Err(DecodeError::Malformed("unexpected bytes after the packet's fields")) }
    }
}

/// Reads the remaining length from `buf[1..]`: `Ok(None)` if more bytes are needed,
/// else the value and the number of bytes it took.
fn remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        value |= ((b & 0x7F) as usize) << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(DecodeError::BadRemainingLength);
            }
            return Ok(Some((value, i + 1)));
        }
    }
    Err(DecodeError::BadRemainingLength)
}

/// Decodes one packet from the front of `buf`, removing its bytes.
///
/// The most [`decode`] reserves ahead of the bytes received for a packet still arriving.
pub const RESERVE_AHEAD: usize = 64 * 1024;

/// Returns `Ok(None)` when `buf` does not yet hold a whole packet. `protocol` is the level
/// negotiated by CONNECT (`None` before it; CONNECT carries its own level). A packet larger
/// than `max_size` bytes is refused as soon as its header is read, before it is buffered.
pub fn decode(buf: &mut BytesMut, protocol: Option<Protocol>, max_size: usize) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else { return Ok(None) };
    let packet_type = first >> 4;
    let flags = first & 0x0F;
    let expected_flags = match packet_type {
        0 => return Err(DecodeError::ReservedPacketType(0)),
        15 if protocol.is_some_and(|p| !p.is_v5()) => return Err(DecodeError::ReservedPacketType(15)),
        3 => flags, // PUBLISH: checked below
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags != expected_flags {
        return Err(DecodeError::BadFlags { packet_type, flags });
    }
    let Some((len, len_bytes)) = remaining_length(buf)? else { return Ok(None) };
    let size = 1 + len_bytes + len;
    if size > max_size {
        return Err(DecodeError::PacketTooLarge { size, max: max_size });
    }
    if buf.len() < size {
        // Room for what is coming, but never much more than has arrived: a client announcing a
        // large packet and then sending nothing costs little.
        buf.reserve((size - buf.len()).min(RESERVE_AHEAD));
        return Ok(None);
    }
    let mut frame = buf.split_to(size).freeze();
    frame.advance(1 + len_bytes);
    let mut r = Reader::new(frame);
    let v = protocol.unwrap_or(Protocol::V311);
    let packet = match packet_type {
        1 => Packet::Connect(Box::new(connect(&mut r)?)),
        2 => Packet::ConnAck(connack(&mut r, v)?),
        3 => Packet::Publish(publish(&mut r, v, flags)?),
        4 => Packet::PubAck(pub_resp(&mut r, v, "PUBACK", allowed::PUBACK)?),
        5 => Packet::PubRec(pub_resp(&mut r, v, "PUBREC", allowed::PUBACK)?),
        6 => Packet::PubRel(pub_resp(&mut r, v, "PUBREL", allowed::PUBREL)?),
        7 => Packet::PubComp(pub_resp(&mut r, v, "PUBCOMP", allowed::PUBREL)?),
        8 => Packet::Subscribe(subscribe(&mut r, v)?),
        9 => Packet::SubAck(suback(&mut r, v)?),
        10 => Packet::Unsubscribe(unsubscribe(&mut r, v)?),
        11 => Packet::UnsubAck(unsuback(&mut r, v)?),
        12 => {
            r.end()?;
            Packet::PingReq
        }
        13 => {
            r.end()?;
            Packet::PingResp
        }
        14 => Packet::Disconnect(disconnect(&mut r, v)?),
        _ => Packet::Auth(auth(&mut r)?),
    };
    Ok(Some(packet))
}

fn packet_id(r: &mut Reader, packet: &'static str) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::ZeroPacketId { packet });
    }
    Ok(id)
}

fn reason(code: u8, list: &[u8], packet: &'static str) -> Result<ReasonCode, DecodeError> {
    if list.contains(&code) { Ok(ReasonCode(code)) } else { Err(DecodeError::BadReasonCode { code, packet }) }
}

fn props(r: &mut Reader, v: Protocol, ctx: PropCtx) -> Result<Properties, DecodeError> {
    if v.is_v5() { Properties::decode(r, ctx) } else { Ok(Properties::default()) }
}

fn connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    let protocol = match (name.as_str(), level) {
        ("MQTT", 4) => Protocol::V311,
        ("MQTT", 5) => Protocol::V5,
        ("MQIsdp", 3) => Protocol::V31,
        _ => return Err(DecodeError::UnsupportedProtocol { name, level }),
    };
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("CONNECT reserved flag is set"));
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::Malformed("Will QoS or Will Retain set without the Will Flag"));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::BadQoS)?;
    if !protocol.is_v5() && password_flag && !username_flag {
        return Err(DecodeError::Malformed("Password Flag set without the User Name Flag"));
    }
    let keep_alive = r.u16()?;
    let properties = props(r, protocol, PropCtx::Connect)?;
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::Protocol("Authentication Data without an Authentication Method"));
    }
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = props(r, protocol, PropCtx::Will)?;
        let topic = r.mqtt_str()?;
        if !valid_topic_name(&topic) {
            return Err(DecodeError::BadTopicName(topic.to_string()));
        }
        let payload = r.binary()?;
        Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if username_flag { Some(r.string()?) } else { None };
    let password = if password_flag { Some(r.binary()?) } else { None };
    r.end()?;
    Ok(Connect { protocol, clean_start: flags & 0x02 != 0, keep_alive, client_id, will, username, password, properties })
}

fn connack(r: &mut Reader, v: Protocol) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::Malformed("CONNACK reserved flags are set"));
    }
    let code = r.u8()?;
    let reason = if v.is_v5() {
        reason(code, allowed::CONNACK, "CONNACK")?
    } else {
        ReasonCode::from_v3_connack(code).ok_or(DecodeError::BadReasonCode { code, packet: "CONNACK" })?
    };
    let properties = props(r, v, PropCtx::ConnAck)?;
    r.end()?;
    Ok(ConnAck { session_present: flags & 1 != 0, reason, properties })
}

fn publish(r: &mut Reader, v: Protocol, flags: u8) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::BadQoS)?;
    let dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed("DUP flag set on a QoS 0 PUBLISH"));
    }
    let topic = r.mqtt_str()?;
    if topic.contains(['+', '#']) || (topic.is_empty() && !v.is_v5()) {
        return Err(DecodeError::BadTopicName(topic.to_string()));
    }
    let packet_id = if qos == QoS::AtMostOnce { 0 } else { packet_id(r, "PUBLISH")? };
    let properties = props(r, v, PropCtx::Publish)?;
    let payload = r.rest();
    Ok(Publish { dup, qos, retain: flags & 0x01 != 0, topic, packet_id, properties, payload })
}

fn pub_resp(r: &mut Reader, v: Protocol, name: &'static str, codes: &[u8]) -> Result<PubResp, DecodeError> {
    let packet_id = packet_id(r, name)?;
    let mut resp = PubResp::new(packet_id);
    if v.is_v5() && r.remaining() > 0 {
        resp.reason = reason(r.u8()?, codes, name)?;
        if r.remaining() > 0 {
            resp.properties = Properties::decode(r, PropCtx::PubResp)?;
        }
    }
    r.end()?;
    Ok(resp)
}

fn subscribe(r: &mut Reader, v: Protocol) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r, "SUBSCRIBE")?;
    let properties = props(r, v, PropCtx::Subscribe)?;
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        let filter = r.string()?;
        let o = r.u8()?;
        let reserved = if v.is_v5() { 0xC0 } else { 0xFC };
        if o & reserved != 0 {
            return Err(DecodeError::Malformed("reserved bits set in subscription options"));
        }
        let qos = QoS::from_u8(o & 0x03).ok_or(DecodeError::BadQoS)?;
        let retain_handling = (o >> 4) & 0x03;
        if retain_handling == 3 {
            return Err(DecodeError::Protocol("Retain Handling 3 in subscription options"));
        }
        let opts = SubscriptionOptions { qos, no_local: o & 0x04 != 0, retain_as_published: o & 0x08 != 0, retain_handling };
        filters.push((filter, opts));
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("SUBSCRIBE with no topic filters"));
    }
    Ok(Subscribe { packet_id, properties, filters })
}

fn suback(r: &mut Reader, v: Protocol) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r, "SUBACK")?;
    let properties = props(r, v, PropCtx::SubAck)?;
    let list: &[u8] = if v.is_v5() { allowed::SUBACK } else { &[0, 1, 2, 0x80] };
    let mut reasons = Vec::new();
    while r.remaining() > 0 {
        reasons.push(reason(r.u8()?, list, "SUBACK")?);
    }
    Ok(SubAck { packet_id, properties, reasons })
}

fn unsubscribe(r: &mut Reader, v: Protocol) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r, "UNSUBSCRIBE")?;
    let properties = props(r, v, PropCtx::Unsubscribe)?;
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::Protocol("UNSUBSCRIBE with no topic filters"));
    }
    Ok(Unsubscribe { packet_id, properties, filters })
}

fn unsuback(r: &mut Reader, v: Protocol) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r, "UNSUBACK")?;
    let properties = props(r, v, PropCtx::UnsubAck)?;
    let mut reasons = Vec::new();
    if v.is_v5() {
        while r.remaining() > 0 {
            reasons.push(reason(r.u8()?, allowed::UNSUBACK, "UNSUBACK")?);
        }
    }
    r.end()?;
    Ok(UnsubAck { packet_id, properties, reasons })
}

fn disconnect(r: &mut Reader, v: Protocol) -> Result<Disconnect, DecodeError> {
    let mut d = Disconnect::default();
    if v.is_v5() && r.remaining() > 0 {
        d.reason = reason(r.u8()?, allowed::DISCONNECT, "DISCONNECT")?;
        if r.remaining() > 0 {
            d.properties = Properties::decode(r, PropCtx::Disconnect)?;
        }
    }
    r.end()?;
    Ok(d)
}

fn auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let mut a = Auth::default();
    if r.remaining() > 0 {
        a.reason = reason(r.u8()?, allowed::AUTH, "AUTH")?;
        if r.remaining() > 0 {
            a.properties = Properties::decode(r, PropCtx::Auth)?;
        }
    }
    r.end()?;
    Ok(a)
}
