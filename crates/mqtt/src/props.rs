//! MQTT 5 properties: one struct for every packet, validated against the packet it came in.

use crate::decode::Reader;
use crate::encode::{put_bin, put_str, put_varint, varint_len};
use crate::DecodeError;
use bytes::{BufMut, Bytes, BytesMut};

/// All MQTT 5 properties. Which ones a packet may carry is checked on decoding
/// ([`Properties::decode`] with a [`PropCtx`]); the encoder writes whatever is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Bytes>,
    /// Several in a PUBLISH sent to a client with overlapping subscriptions; at most one in SUBSCRIBE.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Bytes>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

/// The packet (or will) a property list belongs to; it decides which properties are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropCtx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropCtx {
    fn name(self) -> &'static str {
        match self {
            PropCtx::Connect => "CONNECT",
            PropCtx::Will => "the Will properties",
            PropCtx::ConnAck => "CONNACK",
            PropCtx::Publish => "PUBLISH",
            PropCtx::PubResp => "PUBACK/PUBREC/PUBREL/PUBCOMP",
            PropCtx::Subscribe => "SUBSCRIBE",
            PropCtx::SubAck => "SUBACK",
            PropCtx::Unsubscribe => "UNSUBSCRIBE",
            PropCtx::UnsubAck => "UNSUBACK",
            PropCtx::Disconnect => "DISCONNECT",
            PropCtx::Auth => "AUTH",
        }
    }

    /// Whether property `id` may appear in this context (MQTT 5, section 2.2.2.2).
    fn allows(self, id: u8) -> bool {
        use PropCtx::*;
        match id {
            0x01 | 0x02 | 0x03 | 0x08 | 0x09 => matches!(self, Publish | Will),
            0x0B => matches!(self, Publish | Subscribe),
            0x11 => matches!(self, Connect | ConnAck | Disconnect),
            0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => self == ConnAck,
            0x15 | 0x16 => matches!(self, Connect | ConnAck | Auth),
            0x17 | 0x19 => self == Connect,
            0x18 => self == Will,
            0x1C => matches!(self, ConnAck | Disconnect),
            0x1F => !matches!(self, Connect | Will | Publish | Subscribe | Unsubscribe),
            0x21 | 0x22 | 0x27 => matches!(self, Connect | ConnAck),
            0x23 => self == Publish,
            0x26 => true,
            _ => false,
        }
    }
}

fn set_once<T>(slot: &mut Option<T>, id: u8, v: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(v);
    Ok(())
}

fn flag(id: u8, v: u8) -> Result<u8, DecodeError> {
    if v > 1 {
        return Err(DecodeError::BadPropertyValue { id, value: v as u32 });
    }
    Ok(v)
}

