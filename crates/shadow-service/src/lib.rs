//! The Device Shadow service: [`shadow`]'s pure core wired to the MQTT contract
//! (`$aws/things/{thing}/shadow[/name/{name}]/{get,update,delete}` and their `/accepted`,
//! `/rejected`, `/update/delta`, `/update/documents` replies, through an in-process broker client),
//! to the HTTP API (called by the `api` crate), and to the store.
//!
//! The MQTT side runs on the keyed service runtime ([`service_runtime`]): requests arrive through
//! a durable in-process client (stored before the device's PUBACK), are sharded by thing name,
//! and a thing's requests are applied to its shadows one at a time, in arrival order; the store
//! writes are group-committed in that same order, and a reply (`/accepted`, HTTP 200) is
//! published only once its write is committed, together with the acknowledgement of the
//! request. Each commit records the intake positions it answers, so an update restored after a
//! crash that was already applied is not applied twice. A write that loses to another node's
//! commit of the same shadow is applied again to what won (up to [`ATTEMPTS`] times), so an
//! update without a version merges and one with a stale version is rejected with a conflict, as
//! on one node. A shard holding too many requests answers `429 Too Many Requests` on
//! `/rejected`.

mod writer;

use broker::internal::Reply;
use broker::{Broker, Message};
use bytes::Bytes;
use mqtt::{MqttStr, QoS};
use serde_json::{Value, json};
use shadow::{Limits, Rejection, ShadowError, StoredShadow};
use std::sync::Arc;
use std::time::Instant;
use store::{Documents, StoreError};
use writer::{Memory, Settled};

/// What an accepted update produced: the messages to publish, the response document and the
/// shadow to store.
type Computed = (Vec<(String, Value)>, Value, Option<StoredShadow>);

const KIND: &str = "shadow";

/// How many times a request is applied when other nodes keep committing its shadow first.
pub const ATTEMPTS: usize = 4;

/// Which shadow: a thing's classic shadow (`name` empty) or a named one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShadowId {
    pub thing: String,
    pub name: String,
}

impl ShadowId {
    fn key(&self) -> String {
        format!("{}|{}", self.thing, self.name)
    }

    fn from_key(k: &str) -> Option<ShadowId> {
        let (thing, name) = k.split_once('|')?;
        Some(ShadowId { thing: thing.into(), name: name.into() })
    }

    /// `$aws/things/{thing}/shadow` or `$aws/things/{thing}/shadow/name/{name}`.
    pub fn topic_prefix(&self) -> String {
        if self.name.is_empty() {
            format!("$aws/things/{}/shadow", self.thing)
        } else {
            format!("$aws/things/{}/shadow/name/{}", self.thing, self.name)
        }
    }

    /// The name in 404 messages (AWS calls the classic shadow by the thing's name).
    fn display_name(&self) -> &str {
        if self.name.is_empty() { &self.thing } else { &self.name }
    }
}

/// One shadow operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Update,
    Delete,
}

impl Op {
    fn word(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// Parses a request topic into the shadow and operation (`None` for any other topic).
pub fn parse_topic(topic: &str) -> Option<(ShadowId, Op)> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("shadow/")?;
    let (name, op) = match rest.strip_prefix("name/") {
        Some(r) => r.split_once('/')?,
        None => ("", rest),
    };
    let op = match op {
        "get" => Op::Get,
        "update" => Op::Update,
        "delete" => Op::Delete,
        _ => return None,
    };
    Some((ShadowId { thing: thing.into(), name: name.into() }, op))
}

/// What one operation produced: messages to publish (topic, payload) once durable, and the
/// HTTP answer.
pub struct Outcome {
    messages: Vec<(String, Value)>,
    answer: Result<Value, Rejection>,
    durable: Option<writer::Durable>,
}

impl Outcome {
    /// Waits for the write, if any: Committed when there is none.
    async fn settled(&mut self) -> Settled {
        match self.durable.take() {
            Some(d) => d.await.unwrap_or(Settled::Failed),
            None => Settled::Committed,
        }
    }
}

/// An MQTT request as applied: its replies once durable, or nothing (a request restored after
/// a crash that was applied before it).
pub enum MqttApplied {
    Done { id: ShadowId, op: Op, outcome: Outcome, intake: Option<(usize, u64)> },
    AlreadyApplied,
}

/// The durable intake client of the shadow service.
pub const CLIENT_ID: &str = "$ferrite/shadow";

/// The shadows of every thing.
pub struct Shadows {
    memory: Memory,
    limits: Limits,
    broker: Broker,
    runtime: service_runtime::RuntimeConfig,
    /// Per intake shard, the highest position whose write was committed before this start.
    applied_through: Vec<u64>,
}

fn now_secs() -> u64 {
    (broker::message::unix_ms() / 1000).max(0) as u64
}

impl Shadows {
    /// Opens the shadows in the store (nothing is loaded: shadows are read as requests need
    /// them), with the runtime's default settings, as node `local`. Blocking.
    pub fn load(docs: Arc<Documents>, broker: Broker, limits: Limits) -> Result<Arc<Shadows>, StoreError> {
        Shadows::open(docs, broker, limits, "local", service_runtime::RuntimeConfig::default())
    }

