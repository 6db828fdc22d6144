//! [`Host`]: what the rules service supplies for the functions that depend on the message's
//! context or call other services, and [`TestHost`], a deterministic one for tests.

use std::cell::Cell;

use crate::error::HostError;
use crate::value::Value;

/// The message's context and the services behind the external functions. Every method has
/// a default, so a host implements only what it has; the external services default to an
/// error ("not available"), which fails the evaluation like a failed call on AWS.
pub trait Host {
    /// The topic the message was published to (`topic()`, `topic(n)`).
    fn topic(&self) -> String;

    /// `clientid()`: the MQTT client id, or `n/a` when the message did not come over MQTT.
    fn client_id(&self) -> String {
        "n/a".to_string()
    }

    /// `principal()`: the certificate id, IAM user or role that published the message.
    fn principal(&self) -> Option<String> {
        None
    }

    /// `timestamp()`: milliseconds since the Unix epoch, as observed by the rules engine.
    fn timestamp_millis(&self) -> i64;

    /// `traceid()`: the MQTT message's trace id; None gives Undefined.
    fn trace_id(&self) -> Option<String> {
        None
    }

    /// `newuuid()`: a fresh random UUID (version 4), lowercase.
    fn new_uuid(&self) -> String;

    /// `accountid()`: the account that owns the rule.
    fn account_id(&self) -> String;

    /// `sourceip()`: the publisher's IP address.
    fn source_ip(&self) -> Option<String> {
        None
    }

    /// `rand()`: a uniformly distributed number in [0, 1).
    fn rand(&self) -> f64;

    /// `get_mqtt_property(name)`: an MQTT 5 property of the message (`format_indicator`,
    /// `content_type`, `response_topic`, `correlation_data`); None gives Undefined.
    fn mqtt_property(&self, _name: &str) -> Option<Value> {
        None
    }

    /// `get_user_properties(key)`: every value of an MQTT 5 user property, in order.
    fn user_properties(&self, _key: &str) -> Vec<String> {
        Vec::new()
    }

    /// All MQTT 5 user properties as (key, value) pairs (`get_user_properties()`).
    fn all_user_properties(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// `get_thing_shadow(thingName, [shadowName,] roleArn)`: the shadow document.
    fn get_thing_shadow(&self, _thing: &str, _shadow: Option<&str>, _role_arn: &str) -> Result<Value, HostError> {
        Err(HostError("thing shadows are not available".to_string()))
    }

    /// `aws_lambda(functionArn, inputJson)`: the function's JSON result.
    fn aws_lambda(&self, _function_arn: &str, _input: &Value) -> Result<Value, HostError> {
        Err(HostError("Lambda is not available".to_string()))
    }

    /// `get_dynamodb(table, pkName, pkValue, [skName, skValue,] roleArn)`: the item.
    fn get_dynamodb(&self, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError("DynamoDB is not available".to_string()))
    }

    /// `get_secret(secretId, secretType, [key,] roleArn)`: the secret.
    fn get_secret(&self, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError("Secrets Manager is not available".to_string()))
    }

    /// `get_registry_data(registryAPI, thingName, roleArn)`: registry data of a thing.
    fn get_registry_data(&self, _args: &[Value]) -> Result<Value, HostError> {
        Err(HostError("registry data is not available".to_string()))
    }
}

/// A deterministic host for tests: fixed topic, client, principal, account, timestamp,
/// trace id and source IP; `newuuid()` counts up (`00000000-0000-4000-8000-000000000001`,
/// ...); `rand()` cycles through 0.5, 0.25, 0.75; shadows are served from `shadows`.
#[derive(Debug)]
pub struct TestHost {
    /// The message's topic.
    pub topic: String,
    /// The MQTT client id.
    pub client_id: String,
    /// The principal.
    pub principal: Option<String>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The trace id.
    pub trace_id: Option<String>,
    /// The account id.
    pub account_id: String,
    /// The source IP.
    pub source_ip: Option<String>,
    /// MQTT 5 user properties.
    pub user_properties: Vec<(String, String)>,
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// Shadows: (thing, shadow name or None, document).
    pub shadows: Vec<(String, Option<String>, Value)>,
    uuids: Cell<u64>,
    rands: Cell<usize>,
}

impl Default for TestHost {
    fn default() -> TestHost {
        TestHost {
            topic: "a/b".to_string(),
            client_id: "client-1".to_string(),
            principal: Some("ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373".to_string()),
            timestamp: 1_481_825_251_155,
            trace_id: Some("12345678-1234-1234-1234-123456789012".to_string()),
            account_id: "123456789012".to_string(),
            source_ip: Some("192.0.2.10".to_string()),
            user_properties: Vec::new(),
            content_type: None,
            shadows: Vec::new(),
            uuids: Cell::new(0),
            rands: Cell::new(0),
        }
    }
}

impl TestHost {
    /// A test host whose messages arrive on `topic`.
    pub fn with_topic(topic: &str) -> TestHost {
        TestHost { topic: topic.to_string(), ..TestHost::default() }
    }
}

impl Host for TestHost {
    fn topic(&self) -> String {
        self.topic.clone()
    }
    fn client_id(&self) -> String {
        self.client_id.clone()
    }
    fn principal(&self) -> Option<String> {
        self.principal.clone()
    }
    fn timestamp_millis(&self) -> i64 {
        self.timestamp
    }
    fn trace_id(&self) -> Option<String> {
        self.trace_id.clone()
    }
    fn new_uuid(&self) -> String {
        let n = self.uuids.get() + 1;
        self.uuids.set(n);
        format!("00000000-0000-4000-8000-{n:012x}")
    }
    fn account_id(&self) -> String {
        self.account_id.clone()
    }
    fn source_ip(&self) -> Option<String> {
        self.source_ip.clone()
    }
    fn rand(&self) -> f64 {
        const SEQ: [f64; 3] = [0.5, 0.25, 0.75];
        let i = self.rands.get();
        self.rands.set(i + 1);
        SEQ[i % SEQ.len()]
    }
    fn mqtt_property(&self, name: &str) -> Option<Value> {
        match name {
            "content_type" => self.content_type.clone().map(Value::String),
            _ => None,
        }
    }
    fn user_properties(&self, key: &str) -> Vec<String> {
        self.user_properties.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
    fn all_user_properties(&self) -> Vec<(String, String)> {
        self.user_properties.clone()
    }
    fn get_thing_shadow(&self, thing: &str, shadow: Option<&str>, _role_arn: &str) -> Result<Value, HostError> {
        self.shadows
            .iter()
            .find(|(t, s, _)| t == thing && s.as_deref() == shadow)
            .map(|(_, _, d)| d.clone())
            .ok_or_else(|| HostError(format!("no shadow for thing {thing}")))
    }
}
