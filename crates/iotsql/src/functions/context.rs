//! The functions answered by the [`crate::Host`]: the message's context (topic, client,
//! principal, time, ids) and the functions that call other services.

use super::Func;
use crate::error::{EvalError, HostError};
use crate::eval::Env;
use crate::value::{Object, Value};

fn host_err(f: Func) -> impl FnOnce(HostError) -> EvalError {
    move |e| EvalError::Host { function: f.name().to_string(), message: e.0 }
}

/// Calls a context or external function.
pub fn call(f: Func, a: &[Value], env: &Env) -> Result<Value, EvalError> {
    let h = env.host;
    Ok(match (f, a) {
        (Func::AccountId, []) => Value::String(h.account_id()),
        (Func::ClientId, []) => Value::String(h.client_id()),
        (Func::NewUuid, []) => Value::String(h.new_uuid()),
        (Func::Principal, []) => h.principal().map(Value::String).unwrap_or_default(),
        (Func::Rand, []) => Value::from_f64(h.rand()),
        (Func::SourceIp, []) => h.source_ip().map(Value::String).unwrap_or_default(),
        (Func::Timestamp, []) => Value::Int(h.timestamp_millis().into()),
        (Func::TraceId, []) => h.trace_id().map(Value::String).unwrap_or_default(),
        (Func::Topic, []) => Value::String(rule_topic(&h.topic())),
        (Func::Topic, [n]) => match n.to_int_down() {
            Some(i) if i >= 1 => rule_topic(&h.topic())
                .split('/')
                .nth((i - 1).try_into().unwrap_or(usize::MAX))
                .map(Value::string)
                .unwrap_or_default(),
            _ => Value::Undefined,
        },
        (Func::GetMqttProperty, [Value::String(name)]) => h.mqtt_property(name).unwrap_or_default(),
        (Func::GetUserProperties, [Value::String(key)]) => {
            let vals = h.user_properties(key);
            if vals.is_empty() { Value::Undefined } else { Value::Array(vals.into_iter().map(Value::String).collect()) }
        }
        (Func::GetUserProperties, []) => {
            let all = h.all_user_properties();
            if all.is_empty() {
                Value::Undefined
            } else {
                Value::Array(
                    all.into_iter().map(|(k, v)| Value::Object(Object::from_iter([(k, Value::String(v))]))).collect(),
                )
            }
        }
        (Func::GetThingShadow, [Value::String(thing), Value::String(role)]) => {
            h.get_thing_shadow(thing, None, role).map_err(host_err(f))?
        }
        (Func::GetThingShadow, [Value::String(thing), Value::String(shadow), Value::String(role)]) => {
            h.get_thing_shadow(thing, Some(shadow), role).map_err(host_err(f))?
        }
        (Func::AwsLambda, [Value::String(arn), input]) => h.aws_lambda(arn, input).map_err(host_err(f))?,
        (Func::GetDynamoDb, args) if args.len() == 4 || args.len() == 6 => h.get_dynamodb(args).map_err(host_err(f))?,
        (Func::GetSecret, args) if args.len() == 3 || args.len() == 4 => h.get_secret(args).map_err(host_err(f))?,
        (Func::GetRegistryData, args) if args.len() == 3 => h.get_registry_data(args).map_err(host_err(f))?,
        _ => Value::Undefined,
    })
}

/// The topic as rules see it: a Basic Ingest topic (`$aws/rules/<rule>/...`) loses its
/// prefix.
fn rule_topic(topic: &str) -> String {
    if let Some(rest) = topic.strip_prefix("$aws/rules/") {
        return match rest.split_once('/') {
            Some((_, t)) => t.to_string(),
            None => String::new(),
        };
    }
    topic.to_string()
}
