//! [`MessageHost`]: what AWS IoT SQL's context functions see for one message — its topic,
//! publisher client id and principal, MQTT 5 properties, a trace id and timestamp fixed for the
//! message, the account, fresh UUIDs — and the external functions Ferrite provides:
//! `get_thing_shadow` from Ferrite's shadows and `aws_lambda` through Ferrite functions.

use crate::engine::Engine;
use base64::Engine as _;
use iotsql::{Host, HostError, Value};
use std::sync::{Arc, OnceLock};

pub use awscore::id::uuid;

/// The context of one message, shared by its evaluation and its actions' templates.
pub struct MessageHost {
    pub(crate) msg: Arc<broker::Message>,
    pub(crate) engine: Arc<Engine>,
    now_ms: i64,
    trace_id: OnceLock<String>,
    principal: OnceLock<Option<String>>,
}

impl MessageHost {
    /// The context of `msg`, observed now.
    pub fn new(engine: Arc<Engine>, msg: Arc<broker::Message>) -> MessageHost {
        MessageHost { msg, engine, now_ms: broker::message::unix_ms(), trace_id: OnceLock::new(), principal: OnceLock::new() }
    }

    /// The trace id of this message (also the error payload's `cloudwatchTraceId`).
    pub fn trace(&self) -> &str {
        self.trace_id.get_or_init(uuid)
    }

    /// The publisher's client id, or `n/a`.
    pub fn publisher(&self) -> String {
        self.msg.publisher.as_deref().unwrap_or("n/a").to_string()
    }
}

impl Host for MessageHost {
    fn topic(&self) -> String {
        self.msg.topic.to_string()
    }

    fn client_id(&self) -> String {
        self.publisher()
    }

    fn principal(&self) -> Option<String> {
        self.principal
            .get_or_init(|| {
                let id = self.msg.publisher.as_deref()?;
                let session = self.engine.broker.inner().session(id)?;
                session.lock().principal.as_deref().map(str::to_string)
            })
            .clone()
    }

    fn timestamp_millis(&self) -> i64 {
        self.now_ms
    }

    fn trace_id(&self) -> Option<String> {
        Some(self.trace().to_string())
    }

    fn new_uuid(&self) -> String {
        uuid()
    }

    fn account_id(&self) -> String {
        self.engine.config.account_id.clone()
    }

    fn rand(&self) -> f64 {
        let mut b = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn mqtt_property(&self, name: &str) -> Option<Value> {
        let p = &self.msg.properties;
        match name {
            "format_indicator" => Some(Value::string(if p.payload_format_indicator == Some(1) { "UTF8_DATA" } else { "UNSPECIFIED_BYTES" })),
            "content_type" => p.content_type.clone().map(Value::String),
            "response_topic" => p.response_topic.clone().map(Value::String),
            "correlation_data" => p.correlation_data.as_ref().map(|c| Value::String(base64::engine::general_purpose::STANDARD.encode(c))),
            _ => None,
        }
    }

    fn user_properties(&self, key: &str) -> Vec<String> {
        self.msg.properties.user_properties.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    fn all_user_properties(&self) -> Vec<(String, String)> {
        self.msg.properties.user_properties.clone()
    }

    fn get_thing_shadow(&self, thing: &str, shadow: Option<&str>, _role_arn: &str) -> Result<Value, HostError> {
        let shadows = self.engine.shadows.as_ref().ok_or_else(|| HostError("thing shadows are not available".into()))?;
        shadows.get(thing, shadow).map(|doc| Value::from_json(&doc)).map_err(HostError)
    }

    fn aws_lambda(&self, function_arn: &str, input: &Value) -> Result<Value, HostError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let handle = Handle::try_current().map_err(|_| HostError("aws_lambda needs the Tokio runtime".into()))?;
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(HostError("aws_lambda needs the multi-threaded runtime".into()));
        }
        let payload = bytes::Bytes::from(iotsql::json::to_string(input));
        let functions = self.engine.functions.clone();
        let out = tokio::task::block_in_place(|| handle.block_on(functions.invoke(function_arn, payload, functions::Mode::RequestResponse)))
            .map_err(|e| HostError(e.to_string()))?;
        if out.function_error.is_some() {
            return Err(HostError(out.error_message().unwrap_or_else(|| "the function failed".into())));
        }
        iotsql::json::parse(&out.payload).ok_or_else(|| HostError("the function's result is not JSON".into()))
    }
}
