//! Decoding errors, each carrying the MQTT 5 reason code the receiver must send.

use crate::ReasonCode;

/// Why a packet could not be decoded. [`DecodeError::reason_code`] gives the MQTT 5 reason
/// code to put in the DISCONNECT (or CONNACK) before closing the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    #[error("malformed remaining length: more than four bytes")]
    BadRemainingLength,
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    #[error("invalid fixed header flags 0x{flags:X} for packet type {packet_type}")]
    BadFlags { packet_type: u8, flags: u8 },
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: usize },
    #[error("string is not valid UTF-8 or contains U+0000")]
    BadUtf8,
    #[error("invalid QoS 3")]
    BadQoS,
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("unsupported protocol name {name:?} level {level}")]
    UnsupportedProtocol { name: String, level: u8 },
    #[error("property 0x{id:02X} is not allowed in {packet}")]
    PropertyNotAllowed { id: u8, packet: &'static str },
    #[error("unknown property identifier 0x{0:02X}")]
    UnknownProperty(u8),
    #[error("property 0x{0:02X} appears more than once")]
    DuplicateProperty(u8),
    #[error("property 0x{id:02X} has invalid value {value}")]
    BadPropertyValue { id: u8, value: u32 },
    #[error("reason code 0x{code:02X} is not valid in {packet}")]
    BadReasonCode { code: u8, packet: &'static str },
    #[error("invalid topic name {0:?}")]
    BadTopicName(String),
    #[error("{packet} without a packet identifier (0)")]
    ZeroPacketId { packet: &'static str },
}

impl DecodeError {
    /// The MQTT 5 reason code a server sends for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::Protocol(_)
            | DecodeError::DuplicateProperty(_)
            | DecodeError::BadPropertyValue { .. }
            | DecodeError::BadReasonCode { .. } => ReasonCode::PROTOCOL_ERROR,
            DecodeError::UnsupportedProtocol { .. } => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::BadTopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            _ => ReasonCode::MALFORMED_PACKET,
        }
    }
}
