//! The AWS IoT rules engine: topic rules (created, replaced, enabled, disabled and deleted
//! through the `iot` API) evaluated with AWS IoT SQL ([`iotsql`]) on the messages the broker
//! routes to them, and their actions (`republish`, `http`, `lambda` → a Ferrite function, and the
//! `errorAction`); HTTP topic rule destinations with AWS's confirmation flow; Basic Ingest
//! (`$aws/rules/{ruleName}/...` reaches that rule only).
//!
//! Rules and destinations are documents (kinds `topic-rule`, `rule-destination`) in
//! `store::Documents`; every change is committed before the call returns, then applied to the
//! running engine ([`engine`]). A rule is stored as the `TopicRulePayload` it was given (with its
//! effective `awsIotSqlVersion`) and compiled ([`model`]) on load, so GetTopicRule answers what
//! was sent.

pub mod actions;
pub mod destinations;
pub mod engine;
mod error;
pub mod host;
pub mod model;
mod service;

pub use destinations::{Destination, DestinationStatus};
pub use engine::{Engine, RulesMetrics, ShadowReader};
pub use error::RulesError;
pub use model::{CompiledRule, compile};
pub use service::{RuleView, Rules};

use std::time::Duration;

/// Settings of the rules engine.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// ARNs are `arn:aws:iot:{region}:{account_id}:rule/{name}`.
    pub region: String,
    pub account_id: String,
    /// Messages whose http/lambda actions may be running at once, per rule; more are dropped
    /// and counted.
    pub max_inflight_actions_per_rule: usize,
    /// Time an http action has for all its tries.
    pub http_timeout: Duration,
    /// Retries of an http action after the first try (AWS: 2).
    pub http_retries: u32,
    /// Pause before the first retry, doubled for each further one.
    pub http_retry_backoff: Duration,
    /// Where `enableUrl` in a destination confirmation points (`{base}/confirmdestination/{token}`).
    pub enable_url_base: String,
    /// Whether http actions and destinations may use `http://` URLs (AWS requires HTTPS).
    pub allow_plain_http: bool,
}

impl Default for RulesConfig {
    fn default() -> RulesConfig {
        RulesConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            max_inflight_actions_per_rule: 100,
            http_timeout: Duration::from_millis(3000),
            http_retries: 2,
            http_retry_backoff: actions::DEFAULT_HTTP_BACKOFF,
            enable_url_base: "http://127.0.0.1:8080".into(),
            allow_plain_http: false,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    broker::message::unix_ms()
}

#[cfg(test)]
mod tests;
