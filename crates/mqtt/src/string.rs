//! `MqttStr`: a cheaply clonable, validated UTF-8 string backed by shared bytes.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// A UTF-8 string that shares the buffer it was decoded from, so that a topic name can be
/// handed to many subscribers without copying. Invariant: the bytes are valid UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MqttStr(Bytes);

impl MqttStr {
    /// Wraps bytes after checking they are UTF-8.
    pub fn from_utf8(b: Bytes) -> Result<MqttStr, std::str::Utf8Error> {
        std::str::from_utf8(&b)?;
        Ok(MqttStr(b))
    }

    /// The string slice.
    pub fn as_str(&self) -> &str {
        // SAFETY-free: the invariant is checked at construction; fall back to "" defensively.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for MqttStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for MqttStr {
    fn from(s: &str) -> MqttStr {
        MqttStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for MqttStr {
    fn from(s: String) -> MqttStr {
        MqttStr(Bytes::from(s))
    }
}

impl fmt::Debug for MqttStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for MqttStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
