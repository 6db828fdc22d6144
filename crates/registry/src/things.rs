//! Things: create (idempotent for the same configuration), describe, update (versioned, with
//! attribute merge and thing type changes), delete (idempotent; refused while principals are
//! attached) and list with ListThings' filters.

use crate::error::{RegistryError, Result, invalid, not_found};
use crate::model::{AttributePayload, Attributes, NewThing, Page, Thing, ThingFilter, ThingUpdate};
use crate::state::{BILLING_GROUP, Change, State, THING, THING_TYPE, terms};
use store::state::{Expect, StateError, Terms};
use crate::validate::{self, MAX_TYPED_THING_ATTRIBUTES, MAX_UNTYPED_THING_ATTRIBUTES};
use crate::{Registry, ResourceKind, now_ms, uuid};

/// Validates a payload's attributes (names and values), without the empty values that mean "none".
fn given_attributes(payload: Option<&AttributePayload>) -> Result<Option<Attributes>> {
    let Some(attrs) = payload.and_then(|p| p.attributes.as_ref()) else { return Ok(None) };
    for (k, v) in attrs {
        validate::attribute_name("attributePayload.attributes", k)?;
        validate::attribute_value(&format!("attributePayload.attributes.{k}"), v)?;
    }
    Ok(Some(attrs.clone()))
}

