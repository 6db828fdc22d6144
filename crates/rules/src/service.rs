//! [`Rules`]: the operations of the topic rule API and of topic rule destinations, over the
//! state store (domain `rules`) and the running engine. Operations are synchronous (they commit
//! before returning) and may be called from any thread; rule tasks and confirmation requests
//! are spawned on the runtime the service was started in. Rules and destinations committed by
//! another node arrive through the change feed ([`Rules::follow`]): their workers start, restart
//! and stop here the same way.

use awscore::page::Page;
use crate::destinations::{Destination, DestinationStatus, confirmation_request_url};
use crate::engine::{self, Engine, RulesMetrics};
use crate::model::{self, CompiledRule};
use crate::{RulesConfig, RulesError, now_ms};
use broker::Broker;
use functions::Functions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use store::Documents;
use store::state::{Expect, Write};

const DOMAIN: &str = "rules";
const RULE_KIND: &str = "topic-rule";
const DEST_KIND: &str = "rule-destination";

/// A rule as stored: the payload it was given and when it was created.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRule {
    name: String,
    payload: Value,
    created_ms: i64,
    #[serde(default)]
    tags: Vec<(String, String)>,
}

awscore::keyed!(RuleView => name, Destination => arn);

/// A rule as GetTopicRule and ListTopicRules show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleView {
    pub name: String,
    pub arn: String,
    pub sql: String,
    pub description: Option<String>,
    pub created_ms: i64,
    pub actions: Value,
    pub error_action: Option<Value>,
    pub disabled: bool,
    pub sql_version: String,
    pub topic_pattern: Option<String>,
}

/// A running rule's task; stopped (at once) and aborted when dropped.
struct Worker {
    task: tokio::task::JoinHandle<()>,
    stopped: Arc<AtomicBool>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        self.task.abort();
    }
}

struct Entry {
    stored: StoredRule,
    compiled: Arc<CompiledRule>,
    _worker: Option<Worker>,
}

/// The rules service.
pub struct Rules {
    docs: Arc<Documents>,
    engine: Arc<Engine>,
    rules: Mutex<BTreeMap<String, Entry>>,
    handle: tokio::runtime::Handle,
    /// The last change of the domain applied by [`Rules::follow`].
    cursor: Mutex<u64>,
}

/// Numbers the starts of rules, process-wide, so every rule client id is unique.
static GENERATION: AtomicU64 = AtomicU64::new(1);