fn nonzero_u16(id: u8, v: u16) -> Result<u16, DecodeError> {
    if v == 0 {
        return Err(DecodeError::BadPropertyValue { id, value: 0 });
    }
    Ok(v)
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Reads a property length and the properties that follow, checking each is allowed in `ctx`.
    pub(crate) fn decode(r: &mut Reader, ctx: PropCtx) -> Result<Properties, DecodeError> {
        let len = r.varint()? as usize;
        let mut r = r.sub(len)?;
        let mut p = Properties::default();
        while r.remaining() > 0 {
            let id = r.varint()?;
            let id = u8::try_from(id).map_err(|_| DecodeError::UnknownProperty(0xFF))?;
            if !ctx.allows(id) {
                return Err(match id {
                    0x01..=0x03 | 0x08 | 0x09 | 0x0B | 0x11..=0x13 | 0x15..=0x19 | 0x1A | 0x1C | 0x1F | 0x21..=0x2A => {
                        DecodeError::PropertyNotAllowed { id, packet: ctx.name() }
                    }
                    _ => DecodeError::UnknownProperty(id),
                });
            }
            match id {
                0x01 => set_once(&mut p.payload_format_indicator, id, flag(id, r.u8()?)?)?,
                0x02 => set_once(&mut p.message_expiry_interval, id, r.u32()?)?,
                0x03 => set_once(&mut p.content_type, id, r.string()?)?,
                0x08 => {
                    let t = r.string()?;
                    if !crate::topic::valid_topic_name(&t) {
                        return Err(DecodeError::Protocol("Response Topic is not a valid topic name"));
                    }
                    set_once(&mut p.response_topic, id, t)?
                }
                0x09 => set_once(&mut p.correlation_data, id, r.binary()?)?,
                0x0B => {
                    let v = r.varint()?;
                    if v == 0 {
                        return Err(DecodeError::BadPropertyValue { id, value: 0 });
                    }
                    if ctx == PropCtx::Subscribe && !p.subscription_identifiers.is_empty() {
                        return Err(DecodeError::DuplicateProperty(id));
                    }
                    p.subscription_identifiers.push(v);
                }
                0x11 => set_once(&mut p.session_expiry_interval, id, r.u32()?)?,
                0x12 => set_once(&mut p.assigned_client_identifier, id, r.string()?)?,
                0x13 => set_once(&mut p.server_keep_alive, id, r.u16()?)?,
                0x15 => set_once(&mut p.authentication_method, id, r.string()?)?,
                0x16 => set_once(&mut p.authentication_data, id, r.binary()?)?,
                0x17 => set_once(&mut p.request_problem_information, id, flag(id, r.u8()?)?)?,
                0x18 => set_once(&mut p.will_delay_interval, id, r.u32()?)?,
                0x19 => set_once(&mut p.request_response_information, id, flag(id, r.u8()?)?)?,
                0x1A => set_once(&mut p.response_information, id, r.string()?)?,
                0x1C => set_once(&mut p.server_reference, id, r.string()?)?,
                0x1F => set_once(&mut p.reason_string, id, r.string()?)?,
                0x21 => set_once(&mut p.receive_maximum, id, nonzero_u16(id, r.u16()?)?)?,
                0x22 => set_once(&mut p.topic_alias_maximum, id, r.u16()?)?,
                0x23 => set_once(&mut p.topic_alias, id, nonzero_u16(id, r.u16()?)?)?,
                0x24 => set_once(&mut p.maximum_qos, id, flag(id, r.u8()?)?)?,
                0x25 => set_once(&mut p.retain_available, id, flag(id, r.u8()?)?)?,
                0x26 => {
                    let k = r.string()?;
                    let v = r.string()?;
                    p.user_properties.push((k, v));
                }
                0x27 => {
                    let v = r.u32()?;
                    if v == 0 {
                        return Err(DecodeError::BadPropertyValue { id, value: 0 });
                    }
                    set_once(&mut p.maximum_packet_size, id, v)?
                }
                0x28 => set_once(&mut p.wildcard_subscription_available, id, flag(id, r.u8()?)?)?,
                0x29 => set_once(&mut p.subscription_identifier_available, id, flag(id, r.u8()?)?)?,
                0x2A => set_once(&mut p.shared_subscription_available, id, flag(id, r.u8()?)?)?,
                _ => return Err(DecodeError::UnknownProperty(id)),
            }
        }
        Ok(p)
    }

    /// The properties of a PUBLISH as bytes (with their length prefix), for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out.to_vec()
    }

    /// Reads back what [`Properties::to_bytes`] wrote (PUBLISH properties).
    pub fn from_bytes(b: &[u8]) -> Result<Properties, DecodeError> {
        if b.is_empty() {
            return Ok(Properties::default());
        }
        let mut r = Reader::new(Bytes::copy_from_slice(b));
        Properties::decode(&mut r, PropCtx::Publish)
    }

    /// The encoded size of the properties, without the property-length prefix.
    pub fn body_len(&self) -> usize {
        fn s(v: &Option<String>) -> usize {
            v.as_ref().map_or(0, |x| 3 + x.len())
        }
        fn b(v: &Option<Bytes>) -> usize {
            v.as_ref().map_or(0, |x| 3 + x.len())
        }
        fn n<T>(v: &Option<T>, size: usize) -> usize {
            v.as_ref().map_or(0, |_| 1 + size)
        }
        n(&self.payload_format_indicator, 1)
            + n(&self.message_expiry_interval, 4)
            + s(&self.content_type)
            + s(&self.response_topic)
            + b(&self.correlation_data)
            + self.subscription_identifiers.iter().map(|&v| 1 + varint_len(v)).sum::<usize>()
            + n(&self.session_expiry_interval, 4)
            + s(&self.assigned_client_identifier)
            + n(&self.server_keep_alive, 2)
            + s(&self.authentication_method)
            + b(&self.authentication_data)
            + n(&self.request_problem_information, 1)
            + n(&self.will_delay_interval, 4)
            + n(&self.request_response_information, 1)
            + s(&self.response_information)
            + s(&self.server_reference)
            + s(&self.reason_string)
            + n(&self.receive_maximum, 2)
            + n(&self.topic_alias_maximum, 2)
            + n(&self.topic_alias, 2)
            + n(&self.maximum_qos, 1)
            + n(&self.retain_available, 1)
            + self.user_properties.iter().map(|(k, v)| 5 + k.len() + v.len()).sum::<usize>()
            + n(&self.maximum_packet_size, 4)
            + n(&self.wildcard_subscription_available, 1)
            + n(&self.subscription_identifier_available, 1)
            + n(&self.shared_subscription_available, 1)
    }

    /// The encoded size including the property-length prefix.
    pub fn encoded_len(&self) -> usize {
        let b = self.body_len();
        varint_len(b as u32) + b
    }

    /// Writes the property length and the properties.
    pub fn encode(&self, out: &mut BytesMut) {
        put_varint(out, self.body_len() as u32);
        macro_rules! byte { ($f:ident, $id:expr) => { if let Some(v) = self.$f { out.put_u8($id); out.put_u8(v); } }; }
        macro_rules! u16p { ($f:ident, $id:expr) => { if let Some(v) = self.$f { out.put_u8($id); out.put_u16(v); } }; }
        macro_rules! u32p { ($f:ident, $id:expr) => { if let Some(v) = self.$f { out.put_u8($id); out.put_u32(v); } }; }
        macro_rules! strp { ($f:ident, $id:expr) => { if let Some(v) = &self.$f { out.put_u8($id); put_str(out, v); } }; }
        macro_rules! binp { ($f:ident, $id:expr) => { if let Some(v) = &self.$f { out.put_u8($id); put_bin(out, v); } }; }
        byte!(payload_format_indicator, 0x01);
        u32p!(message_expiry_interval, 0x02);
        strp!(content_type, 0x03);
        strp!(response_topic, 0x08);
        binp!(correlation_data, 0x09);
        for &id in &self.subscription_identifiers {
            out.put_u8(0x0B);
            put_varint(out, id);
        }
        u32p!(session_expiry_interval, 0x11);
        strp!(assigned_client_identifier, 0x12);
        u16p!(server_keep_alive, 0x13);
        strp!(authentication_method, 0x15);
        binp!(authentication_data, 0x16);
        byte!(request_problem_information, 0x17);
        u32p!(will_delay_interval, 0x18);
        byte!(request_response_information, 0x19);
        strp!(response_information, 0x1A);
        strp!(server_reference, 0x1C);
        strp!(reason_string, 0x1F);
        u16p!(receive_maximum, 0x21);
        u16p!(topic_alias_maximum, 0x22);
        u16p!(topic_alias, 0x23);
        byte!(maximum_qos, 0x24);
        byte!(retain_available, 0x25);
        for (k, v) in &self.user_properties {
            out.put_u8(0x26);
            put_str(out, k);
            put_str(out, v);
        }
        u32p!(maximum_packet_size, 0x27);
        byte!(wildcard_subscription_available, 0x28);
        byte!(subscription_identifier_available, 0x29);
        byte!(shared_subscription_available, 0x2A);
    }
}
