//! The registry's replica: the small kinds in memory (thing types, thing groups with their
//! hierarchy, billing groups, the event configuration), things behind a bounded cache (read
//! from the store on demand and found there by their index terms), and the changes that are
//! committed to the store and then applied here.

use crate::error::{RegistryError, Result};
use crate::model::{BillingGroup, EventConfig, Thing, ThingGroup, ThingType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use store::cache::Cache;
use store::replica::Replicated;
use store::state::{Expect, Write};

pub const THING: &str = "thing";
pub(crate) const THING_TYPE: &str = "thing-type";
pub const THING_GROUP: &str = "thing-group";
pub(crate) const BILLING_GROUP: &str = "billing-group";
pub(crate) const EVENT_CONFIG: &str = "registry-events";
/// A principal's attachment marker (see `attach_thing_principal`); read on demand, never held.
pub(crate) const PRINCIPAL: &str = "thing-principal";
const EVENT_CONFIG_KEY: &str = "configuration";

/// A name → names index.
pub(crate) type Index = BTreeMap<String, BTreeSet<String>>;

fn index_add(index: &mut Index, key: &str, value: &str) {
    index.entry(key.to_string()).or_default().insert(value.to_string());
}

fn index_remove(index: &mut Index, key: &str, value: &str) {
    if let Some(set) = index.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

/// Everything the registry holds.
#[derive(Debug, Default)]
/// (Public only as the registry replica's type; its contents are the registry's own.)
pub struct State {
    /// Things read so far, kept current by the change log (never loaded whole).
    pub things: Cache<Arc<Thing>>,
    pub types: BTreeMap<String, ThingType>,
    pub groups: BTreeMap<String, ThingGroup>,
    pub billing: BTreeMap<String, BillingGroup>,
    pub events: Option<EventConfig>,
    /// Thing group → its direct child groups.
    pub children: Index,
}

/// The index terms things are found by in the store.
pub(crate) mod terms {
    /// Separates the parts of a term (never in a name, an ARN or an attribute).
    const SEP: char = '\u{1}';

    pub fn of_type(t: &str) -> String {
        format!("t{SEP}{t}")
    }
    pub fn in_group(g: &str) -> String {
        format!("g{SEP}{g}")
    }
    pub fn in_billing(b: &str) -> String {
        format!("b{SEP}{b}")
    }
    pub fn principal(p: &str) -> String {
        format!("p{SEP}{p}")
    }
    /// An attribute with its value; a prefix of it finds values starting with a prefix.
    pub fn attribute(name: &str, value: &str) -> String {
        format!("a{SEP}{name}{SEP}{value}")
    }
}

/// The terms a thing is found by.
pub(crate) fn thing_terms(t: &Thing) -> Vec<String> {
    let mut out = Vec::with_capacity(2 + t.groups.len() + t.principals.len() + t.attributes.len());
    out.extend(t.type_name.as_deref().map(terms::of_type));
    out.extend(t.billing_group.as_deref().map(terms::in_billing));
    out.extend(t.groups.keys().map(|g| terms::in_group(g)));
    out.extend(t.principals.keys().map(|p| terms::principal(p)));
    out.extend(t.attributes.iter().map(|(k, v)| terms::attribute(k, v)));
    out
}

/// One committed change.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// A thing, expected to be at the revision its writer read (absent: a new thing).
    Thing(Thing, Expect),
    DropThing(String, Expect),
    Type(ThingType),
    DropType(String),
    Group(ThingGroup),
    DropGroup(String),
    Billing(BillingGroup),
    DropBilling(String),
    Events(EventConfig),
}

fn put<T: Serialize>(kind: &'static str, key: &str, value: &T) -> Result<Write> {
    let value = serde_json::to_string(value).map_err(|e| RegistryError::Corrupt { kind, key: key.to_string(), error: e.to_string() })?;
    Ok(Write::put(kind, key, value))
}

impl Change {
    /// The store write of this change. A thing carries its own expectation; the kinds held in
    /// memory are expected as `st` has them.
    pub fn write(&self, seen: impl Fn(&str, &str) -> Expect) -> Result<Write> {
        let mem = |kind: &'static str, key: &str, w: Write| w.expect(seen(kind, key));
        Ok(match self {
            Change::Thing(t, expect) => put(THING, &t.name, t)?.expect(*expect).terms(thing_terms(t)),
            Change::DropThing(n, expect) => Write::delete(THING, n.as_str()).expect(*expect),
            Change::Type(t) => mem(THING_TYPE, &t.name, put(THING_TYPE, &t.name, t)?),
            Change::DropType(n) => mem(THING_TYPE, n, Write::delete(THING_TYPE, n.as_str())),
            Change::Group(g) => mem(THING_GROUP, &g.name, put(THING_GROUP, &g.name, g)?),
            Change::DropGroup(n) => mem(THING_GROUP, n, Write::delete(THING_GROUP, n.as_str())),
            Change::Billing(b) => mem(BILLING_GROUP, &b.name, put(BILLING_GROUP, &b.name, b)?),
            Change::DropBilling(n) => mem(BILLING_GROUP, n, Write::delete(BILLING_GROUP, n.as_str())),
            Change::Events(c) => mem(EVENT_CONFIG, EVENT_CONFIG_KEY, put(EVENT_CONFIG, EVENT_CONFIG_KEY, c)?),
        })
    }
}

fn parse<T: DeserializeOwned>(value: &str) -> std::result::Result<T, String> {
    serde_json::from_str(value).map_err(|e| e.to_string())
}

/// A stored thing document.
pub(crate) fn parse_thing(key: &str, value: &str) -> Result<Thing> {
    parse(value).map_err(|error| RegistryError::Corrupt { kind: THING, key: key.to_string(), error })
}

impl Replicated for State {
    const DOMAIN: &'static str = "registry";
    const KINDS: &'static [&'static str] = &[THING_TYPE, THING_GROUP, BILLING_GROUP, EVENT_CONFIG];

    fn apply_change(&mut self, seq: u64, kind: &str, key: &str, value: Option<&str>) -> std::result::Result<(), String> {
        if kind == THING {
            match value {
                Some(v) => match parse::<Thing>(v) {
                    Ok(t) => self.things.applied(key, (Some(Arc::new(t)), seq)),
                    Err(e) => {
                        // Not cached: a reader reads the store and reports it.
                        self.things.forget(key);
                        return Err(e);
                    }
                },
                None => self.things.applied(key, (None, 0)),
            }
            return Ok(());
        }
        self.apply_doc(kind, key, value)
    }

    fn apply_doc(&mut self, kind: &str, key: &str, value: Option<&str>) -> std::result::Result<(), String> {
        let change = match (kind, value) {
            (THING_TYPE, Some(v)) => Change::Type(parse(v)?),
            (THING_TYPE, None) => Change::DropType(key.to_string()),
            (THING_GROUP, Some(v)) => Change::Group(parse(v)?),
            (THING_GROUP, None) => Change::DropGroup(key.to_string()),
            (BILLING_GROUP, Some(v)) => Change::Billing(parse(v)?),
            (BILLING_GROUP, None) => Change::DropBilling(key.to_string()),
            (EVENT_CONFIG, Some(v)) => Change::Events(parse(v)?),
            (EVENT_CONFIG, None) => {
                self.events = None;
                return Ok(());
            }
            (PRINCIPAL, _) => return Ok(()),
            (other, _) => return Err(format!("the registry keeps no {other} documents")),
        };
        self.apply(change);
        Ok(())
    }
}

