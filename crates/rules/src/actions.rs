//! Running a matched message's actions: `republish` through the broker (topic and MQTT 5 headers
//! from templates; `$$` at the start of a topic is a literal `$`), `http` POSTs to confirmed and
//! enabled destinations (at most three tries: retries on connection failures, 429 and 5xx, with a
//! doubling backoff, all within `http_timeout`; a response body over 16 KiB is not retried), and
//! `lambda` as an asynchronous Ferrite function invocation. The actions of one message run
//! concurrently; if any fails, the rule's `errorAction` gets one message with every failure, in
//! AWS's shape:
//! `{"ruleName", "topic", "cloudwatchTraceId", "clientId", "base64OriginalPayload", "failures":
//! [{"failedAction", "failedResource", "errorMessage"}]}`.
//!
//! Deviations: a republished message is published as the rule's own in-process client, which
//! does not receive its own messages (MQTT No Local), so a rule cannot loop on itself (rules still
//! trigger each other). A lambda action counts as failed when the function fails after its
//! retries (Lambda would send that to a dead-letter queue, which Ferrite does not have).

use crate::engine::RulesMetrics;
use crate::host::MessageHost;
use crate::model::{Action, CompiledRule, Headers, Text};
use base64::Engine as _;
use bytes::Bytes;
use functions::http::HttpError;
use iotsql::{Evaluation, Host as _, Output, TemplateContext};
use mqtt::{MqttStr, QoS};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A response body beyond this is not retried (AWS's rule), and not read further.
const HTTP_RESPONSE_CAP: usize = 16 * 1024;

/// One failed action, as the error payload lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub action: &'static str,
    pub resource: String,
    pub message: String,
}

/// A matched message and what its actions need.
pub struct Job {
    pub rule: Arc<CompiledRule>,
    pub host: MessageHost,
    pub message: iotsql::Message,
    pub evaluation: Evaluation,
    /// The rule's client id, used as the publisher of republished messages.
    pub publisher: Arc<str>,
}

type Outcome = Result<(), (String, String)>;

impl Job {
    /// Runs every action, then the error action if any failed.
    pub async fn run(self) {
        let metrics = &self.host.engine.metrics;
        let payload = Bytes::from(self.evaluation.output.to_bytes());
        let json = !matches!(self.evaluation.output, Output::Binary(_));
        let runs = self.rule.actions.iter().map(|a| self.run_action(a, payload.clone(), json));
        let results = futures_util::future::join_all(runs).await;
        let mut failures = Vec::new();
        for (a, r) in self.rule.actions.iter().zip(results) {
            match r {
                Ok(()) => RulesMetrics::inc(&metrics.actions_ok),
                Err((resource, message)) => {
                    RulesMetrics::inc(&metrics.actions_failed);
                    tracing::debug!(rule = %self.rule.name, action = a.aws_name(), %resource, error = %message, "rule action failed");
                    failures.push(Failure { action: a.aws_name(), resource, message });
                }
            }
        }
        if failures.is_empty() {
            return;
        }
        let Some(error_action) = &self.rule.error_action else { return };
        RulesMetrics::inc(&metrics.error_actions);
        let doc = self.error_payload(&failures);
        if let Err((resource, message)) = self.run_action(error_action, Bytes::from(doc.to_string()), true).await {
            RulesMetrics::inc(&metrics.error_actions_failed);
            tracing::warn!(rule = %self.rule.name, %resource, error = %message, "error action failed");
        }
    }

    /// AWS's error action message for these failures.
    pub fn error_payload(&self, failures: &[Failure]) -> serde_json::Value {
        let failures: Vec<serde_json::Value> = failures
            .iter()
            .map(|f| json!({"failedAction": f.action, "failedResource": f.resource, "errorMessage": f.message}))
            .collect();
        json!({
            "ruleName": self.rule.name,
            "topic": self.host.topic(),
            "cloudwatchTraceId": self.host.trace(),
            "clientId": self.host.publisher(),
            "base64OriginalPayload": base64::engine::general_purpose::STANDARD.encode(&self.host.msg.payload),
            "failures": failures,
        })
    }

    fn render(&self, t: &Text) -> Result<String, String> {
        let ctx = TemplateContext { message: &self.message, host: &self.host, version: self.rule.version, variables: Some(&self.evaluation.variables) };
        t.template.render(&ctx).map_err(|e| format!("the substitution template {:?} failed: {e}", t.source))
    }

    /// Renders with the template's source as the failed resource on error.
    fn resource(&self, t: &Text) -> Result<String, (String, String)> {
        self.render(t).map_err(|m| (t.source.clone(), m))
    }

    async fn run_action(&self, a: &Action, payload: Bytes, json: bool) -> Outcome {
        match a {
            Action::Republish { topic, qos, headers } => self.republish(topic, *qos, headers, payload).await,
            Action::Http { url, confirmation_url, headers } => self.http(url, confirmation_url.as_ref(), headers, payload, json).await,
            Action::Lambda { function_arn } => {
                let arn = self.resource(function_arn)?;
                match self.host.engine.functions.invoke(&arn, payload, functions::Mode::Event).await {
                    Ok(out) if out.function_error.is_none() => Ok(()),
                    Ok(out) => Err((arn, out.error_message().unwrap_or_else(|| "the function failed".into()))),
                    Err(e) => Err((arn, e.to_string())),
                }
            }
        }
    }

