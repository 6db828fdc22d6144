//! The result of a run, as text for people or as one flat JSON object for scripts.

use crate::Scenario;
use hdrhistogram::Histogram;
use std::fmt;

/// Latency percentiles in microseconds (for `connections`: CONNECT → CONNACK).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// What a run measured. Counts of messages are over all subscribers: in fan-out every message
/// is expected once per subscriber; in a shared group, once per group.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: Scenario,
    pub mqtt: u8,
    pub qos: u8,
    pub payload: usize,
    pub rate: u64,
    pub duration_s: f64,
    pub publishers: usize,
    pub subscribers: usize,
    /// Messages published.
    pub sent: u64,
    /// QoS 1/2 messages acknowledged to the publishers.
    pub acked: u64,
    /// QoS 1/2 messages refused by the broker (MQTT 5 reason code ≥ 0x80).
    pub rejected: u64,
    /// QoS 1/2 messages never acknowledged.
    pub unacked: u64,
    /// Deliveries expected (sent × subscribers hearing each).
    pub expected: u64,
    /// Deliveries received, duplicates included.
    pub received: u64,
    /// Distinct deliveries received.
    pub distinct: u64,
    /// `expected - distinct`.
    pub lost: u64,
    /// Messages a subscriber received more than once.
    pub duplicates: u64,
    /// Messages received that were not published by this run.
    pub foreign: u64,
    /// `sent / duration`.
    pub sent_per_sec: f64,
    /// `received / (time from the start of publishing to the last delivery)`.
    pub received_per_sec: f64,
    pub latency: Latency,
    /// `connections` only: clients connected, how long it took, and their rate.
    pub connections: usize,
    pub connect_secs: f64,
    pub connect_per_sec: f64,
    /// Clients the broker disconnected (or whose connection failed) during the run.
    pub disconnects: usize,
}

impl Report {
    /// One flat JSON object (numbers and one string), on one line.
    pub fn to_json(&self) -> String {
        let l = &self.latency;
        let fields: [(&str, String); 31] = [
            ("scenario", format!("\"{}\"", self.scenario.name())),
            ("mqtt", self.mqtt.to_string()),
            ("qos", self.qos.to_string()),
            ("payload", self.payload.to_string()),
            ("rate", self.rate.to_string()),
            ("duration_s", num(self.duration_s)),
            ("publishers", self.publishers.to_string()),
            ("subscribers", self.subscribers.to_string()),
            ("sent", self.sent.to_string()),
            ("acked", self.acked.to_string()),
            ("rejected", self.rejected.to_string()),
            ("unacked", self.unacked.to_string()),
            ("expected", self.expected.to_string()),
            ("received", self.received.to_string()),
            ("distinct", self.distinct.to_string()),
            ("lost", self.lost.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("foreign", self.foreign.to_string()),
            ("sent_per_sec", num(self.sent_per_sec)),
            ("received_per_sec", num(self.received_per_sec)),
            ("latency_count", l.count.to_string()),
            ("p50_us", l.p50_us.to_string()),
            ("p99_us", l.p99_us.to_string()),
            ("p999_us", l.p999_us.to_string()),
            ("max_us", l.max_us.to_string()),
            ("mean_us", num(l.mean_us)),
            ("connections", self.connections.to_string()),
            ("connect_secs", num(self.connect_secs)),
            ("connect_per_sec", num(self.connect_per_sec)),
            ("disconnects", self.disconnects.to_string()),
            ("ok", (self.disconnects == 0).to_string()),
        ];
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }
}

/// A finite number with one decimal (JSON has no NaN or infinity).
fn num(x: f64) -> String {
    if x.is_finite() { format!("{x:.1}") } else { "0".into() }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency;
        if self.scenario == Scenario::Connections {
            writeln!(f, "connections  MQTT {}  {} clients, held {} s", self.mqtt, self.connections, self.duration_s)?;
            writeln!(f, "connected    in {:.2} s: {:.0} connections/s", self.connect_secs, self.connect_per_sec)?;
            writeln!(
                f,
                "CONNACK      p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs",
                l.p50_us, l.p99_us, l.p999_us, l.max_us
            )?;
            return writeln!(f, "closed by the broker while held: {}", self.disconnects);
        }
        let rate = if self.rate == 0 { "as fast as possible".to_string() } else { format!("{} msg/s", self.rate) };
        writeln!(
            f,
            "{}  QoS {}  MQTT {}  payload {} B  {} publisher(s) → {} subscriber(s)  {} s  {}",
            self.scenario.name(),
            self.qos,
            self.mqtt,
            self.payload,
            self.publishers,
            self.subscribers,
            self.duration_s,
            rate
        )?;
        writeln!(f, "sent       {:>12} msgs  {:>12.0} msg/s", self.sent, self.sent_per_sec)?;
        writeln!(f, "received   {:>12} msgs  {:>12.0} msg/s  (expected {})", self.received, self.received_per_sec, self.expected)?;
        writeln!(
            f,
            "latency    p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  mean {:.0} µs",
            l.p50_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
        )?;
        write!(f, "lost {}  duplicates {}  disconnects {}", self.lost, self.duplicates, self.disconnects)?;
        if self.qos > 0 {
            write!(f, "  acked {}  rejected {}  unacked {}", self.acked, self.rejected, self.unacked)?;
        }
        if self.foreign > 0 {
            write!(f, "  foreign {}", self.foreign)?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_flat_and_finite() {
        let r = Report { received_per_sec: f64::NAN, sent: 3, ..Report::default() };
        let j = r.to_json();
        assert!(j.starts_with("{\"scenario\":\"fan-in\","), "{j}");
        assert!(j.contains("\"sent\":3,"));
        assert!(j.contains("\"received_per_sec\":0,"));
        assert!(j.ends_with("\"ok\":true}"));
    }
}