impl State {
    /// Applies a committed change.
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            // Things are applied to the cache by `apply_change`.
            Change::Thing(..) | Change::DropThing(..) => {}
            Change::Type(t) => {
                self.types.insert(t.name.clone(), t);
            }
            Change::DropType(name) => {
                self.types.remove(&name);
            }
            Change::Group(g) => {
                if let Some(old) = self.groups.remove(&g.name)
                    && let Some(p) = &old.parent
                {
                    index_remove(&mut self.children, p, &old.name);
                }
                if let Some(p) = &g.parent {
                    index_add(&mut self.children, p, &g.name);
                }
                self.groups.insert(g.name.clone(), g);
            }
            Change::DropGroup(name) => {
                if let Some(old) = self.groups.remove(&name)
                    && let Some(p) = &old.parent
                {
                    index_remove(&mut self.children, p, &old.name);
                }
            }
            Change::Billing(b) => {
                self.billing.insert(b.name.clone(), b);
            }
            Change::DropBilling(name) => {
                self.billing.remove(&name);
            }
            Change::Events(c) => self.events = Some(c),
        }
    }

    /// The ancestors of a group, root first (the group itself excluded).
    pub fn ancestors(&self, group: &str) -> Vec<&ThingGroup> {
        let mut out = Vec::new();
        let mut next = self.groups.get(group).and_then(|g| g.parent.as_deref());
        // The hierarchy is at most 7 deep; the bound only guards against a corrupt store.
        while let Some(name) = next {
            let Some(g) = self.groups.get(name) else { break };
            if out.len() > crate::groups::MAX_DEPTH {
                break;
            }
            out.push(g);
            next = g.parent.as_deref();
        }
        out.reverse();
        out
    }

    /// The root of a group's hierarchy (the group itself when it has no parent).
    pub fn root_of<'a>(&'a self, group: &'a str) -> &'a str {
        self.ancestors(group).first().map_or(group, |g| g.name.as_str())
    }

    /// Every descendant of a group (children, their children, ...), in no particular order.
    pub fn descendants(&self, group: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![group.to_string()];
        while let Some(g) = todo.pop() {
            if let Some(kids) = self.children.get(&g) {
                for k in kids {
                    out.push(k.clone());
                    todo.push(k.clone());
                }
            }
        }
        out
    }
}

/// The entries of a map whose keys sort after `after`.
pub(crate) fn map_after<'a, V>(map: &'a BTreeMap<String, V>, after: Option<&'a str>) -> Box<dyn Iterator<Item = (&'a String, &'a V)> + 'a> {
    match after {
        Some(a) => Box::new(map.range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))),
        None => Box::new(map.iter()),
    }
}
