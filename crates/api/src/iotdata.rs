//! The `iotdata` service (AWS IoT data plane): Publish over HTTP into the broker, retained
//! messages, DeleteConnection, and the Device Shadow REST API.

use crate::service::{ApiRequest, ApiResponse, Body, BoxReply, Reply, Service};
use crate::ApiError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use broker::{Broker, Message};
use bytes::Bytes;
use mqtt::{MqttStr, Properties, QoS};
use serde_json::{Value, json};
use shadow_service::{Op, ShadowId, Shadows};
use std::sync::Arc;
use std::time::Instant;

/// The data-plane service over the broker and the shadows.
pub struct IotData {
    broker: Broker,
    shadows: Arc<Shadows>,
}

impl IotData {
    pub fn new(broker: Broker, shadows: Arc<Shadows>) -> IotData {
        IotData { broker, shadows }
    }
}

impl Service for IotData {
    fn models(&self) -> &'static [&'static str] {
        &["iot-data"]
    }

    fn call(&self, req: ApiRequest) -> BoxReply<'_> {
        Box::pin(async move {
            match req.op {
                "Publish" => self.publish(req).await,
                "GetRetainedMessage" => self.get_retained(&req),
                "ListRetainedMessages" => self.list_retained(&req),
                "DeleteConnection" => self.delete_connection(&req),
                "GetThingShadow" => self.shadow(&req, Op::Get).await,
                "UpdateThingShadow" => self.shadow(&req, Op::Update).await,
                "DeleteThingShadow" => self.shadow(&req, Op::Delete).await,
                "ListNamedShadowsForThing" => self.list_named_shadows(&req),
                op => Err(ApiError::not_implemented("iot-data", op)),
            }
        })
    }
}

/// User properties as the API carries them: a JSON array of one-member objects, base64-encoded
/// in the header (the AWS SDKs encode it; a raw JSON header is accepted too).
fn parse_user_properties(header: &str) -> Result<Vec<(String, String)>, ApiError> {
    let text = B64.decode(header.trim()).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_else(|| header.to_string());
    let bad = || ApiError::invalid("x-amz-mqtt5-user-properties must be a JSON array of objects");
    let mut v: Value = serde_json::from_str(&text).map_err(|_| bad())?;
    // botocore serializes the (already JSON) string parameter as JSON once more.
    if let Value::String(inner) = &v {
        v = serde_json::from_str(inner).map_err(|_| bad())?;
    }
    let mut out = Vec::new();
    for item in v.as_array().ok_or_else(|| ApiError::invalid("x-amz-mqtt5-user-properties must be a JSON array"))? {
        for (k, v) in item.as_object().ok_or_else(|| ApiError::invalid("each user property must be a JSON object"))? {
            let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            out.push((k.clone(), v));
        }
    }
    Ok(out)
}

fn user_properties_json(props: &[(String, String)]) -> String {
    Value::Array(props.iter().map(|(k, v)| json!({ k: v })).collect()).to_string()
}

/// Checks a topic name a client may publish to over HTTP.
fn topic_name(t: &str) -> Result<MqttStr, ApiError> {
    if !mqtt::topic::valid_topic_name(t) {
        return Err(ApiError::invalid(format!("{t:?} is not a valid topic name")));
    }
    Ok(MqttStr::from(t))
}