    /// Opens the shadows as node `node` (which names its intake positions in the store: unique
    /// per node sharing a database) for the runtime settings `runtime`. Blocking.
    pub fn open(docs: Arc<Documents>, broker: Broker, limits: Limits, node: &str, runtime: service_runtime::RuntimeConfig) -> Result<Arc<Shadows>, StoreError> {
        let memory = Memory::open(docs.state().clone(), runtime.shards, node)?;
        let applied_through = memory.applied_through()?;
        Ok(Arc::new(Shadows { memory, limits, broker, runtime, applied_through }))
    }

    /// Applies what other nodes commit to shadows as it is committed. Call inside a Tokio
    /// runtime.
    pub fn follow(&self) {
        self.memory.replica().follow();
    }

    /// Serves the MQTT contract on the service runtime until the Tokio runtime stops: a durable
    /// client subscribed to the request topics, whose positions continue after those recorded.
    pub fn serve(self: Arc<Self>) -> Arc<service_runtime::RuntimeMetrics> {
        let through = self.applied_through.iter().copied().max().unwrap_or(0);
        let client = self.broker.durable_client(CLIENT_ID, through);
        let config = self.runtime;
        service_runtime::serve(self, client, config)
    }

    /// The replies of an MQTT request once durable; after a store failure, an InternalFailure
    /// rejection instead.
    async fn finish(&self, id: ShadowId, op: Op, payload: &[u8], o: Outcome, intake: Option<(usize, u64)>) -> Vec<Reply> {
        let messages = match self.settle(&id, op, payload, true, o, intake).await {
            Some(o) => o.messages,
            None => {
                let rejection = Rejection::new(ShadowError::InternalFailure, now_secs(), None);
                vec![(rejected_topic(&id, op), rejection.payload())]
            }
        };
        messages.into_iter().map(|(topic, payload)| Reply::all(message(topic, &payload))).collect()
    }

    /// Waits for an applied request's write; after a conflict, applies the request again to
    /// what won (up to [`ATTEMPTS`] in all). The outcome once durable (or with nothing to
    /// write), None when the store failed or the conflicts did not stop.
    async fn settle(&self, id: &ShadowId, op: Op, payload: &[u8], mqtt: bool, mut o: Outcome, intake: Option<(usize, u64)>) -> Option<Outcome> {
        let mut result = None;
        let mut attempts = 1;
        loop {
            match o.settled().await {
                Settled::Committed => {
                    result = Some(o);
                    break;
                }
                Settled::Conflict if attempts < ATTEMPTS => {
                    attempts += 1;
                    o = store::state::blocking(|| self.apply(id, op, payload, mqtt, intake));
                }
                settled => {
                    tracing::error!(thing = %id.thing, shadow = %id.name, attempts, ?settled, "shadow write was not committed");
                    break;
                }
            }
        }
        // A request whose write failed once is settled now (applied, answered without a write,
        // or given up): the recorded intake position may pass it.
        if let (Some(i), true) = (intake, attempts > 1 || result.is_none()) {
            self.memory.given_up(i);
        }
        result
    }