    async fn republish(&self, topic: &Text, qos: QoS, h: &Headers, payload: Bytes) -> Outcome {
        let mut t = self.resource(topic)?;
        if let Some(rest) = t.strip_prefix("$$") {
            t = format!("${rest}");
        }
        let fail = |m: String| (t.clone(), m);
        if !mqtt::topic::valid_topic_name(&t) {
            return Err(fail(format!("{t:?} is not a valid topic name")));
        }
        let mut p = mqtt::Properties::default();
        let text = |x: &Option<Text>| -> Result<Option<String>, (String, String)> {
            x.as_ref().map(|x| self.render(x)).transpose().map_err(|m| (t.clone(), m))
        };
        p.payload_format_indicator = match text(&h.payload_format_indicator)?.as_deref() {
            None | Some("UNSPECIFIED_BYTES") => None,
            Some("UTF8_DATA") if std::str::from_utf8(&payload).is_ok() => Some(1),
            Some("UTF8_DATA") => return Err(fail("payloadFormatIndicator is UTF8_DATA but the payload is not UTF-8".into())),
            Some(v) => return Err(fail(format!("payloadFormatIndicator must be UNSPECIFIED_BYTES or UTF8_DATA, not {v:?}"))),
        };
        p.content_type = text(&h.content_type)?;
        p.response_topic = text(&h.response_topic)?;
        if let Some(r) = &p.response_topic
            && !mqtt::topic::valid_topic_name(r)
        {
            return Err(fail(format!("responseTopic {r:?} is not a valid topic name")));
        }
        if let Some(c) = text(&h.correlation_data)? {
            let data = base64::engine::general_purpose::STANDARD.decode(c.trim()).map_err(|_| fail(format!("correlationData {c:?} is not base64")))?;
            p.correlation_data = Some(Bytes::from(data));
        }
        if let Some(e) = text(&h.message_expiry)? {
            match e.trim().parse::<u32>() {
                Ok(n) if n > 0 => p.message_expiry_interval = Some(n),
                _ => return Err(fail(format!("messageExpiry {e:?} is not a number of seconds from 1 to 4294967295"))),
            }
        }
        for (k, v) in &h.user_properties {
            let (k, v) = (self.render(k).map_err(&fail)?, self.render(v).map_err(&fail)?);
            p.user_properties.push((k, v));
        }
        let publish = mqtt::Publish { topic: MqttStr::from(t.as_str()), payload, qos, properties: p, ..Default::default() };
        let msg = broker::Message::from_publish(publish, Some(self.publisher.clone()), Instant::now());
        self.host.engine.broker.publish(msg).await;
        Ok(())
    }

    async fn http(&self, url: &Text, confirmation: Option<&Text>, headers: &[(String, Text)], payload: Bytes, json: bool) -> Outcome {
        let engine = &self.host.engine;
        let u = self.resource(url)?;
        let fail = |m: String| (u.clone(), m);
        let c = match confirmation {
            Some(c) => self.render(c).map_err(&fail)?,
            None => u.clone(),
        };
        if !u.starts_with(&c) {
            return Err(fail(format!("the URL does not begin with the confirmation URL {c}")));
        }
        if !engine.destination_enabled(&c) {
            return Err(fail(format!("the topic rule destination {c} is not confirmed and enabled")));
        }
        let mut hs = Vec::with_capacity(headers.len() + 1);
        for (k, v) in headers {
            hs.push((k.clone(), self.render(v).map_err(&fail)?));
        }
        if !hs.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            hs.push(("content-type".into(), if json { "application/json" } else { "application/octet-stream" }.into()));
        }
        let cfg = &engine.config;
        let deadline = Instant::now() + cfg.http_timeout;
        let mut last = String::from("no attempt was made");
        for attempt in 0..=cfg.http_retries {
            if attempt > 0 {
                let pause = cfg.http_retry_backoff * 2u32.saturating_pow(attempt - 1);
                if Instant::now() + pause >= deadline {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match engine.functions.http().post(&u, &hs, payload.clone(), left, HTTP_RESPONSE_CAP).await {
                Ok(r) if (200..300).contains(&r.status) => return Ok(()),
                Ok(r) if r.truncated => return Err(fail(format!("the endpoint answered HTTP {} with a body over {HTTP_RESPONSE_CAP} bytes", r.status))),
                Ok(r) if r.status == 429 || (500..600).contains(&r.status) => last = format!("the endpoint answered HTTP {}", r.status),
                Ok(r) => return Err(fail(format!("the endpoint answered HTTP {}", r.status))),
                Err(HttpError::Timeout(_)) => return Err(fail(format!("no response within {} ms", cfg.http_timeout.as_millis()))),
                Err(e @ (HttpError::BadUrl(_) | HttpError::BadHeader(_))) => return Err(fail(e.to_string())),
                Err(e) => last = e.to_string(),
            }
        }
        Err(fail(last))
    }
}

/// Default pause before the first HTTP retry.
pub const DEFAULT_HTTP_BACKOFF: Duration = Duration::from_millis(100);
