//! The `[rules]` and `[functions]` sections of the configuration and their conversion into the
//! settings of the `rules` and `functions` crates.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The rules engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSettings {
    /// Messages whose http/lambda actions may be in flight at once, per rule.
    pub max_inflight_actions_per_rule: usize,
    /// Time an http action has for all its tries.
    pub http_timeout_ms: u64,
    /// Retries of an http action after its first try.
    pub http_retries: u32,
    /// Pause before the first retry, doubled for each further one.
    pub http_retry_backoff_ms: u64,
    /// http actions and destinations may use http:// URLs (AWS requires https://).
    pub allow_plain_http: bool,
}

impl Default for RulesSettings {
    fn default() -> Self {
        RulesSettings { max_inflight_actions_per_rule: 100, http_timeout_ms: 3000, http_retries: 2, http_retry_backoff_ms: 100, allow_plain_http: false }
    }
}

/// Ferrite functions (the stand-in for Lambda).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionsSettings {
    /// Absolute directories whose programs command functions may run; empty: none may.
    pub allowed_command_dirs: Vec<PathBuf>,
    /// Invocations of one function running at once.
    pub max_concurrency: usize,
    /// Retries of a failed asynchronous invocation.
    pub async_retries: u32,
    /// Pause before the first retry, doubled for each further one.
    pub retry_backoff_ms: u64,
    /// Largest result a function may return.
    pub max_result_bytes: usize,
    /// Webhooks and rules' http actions may reach loopback, private and link-local addresses.
    pub allow_private_targets: bool,
}

impl Default for FunctionsSettings {
    fn default() -> Self {
        FunctionsSettings {
            allowed_command_dirs: Vec::new(),
            max_concurrency: 8,
            async_retries: 2,
            retry_backoff_ms: 200,
            max_result_bytes: 6 * 1024 * 1024,
            allow_private_targets: false,
        }
    }
}

/// Checks both sections.
pub fn validate(rules: &RulesSettings, functions: &FunctionsSettings) -> Result<(), ConfigError> {
    let bad = |s: String| Err(ConfigError::Invalid(s));
    if rules.max_inflight_actions_per_rule == 0 {
        return bad("rules.max_inflight_actions_per_rule must be at least 1".into());
    }
    if rules.http_timeout_ms == 0 {
        return bad("rules.http_timeout_ms must be at least 1".into());
    }
    if functions.max_concurrency == 0 {
        return bad("functions.max_concurrency must be at least 1".into());
    }
    if functions.max_result_bytes == 0 {
        return bad("functions.max_result_bytes must be at least 1".into());
    }
    for d in &functions.allowed_command_dirs {
        if !d.is_absolute() {
            return bad(format!("functions.allowed_command_dirs must hold absolute paths, not {}", d.display()));
        }
        if d.parent().is_none() {
            return bad("functions.allowed_command_dirs must not include /".into());
        }
    }
    Ok(())
}

/// The rules engine's settings.
pub fn rules_config(s: &RulesSettings, region: &str, account_id: &str) -> rules::RulesConfig {
    rules::RulesConfig {
        region: region.to_string(),
        account_id: account_id.to_string(),
        max_inflight_actions_per_rule: s.max_inflight_actions_per_rule,
        http_timeout: Duration::from_millis(s.http_timeout_ms),
        http_retries: s.http_retries,
        http_retry_backoff: Duration::from_millis(s.http_retry_backoff_ms),
        enable_url_base: String::new(),
        allow_plain_http: s.allow_plain_http,
    }
}

/// The functions' settings.
pub fn functions_config(s: &FunctionsSettings, region: &str, account_id: &str) -> functions::FunctionsConfig {
    functions::FunctionsConfig {
        allowed_command_dirs: s.allowed_command_dirs.clone(),
        max_concurrency: s.max_concurrency,
        async_retries: s.async_retries,
        retry_backoff: Duration::from_millis(s.retry_backoff_ms),
        max_result_bytes: s.max_result_bytes,
        allow_private_targets: s.allow_private_targets,
        region: region.to_string(),
        account_id: account_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_or_root_directories_are_refused() {
        let ok = FunctionsSettings { allowed_command_dirs: vec!["/opt/ferrite/functions".into()], ..Default::default() };
        assert!(validate(&RulesSettings::default(), &ok).is_ok());
        let rel = FunctionsSettings { allowed_command_dirs: vec!["functions".into()], ..Default::default() };
        assert!(validate(&RulesSettings::default(), &rel).unwrap_err().to_string().contains("absolute"));
        let root = FunctionsSettings { allowed_command_dirs: vec!["/".into()], ..Default::default() };
        assert!(validate(&RulesSettings::default(), &root).is_err());
    }
}
