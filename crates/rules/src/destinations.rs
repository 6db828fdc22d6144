//! Topic rule destinations for http actions: the confirmation flow AWS documents. A new
//! destination (or one set back to `IN_PROGRESS`) gets a fresh token, and Ferrite POSTs
//! `{"arn", "confirmationToken", "enableUrl", "messageType": "DestinationConfirmation"}` to its
//! confirmation URL (with `?confirmationToken=` in the query and the
//! `x-amz-rules-engine-message-type` / `x-amz-rules-engine-destination-arn` headers). Presenting
//! the token (ConfirmTopicRuleDestination, which the `enableUrl` also calls) confirms it: the
//! destination becomes `DISABLED`, as the developer guide says for API confirmation, and
//! UpdateTopicRuleDestination `ENABLED` lets http actions use it. A token is valid for three days.

use crate::RulesError;
use serde::{Deserialize, Serialize};

/// How long a confirmation token is valid.
pub const TOKEN_TTL_MS: i64 = 3 * 24 * 3600 * 1000;

/// A destination's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DestinationStatus {
    Enabled,
    InProgress,
    Disabled,
    Error,
}

impl DestinationStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationStatus::Enabled => "ENABLED",
            DestinationStatus::InProgress => "IN_PROGRESS",
            DestinationStatus::Disabled => "DISABLED",
            DestinationStatus::Error => "ERROR",
        }
    }

    /// Reads a wire name (`DELETING` is not a status one can set).
    pub fn parse(s: &str) -> Option<DestinationStatus> {
        Some(match s {
            "ENABLED" => DestinationStatus::Enabled,
            "IN_PROGRESS" => DestinationStatus::InProgress,
            "DISABLED" => DestinationStatus::Disabled,
            "ERROR" => DestinationStatus::Error,
            _ => return None,
        })
    }
}

/// An HTTP topic rule destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub arn: String,
    pub confirmation_url: String,
    pub status: DestinationStatus,
    pub status_reason: String,
    pub created_ms: i64,
    pub last_updated_ms: i64,
    /// The token of the confirmation in progress (kept after confirmation; a new one replaces it).
    pub token: String,
    pub token_expires_ms: i64,
}

impl Destination {
    /// The id at the end of the ARN (`.../ruledestination/http/{id}`), the store key.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }

    /// Whether http actions may send to it.
    pub fn usable(&self) -> bool {
        self.status == DestinationStatus::Enabled
    }

    /// Starts a new confirmation: a fresh token, `IN_PROGRESS`.
    pub fn restart_confirmation(&mut self, token: String, now_ms: i64) {
        self.token = token;
        self.token_expires_ms = now_ms + TOKEN_TTL_MS;
        self.status = DestinationStatus::InProgress;
        self.status_reason = "Awaiting confirmation. The confirmation message is being sent.".into();
        self.last_updated_ms = now_ms;
    }

    /// Applies a confirmation token: `IN_PROGRESS` → `DISABLED`; a confirmed destination is
    /// left as it is; an expired token turns the destination to `ERROR` and is refused.
    pub fn confirm(&mut self, now_ms: i64) -> Result<(), RulesError> {
        match self.status {
            DestinationStatus::InProgress if now_ms > self.token_expires_ms => {
                self.status = DestinationStatus::Error;
                self.status_reason = "Confirmation timed out: the token expired. Set the status to IN_PROGRESS to send a new one.".into();
                self.last_updated_ms = now_ms;
                Err(RulesError::Invalid("The confirmation token has expired.".into()))
            }
            DestinationStatus::InProgress => {
                self.status = DestinationStatus::Disabled;
                self.status_reason = String::new();
                self.last_updated_ms = now_ms;
                Ok(())
            }
            DestinationStatus::Error => Err(RulesError::Invalid("The confirmation token has expired.".into())),
            DestinationStatus::Enabled | DestinationStatus::Disabled => Ok(()),
        }
    }

    /// UpdateTopicRuleDestination's status change (IN_PROGRESS is handled by the caller, which
    /// sends the new confirmation).
    pub fn set_status(&mut self, to: DestinationStatus, now_ms: i64) -> Result<(), RulesError> {
        use DestinationStatus::*;
        match (self.status, to) {
            (Enabled | Disabled, Enabled | Disabled) => {
                self.status = to;
                self.last_updated_ms = now_ms;
                Ok(())
            }
            (from, Enabled | Disabled) => Err(RulesError::Invalid(format!(
                "The destination is {}: it must be confirmed before it can be {}.",
                from.as_str(),
                if to == Enabled { "enabled" } else { "disabled" }
            ))),
            (_, Error) => Err(RulesError::Invalid("The status ERROR cannot be set.".into())),
            (_, InProgress) => Ok(()),
        }
    }
}

/// The URL the confirmation is POSTed to: the confirmation URL with `confirmationToken` added
/// to its query (`https://host/?confirmationToken=...` for a URL without a path).
pub fn confirmation_request_url(url: &str, token: &str) -> String {
    if url.contains('?') {
        return format!("{url}&confirmationToken={token}");
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    if after_scheme.contains('/') { format!("{url}?confirmationToken={token}") } else { format!("{url}/?confirmationToken={token}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> Destination {
        let mut d = Destination {
            arn: "arn:aws:iot:us-east-1:123456789012:ruledestination/http/abc".into(),
            confirmation_url: "https://h".into(),
            status: DestinationStatus::InProgress,
            status_reason: String::new(),
            created_ms: 0,
            last_updated_ms: 0,
            token: String::new(),
            token_expires_ms: 0,
        };
        d.restart_confirmation("t".into(), 0);
        d
    }

    #[test]
    fn confirmation_then_enable_and_disable() {
        let mut d = dest();
        assert_eq!(d.id(), "abc");
        assert!(d.set_status(DestinationStatus::Enabled, 1).is_err());
        d.confirm(1).unwrap();
        assert_eq!(d.status, DestinationStatus::Disabled);
        d.confirm(2).unwrap();
        assert_eq!(d.status, DestinationStatus::Disabled);
        d.set_status(DestinationStatus::Enabled, 3).unwrap();
        assert!(d.usable());
        d.set_status(DestinationStatus::Disabled, 4).unwrap();
        assert!(!d.usable());
        assert!(d.set_status(DestinationStatus::Error, 5).is_err());
    }

    #[test]
    fn expired_tokens_turn_the_destination_to_error() {
        let mut d = dest();
        assert!(d.confirm(TOKEN_TTL_MS + 1).is_err());
        assert_eq!(d.status, DestinationStatus::Error);
        assert!(d.confirm(TOKEN_TTL_MS + 2).is_err());
    }

    #[test]
    fn the_token_goes_in_the_query() {
        assert_eq!(confirmation_request_url("https://h.example", "T"), "https://h.example/?confirmationToken=T");
        assert_eq!(confirmation_request_url("http://h:80/in", "T"), "http://h:80/in?confirmationToken=T");
        assert_eq!(confirmation_request_url("http://h/in?a=1", "T"), "http://h/in?a=1&confirmationToken=T");
    }
}
