//! The registry in memory: entities by name plus the indexes the list operations need
//! (things by type, group, billing group and principal; child groups by parent), and the
//! changes that are written to the documents table and then applied here.

use crate::error::{RegistryError, Result};
use crate::model::{BillingGroup, EventConfig, Thing, ThingGroup, ThingType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use store::DocOp;
use store::replica::Replicated;

pub(crate) const THING: &str = "thing";
pub(crate) const THING_TYPE: &str = "thing-type";
pub(crate) const THING_GROUP: &str = "thing-group";
pub(crate) const BILLING_GROUP: &str = "billing-group";
pub(crate) const EVENT_CONFIG: &str = "registry-events";
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
    pub things: BTreeMap<String, Thing>,
    pub types: BTreeMap<String, ThingType>,
    pub groups: BTreeMap<String, ThingGroup>,
    pub billing: BTreeMap<String, BillingGroup>,
    pub events: Option<EventConfig>,
    /// Thing type → things of that type.
    pub by_type: Index,
    /// Thing group → things directly in it.
    pub by_group: Index,
    /// Billing group → things in it.
    pub by_billing: Index,
    /// Principal → things it is attached to.
    pub by_principal: Index,
    /// Thing group → its direct child groups.
    pub children: Index,
}

/// One committed change.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Thing(Thing),
    DropThing(String),
    Type(ThingType),
    DropType(String),
    Group(ThingGroup),
    DropGroup(String),
    Billing(BillingGroup),
    DropBilling(String),
    Events(EventConfig),
}

fn put<T: Serialize>(kind: &'static str, key: &str, value: &T) -> Result<DocOp> {
    let value = serde_json::to_string(value).map_err(|e| RegistryError::Corrupt { kind, key: key.to_string(), error: e.to_string() })?;
    Ok(DocOp::Put { kind, key: key.to_string(), value })
}

impl Change {
    /// The documents-table operation that stores this change.
    pub fn doc_op(&self) -> Result<DocOp> {
        let delete = |kind: &'static str, key: &str| Ok(DocOp::Delete { kind, key: key.to_string() });
        match self {
            Change::Thing(t) => put(THING, &t.name, t),
            Change::DropThing(n) => delete(THING, n),
            Change::Type(t) => put(THING_TYPE, &t.name, t),
            Change::DropType(n) => delete(THING_TYPE, n),
            Change::Group(g) => put(THING_GROUP, &g.name, g),
            Change::DropGroup(n) => delete(THING_GROUP, n),
            Change::Billing(b) => put(BILLING_GROUP, &b.name, b),
            Change::DropBilling(n) => delete(BILLING_GROUP, n),
            Change::Events(c) => put(EVENT_CONFIG, EVENT_CONFIG_KEY, c),
        }
    }
}

fn parse<T: DeserializeOwned>(value: &str) -> std::result::Result<T, String> {
    serde_json::from_str(value).map_err(|e| e.to_string())
}

impl Replicated for State {
    const DOMAIN: &'static str = "registry";
    const KINDS: &'static [&'static str] = &[THING_TYPE, THING_GROUP, BILLING_GROUP, THING, EVENT_CONFIG];

    fn apply_doc(&mut self, kind: &str, key: &str, value: Option<&str>) -> std::result::Result<(), String> {
        let change = match (kind, value) {
            (THING, Some(v)) => Change::Thing(parse(v)?),
            (THING, None) => Change::DropThing(key.to_string()),
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
            (other, _) => return Err(format!("the registry keeps no {other} documents")),
        };
        self.apply(change);
        Ok(())
    }
}

impl State {
    fn unindex_thing(&mut self, t: &Thing) {
        if let Some(ty) = &t.type_name {
            index_remove(&mut self.by_type, ty, &t.name);
        }
        for g in t.groups.keys() {
            index_remove(&mut self.by_group, g, &t.name);
        }
        if let Some(b) = &t.billing_group {
            index_remove(&mut self.by_billing, b, &t.name);
        }
        for p in t.principals.keys() {
            index_remove(&mut self.by_principal, p, &t.name);
        }
    }

    fn index_thing(&mut self, t: &Thing) {
        if let Some(ty) = &t.type_name {
            index_add(&mut self.by_type, ty, &t.name);
        }
        for g in t.groups.keys() {
            index_add(&mut self.by_group, g, &t.name);
        }
        if let Some(b) = &t.billing_group {
            index_add(&mut self.by_billing, b, &t.name);
        }
        for p in t.principals.keys() {
            index_add(&mut self.by_principal, p, &t.name);
        }
    }

    /// Applies a committed change.
    pub(crate) fn apply(&mut self, change: Change) {
        match change {
            Change::Thing(t) => {
                if let Some(old) = self.things.remove(&t.name) {
                    self.unindex_thing(&old);
                }
                self.index_thing(&t);
                self.things.insert(t.name.clone(), t);
            }
            Change::DropThing(name) => {
                if let Some(old) = self.things.remove(&name) {
                    self.unindex_thing(&old);
                }
            }
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

/// The names in an index entry that sort after `after`.
pub(crate) fn after<'a>(set: Option<&'a BTreeSet<String>>, after: Option<&'a str>) -> impl Iterator<Item = &'a String> + 'a {
    set.into_iter().flat_map(move |s| {
        let r: Box<dyn Iterator<Item = &String>> = match after {
            Some(a) => Box::new(s.range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))),
            None => Box::new(s.iter()),
        };
        r
    })
}

/// The entries of a map whose keys sort after `after`.
pub(crate) fn map_after<'a, V>(map: &'a BTreeMap<String, V>, after: Option<&'a str>) -> Box<dyn Iterator<Item = (&'a String, &'a V)> + 'a> {
    match after {
        Some(a) => Box::new(map.range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))),
        None => Box::new(map.iter()),
    }
}
