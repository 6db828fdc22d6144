//! MQTT 3.1.1 and 5.0 wire format: packets, properties, reason codes, topic names and filters.
//!
//! This crate is pure: it does no I/O and has no async. [`decode`] turns bytes into a
//! [`Packet`] (or says it needs more bytes, or says exactly what is malformed, with the
//! MQTT 5 reason code the server must send); [`Packet::encode`] writes a packet into a buffer.

mod decode;
mod encode;
mod error;
mod packet;
mod props;
mod reason;
mod string;
pub mod topic;

pub use decode::{RESERVE_AHEAD, decode};
pub use encode::{encode_publish, publish_len};
pub use error::DecodeError;
pub use packet::*;
pub use props::Properties;
pub use reason::ReasonCode;
pub use string::MqttStr;

/// The protocol level negotiated in CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3): encoded like 3.1.1.
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Protocol {
    /// True for MQTT 5.0, the only level with properties and reason codes on every ack.
    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }

    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for the two-bit value `v`, or `None` for 3.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// The largest value a Variable Byte Integer can hold (four bytes).
pub const MAX_VARINT: u32 = 268_435_455;
