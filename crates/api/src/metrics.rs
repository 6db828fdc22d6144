//! API counters and the Prometheus text rendering of `/metrics` (the API's own figures and
//! whatever the rest of Ferrite contributes through [`MetricsSource`]).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Something that adds lines to `/metrics` (the broker's counters, for example).
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    buckets: [u64; 8],
    count: u64,
    sum: f64,
}

/// Requests by operation and status, and a latency histogram.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    inner: Mutex<Inner>,
}

impl ApiMetrics {
    /// Counts one request.
    pub fn record(&self, op: &str, status: u16, elapsed: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.requests.entry((op.to_string(), status)).or_default() += 1;
        let s = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum += s;
    }

    /// Appends the API's metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP ferrite_api_requests_total API requests by operation and HTTP status.\n# TYPE ferrite_api_requests_total counter\n");
        for ((op, status), n) in &m.requests {
            let _ = writeln!(out, "ferrite_api_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP ferrite_api_request_seconds API request latency.\n# TYPE ferrite_api_request_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "ferrite_api_request_seconds_bucket{{le=\"{b}\"}} {}", m.buckets[i]);
        }
        let _ = writeln!(out, "ferrite_api_request_seconds_bucket{{le=\"+Inf\"}} {}", m.count);
        let _ = writeln!(out, "ferrite_api_request_seconds_sum {}", m.sum);
        let _ = writeln!(out, "ferrite_api_request_seconds_count {}", m.count);
    }
}

/// The broker's counters and gauges for `/metrics`.
pub struct BrokerMetrics(pub broker::Broker);

impl MetricsSource for BrokerMetrics {
    fn render(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = self.0.metrics();
        let (sessions, connected, queued, inflight) = self.0.session_gauges();
        let mut gauge = |name: &str, help: &str, v: String| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n");
        };
        gauge("ferrite_mqtt_connections", "Open MQTT connections.", m.connections_current.load(Relaxed).to_string());
        gauge("ferrite_mqtt_connections_parked", "Open MQTT connections parked while idle.", m.connections_parked.load(Relaxed).to_string());
        gauge("ferrite_mqtt_sessions", "Sessions, connected or not.", sessions.to_string());
        gauge("ferrite_mqtt_sessions_connected", "Sessions with a connection.", connected.to_string());
        gauge("ferrite_mqtt_queued_messages", "Messages queued in sessions.", queued.to_string());
        gauge("ferrite_mqtt_inflight_messages", "Messages sent and not yet acknowledged.", inflight.to_string());
        gauge("ferrite_mqtt_retained_messages", "Topics with a retained message.", self.0.inner().retained.len().to_string());
        let mut counter = |name: &str, help: &str, lines: Vec<(String, u64)>| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
            for (labels, v) in lines {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed);
        counter("ferrite_mqtt_connections_total", "MQTT connections accepted.", vec![(String::new(), load(&m.connections_total))]);
        counter("ferrite_mqtt_connections_rejected_total", "MQTT connections refused (limits).", vec![(String::new(), load(&m.connections_rejected))]);
        let by_qos = |a: &[std::sync::atomic::AtomicU64; 3]| (0..3).map(|q| (format!("{{qos=\"{q}\"}}"), load(&a[q]))).collect();
        counter("ferrite_mqtt_messages_received_total", "PUBLISH packets received from clients.", by_qos(&m.messages_received));
        counter("ferrite_mqtt_messages_sent_total", "PUBLISH packets sent to clients.", by_qos(&m.messages_sent));
        counter(
            "ferrite_mqtt_messages_dropped_total",
            "Messages dropped, by reason.",
            vec![
                ("{reason=\"queue_full\"}".into(), load(&m.dropped_queue_full)),
                ("{reason=\"qos0_offline\"}".into(), load(&m.dropped_qos0_offline)),
                ("{reason=\"expired\"}".into(), load(&m.dropped_expired)),
                ("{reason=\"too_large\"}".into(), load(&m.dropped_too_large)),
            ],
        );
        counter("ferrite_mqtt_protocol_errors_total", "Connections closed for protocol errors.", vec![(String::new(), load(&m.protocol_errors))]);
        counter("ferrite_mqtt_bytes_received_total", "Bytes received from MQTT clients.", vec![(String::new(), load(&m.bytes_received))]);
        counter("ferrite_mqtt_bytes_sent_total", "Bytes sent to MQTT clients.", vec![(String::new(), load(&m.bytes_sent))]);
    }
}

/// An in-process service's runtime counters (`ferrite_service_*{service="..."}`).
pub struct ServiceMetrics(pub &'static str, pub Arc<service_runtime::RuntimeMetrics>);

impl MetricsSource for ServiceMetrics {
    fn render(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        let (service, m) = (self.0, &self.1);
        let _ = write!(
            out,
            "# HELP ferrite_service_requests_total Requests an in-process service applied.\n# TYPE ferrite_service_requests_total counter\n\
             ferrite_service_requests_total{{service=\"{service}\"}} {}\n\
             # HELP ferrite_service_throttled_total Requests answered with the throttling rejection.\n# TYPE ferrite_service_throttled_total counter\n\
             ferrite_service_throttled_total{{service=\"{service}\"}} {}\n",
            m.requests.load(Relaxed),
            m.throttled.load(Relaxed)
        );
    }
}
