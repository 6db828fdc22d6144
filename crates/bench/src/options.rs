//! The command line of `ferrite-bench` (tests build [`Options`] with `Options::try_parse_from`).

use crate::payload::HEADER_LEN;
use crate::BenchError;
use clap::{Parser, ValueEnum};

/// The shape of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Scenario {
    /// `--clients` publishers → 1 subscriber, one topic.
    #[default]
    FanIn,
    /// 1 publisher → `--clients` subscribers, one topic.
    FanOut,
    /// `--clients` publisher/subscriber pairs, one topic per pair.
    P2p,
    /// `--clients` publishers → `--subscribers` subscribers of `$share/g/<topic>`.
    Shared,
    /// `--clients` idle clients: the connect rate, then they are held for `--duration`.
    Connections,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FanIn => "fan-in",
            Scenario::FanOut => "fan-out",
            Scenario::P2p => "p2p",
            Scenario::Shared => "shared",
            Scenario::Connections => "connections",
        }
    }
}

/// An MQTT load generator: publishes timestamped messages through a broker and reports the
/// throughput, the latency and the messages lost or duplicated.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrite-bench",
    version,
    after_help = "Exit status: 0 when the run went through; 1 when it could not (a bad option, a client that \
                  could not connect or subscribe); 3 when the broker disconnected clients during the run \
                  (the report is printed)."
)]
pub struct Options {
    /// Traffic shape.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// QoS of the publications and subscriptions.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (at least 16: send time, publisher id, sequence number).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Messages published per second, all publishers together (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds of publishing (for `connections`: seconds the clients are held).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// MQTT protocol version: 3 (3.1.1) or 5.
    #[arg(long = "mqtt", default_value_t = 5, value_parser = parse_mqtt)]
    pub mqtt: u8,
    /// Publishers (fan-in, shared), subscribers (fan-out), pairs (p2p) or idle clients (connections).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Subscribers of the shared subscription (shared only).
    #[arg(long, default_value_t = 4)]
    pub subscribers: usize,
    /// QoS 1/2 messages a publisher may have unacknowledged.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Seconds subscribers may take, after publishing stops, to receive what is still on its way.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// Clients connecting at the same time.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Tokio worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_mqtt(s: &str) -> Result<u8, String> {
    match s {
        "3" | "3.1.1" | "4" => Ok(3),
        "5" | "5.0" => Ok(5),
        _ => Err("expected 3 (MQTT 3.1.1) or 5".into()),
    }
}

impl Options {
    /// The protocol level of every client.
    pub fn protocol(&self) -> mqtt::Protocol {
        if self.mqtt == 3 { mqtt::Protocol::V311 } else { mqtt::Protocol::V5 }
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |s: String| Err(BenchError::Option(s));
        if self.payload < HEADER_LEN {
            return bad(format!("--payload must be at least {HEADER_LEN} bytes"));
        }
        if self.payload > 256 * 1024 * 1024 {
            return bad("--payload must be at most 256 MiB".into());
        }
        if self.clients == 0 {
            return bad("--clients must be at least 1".into());
        }
        if self.scenario == Scenario::Shared && self.subscribers == 0 {
            return bad("--subscribers must be at least 1".into());
        }
        if !(1..=65_535).contains(&self.inflight) {
            return bad("--inflight must be between 1 and 65535".into());
        }
        if !(self.duration > 0.0 && self.duration <= 86_400.0) {
            return bad("--duration must be more than 0 and at most 86400 seconds".into());
        }
        if !(0.0..=600.0).contains(&self.drain) {
            return bad("--drain must be between 0 and 600 seconds".into());
        }
        if self.connect_concurrency == 0 {
            return bad("--connect-concurrency must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let o = Options::try_parse_from(["ferrite-bench", "fan-in", "--qos", "1", "--mqtt", "3"]).expect("parse");
        assert_eq!(o.scenario, Scenario::FanIn);
        assert_eq!(o.protocol(), mqtt::Protocol::V311);
        assert!(o.validate().is_ok());
        assert!(Options::try_parse_from(["ferrite-bench", "p2p", "--qos", "3"]).is_err());
        assert!(Options::try_parse_from(["ferrite-bench", "p2p", "--mqtt", "6"]).is_err());
        let o = Options::try_parse_from(["ferrite-bench", "p2p", "--payload", "15"]).expect("parse");
        assert!(o.validate().is_err());
    }
}
