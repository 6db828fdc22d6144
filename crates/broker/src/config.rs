//! Broker limits and options; the binary fills this from the config file.

use std::time::Duration;

/// What the broker allows and advertises. Every queue and buffer is bounded by a field here.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Connections served at once per listener; more get CONNACK "server busy" (0x89 / 3).
    pub max_connections: usize,
    /// New connections accepted per second per listener (0: unlimited); more get CONNACK
    /// "connection rate exceeded" (0x9F / 3).
    pub max_connections_per_sec: u32,
    /// PUBLISH packets read per second per connection (0: unlimited). A faster client is slowed
    /// down: Ferrite stops reading its socket until it is back under the rate.
    pub max_publish_per_sec: u32,
    /// Largest packet accepted, and advertised as Maximum Packet Size.
    pub max_packet_size: usize,
    /// Largest keep alive accepted; MQTT 5 clients asking more (or 0) get Server Keep Alive.
    pub max_keep_alive_secs: u16,
    /// Time allowed between accepting a socket and receiving CONNECT.
    pub connect_timeout: Duration,
    /// Receive Maximum advertised: QoS 2 messages a client may have awaiting PUBREL.
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 messages unacknowledged per session (also capped by the client's Receive Maximum).
    pub max_inflight: u16,
    /// Messages queued per session beyond the in-flight window; a message arriving at a full
    /// queue is dropped and counted.
    pub max_queued_messages: usize,
    /// Topic Alias Maximum advertised to MQTT 5 clients.
    pub topic_alias_maximum: u16,
    /// Longest session expiry granted; MQTT 3.1.1 persistent sessions get exactly this.
    pub max_session_expiry_secs: u32,
    /// Longest client identifier accepted (AWS IoT: 128).
    pub max_client_id_len: usize,
    /// Most levels in a topic name or filter (AWS IoT: 8). A PUBLISH or will past it closes the
    /// connection (0x90); a SUBSCRIBE filter past it is refused (0x8F).
    pub max_topic_levels: usize,
    /// Longest topic name or filter, in bytes (AWS IoT: 256), with the same consequences.
    pub max_topic_length: usize,
    /// Subscriptions one session may hold (AWS IoT: 50); a SUBSCRIBE past it is refused per
    /// filter with 0x97 (quota exceeded).
    pub max_subscriptions_per_session: usize,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Highest QoS supported (0, 1 or 2).
    pub maximum_qos: u8,
    /// Whether QoS 0 messages are queued for disconnected persistent sessions.
    pub queue_qos0_offline: bool,
    /// What happens when a QoS 1/2 message meets a connected session's full queue.
    pub queue_full: QueueFull,
    /// Whether lifecycle events (`$aws/events/presence/...`, `$aws/events/subscriptions/...`) are published.
    pub lifecycle_events: bool,
    /// An MQTT connection over TCP or TLS idle this long is parked: its task ends and its socket waits in
    /// the parker's epoll set, keeping only a compact record (memory per idle connection).
    /// `None` never parks.
    pub park_idle_after: Option<Duration>,
    /// Time a packet that has started arriving has to arrive whole; past it the connection is
    /// closed (0x83). Keep alive 0 does not lift it.
    pub packet_timeout: Duration,
    /// Bytes of packets still arriving, all connections together. A connection whose partial
    /// packet would take the total past it (once its own share is past 64 KiB) is closed (0x97).
    pub max_partial_packet_bytes: usize,
    /// Web pages that may open the plain WebSocket listener, besides loopback origins and
    /// clients sending no `Origin` ([`crate::ws::Origins`]); `None` allows any.
    pub ws_allowed_origins: crate::ws::Origins,
}

impl BrokerConfig {
    /// Whether a topic name or filter is within [`max_topic_levels`](Self::max_topic_levels) and
    /// [`max_topic_length`](Self::max_topic_length) (the filter part of a `$share` subscription is
    /// what counts for levels; the whole string for length).
    pub fn topic_within_limits(&self, topic: &str) -> bool {
        topic.len() <= self.max_topic_length && topic.bytes().filter(|&b| b == b'/').count() < self.max_topic_levels
    }
}

/// The policy for a QoS 1/2 message arriving at a connected session's full queue (QoS 0 is
/// always dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    /// Drop the message for that session and count it.
    Drop,
    /// Drop it, count it, and disconnect the client (MQTT 5: DISCONNECT 0x97 Quota exceeded) so
    /// it reconnects and resumes from its stored session instead of silently missing messages.
    Disconnect,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_connections: 100_000,
            max_connections_per_sec: 0,
            max_publish_per_sec: 0,
            max_packet_size: 1024 * 1024,
            max_keep_alive_secs: 1200,
            connect_timeout: Duration::from_secs(10),
            receive_maximum: 128,
            max_inflight: 128,
            max_queued_messages: 1000,
            topic_alias_maximum: 64,
            max_session_expiry_secs: 3600,
            max_client_id_len: 128,
            max_topic_levels: 32,
            max_topic_length: 1024,
            max_subscriptions_per_session: 50,
            retain_available: true,
            maximum_qos: 2,
            queue_qos0_offline: false,
            queue_full: QueueFull::Drop,
            packet_timeout: Duration::from_secs(30),
            max_partial_packet_bytes: 256 * 1024 * 1024,
            ws_allowed_origins: Some(std::sync::Arc::from(Vec::new())),
            lifecycle_events: true,
            park_idle_after: Some(Duration::from_secs(2)),
        }
    }
}
