//! The AWS IoT thing registry: things, thing types, static thing groups (a hierarchy), billing
//! groups, tags, thing principals, the event configuration and the registry events.
//!
//! The registry is a replica of the state store's `registry` domain: the small kinds (types,
//! groups, billing groups, the event configuration) in memory, things read on demand behind a
//! bounded cache and found by index terms (type, group, billing group, principal, attribute).
//! An operation computes its changes from what it read, commits them with expectations (the
//! revisions it read), and only then applies them and hands its events to the [`EventSink`].
//! Writes to one thing do not take the domain's writer lock (their expectations cover what they
//! read), so concurrent ones share a group commit. A successful return means committed. No
//! HTTP or AWS JSON wire shapes here: the `api` crate maps requests onto this.

mod billing;
mod error;
mod events;
mod groups;
mod model;
mod principals;
mod state;
mod tags;
mod things;
mod types;
pub mod validate;

pub use billing::NewBillingGroup;
pub use error::{RegistryError, Result};
pub use events::{Event, EventSink, NoEvents};
pub use groups::{MAX_CHILDREN, MAX_DEPTH, MAX_GROUPS_PER_THING};
pub use model::*;
/// The store kinds of things and thing groups (their change keys are the names).
pub use state::{THING as THING_KIND, THING_GROUP as THING_GROUP_KIND};
pub use types::ThingTypeUpdate;

use state::{Change, State, THING};
use std::sync::Arc;
use std::time::Duration;
use store::Documents;
use store::replica::{ReadGuard, Replica, WriteGuard};
use store::state::{Terms, Write};

/// The registry's writer (its replica's, caught up).
pub(crate) type Writer<'a> = WriteGuard<'a, State>;

/// Settings the registry needs.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// ARNs are `arn:aws:iot:{region}:{account_id}:...`.
    pub region: String,
    pub account_id: String,
    /// How long after DeprecateThingType a thing type may be deleted (AWS: five minutes).
    pub thing_type_delete_delay: Duration,
}

/// The kinds of registry resources that have ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Thing,
    ThingType,
    ThingGroup,
    BillingGroup,
}

impl ResourceKind {
    /// The resource type in the ARN (`thing`, `thingtype`, `thinggroup`, `billinggroup`).
    pub fn arn_type(self) -> &'static str {
        match self {
            ResourceKind::Thing => "thing",
            ResourceKind::ThingType => "thingtype",
            ResourceKind::ThingGroup => "thinggroup",
            ResourceKind::BillingGroup => "billinggroup",
        }
    }
}

/// The registry.
pub struct Registry {
    replica: Arc<Replica<State>>,
    config: RegistryConfig,
    sink: Arc<dyn EventSink>,
    opened_ms: i64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("config", &self.config).finish_non_exhaustive()
    }
}

pub(crate) use awscore::clock::now_ms;
pub(crate) use awscore::id::uuid;

impl Registry {
    /// Loads the registry: a replica of the state store's `registry` domain. Blocking.
    pub fn open(docs: Arc<Documents>, config: RegistryConfig, sink: Arc<dyn EventSink>) -> Result<Registry> {
        index_stored_things(docs.state())?;
        let replica = Replica::<State>::open(docs.state().clone()).map_err(store::StoreError::from)?;
        {
            let state = replica.read();
            tracing::info!(
                thing_types = state.types.len(),
                thing_groups = state.groups.len(),
                billing_groups = state.billing.len(),
                "registry loaded"
            );
        }
        Ok(Registry { replica, config, sink, opened_ms: now_ms() })
    }

    /// The replica underneath: [`Replica::follow`] it to see other nodes' changes,
    /// [`Replica::subscribe`] to react to changes.
    pub fn replica(&self) -> &Arc<Replica<State>> {
        &self.replica
    }