impl IotData {
    async fn publish(&self, req: ApiRequest) -> Reply {
        let i = req.input();
        let topic = topic_name(i.required("topic")?)?;
        let qos = match i.int_in("qos", 0, 0, 1)? {
            0 => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        let retain = i.bool("retain")?;
        let limits = &self.broker.inner().config;
        if !limits.topic_within_limits(&topic) {
            return Err(ApiError::invalid(format!(
                "the topic has more than {} levels or {} bytes (mqtt.max_topic_levels, mqtt.max_topic_length_bytes)",
                limits.max_topic_levels, limits.max_topic_length
            )));
        }
        if !broker::reserved::may_publish(&topic) || (retain && !broker::reserved::may_retain(&topic)) {
            let what = if retain { "publish a retained message to" } else { "publish to" };
            return Err(ApiError::new("UnauthorizedException", format!("Clients may not {what} the reserved topic {topic}")));
        }
        let mut properties = Properties::default();
        if let Some(h) = i.text("userProperties")? {
            properties.user_properties = parse_user_properties(h)?;
        }
        properties.payload_format_indicator = match i.text("payloadFormatIndicator")? {
            None | Some("UNSPECIFIED_BYTES") => None,
            Some("UTF8_DATA") => {
                if std::str::from_utf8(&req.body).is_err() {
                    return Err(ApiError::invalid("the payload is not UTF-8 but payloadFormatIndicator is UTF8_DATA"));
                }
                Some(1)
            }
            Some(v) => return Err(ApiError::invalid(format!("payloadFormatIndicator must be UNSPECIFIED_BYTES or UTF8_DATA, not {v:?}"))),
        };
        if let Some(c) = i.text("correlationData")? {
            let data = B64.decode(c.trim()).map_err(|_| ApiError::invalid("correlationData must be base64"))?;
            properties.correlation_data = Some(Bytes::from(data));
        }
        properties.content_type = i.str("contentType")?;
        if let Some(t) = i.text("responseTopic")? {
            topic_name(t)?;
            properties.response_topic = Some(t.to_string());
        }
        let expiry = i.int_in("messageExpiry", 0, 0, u32::MAX as i64)?;
        properties.message_expiry_interval = (expiry > 0).then_some(expiry as u32);
        let publish = mqtt::Publish { qos, retain, topic, properties, payload: req.body.clone(), ..Default::default() };
        let msg = Message::from_publish(publish, None, Instant::now());
        self.broker.publish(msg).await;
        ApiResponse::empty()
    }

    fn get_retained(&self, req: &ApiRequest) -> Reply {
        let topic = req.input().required("topic")?;
        let m = self
            .broker
            .inner()
            .retained
            .get(topic)
            .filter(|m| !m.expired(Instant::now()))
            .ok_or_else(|| ApiError::not_found(format!("No retained message on topic {topic}.")))?;
        let mut out = json!({
            "topic": m.topic.as_str(),
            "payload": B64.encode(&m.payload),
            "qos": m.qos as u8,
            "lastModifiedTime": m.created_ms,
        });
        if !m.properties.user_properties.is_empty() {
            out["userProperties"] = Value::String(B64.encode(user_properties_json(&m.properties.user_properties)));
        }
        ApiResponse::json(out)
    }

    fn list_retained(&self, req: &ApiRequest) -> Reply {
        let size = req.input().int_in("maxResults", 200, 1, 200)? as usize;
        let after = match req.input().text("nextToken")? {
            Some(t) => Some(awsmodel::route::decode(t).filter(|_| !t.is_empty()).ok_or_else(|| ApiError::invalid("nextToken is not valid"))?),
            None => None,
        };
        let mut page = self.broker.inner().retained.list(after.as_deref(), size + 1, Instant::now());
        let more = page.len() > size;
        page.truncate(size);
        let topics: Vec<Value> = page
            .iter()
            .map(|m| json!({"topic": m.topic.as_str(), "payloadSize": m.payload.len(), "qos": m.qos as u8, "lastModifiedTime": m.created_ms}))
            .collect();
        let mut out = json!({ "retainedTopics": topics });
        if more && let Some(last) = page.last() {
            out["nextToken"] = Value::String(last.topic.to_string());
        }
        ApiResponse::json(out)
    }

    fn delete_connection(&self, req: &ApiRequest) -> Reply {
        let client_id = req.input().required("clientId")?;
        let clean = req.input().bool("cleanSession")?;
        let prevent_will = req.input().bool("preventWillMessage")?;
        if !self.broker.disconnect_client(client_id, clean, prevent_will) {
            return Err(ApiError::not_found(format!("No connection with client ID {client_id}.")));
        }
        ApiResponse::empty()
    }
}

/// The AWS error type for a shadow rejection's HTTP status.
fn shadow_error(r: shadow::Rejection) -> ApiError {
    let error_type = match r.code() {
        400 => "InvalidRequestException",
        401 => "UnauthorizedException",
        403 => "ForbiddenException",
        404 => "ResourceNotFoundException",
        405 => "MethodNotAllowedException",
        409 => "ConflictException",
        413 => "RequestEntityTooLargeException",
        415 => "UnsupportedDocumentEncodingException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalFailureException",
    };
    ApiError::new(error_type, r.error.to_string()).with_status(r.code())
}

impl IotData {
    async fn shadow(&self, req: &ApiRequest, op: Op) -> Reply {
        let id = ShadowId { thing: req.input().required("thingName")?.to_string(), name: req.input().text("shadowName")?.unwrap_or("").to_string() };
        let doc = self.shadows.http(&id, op, &req.body).await.map_err(shadow_error)?;
        Ok(ApiResponse { status: 200, body: Body::Bytes { content_type: "application/json", data: Bytes::from(doc.to_string()) }, headers: Vec::new() })
    }

    fn list_named_shadows(&self, req: &ApiRequest) -> Reply {
        let thing = req.input().required("thingName")?;
        let size = req.input().int_in("pageSize", 25, 1, 100)? as usize;
        let after = req.input().text("nextToken")?.filter(|t| !t.is_empty());
        let (names, more) = self.shadows.named(thing, after, size).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut out = json!({ "results": names, "timestamp": shadow_service::timestamp() });
        if more && let Some(last) = names.last() {
            out["nextToken"] = Value::String(last.clone());
        }
        ApiResponse::json(out)
    }
}
