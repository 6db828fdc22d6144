//! The running rules: each enabled rule is one in-process broker client subscribed to its FROM
//! filter (and to its Basic Ingest topic `$aws/rules/{name}/#`) and one task that drains it.
//! Overlapping rules each get their own copy of a message from the broker's router, and each
//! rule's queue is its own bounded session queue (`broker::internal::INTERNAL_QUEUE`; the
//! broker counts what a full queue drops). The broker's publish path only enqueues.
//!
//! A rule's task evaluates the statement; actions that stay inside Ferrite (republish) run in
//! the task, in order. A rule with an http or lambda action runs each message's actions in a
//! task of their own, at most `max_inflight_actions_per_rule` at once per rule: beyond that the
//! message's actions are dropped and counted (`rules_actions_dropped_total`), so a slow HTTP
//! target holds back neither the broker nor other rules, nor the rule's own evaluation.

use crate::destinations::Destination;
use crate::host::MessageHost;
use crate::model::CompiledRule;
use crate::RulesConfig;
use broker::Broker;
use broker::internal::InternalClient;
use functions::Functions;
use iotsql::Host as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Counters of the rules engine.
#[derive(Debug, Default)]
pub struct RulesMetrics {
    /// Messages a rule received.
    pub messages: AtomicU64,
    /// Messages whose WHERE held (the rule's actions ran).
    pub matched: AtomicU64,
    /// Evaluations that failed.
    pub evaluation_errors: AtomicU64,
    pub actions_ok: AtomicU64,
    pub actions_failed: AtomicU64,
    /// Messages whose actions were dropped because the rule had too many in flight.
    pub actions_dropped: AtomicU64,
    pub error_actions: AtomicU64,
    pub error_actions_failed: AtomicU64,
}

impl RulesMetrics {
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text lines.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE ferrite_rules_messages_total counter\nferrite_rules_messages_total {}", g(&self.messages));
        let _ = writeln!(out, "# TYPE ferrite_rules_matched_total counter\nferrite_rules_matched_total {}", g(&self.matched));
        let _ = writeln!(out, "# TYPE ferrite_rules_evaluation_errors_total counter\nferrite_rules_evaluation_errors_total {}", g(&self.evaluation_errors));
        let _ = writeln!(out, "# TYPE ferrite_rules_actions_total counter");
        let _ = writeln!(out, "ferrite_rules_actions_total{{result=\"ok\"}} {}", g(&self.actions_ok));
        let _ = writeln!(out, "ferrite_rules_actions_total{{result=\"failed\"}} {}", g(&self.actions_failed));
        let _ = writeln!(out, "# TYPE ferrite_rules_actions_dropped_total counter\nferrite_rules_actions_dropped_total {}", g(&self.actions_dropped));
        let _ = writeln!(out, "# TYPE ferrite_rules_error_actions_total counter");
        let _ = writeln!(out, "ferrite_rules_error_actions_total{{result=\"ok\"}} {}", g(&self.error_actions) - g(&self.error_actions_failed));
        let _ = writeln!(out, "ferrite_rules_error_actions_total{{result=\"failed\"}} {}", g(&self.error_actions_failed));
    }
}

/// What `get_thing_shadow()` in a rule's SQL reads: the thing shadows, wired in by `ferrite`
/// (this crate does not depend on the shadow service).
pub trait ShadowReader: Send + Sync {
    /// The shadow document as GetThingShadow answers it, or the rejection's message.
    fn get(&self, thing: &str, shadow: Option<&str>) -> Result<serde_json::Value, String>;
}

/// What every rule's task shares.
pub struct Engine {
    pub broker: Broker,
    pub functions: Arc<Functions>,
    pub shadows: Option<Arc<dyn ShadowReader>>,
    pub config: RulesConfig,
    /// Topic rule destinations by ARN.
    pub destinations: Destinations,
    pub metrics: RulesMetrics,
    /// Where confirmation messages' `enableUrl` points (set once the API is listening).
    pub enable_url_base: Mutex<String>,
}

impl Engine {
    /// The destinations, locked for a change (writers hold it while they commit, so take it on a
    /// blocking thread only).
    pub fn destinations(&self) -> DestinationsGuard<'_> {
        DestinationsGuard { map: self.destinations.writing.lock().unwrap_or_else(|e| e.into_inner()), published: &self.destinations.published, changed: false }
    }

    /// The destinations as last changed: never waits for a writer (or for the database).
    pub fn destinations_now(&self) -> Arc<BTreeMap<String, Destination>> {
        self.destinations.published.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether an enabled destination has this confirmation URL.
    pub fn destination_enabled(&self, confirmation_url: &str) -> bool {
        self.destinations_now().values().any(|d| d.confirmation_url == confirmation_url && d.usable())
    }
}