    /// Applies one operation to memory and queues its store write. `mqtt` says whether the
    /// request came over MQTT (its rejections are published on `/rejected`); `intake` is its
    /// shard and position in the durable intake.
    fn apply(&self, id: &ShadowId, op: Op, payload: &[u8], mqtt: bool, intake: Option<(usize, u64)>) -> Outcome {
        let now = now_secs();
        let prefix = id.topic_prefix();
        let names_ok = shadow::validate_thing_name(&id.thing).is_ok() && (id.name.is_empty() || shadow::validate_shadow_name(&id.name).is_ok());
        let mut lane = self.memory.hold(&id.thing);
        let current = if names_ok { lane.current(id) } else { Ok(None) };
        let current = match current {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(thing = %id.thing, shadow = %id.name, error = %e, "stored shadow cannot be read");
                let rejection = Rejection::new(ShadowError::InternalFailure, now, None);
                let messages = if mqtt { vec![(rejected_topic(id, op), rejection.payload())] } else { vec![] };
                return Outcome { messages, answer: Err(rejection), durable: None };
            }
        };
        let current = current.as_deref();
        let result: Result<Computed, Rejection> = if !names_ok {
            Err(Rejection::new(ShadowError::InvalidNode, now, None))
        } else {
            match op {
                Op::Get => shadow::get(current, id.display_name(), payload, now, &self.limits).map(|v| (vec![(format!("{prefix}/get/accepted"), v.clone())], v, None)),
                Op::Update => {
                    shadow::update(current, payload, now, &self.limits).map(|o| {
                        let mut msgs = vec![(format!("{prefix}/update/accepted"), o.accepted.clone())];
                        if let Some(delta) = o.delta {
                            msgs.push((format!("{prefix}/update/delta"), delta));
                        }
                        msgs.push((format!("{prefix}/update/documents"), o.documents));
                        (msgs, o.accepted, Some(o.stored))
                    })
                }
                Op::Delete => shadow::delete(current, id.display_name(), payload, now, &self.limits)
                    .map(|o| (vec![(format!("{prefix}/delete/accepted"), o.accepted.clone())], o.accepted, Some(o.stored))),
            }
        };
        let result = match result {
            Ok((messages, answer, Some(stored))) => match lane.write(id, stored, intake) {
                Ok(durable) => Ok((messages, answer, Some(durable))),
                Err(e) => {
                    tracing::error!(thing = %id.thing, shadow = %id.name, error = %e, "shadow write cannot be queued");
                    Err(Rejection::new(ShadowError::InternalFailure, now, None))
                }
            },
            Ok((messages, answer, None)) => Ok((messages, answer, None)),
            Err(r) => Err(r),
        };
        match result {
            Ok((messages, answer, durable)) => Outcome { messages, answer: Ok(answer), durable },
            Err(rejection) => {
                let messages = if mqtt { vec![(rejected_topic(id, op), rejection.payload())] } else { vec![] };
                Outcome { messages, answer: Err(rejection), durable: None }
            }
        }
    }

    /// Runs an operation for the HTTP API: returns the accepted document once durable (the MQTT
    /// topics get their messages too), or the rejection.
    pub async fn http(&self, id: &ShadowId, op: Op, payload: &[u8]) -> Result<Value, Rejection> {
        let first = store::state::blocking(|| self.apply(id, op, payload, false, None));
        let Some(mut o) = self.settle(id, op, payload, false, first, None).await else {
            return Err(Rejection::new(ShadowError::InternalFailure, now_secs(), None));
        };
        let answer = std::mem::replace(&mut o.answer, Ok(Value::Null));
        if answer.is_ok() {
            // HTTP requests publish the same accepted/delta/documents messages as MQTT ones.
            if op != Op::Get {
                for (topic, payload) in o.messages {
                    self.broker.publish(message(topic, &payload)).await;
                }
            }
        }
        answer
    }