fn without_empty(attrs: Attributes) -> Attributes {
    attrs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

fn check_count(attrs: &Attributes, typed: bool) -> Result<()> {
    if typed {
        validate::attributes(attrs, MAX_TYPED_THING_ATTRIBUTES, "A thing with a thing type")
    } else {
        validate::attributes(attrs, MAX_UNTYPED_THING_ATTRIBUTES, "A thing without a thing type")
    }
}

impl Registry {
    /// A thing by name and its revision, or ResourceNotFound.
    pub(crate) fn thing_in(&self, name: &str) -> Result<(Thing, u64)> {
        match self.load_thing(name)? {
            Some((t, rev)) => Ok((Thing::clone(&t), rev)),
            None => Err(not_found(format!("Thing {name} cannot be found."))),
        }
    }

    /// A thing type that things may be associated with now (exists, not deprecated).
    fn assignable_type(&self, st: &State, type_name: &str) -> Result<()> {
        let t = st.types.get(type_name).ok_or_else(|| not_found(format!("Thing type {type_name} cannot be found.")))?;
        if t.deprecated {
            return invalid(format!("Can not associate a thing with thing type {type_name} because it is deprecated."));
        }
        Ok(())
    }

    /// CreateThing: the new thing, or the existing one when its configuration is the same.
    /// Committed expecting no thing of that name (the store decides between concurrent
    /// creators), and the type and billing group as read.
    pub fn create_thing(&self, req: NewThing) -> Result<Thing> {
        validate::name("thingName", &req.name)?;
        if let Some(t) = &req.type_name {
            validate::name("thingTypeName", t)?;
        }
        if let Some(b) = &req.billing_group {
            validate::name("billingGroupName", b)?;
        }
        let attributes = without_empty(given_attributes(req.attributes.as_ref())?.unwrap_or_default());
        check_count(&attributes, req.type_name.is_some())?;
        let (thing, checks, events) = {
            let st = self.read();
            let mut deps = Vec::new();
            if let Some(t) = &req.type_name {
                self.assignable_type(&st, t)?;
                deps.push((THING_TYPE, t.as_str()));
            }
            if let Some(b) = &req.billing_group {
                if !st.billing.contains_key(b) {
                    return Err(not_found(format!("Billing group {b} cannot be found.")));
                }
                deps.push((BILLING_GROUP, b.as_str()));
            }
            let checks = Registry::checks(&st, &deps);
            let thing = Thing {
                name: req.name.clone(),
                id: uuid(),
                type_name: req.type_name.clone(),
                attributes: attributes.clone(),
                version: 1,
                billing_group: req.billing_group.clone(),
                groups: Default::default(),
                principals: Default::default(),
                created_ms: now_ms(),
            };
            let mut events = vec![self.thing_event("CREATED", &thing)];
            if let Some(t) = &thing.type_name {
                events.push(self.type_association_event("CREATED", &thing, t));
            }
            (thing, checks, events)
        };
        match self.commit_things(vec![Change::Thing(thing.clone(), Expect::Absent)], checks, events) {
            Err(RegistryError::Store(store::StoreError::State(StateError::Conflict { kind, key, .. }))) if kind == THING && key == req.name => {
                // Another creator won: the same configuration is success, another is not.
                match self.load_thing(&req.name)? {
                    Some((existing, _)) => self.existing_thing(&req, &attributes, &existing),
                    None => Err(RegistryError::Store(store::StoreError::State(StateError::Conflict {
                        kind,
                        key,
                        expected: Expect::Absent,
                        found: None,
                    }))),
                }
            }
            Err(e) => Err(e),
            Ok(()) => Ok(thing),
        }
    }

    /// CreateThing of a name that exists: the thing when the configuration is the same.
    fn existing_thing(&self, req: &NewThing, attributes: &crate::Attributes, existing: &Thing) -> Result<Thing> {
        let same = existing.type_name == req.type_name
            && existing.attributes == *attributes
            && req.billing_group.as_ref().is_none_or(|b| existing.billing_group.as_ref() == Some(b));
        if same {
            return Ok(existing.clone());
        }
        Err(RegistryError::AlreadyExists {
            message: format!("Thing {} already exists in account with different attributes", req.name),
            resource_id: existing.id.clone(),
            resource_arn: self.arn(ResourceKind::Thing, &req.name),
        })
    }

    /// DescribeThing.
    pub fn describe_thing(&self, name: &str) -> Result<Thing> {
        validate::name("thingName", name)?;
        Ok(self.thing_in(name)?.0)
    }

    /// UpdateThing: attributes (replaced, or merged where an empty value removes one), thing type
    /// (set or removed); the version goes up by one.
    pub fn update_thing(&self, req: ThingUpdate) -> Result<Thing> {
        validate::name("thingName", &req.name)?;
        if let Some(t) = &req.type_name {
            validate::name("thingTypeName", t)?;
            if req.remove_type {
                return invalid("removeThingType cannot be true when a thingTypeName is given.");
            }
        }
        let given = given_attributes(req.attributes.as_ref())?;
        let (old, rev) = self.thing_in(&req.name)?;
        if let Some(v) = req.expected_version
            && v != old.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for thing {} does not match the expected version ({v}); the current version is {}.",
                old.name, old.version
            )));
        }
        let mut t = old.clone();
        let checks = {
            let st = self.read();
            let mut deps = Vec::new();
            if let Some(ty) = &req.type_name
                && old.type_name.as_ref() != Some(ty)
            {
                self.assignable_type(&st, ty)?;
                deps.push((THING_TYPE, ty.as_str()));
                t.type_name = Some(ty.clone());
            }
            Registry::checks(&st, &deps)
        };
        if req.remove_type {
            t.type_name = None;
        }
        if let Some(attrs) = given {
            if req.attributes.as_ref().is_some_and(|p| p.merge) {
                for (k, v) in attrs {
                    if v.is_empty() {
                        t.attributes.remove(&k);
                    } else {
                        t.attributes.insert(k, v);
                    }
                }
            } else {
                t.attributes = without_empty(attrs);
            }
        }
        check_count(&t.attributes, t.type_name.is_some())?;
        t.version += 1;
        let mut events = vec![self.thing_event("UPDATED", &t)];
        if old.type_name != t.type_name {
            if let Some(o) = &old.type_name {
                events.push(self.type_association_event("DELETED", &t, o));
            }
            if let Some(n) = &t.type_name {
                events.push(self.type_association_event("CREATED", &t, n));
            }
        }
        self.commit_things(vec![Change::Thing(t.clone(), Expect::Rev(rev))], checks, events)?;
        Ok(t)
    }

    /// DeleteThing: succeeds when there is no such thing; refused while principals are attached.
    /// The thing leaves its groups and billing group.
    pub fn delete_thing(&self, name: &str, expected_version: Option<i64>) -> Result<()> {
        validate::name("thingName", name)?;
        let Some((t, rev)) = self.load_thing(name)? else { return Ok(()) };
        if let Some(v) = expected_version
            && v != t.version
        {
            return Err(RegistryError::VersionConflict(format!(
                "The version for thing {name} does not match the expected version ({v}); the current version is {}.",
                t.version
            )));
        }
        if !t.principals.is_empty() {
            return invalid(format!("Cannot delete. Thing {name} is still attached to one or more principals"));
        }
        let mut events = Vec::new();
        {
            let st = self.read();
            for (g, membership) in &t.groups {
                if let Some(group) = st.groups.get(g) {
                    events.push(self.membership_event("REMOVED", group, &t, membership));
                }
            }
        }
        if let Some(ty) = &t.type_name {
            events.push(self.type_association_event("DELETED", &t, ty));
        }
        events.push(self.thing_event("DELETED", &t));
        self.commit_things(vec![Change::DropThing(name.to_string(), Expect::Rev(rev))], Vec::new(), events)
    }

    /// ListThings: things after `after` (by name) that pass the filters. An attribute filter
    /// looks only at searchable attributes: every attribute of a thing without a type, the type's
    /// searchable attributes otherwise. The store finds the candidates by the most selective
    /// term given (the attribute, else the type).
    pub fn list_things(&self, filter: &ThingFilter, after_name: Option<&str>, limit: usize) -> Result<Page<Thing>> {
        if let Some(n) = &filter.attribute_name {
            validate::attribute_name("attributeName", n)?;
        }
        if let Some(v) = &filter.attribute_value {
            validate::attribute_value("attributeValue", v)?;
            if filter.attribute_name.is_none() {
                return invalid("attributeValue can only be used together with attributeName.");
            }
        }
        if let Some(t) = &filter.type_name {
            validate::name("thingTypeName", t)?;
        }
        let searchable: Option<std::collections::BTreeSet<String>> = filter.attribute_name.as_ref().map(|name| {
            let st = self.read();
            st.types.values().filter(|t| t.searchable_attributes.contains(name)).map(|t| t.name.clone()).collect()
        });
        let matches = |t: &Thing| -> bool {
            if filter.type_name.is_some() && t.type_name != filter.type_name {
                return false;
            }
            let Some(name) = &filter.attribute_name else { return true };
            if let Some(ty) = &t.type_name
                && !searchable.as_ref().is_some_and(|s| s.contains(ty))
            {
                return false;
            }
            let Some(value) = t.attributes.get(name) else { return false };
            match &filter.attribute_value {
                None => true,
                Some(want) if filter.prefix => value.starts_with(want.as_str()),
                Some(want) => value == want,
            }
        };
        let terms = match (&filter.attribute_name, &filter.attribute_value, &filter.type_name) {
            (Some(n), Some(v), _) if !filter.prefix => Some(Terms::Exact(terms::attribute(n, v))),
            (Some(n), v, _) => Some(Terms::Prefix(terms::attribute(n, v.as_deref().unwrap_or("")))),
            (None, _, Some(ty)) => Some(Terms::Exact(terms::of_type(ty))),
            (None, _, None) => None,
        };
        self.find_page(terms.as_ref(), after_name, limit, (limit + 1).clamp(16, 1000), |t| matches(&t).then_some(t))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    fn attrs(pairs: &[(&str, &str)]) -> Option<AttributePayload> {
        Some(AttributePayload { attributes: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), merge: false })
    }

    #[test]
    fn create_is_idempotent_for_the_same_configuration_only() {
        let f = fixture(0);
        let r = &f.registry;
        let a = r.create_thing(NewThing { name: "t1".into(), attributes: attrs(&[("k", "v")]), ..Default::default() }).unwrap();
        assert_eq!(a.version, 1);
        let b = r.create_thing(NewThing { name: "t1".into(), attributes: attrs(&[("k", "v")]), ..Default::default() }).unwrap();
        assert_eq!(a, b);
        match r.create_thing(NewThing { name: "t1".into(), attributes: attrs(&[("k", "other")]), ..Default::default() }) {
            Err(RegistryError::AlreadyExists { resource_id, resource_arn, .. }) => {
                assert_eq!(resource_id, a.id);
                assert_eq!(resource_arn, "arn:aws:iot:us-east-1:123456789012:thing/t1");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn untyped_things_have_at_most_three_attributes() {
        let f = fixture(0);
        let r = &f.registry;
        let four = attrs(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        assert!(matches!(r.create_thing(NewThing { name: "t".into(), attributes: four.clone(), ..Default::default() }), Err(RegistryError::Invalid(_))));
        r.create_thing_type(NewThingType { name: "ty".into(), ..Default::default() }).unwrap();
        r.create_thing(NewThing { name: "t".into(), type_name: Some("ty".into()), attributes: four, ..Default::default() }).unwrap();
        // Removing the type would leave four attributes on an untyped thing.
        let e = r.update_thing(ThingUpdate { name: "t".into(), remove_type: true, ..Default::default() });
        assert!(matches!(e, Err(RegistryError::Invalid(_))));
    }

    #[test]
    fn update_merges_replaces_and_checks_the_version() {
        let f = fixture(0);
        let r = &f.registry;
        r.create_thing(NewThing { name: "t".into(), attributes: attrs(&[("a", "1"), ("b", "2")]), ..Default::default() }).unwrap();
        let mut merge = attrs(&[("b", ""), ("c", "3")]);
        if let Some(p) = merge.as_mut() {
            p.merge = true;
        }
        let t = r.update_thing(ThingUpdate { name: "t".into(), attributes: merge, expected_version: Some(1), ..Default::default() }).unwrap();
        assert_eq!(t.version, 2);
        assert_eq!(t.attributes.keys().collect::<Vec<_>>(), ["a", "c"]);
        let t = r.update_thing(ThingUpdate { name: "t".into(), attributes: attrs(&[("z", "9")]), ..Default::default() }).unwrap();
        assert_eq!(t.attributes.keys().collect::<Vec<_>>(), ["z"]);
        let stale = r.update_thing(ThingUpdate { name: "t".into(), expected_version: Some(1), ..Default::default() });
        assert!(matches!(stale, Err(RegistryError::VersionConflict(_))));
        let missing = r.update_thing(ThingUpdate { name: "nope".into(), ..Default::default() });
        assert!(matches!(missing, Err(RegistryError::NotFound(_))));
    }

    #[test]
    fn deprecated_or_unknown_types_cannot_be_assigned() {
        let f = fixture(0);
        let r = &f.registry;
        let unknown = r.create_thing(NewThing { name: "t".into(), type_name: Some("nope".into()), ..Default::default() });
        assert!(matches!(unknown, Err(RegistryError::NotFound(_))));
        r.create_thing_type(NewThingType { name: "old".into(), ..Default::default() }).unwrap();
        r.deprecate_thing_type("old", false).unwrap();
        let dep = r.create_thing(NewThing { name: "t".into(), type_name: Some("old".into()), ..Default::default() });
        assert!(matches!(dep, Err(RegistryError::Invalid(_))));
    }

    #[test]
    fn delete_is_idempotent_versioned_and_refused_with_principals() {
        let f = fixture(0);
        let r = &f.registry;
        r.delete_thing("never-existed", None).unwrap();
        f.thing("t");
        assert!(matches!(r.delete_thing("t", Some(7)), Err(RegistryError::VersionConflict(_))));
        r.attach_thing_principal("t", "arn:aws:iot:us-east-1:123456789012:cert/abc", PrincipalType::NonExclusive).unwrap();
        assert!(matches!(r.delete_thing("t", None), Err(RegistryError::Invalid(m)) if m.contains("still attached")));
        r.detach_thing_principal("t", "arn:aws:iot:us-east-1:123456789012:cert/abc").unwrap();
        r.delete_thing("t", Some(1)).unwrap();
        assert!(matches!(r.describe_thing("t"), Err(RegistryError::NotFound(_))));
    }

    #[test]
    fn list_filters_by_type_and_searchable_attributes_and_pages() {
        let f = fixture(0);
        let r = &f.registry;
        let props = NewThingType { name: "bulb".into(), searchable_attributes: vec!["watt".into()], ..Default::default() };
        r.create_thing_type(props).unwrap();
        r.create_thing(NewThing {
            name: "b1".into(),
            type_name: Some("bulb".into()),
            attributes: attrs(&[("watt", "75"), ("color", "red")]),
            ..Default::default()
        })
        .unwrap();
        r.create_thing(NewThing { name: "b2".into(), type_name: Some("bulb".into()), attributes: attrs(&[("watt", "750")]), ..Default::default() }).unwrap();
        r.create_thing(NewThing { name: "u1".into(), attributes: attrs(&[("color", "red"), ("watt", "75")]), ..Default::default() }).unwrap();
        let names = |p: Page<Thing>| p.items.into_iter().map(|t| t.name).collect::<Vec<_>>();
        let by_type = ThingFilter { type_name: Some("bulb".into()), ..Default::default() };
        assert_eq!(names(r.list_things(&by_type, None, 10).unwrap()), ["b1", "b2"]);
        let watt = ThingFilter { attribute_name: Some("watt".into()), attribute_value: Some("75".into()), ..Default::default() };
        assert_eq!(names(r.list_things(&watt, None, 10).unwrap()), ["b1", "u1"]);
        let prefix = ThingFilter { prefix: true, ..watt };
        assert_eq!(names(r.list_things(&prefix, None, 10).unwrap()), ["b1", "b2", "u1"]);
        // "color" is not searchable for bulbs.
        let color = ThingFilter { attribute_name: Some("color".into()), attribute_value: Some("red".into()), ..Default::default() };
        assert_eq!(names(r.list_things(&color, None, 10).unwrap()), ["u1"]);
        let first = r.list_things(&ThingFilter::default(), None, 2).unwrap();
        assert!(first.more());
        let rest = r.list_things(&ThingFilter::default(), Some("b2"), 2).unwrap();
        assert_eq!(names(rest.clone()), ["u1"]);
        assert!(!rest.more());
    }

    #[test]
    fn things_survive_a_restart() {
        let f = fixture(0);
        let t = f.registry.create_thing(NewThing { name: "keep".into(), attributes: attrs(&[("a", "1")]), ..Default::default() }).unwrap();
        assert_eq!(f.reopen().describe_thing("keep").unwrap(), t);
    }

    #[test]
    fn thing_events_carry_the_documented_fields() {
        let f = fixture(0);
        let r = &f.registry;
        let all = ["THING", "THING_TYPE_ASSOCIATION", "THING_TYPE"];
        r.update_event_configurations(&all.iter().map(|k| (k.to_string(), true)).collect()).unwrap();
        r.create_thing_type(NewThingType { name: "ty".into(), ..Default::default() }).unwrap();
        f.events.0.lock().unwrap().clear();
        let t = r.create_thing(NewThing { name: "e1".into(), type_name: Some("ty".into()), attributes: attrs(&[("a", "1")]), ..Default::default() }).unwrap();
        let events = f.events.0.lock().unwrap().drain(..).collect::<Vec<_>>();
        assert_eq!(events[0].topic, "$aws/events/thing/e1/created");
        let p: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
        assert_eq!(p["eventType"], "THING_EVENT");
        assert_eq!(p["operation"], "CREATED");
        assert_eq!(p["accountId"], "123456789012");
        assert_eq!(p["thingId"], t.id.as_str());
        assert_eq!(p["versionNumber"], 1);
        assert_eq!(p["thingTypeName"], "ty");
        assert_eq!(p["attributes"]["a"], "1");
        assert!(p["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        assert_eq!(events[1].topic, "$aws/events/thingTypeAssociation/thing/e1/ty");
        r.update_thing(ThingUpdate { name: "e1".into(), remove_type: true, ..Default::default() }).unwrap();
        assert_eq!(f.events.topics(), ["$aws/events/thing/e1/updated", "$aws/events/thingTypeAssociation/thing/e1/ty"]);
    }
}