fn random_token() -> String {
    use base64::Engine as _;
    let mut b = [0u8; 48];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn corrupt(kind: &'static str, key: &str, e: impl std::fmt::Display) -> RulesError {
    RulesError::Corrupt { kind, key: key.to_string(), message: e.to_string() }
}

impl Rules {
    /// Loads the rules and destinations and starts every enabled rule. Call inside the Tokio
    /// runtime.
    pub fn start(docs: Arc<Documents>, broker: Broker, functions: Arc<Functions>, shadows: Option<Arc<dyn crate::engine::ShadowReader>>, config: RulesConfig) -> Result<Arc<Rules>, RulesError> {
        // The head first: what commits while loading is applied again from the feed.
        let cursor = docs.state().head_blocking(DOMAIN).map_err(store::StoreError::from)?;
        let mut destinations = BTreeMap::new();
        for (k, v) in docs.load(DEST_KIND)? {
            let d: Destination = serde_json::from_str(&v).map_err(|e| corrupt(DEST_KIND, &k, e))?;
            destinations.insert(d.arn.clone(), d);
        }
        let enable_url_base = Mutex::new(config.enable_url_base.clone());
        let engine = Arc::new(Engine { broker, functions, shadows, config, destinations: crate::engine::Destinations::new(destinations), metrics: RulesMetrics::default(), enable_url_base });
        let rules = Arc::new(Rules {
            docs: docs.clone(),
            engine,
            rules: Mutex::new(BTreeMap::new()),
            handle: tokio::runtime::Handle::current(),
            cursor: Mutex::new(cursor),
        });
        let mut map = BTreeMap::new();
        for (k, v) in docs.load(RULE_KIND)? {
            let stored: StoredRule = serde_json::from_str(&v).map_err(|e| corrupt(RULE_KIND, &k, e))?;
            match model::compile(&stored.name, &stored.payload) {
                Ok(c) => {
                    let c = Arc::new(c);
                    let worker = rules.start_worker(&c);
                    map.insert(stored.name.clone(), Entry { stored, compiled: c, _worker: worker });
                }
                Err(e) => tracing::error!(rule = %k, error = %e, "stored rule no longer compiles; skipped"),
            }
        }
        tracing::info!(rules = map.len(), "rules loaded");
        *rules.lock() = map;
        Ok(rules)
    }

    /// The compiled rule running under a name (a restart of its worker compiles it anew).
    #[cfg(test)]
    pub(crate) fn running(&self, name: &str) -> Option<Arc<CompiledRule>> {
        self.lock().get(name).map(|e| e.compiled.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), RulesError> {
        self.docs.state().commit_blocking(DOMAIN, writes).map_err(store::StoreError::from)?;
        Ok(())
    }

    /// Applies the rules and destinations other nodes commit, as they commit them. Call inside
    /// the Tokio runtime.
    pub fn follow(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let mut watch = self.docs.state().watch(DOMAIN);
        self.handle.spawn(async move {
            while watch.changed().await.is_ok() {
                let Some(rules) = me.upgrade() else { return };
                match tokio::task::spawn_blocking(move || rules.catch_up()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "rules could not catch up with the store; retrying on the next change"),
                    Err(e) => tracing::error!(error = %e, "rules catch-up failed"),
                }
            }
        });
    }

    /// Reconciles the running rules and the destinations with the changes after the cursor.
    fn catch_up(&self) -> Result<(), RulesError> {
        let mut cursor = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let page = self.docs.state().changes_blocking(DOMAIN, *cursor, 1000).map_err(store::StoreError::from)?;
            if page.gap {
                // Too far behind to replay: take every rule and destination as now stored.
                tracing::warn!(cursor = *cursor, head = page.head, "rules fell behind the kept change log: reloading");
                for (key, _) in self.docs.state().scan_all_blocking(RULE_KIND).map_err(store::StoreError::from)? {
                    self.apply_rule(&key)?;
                }
                for (key, _) in self.docs.state().scan_all_blocking(DEST_KIND).map_err(store::StoreError::from)? {
                    self.apply_destination(&key)?;
                }
                *cursor = page.head;
                continue;
            }
            // Each changed document as it is now (read under the lock its writers hold while they
            // commit), not as the log has it: a change this node made after the logged one is
            // already in memory and must not be undone, even briefly.
            let mut changed: Vec<(&str, &str)> = page.changes.iter().map(|c| (c.kind.as_str(), c.key.as_str())).collect();
            changed.sort_unstable();
            changed.dedup();
            for (kind, key) in changed {
                match kind {
                    RULE_KIND => self.apply_rule(key)?,
                    DEST_KIND => self.apply_destination(key)?,
                    _ => {}
                }
            }
            *cursor = page.next;
            if page.next >= page.head {
                return Ok(());
            }
        }
    }

    /// A rule as stored now (absent: deleted): its worker started, restarted or stopped unless
    /// it already runs as stored.
    fn apply_rule(&self, name: &str) -> Result<(), RulesError> {
        let mut rules = self.lock();
        let Some(doc) = self.docs.state().get_blocking(RULE_KIND, name).map_err(store::StoreError::from)? else {
            rules.remove(name);
            return Ok(());
        };
        let value = doc.value.as_str();
        if rules.get(name).and_then(|e| serde_json::to_string(&e.stored).ok()).as_deref() == Some(value) {
            return Ok(());
        }
        let stored: StoredRule = match serde_json::from_str(value) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(rule = %name, error = %e, "committed rule unreadable; skipped");
                return Ok(());
            }
        };
        // A change of tags alone keeps the running worker (and its place in the topic).
        if let Some(e) = rules.get_mut(name)
            && e.stored.payload == stored.payload
            && e.stored.created_ms == stored.created_ms
        {
            e.stored = stored;
            return Ok(());
        }
        match model::compile(&stored.name, &stored.payload) {
            Ok(c) => {
                let c = Arc::new(c);
                rules.remove(name);
                let worker = self.start_worker(&c);
                rules.insert(name.to_string(), Entry { stored, compiled: c, _worker: worker });
            }
            Err(e) => tracing::error!(rule = %name, error = %e, "committed rule does not compile; skipped"),
        }
        Ok(())
    }

    /// A destination as stored now (absent: deleted).
    fn apply_destination(&self, id: &str) -> Result<(), RulesError> {
        let mut dests = self.engine.destinations();
        let value = self.docs.state().get_blocking(DEST_KIND, id).map_err(store::StoreError::from)?.map(|d| d.value);
        match value.as_deref().map(serde_json::from_str::<Destination>) {
            Some(Ok(d)) => {
                dests.insert(d.arn.clone(), d);
            }
            Some(Err(e)) => tracing::error!(destination = %id, error = %e, "committed destination unreadable; skipped"),
            None => dests.retain(|_, d| d.id() != id),
        }
        Ok(())
    }

    /// Sets the base of confirmation messages' `enableUrl` (the API's address, once bound).
    pub fn set_enable_url_base(&self, base: &str) {
        *self.engine.enable_url_base.lock().unwrap_or_else(|e| e.into_inner()) = base.to_string();
    }

    /// The engine (metrics, configuration).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// `arn:aws:iot:{region}:{account}:rule/{name}`.
    pub fn rule_arn(&self, name: &str) -> String {
        let c = &self.engine.config;
        format!("arn:aws:iot:{}:{}:rule/{name}", c.region, c.account_id)
    }

    fn not_found(&self, op: &str, name: &str) -> RulesError {
        RulesError::NotFound(format!("User is not authorized to perform: iot:{op} on resource: {}", self.rule_arn(name)))
    }

    fn start_worker(&self, rule: &Arc<CompiledRule>) -> Option<Worker> {
        if rule.disabled {
            return None;
        }
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let client = self.engine.broker.internal_client(&engine::client_id(&rule.name, generation));
        engine::subscribe(&client, rule);
        let stopped = Arc::new(AtomicBool::new(false));
        let task = self.handle.spawn(engine::run(self.engine.clone(), rule.clone(), client, stopped.clone()));
        Some(Worker { task, stopped })
    }

    /// Stores the payload with its effective SQL version.
    fn normalized(payload: &Value, rule: &CompiledRule) -> Value {
        let mut p = payload.clone();
        if let Value::Object(m) = &mut p {
            m.insert("awsIotSqlVersion".into(), Value::String(rule.version.as_str().into()));
            m.insert("ruleDisabled".into(), Value::Bool(rule.disabled));
            m.retain(|_, v| !v.is_null());
        }
        p
    }

    /// Stores a rule, expecting it absent (a new rule) or present.
    fn put(&self, stored: &StoredRule, expect: Expect) -> Result<(), RulesError> {
        let value = serde_json::to_string(stored).map_err(|e| RulesError::Invalid(e.to_string()))?;
        self.commit(vec![Write::put(RULE_KIND, stored.name.clone(), value).expect(expect)])
    }

    /// AWS requires HTTPS for http actions and their destinations (unless
    /// `rules.allow_plain_http`, for local development).
    fn check_https(&self, url: &str, what: &str) -> Result<(), RulesError> {
        if url.starts_with("https://") || self.engine.config.allow_plain_http {
            return Ok(());
        }
        Err(RulesError::Invalid(format!("{what} {url:?} must be an https:// URL (rules.allow_plain_http allows http://)")))
    }

    fn check_http_actions(&self, rule: &model::CompiledRule) -> Result<(), RulesError> {
        for a in rule.actions.iter().chain(rule.error_action.as_ref()) {
            if let model::Action::Http { url, confirmation_url, .. } = a {
                self.check_https(&url.source, "url")?;
                if let Some(c) = confirmation_url {
                    self.check_https(&c.source, "confirmationUrl")?;
                }
            }
        }
        Ok(())
    }

    /// CreateTopicRule. An http action with fixed URLs gets its destination created (and its
    /// confirmation sent) when none exists for its confirmation URL.
    pub fn create_rule(&self, name: &str, payload: &Value, tags: Vec<(String, String)>) -> Result<(), RulesError> {
        model::validate_rule_name(name)?;
        awscore::tags::initial(&tags)?;
        let compiled = Arc::new(model::compile(name, payload)?);
        self.check_http_actions(&compiled)?;
        let mut rules = self.lock();
        if rules.contains_key(name) {
            return Err(RulesError::AlreadyExists { message: format!("Rule {name} already exists."), arn: self.rule_arn(name) });
        }
        self.ensure_destinations(&compiled)?;
        let stored = StoredRule { name: name.to_string(), payload: Self::normalized(payload, &compiled), created_ms: now_ms(), tags };
        match self.put(&stored, Expect::Absent) {
            // Created on another node meanwhile.
            Err(RulesError::Store(store::StoreError::State(e))) if e.is_conflict() => {
                return Err(RulesError::AlreadyExists { message: format!("Rule {name} already exists."), arn: self.rule_arn(name) });
            }
            r => r?,
        }
        let worker = self.start_worker(&compiled);
        rules.insert(name.to_string(), Entry { stored, compiled, _worker: worker });
        Ok(())
    }

    /// ReplaceTopicRule: a new payload for an existing rule (its creation date is kept).
    pub fn replace_rule(&self, name: &str, payload: &Value) -> Result<(), RulesError> {
        model::validate_rule_name(name)?;
        let compiled = Arc::new(model::compile(name, payload)?);
        self.check_http_actions(&compiled)?;
        let mut rules = self.lock();
        let old = rules.get(name).ok_or_else(|| self.not_found("ReplaceTopicRule", name))?;
        self.ensure_destinations(&compiled)?;
        let stored = StoredRule { payload: Self::normalized(payload, &compiled), ..old.stored.clone() };
        self.put(&stored, Expect::Present)?;
        rules.remove(name);
        let worker = self.start_worker(&compiled);
        rules.insert(name.to_string(), Entry { stored, compiled, _worker: worker });
        Ok(())
    }

    /// DeleteTopicRule.
    pub fn delete_rule(&self, name: &str) -> Result<(), RulesError> {
        model::validate_rule_name(name)?;
        let mut rules = self.lock();
        if !rules.contains_key(name) {
            return Err(self.not_found("DeleteTopicRule", name));
        }
        self.commit(vec![Write::delete(RULE_KIND, name)])?;
        rules.remove(name);
        Ok(())
    }

    /// EnableTopicRule / DisableTopicRule.
    pub fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), RulesError> {
        model::validate_rule_name(name)?;
        let mut rules = self.lock();
        let op = if disabled { "DisableTopicRule" } else { "EnableTopicRule" };
        let old = rules.get(name).ok_or_else(|| self.not_found(op, name))?;
        if old.compiled.disabled == disabled {
            return Ok(());
        }
        let mut stored = old.stored.clone();
        if let Value::Object(m) = &mut stored.payload {
            m.insert("ruleDisabled".into(), Value::Bool(disabled));
        }
        let compiled = Arc::new(CompiledRule { disabled, ..(*old.compiled).clone() });
        self.put(&stored, Expect::Present)?;
        rules.remove(name);
        let worker = self.start_worker(&compiled);
        rules.insert(name.to_string(), Entry { stored, compiled, _worker: worker });
        Ok(())
    }

    fn view(&self, e: &Entry) -> RuleView {
        let p = &e.stored.payload;
        let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        RuleView {
            name: e.stored.name.clone(),
            arn: self.rule_arn(&e.stored.name),
            sql: s("sql").unwrap_or_default(),
            description: s("description"),
            created_ms: e.stored.created_ms,
            actions: p.get("actions").cloned().unwrap_or(Value::Array(Vec::new())),
            error_action: p.get("errorAction").cloned(),
            disabled: e.compiled.disabled,
            sql_version: e.compiled.version.as_str().to_string(),
            topic_pattern: e.compiled.topic_filter.clone(),
        }
    }

    /// GetTopicRule.
    pub fn get_rule(&self, name: &str) -> Result<RuleView, RulesError> {
        model::validate_rule_name(name)?;
        let rules = self.lock();
        rules.get(name).map(|e| self.view(e)).ok_or_else(|| self.not_found("GetTopicRule", name))
    }

    /// ListTopicRules: rules after `after` (by name), at most `limit`; `topic` keeps rules whose
    /// topic pattern is that text or matches it as a topic; `disabled` keeps rules in that state.
    /// Returns the page and whether more follow.
    pub fn list_rules(&self, topic: Option<&str>, disabled: Option<bool>, after: Option<&str>, limit: usize) -> Page<RuleView> {
        let rules = self.lock();
        let matching = rules
            .values()
            .filter(|e| after.is_none_or(|a| e.stored.name.as_str() > a))
            .filter(|e| disabled.is_none_or(|d| e.compiled.disabled == d))
            .filter(|e| {
                topic.is_none_or(|t| {
                    e.compiled.topic_filter.as_deref().is_some_and(|f| f == t || (mqtt::topic::valid_topic_name(t) && mqtt::topic::matches(f, t)))
                })
            })
            .map(|e| self.view(e));
        Page::take(matching, limit)
    }

    /// The rule an ARN (`arn:aws:iot:REGION:ACCOUNT:rule/NAME`) names.
    fn rule_of_arn<'a>(&self, rules: &'a BTreeMap<String, Entry>, arn: &str) -> Result<&'a Entry, RulesError> {
        let name = arn.strip_prefix(&self.rule_arn("")).filter(|n| !n.is_empty());
        name.and_then(|n| rules.get(n)).ok_or_else(|| RulesError::NoSuchResource(format!("The resource {arn} cannot be found.")))
    }

    /// ListTagsForResource of a rule.
    pub fn list_tags(&self, arn: &str) -> Result<awscore::tags::Tags, RulesError> {
        Ok(self.rule_of_arn(&self.lock(), arn)?.stored.tags.iter().cloned().collect())
    }

    /// TagResource / UntagResource of a rule: its tags become `change(tags)`.
    fn retag(&self, arn: &str, change: impl FnOnce(&awscore::tags::Tags) -> Result<awscore::tags::Tags, awscore::tags::TagError>) -> Result<(), RulesError> {
        let mut rules = self.lock();
        let e = self.rule_of_arn(&rules, arn)?;
        let tags = change(&e.stored.tags.iter().cloned().collect())?;
        let stored = StoredRule { tags: tags.into_iter().collect(), ..e.stored.clone() };
        self.put(&stored, Expect::Present)?;
        if let Some(e) = rules.get_mut(&stored.name) {
            e.stored = stored;
        }
        Ok(())
    }

    /// TagResource of a rule.
    pub fn tag_resource(&self, arn: &str, add: &[(String, String)]) -> Result<(), RulesError> {
        self.retag(arn, |t| awscore::tags::tag(t, add, arn))
    }

    /// UntagResource of a rule.
    pub fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), RulesError> {
        self.retag(arn, |t| awscore::tags::untag(t, keys))
    }

    // ---- topic rule destinations ----

    fn destination_arn(&self, id: &str) -> String {
        let c = &self.engine.config;
        format!("arn:aws:iot:{}:{}:ruledestination/http/{id}", c.region, c.account_id)
    }

    fn put_destination(&self, d: &Destination) -> Result<(), RulesError> {
        let value = serde_json::to_string(d).map_err(|e| RulesError::Invalid(e.to_string()))?;
        self.commit(vec![Write::put(DEST_KIND, d.id().to_string(), value)])
    }

    /// Creates destinations an http action with fixed URLs needs (the caller holds the rules lock).
    fn ensure_destinations(&self, rule: &CompiledRule) -> Result<(), RulesError> {
        for a in rule.actions.iter().chain(rule.error_action.iter()) {
            let Some(url) = a.fixed_destination() else { continue };
            let exists = self.engine.destinations().values().any(|d| d.confirmation_url == url);
            if !exists {
                self.create_destination(url)?;
            }
        }
        Ok(())
    }

    /// CreateTopicRuleDestination for an HTTP URL: stored `IN_PROGRESS`, then the confirmation
    /// request is sent.
    pub fn create_destination(&self, confirmation_url: &str) -> Result<Destination, RulesError> {
        functions::http::parse_url(confirmation_url)
            .map_err(|_| RulesError::Invalid(format!("confirmationUrl {confirmation_url:?} must be an http:// or https:// URL")))?;
        self.check_https(confirmation_url, "confirmationUrl")?;
        if confirmation_url.contains("${") {
            return Err(RulesError::Invalid("confirmationUrl must not hold a substitution template".into()));
        }
        let now = now_ms();
        let d = {
            let mut dests = self.engine.destinations();
            if let Some(existing) = dests.values().find(|d| d.confirmation_url == confirmation_url) {
                return Err(RulesError::AlreadyExists {
                    message: format!("A topic rule destination for {confirmation_url} already exists."),
                    arn: existing.arn.clone(),
                });
            }
            let mut d = Destination {
                arn: self.destination_arn(&crate::host::uuid()),
                confirmation_url: confirmation_url.to_string(),
                status: DestinationStatus::InProgress,
                status_reason: String::new(),
                created_ms: now,
                last_updated_ms: now,
                token: String::new(),
                token_expires_ms: 0,
            };
            d.restart_confirmation(random_token(), now);
            self.put_destination(&d)?;
            dests.insert(d.arn.clone(), d.clone());
            d
        };
        self.send_confirmation(&d);
        Ok(d)
    }

    /// POSTs the confirmation request in the background and records how it went.
    fn send_confirmation(&self, d: &Destination) {
        let engine = self.engine.clone();
        let docs = self.docs.clone();
        let (arn, token) = (d.arn.clone(), d.token.clone());
        let arn_for_log = arn.clone();
        let url = confirmation_request_url(&d.confirmation_url, &token);
        let base = engine.enable_url_base.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let enable_url = format!("{}/confirmdestination/{token}", base.trim_end_matches('/'));
        let body = serde_json::json!({"arn": arn, "confirmationToken": token, "enableUrl": enable_url, "messageType": "DestinationConfirmation"});
        self.handle.spawn(async move {
            let headers = [
                ("content-type".to_string(), "application/json".to_string()),
                ("x-amz-rules-engine-message-type".to_string(), "DestinationConfirmation".to_string()),
                ("x-amz-rules-engine-destination-arn".to_string(), arn.clone()),
            ];
            let sent = engine.functions.http().post(&url, &headers, bytes::Bytes::from(body.to_string()), engine.config.http_timeout, 16 * 1024).await;
            let now = now_ms();
            let reason = match sent {
                Ok(_) => format!(
                    "Awaiting confirmation. Confirmation message sent on {}; no response received from the endpoint.",
                    functions::iso8601_millis(now).replace("+0000", "Z")
                ),
                Err(e) => format!("Awaiting confirmation. The confirmation message could not be delivered: {e}"),
            };
            // Recorded under the destinations' lock, like every other change of a destination,
            // so that the log has the changes in the order memory had them (a confirmation
            // that came in meanwhile is not overwritten).
            let recorded = tokio::task::spawn_blocking(move || {
                let mut dests = engine.destinations();
                let Some(d) = dests.get_mut(&arn).filter(|d| d.token == token && d.status == DestinationStatus::InProgress) else { return Ok(()) };
                let mut next = d.clone();
                next.status_reason = reason;
                let value = serde_json::to_string(&next).map_err(|e| e.to_string())?;
                docs.state().commit_blocking(DOMAIN, vec![Write::put(DEST_KIND, next.id().to_string(), value)]).map_err(|e| e.to_string())?;
                *d = next;
                Ok::<(), String>(())
            })
            .await;
            if let Ok(Err(e)) = recorded {
                tracing::warn!(destination = %arn_for_log, error = %e, "destination status not stored");
            }
        });
    }

    /// ConfirmTopicRuleDestination.
    pub fn confirm_destination(&self, token: &str) -> Result<(), RulesError> {
        let mut dests = self.engine.destinations();
        let d = dests.values_mut().find(|d| d.token == token && !token.is_empty()).ok_or_else(|| RulesError::Invalid("The confirmation token is not valid.".into()))?;
        let mut next = d.clone();
        let outcome = next.confirm(now_ms());
        if next != *d {
            self.put_destination(&next)?;
            *d = next;
        }
        outcome
    }

    /// GetTopicRuleDestination.
    pub fn get_destination(&self, arn: &str) -> Result<Destination, RulesError> {
        self.engine.destinations_now().get(arn).cloned().ok_or_else(|| self.destination_not_found("GetTopicRuleDestination", arn))
    }

    fn destination_not_found(&self, op: &str, arn: &str) -> RulesError {
        RulesError::NotFound(format!("User is not authorized to perform: iot:{op} on resource: {arn}"))
    }

    /// ListTopicRuleDestinations, by ARN.
    pub fn list_destinations(&self, after: Option<&str>, limit: usize) -> Page<Destination> {
        let dests = self.engine.destinations_now();
        Page::take(dests.values().filter(|d| after.is_none_or(|a| d.arn.as_str() > a)).cloned(), limit)
    }

    /// UpdateTopicRuleDestination: ENABLED/DISABLED for a confirmed destination; IN_PROGRESS
    /// sends a new confirmation.
    pub fn update_destination(&self, arn: &str, status: &str) -> Result<(), RulesError> {
        let to = DestinationStatus::parse(status)
            .ok_or_else(|| RulesError::Invalid(format!("status must be ENABLED, DISABLED or IN_PROGRESS, not {status:?}")))?;
        let resend = {
            let mut dests = self.engine.destinations();
            let d = dests.get_mut(arn).ok_or_else(|| self.destination_not_found("UpdateTopicRuleDestination", arn))?;
            let mut next = d.clone();
            let now = now_ms();
            if to == DestinationStatus::InProgress {
                next.restart_confirmation(random_token(), now);
            } else {
                next.set_status(to, now)?;
            }
            self.put_destination(&next)?;
            *d = next.clone();
            (to == DestinationStatus::InProgress).then_some(next)
        };
        if let Some(d) = resend {
            self.send_confirmation(&d);
        }
        Ok(())
    }

    /// DeleteTopicRuleDestination.
    pub fn delete_destination(&self, arn: &str) -> Result<(), RulesError> {
        let mut dests = self.engine.destinations();
        let d = dests.get(arn).ok_or_else(|| self.destination_not_found("DeleteTopicRuleDestination", arn))?;
        self.commit(vec![Write::delete(DEST_KIND, d.id().to_string())])?;
        dests.remove(arn);
        Ok(())
    }
}