    /// The registry as of now, for reading.
    fn read(&self) -> ReadGuard<'_, State> {
        self.replica.read()
    }

    /// This process's writer, caught up with every node's commits.
    fn lock(&self) -> Result<Writer<'_>> {
        Ok(self.replica.write().map_err(store::StoreError::from)?)
    }

    /// Commits the changes with the revisions the writer saw (a conflict: another node changed
    /// them first; the caller runs again), applies them, then publishes the events whose type
    /// is enabled.
    fn commit(&self, st: &mut Writer<'_>, changes: Vec<Change>, events: Vec<events::Event>) -> Result<()> {
        let writes = changes.iter().map(|c| c.write(|kind, key| st.seen(kind, key))).collect::<Result<Vec<_>>>()?;
        st.commit(writes).map_err(store::StoreError::from)?;
        self.publish(&st, events);
        Ok(())
    }

    /// Commits thing changes (each with the expectation of the revision it was computed from)
    /// and `checks` on the in-memory documents they depend on, without the writer lock; then
    /// publishes the events. See [`Registry::checks`].
    fn commit_things(&self, changes: Vec<Change>, checks: Vec<Write>, events: Vec<events::Event>) -> Result<()> {
        let mut writes = changes.iter().map(|c| c.write(|_, _| store::state::Expect::Any)).collect::<Result<Vec<_>>>()?;
        writes.extend(checks);
        self.replica.commit(writes).map_err(store::StoreError::from)?;
        self.publish(&self.read(), events);
        Ok(())
    }

    /// Checks that in-memory documents (`kind`, `key`) are still as `st` has them.
    fn checks(st: &ReadGuard<'_, State>, docs: &[(&str, &str)]) -> Vec<Write> {
        docs.iter().map(|(kind, key)| Write::check(kind, *key, st.seen(kind, key))).collect()
    }

    fn publish(&self, st: &State, events: Vec<events::Event>) {
        for e in events {
            if st.events.as_ref().is_some_and(|c| c.is_enabled(e.event_type)) {
                self.sink.publish(e);
            }
        }
    }

    /// A thing and its revision, from the cache or the store (`None`: there is none).
    pub(crate) fn load_thing(&self, name: &str) -> Result<Option<(Arc<Thing>, u64)>> {
        let (thing, rev) = self.replica.read_through(name, |st| &st.things, |store| {
            Ok::<_, RegistryError>(match store.get_blocking(THING, name).map_err(store::StoreError::from)? {
                Some(doc) => (Some(Arc::new(state::parse_thing(name, &doc.value)?)), doc.rev),
                None => (None, 0),
            })
        })?;
        Ok(thing.map(|t| (t, rev)))
    }

    /// Up to `limit` things after `after` (by name) having a term in `terms` (all things when
    /// `None`), read from the store.
    pub(crate) fn find_things(&self, terms: Option<&Terms>, after: Option<&str>, limit: usize) -> Result<Vec<(Thing, u64)>> {
        let store = self.replica.store();
        let docs = match terms {
            Some(t) => store.find_blocking(THING, t, after, limit),
            None => store.scan_blocking(THING, after, limit),
        }
        .map_err(store::StoreError::from)?;
        docs.into_iter().map(|(key, doc)| Ok((state::parse_thing(&key, &doc.value)?, doc.rev))).collect()
    }

    /// A page of up to `limit` things after `after` having a term in `terms` (all things when `None`), mapped by `keep`
    /// (`None`: skip), read from the store `batch` things at a time until the page is full.
    pub(crate) fn find_page<T: awscore::page::Keyed>(&self, terms: Option<&Terms>, after: Option<&str>, limit: usize, batch: usize, mut keep: impl FnMut(Thing) -> Option<T>) -> Result<Page<T>> {
        let mut items = Vec::new();
        let mut after = after.map(str::to_string);
        loop {
            let found = self.find_things(terms, after.as_deref(), batch)?;
            let done = found.len() < batch;
            after = found.last().map(|(t, _)| t.name.clone());
            items.extend(found.into_iter().filter_map(|(t, _)| keep(t)));
            if done || items.len() > limit {
                return Ok(Page::take(items.into_iter(), limit));
            }
        }
    }

    /// The configured region.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// The configured account id.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// The ARN of a registry resource.
    pub fn arn(&self, kind: ResourceKind, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{}/{name}", self.config.region, self.config.account_id, kind.arn_type())
    }

    /// Reads an ARN of this account and region: its kind and resource name. `None` when it is
    /// not one (another account or region, another service, or not an ARN at all).
    pub fn parse_arn(&self, arn: &str) -> Option<(ResourceKind, String)> {
        let rest = arn.strip_prefix("arn:aws:iot:")?;
        let rest = rest.strip_prefix(self.config.region.as_str())?.strip_prefix(':')?;
        let rest = rest.strip_prefix(self.config.account_id.as_str())?.strip_prefix(':')?;
        let (ty, name) = rest.split_once('/')?;
        let kind =
            [ResourceKind::Thing, ResourceKind::ThingType, ResourceKind::ThingGroup, ResourceKind::BillingGroup].into_iter().find(|k| k.arn_type() == ty)?;
        (!name.is_empty()).then(|| (kind, name.to_string()))
    }
}