    /// GetThingShadow of a thing's classic shadow (`shadow` none) or a named one, for
    /// in-process readers (a rule's `get_thing_shadow()`): a read applies to memory and writes
    /// nothing, so it answers at once. Blocking on a cache miss. The rejection's message.
    pub fn get(&self, thing: &str, shadow: Option<&str>) -> Result<Value, String> {
        let id = ShadowId { thing: thing.to_string(), name: shadow.unwrap_or("").to_string() };
        self.apply(&id, Op::Get, b"", false, None).answer.map_err(|r| r.error.to_string())
    }

    /// Names of a thing's live named shadows, sorted, after `after`, at most `limit`.
    pub fn named(&self, thing: &str, after: Option<&str>, limit: usize) -> Result<(Vec<String>, bool), StoreError> {
        let mut names = self.memory.named(thing, after, limit + 1)?;
        let more = names.len() > limit;
        names.truncate(limit);
        Ok((names, more))
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Where a request's rejection goes: `{prefix}/{op}/rejected`.
fn rejected_topic(id: &ShadowId, op: Op) -> String {
    format!("{}/{}/rejected", id.topic_prefix(), op.word())
}

/// A reply message (QoS 1).
fn message(topic: String, payload: &Value) -> Message {
    let p = mqtt::Publish { qos: QoS::AtLeastOnce, topic: MqttStr::from(topic), payload: Bytes::from(payload.to_string()), ..Default::default() };
    Message::from_publish(p, None, Instant::now())
}

impl service_runtime::Service for Shadows {
    type Applied = MqttApplied;

    fn filters(&self) -> Vec<String> {
        ["get", "update", "delete"].iter().flat_map(|op| [format!("$aws/things/+/shadow/{op}"), format!("$aws/things/+/shadow/name/+/{op}")]).collect()
    }

    fn key<'a>(&self, topic: &'a str) -> Option<&'a str> {
        parse_topic(topic)?;
        topic.strip_prefix("$aws/things/")?.split('/').next()
    }

    fn apply(&self, req: &service_runtime::Request) -> MqttApplied {
        let Some((id, op)) = parse_topic(req.topic()) else { return MqttApplied::AlreadyApplied };
        let seq = req.seq();
        // Restored after a crash, and its write was committed before it: applied already.
        if seq != 0 && op != Op::Get && self.applied_through.get(req.shard).is_some_and(|t| seq <= *t) {
            tracing::info!(thing = %id.thing, shadow = %id.name, seq, "restored request was applied before the restart; not applied again");
            return MqttApplied::AlreadyApplied;
        }
        let intake = (seq != 0).then_some((req.shard, seq));
        let outcome = self.apply(&id, op, req.payload(), true, intake);
        MqttApplied::Done { id, op, outcome, intake }
    }

    fn settle<'a>(&'a self, req: &'a service_runtime::Request, applied: MqttApplied) -> service_runtime::Replies<'a> {
        Box::pin(async move {
            match applied {
                MqttApplied::Done { id, op, outcome, intake } => self.finish(id, op, req.payload(), outcome, intake).await,
                MqttApplied::AlreadyApplied => Vec::new(),
            }
        })
    }

    fn throttled(&self, req: &service_runtime::Request) -> Vec<Reply> {
        let Some((id, op)) = parse_topic(req.topic()) else { return Vec::new() };
        let rejection = Rejection::new(ShadowError::TooManyRequests, now_secs(), None);
        vec![Reply::all(message(rejected_topic(&id, op), &rejection.payload()))]
    }
}

/// The current time in seconds, as shadow documents carry it.
pub fn timestamp() -> Value {
    json!(now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_into_shadow_and_operation() {
        let (id, op) = parse_topic("$aws/things/t1/shadow/update").unwrap();
        assert_eq!((id.thing.as_str(), id.name.as_str(), op), ("t1", "", Op::Update));
        let (id, op) = parse_topic("$aws/things/t1/shadow/name/cfg/get").unwrap();
        assert_eq!((id.thing.as_str(), id.name.as_str(), op), ("t1", "cfg", Op::Get));
        assert!(parse_topic("$aws/things/t1/shadow/update/accepted").is_none());
        assert!(parse_topic("$aws/things/t1/jobs/get").is_none());
        assert_eq!(id.topic_prefix(), "$aws/things/t1/shadow/name/cfg");
        assert_eq!(ShadowId::from_key(&id.key()), Some(id));
    }
}