/// The topic rule destinations: the map writers change under a lock they hold while they commit
/// to the store, and the copy actions read, replaced when a writer lets go. An action task on a
/// Tokio worker must not wait for a lock whose holder waits for the database: with every
/// worker so blocked, the database call never runs.
#[derive(Default)]
pub struct Destinations {
    writing: Mutex<BTreeMap<String, Destination>>,
    published: std::sync::RwLock<Arc<BTreeMap<String, Destination>>>,
}

impl Destinations {
    /// The destinations, loaded.
    pub fn new(map: BTreeMap<String, Destination>) -> Destinations {
        Destinations { published: std::sync::RwLock::new(Arc::new(map.clone())), writing: Mutex::new(map) }
    }
}

/// The destinations locked for a change; a change is published when the guard is dropped.
pub struct DestinationsGuard<'a> {
    map: std::sync::MutexGuard<'a, BTreeMap<String, Destination>>,
    published: &'a std::sync::RwLock<Arc<BTreeMap<String, Destination>>>,
    changed: bool,
}

impl std::ops::Deref for DestinationsGuard<'_> {
    type Target = BTreeMap<String, Destination>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for DestinationsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.changed = true;
        &mut self.map
    }
}

impl Drop for DestinationsGuard<'_> {
    fn drop(&mut self) {
        if self.changed {
            *self.published.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(self.map.clone());
        }
    }
}

/// The client id of a rule's in-process session (unique per start of the rule, so a replaced
/// rule's old session never touches the new one's subscriptions).
pub fn client_id(rule: &str, generation: u64) -> String {
    format!("$ferrite/rules/{rule}/{generation}")
}

/// Subscribes a rule's client: its FROM filter and its Basic Ingest topic.
pub fn subscribe(client: &InternalClient, rule: &CompiledRule) {
    if let Some(f) = &rule.topic_filter
        && let Err(e) = client.subscribe(f, mqtt::QoS::AtLeastOnce)
    {
        tracing::error!(rule = %rule.name, filter = %f, error = %e, "rule cannot subscribe to its topic filter");
    }
    let ingest = format!("{}{}/#", broker::BASIC_INGEST_PREFIX, rule.name);
    if let Err(e) = client.subscribe(&ingest, mqtt::QoS::AtLeastOnce) {
        tracing::error!(rule = %rule.name, error = %e, "rule cannot subscribe to its Basic Ingest topic");
    }
    client.receive_basic_ingest();
}

/// A rule's task: drains its client until aborted or `stopped` (set when the rule is disabled,
/// replaced or deleted: from then on nothing it still receives is handled).
pub async fn run(engine: Arc<Engine>, rule: Arc<CompiledRule>, client: InternalClient, stopped: Arc<std::sync::atomic::AtomicBool>) {
    let inflight = Arc::new(Semaphore::new(engine.config.max_inflight_actions_per_rule.max(1)));
    let publisher: Arc<str> = Arc::from(client.client_id());
    let mut handled: u32 = 0;
    loop {
        let d = client.recv().await;
        if stopped.load(Ordering::Acquire) {
            return;
        }
        handle(&engine, &rule, &publisher, d.msg, &inflight).await;
        // A rule with a backlog never waits in recv(): let other tasks run now and then.
        handled = handled.wrapping_add(1);
        if handled.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
    }
}

/// Evaluates one message and runs (or schedules) the rule's actions.
pub async fn handle(engine: &Arc<Engine>, rule: &Arc<CompiledRule>, publisher: &Arc<str>, msg: Arc<broker::Message>, inflight: &Arc<Semaphore>) {
    RulesMetrics::inc(&engine.metrics.messages);
    let host = MessageHost::new(engine.clone(), msg);
    let message = iotsql::Message::new(&host.msg.payload);
    let evaluation = match rule.query.evaluate_message(&message, &host) {
        Ok(Some(e)) => e,
        Ok(None) => return,
        Err(e) => {
            RulesMetrics::inc(&engine.metrics.evaluation_errors);
            tracing::debug!(rule = %rule.name, topic = %host.topic(), error = %e, "rule evaluation failed");
            return;
        }
    };
    RulesMetrics::inc(&engine.metrics.matched);
    if rule.actions.is_empty() {
        return;
    }
    let job = crate::actions::Job { rule: rule.clone(), host, message, evaluation, publisher: publisher.clone() };
    if !rule.has_external_actions() {
        job.run().await;
        return;
    }
    match inflight.clone().try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                job.run().await;
                drop(permit);
            });
        }
        Err(_) => {
            RulesMetrics::inc(&engine.metrics.actions_dropped);
            tracing::debug!(rule = %rule.name, "too many actions in flight: message dropped");
        }
    }
}