/// Gives things stored before things had index terms (a data directory of an earlier
/// Ferrite) their terms, once per store: a forward migration, marked done in the store.
fn index_stored_things(store: &store::state::StateStore) -> Result<()> {
    let terms = |key: &str, value: &str| match state::parse_thing(key, value) {
        Ok(t) => Some(state::thing_terms(&t)),
        Err(e) => {
            tracing::error!(thing = key, error = %e, "stored thing unreadable; not indexed");
            None
        }
    };
    let indexed = store.index_once("registry.thing-terms.1", THING, terms).map_err(store::StoreError::from)?;
    if indexed > 0 {
        tracing::info!(things = indexed, "indexed the things of an earlier data directory");
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A registry over a fresh database file, recording the events it publishes.

    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    pub struct Recorder(pub Mutex<Vec<Event>>);

    impl EventSink for Recorder {
        fn publish(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Recorder {
        pub fn topics(&self) -> Vec<String> {
            self.0.lock().unwrap().drain(..).map(|e| e.topic).collect()
        }
    }

    static N: AtomicUsize = AtomicUsize::new(0);

    pub struct Fixture {
        pub dir: std::path::PathBuf,
        pub events: Arc<Recorder>,
        pub registry: Registry,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub fn config(delay_secs: u64) -> RegistryConfig {
        RegistryConfig { region: "us-east-1".into(), account_id: "123456789012".into(), thing_type_delete_delay: Duration::from_secs(delay_secs) }
    }

    /// A registry with the given thing type delete delay.
    pub fn fixture(delay_secs: u64) -> Fixture {
        let dir = std::env::temp_dir().join(format!("ferrite-registry-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let docs = Arc::new(Documents::open(&dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
        let events = Arc::new(Recorder::default());
        let registry = Registry::open(docs, config(delay_secs), events.clone()).unwrap();
        Fixture { dir, events, registry }
    }

    impl Fixture {
        /// The same database opened again (a restart).
        pub fn reopen(&self) -> Registry {
            let docs = Arc::new(Documents::open(&self.dir.join("ferrite.db"), store::SyncMode::Off).unwrap());
            Registry::open(docs, config(0), self.events.clone()).unwrap()
        }

        pub fn thing(&self, name: &str) -> Thing {
            self.registry.create_thing(NewThing { name: name.into(), ..Default::default() }).unwrap()
        }

        pub fn group(&self, name: &str, parent: Option<&str>) -> ThingGroup {
            let g = NewThingGroup { name: name.into(), parent: parent.map(str::to_string), ..Default::default() };
            self.registry.create_thing_group(g).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::fixture;
    use super::*;

    #[test]
    fn arns_round_trip_for_this_account_and_region_only() {
        let f = fixture(0);
        let r = &f.registry;
        let arn = r.arn(ResourceKind::ThingGroup, "g1");
        assert_eq!(arn, "arn:aws:iot:us-east-1:123456789012:thinggroup/g1");
        assert_eq!(r.parse_arn(&arn), Some((ResourceKind::ThingGroup, "g1".into())));
        assert_eq!(r.parse_arn("arn:aws:iot:eu-west-1:123456789012:thinggroup/g1"), None);
        assert_eq!(r.parse_arn("arn:aws:iot:us-east-1:123456789012:rule/r"), None);
        assert_eq!(r.parse_arn("arn:aws:iot:us-east-1:123456789012:thing/"), None);
        assert_eq!(r.parse_arn("not an arn"), None);
    }

    #[test]
    fn event_configurations_default_off_and_update_by_type() {
        let f = fixture(0);
        let r = &f.registry;
        assert!(r.event_configurations().enabled.values().all(|v| !v));
        assert_eq!(r.event_configurations().enabled.len(), 11);
        r.update_event_configurations(&[("THING".to_string(), true)].into_iter().collect()).unwrap();
        assert!(r.event_enabled("THING"));
        assert!(!r.event_enabled("THING_GROUP"));
        let bad = r.update_event_configurations(&[("NOPE".to_string(), true)].into_iter().collect());
        assert!(matches!(bad, Err(RegistryError::Invalid(m)) if m.contains("NOPE")));
        assert!(f.reopen().event_enabled("THING"));
    }

    #[test]
    fn events_are_published_only_for_enabled_types() {
        let f = fixture(0);
        f.thing("quiet");
        assert!(f.events.topics().is_empty());
        f.registry.update_event_configurations(&[("THING".to_string(), true)].into_iter().collect()).unwrap();
        f.thing("loud");
        assert_eq!(f.events.topics(), vec!["$aws/events/thing/loud/created".to_string()]);
    }
}
