//! Thing types: create (idempotent for the same properties), describe, list, update (only the
//! MQTT 5 configuration: thing types are otherwise immutable), deprecate and undo, and delete
//! (only when deprecated for at least the configured delay and no thing uses the type).

use crate::error::{RegistryError, Result, invalid, not_found};
use crate::model::{NewThingType, Page, PropagatingAttribute, ThingType};
use crate::state::{Change, State, map_after};
use crate::validate::{self, MAX_SEARCHABLE_ATTRIBUTES, MAX_TAGS};
use crate::{Registry, ResourceKind, now_ms, uuid};

/// UpdateThingType's input.
#[derive(Debug, Clone, Default)]
pub struct ThingTypeUpdate {
    pub name: String,
    /// Must be absent or unchanged.
    pub description: Option<String>,
    /// Must be absent or unchanged.
    pub searchable_attributes: Option<Vec<String>>,
    /// `None`: unchanged.
    pub propagating_attributes: Option<Vec<PropagatingAttribute>>,
}

fn check_propagating(list: &[PropagatingAttribute]) -> Result<()> {
    for p in list {
        if let Some(k) = &p.user_property_key {
            validate::user_property_key(k)?;
        }
        if let Some(a) = &p.thing_attribute {
            validate::attribute_name("thingTypeProperties.mqtt5Configuration.propagatingAttributes.member.thingAttribute", a)?;
        }
        if let Some(c) = &p.connection_attribute {
            validate::connection_attribute(c)?;
        }
        if p.thing_attribute.is_some() == p.connection_attribute.is_some() {
            return invalid("Each propagating attribute needs exactly one of thingAttribute and connectionAttribute.");
        }
    }
    Ok(())
}

impl Registry {
    fn type_in<'a>(&self, st: &'a State, name: &str) -> Result<&'a ThingType> {
        st.types.get(name).ok_or_else(|| not_found(format!("Thing type {name} cannot be found.")))
    }

    /// CreateThingType: the new type, or the existing one when its properties are the same.
    pub fn create_thing_type(&self, req: NewThingType) -> Result<ThingType> {
        validate::name("thingTypeName", &req.name)?;
        if let Some(d) = &req.description {
            validate::description("thingTypeProperties.thingTypeDescription", d)?;
        }
        for a in &req.searchable_attributes {
            validate::attribute_name("thingTypeProperties.searchableAttributes.member", a)?;
        }
        if req.searchable_attributes.len() > MAX_SEARCHABLE_ATTRIBUTES {
            return invalid(format!(
                "A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes; {} were given.",
                req.searchable_attributes.len()
            ));
        }
        if let Some(p) = &req.propagating_attributes {
            check_propagating(p)?;
        }
        validate::tags(&req.tags)?;
        let tags: crate::Tags = req.tags.into_iter().collect();
        if tags.len() > MAX_TAGS {
            return invalid(format!("A resource can have at most {MAX_TAGS} tags; {} were given.", tags.len()));
        }
        let mut st = self.lock()?;
        if let Some(existing) = st.types.get(&req.name) {
            if existing.description == req.description
                && existing.searchable_attributes == req.searchable_attributes
                && existing.propagating_attributes == req.propagating_attributes
            {
                return Ok(existing.clone());
            }
            return Err(RegistryError::AlreadyExists {
                message: format!("Thing type {} already exists in account with different properties", req.name),
                resource_id: existing.id.clone(),
                resource_arn: self.arn(ResourceKind::ThingType, &req.name),
            });
        }
        let t = ThingType {
            name: req.name,
            id: uuid(),
            description: req.description,
            searchable_attributes: req.searchable_attributes,
            propagating_attributes: req.propagating_attributes,
            deprecated: false,
            deprecated_ms: None,
            created_ms: now_ms(),
            tags,
        };
        let events = vec![self.type_event("CREATED", &t)];
        self.commit(&mut st, vec![Change::Type(t.clone())], events)?;
        Ok(t)
    }

    /// DescribeThingType.
    pub fn describe_thing_type(&self, name: &str) -> Result<ThingType> {
        validate::name("thingTypeName", name)?;
        let st = self.read();
        self.type_in(&st, name).cloned()
    }

    /// ListThingTypes: types after `after` whose name starts with `prefix`.
    pub fn list_thing_types(&self, prefix: Option<&str>, after: Option<&str>, limit: usize) -> Result<Page<ThingType>> {
        if let Some(p) = prefix {
            validate::name("thingTypeName", p)?;
        }
        let st = self.read();
        let iter = map_after(&st.types, after).map(|(_, t)| t).filter(|t| prefix.is_none_or(|p| t.name.starts_with(p)));
        Ok(Page::take(iter.cloned(), limit))
    }

    /// UpdateThingType: only the MQTT 5 configuration can change.
    pub fn update_thing_type(&self, req: ThingTypeUpdate) -> Result<ThingType> {
        validate::name("thingTypeName", &req.name)?;
        if let Some(p) = &req.propagating_attributes {
            check_propagating(p)?;
        }
        let mut st = self.lock()?;
        let mut t = self.type_in(&st, &req.name)?.clone();
        let immutable = req.description.as_ref().is_some_and(|d| t.description.as_ref() != Some(d))
            || req.searchable_attributes.as_ref().is_some_and(|s| *s != t.searchable_attributes);
        if immutable {
            return invalid(format!("Thing type {} is immutable: only thingTypeProperties.mqtt5Configuration can be updated.", req.name));
        }
        if req.propagating_attributes.is_none() {
            return Ok(t);
        }
        t.propagating_attributes = req.propagating_attributes;
        let events = vec![self.type_event("UPDATED", &t)];
        self.commit(&mut st, vec![Change::Type(t.clone())], events)?;
        Ok(t)
    }

    /// DeprecateThingType (or, with `undo`, undeprecates it). Deprecating a deprecated type
    /// keeps its deprecation date.
    pub fn deprecate_thing_type(&self, name: &str, undo: bool) -> Result<ThingType> {
        validate::name("thingTypeName", name)?;
        let mut st = self.lock()?;
        let mut t = self.type_in(&st, name)?.clone();
        if t.deprecated != undo {
            return Ok(t);
        }
        t.deprecated = !undo;
        t.deprecated_ms = (!undo).then(now_ms);
        let events = vec![self.type_event("UPDATED", &t)];
        self.commit(&mut st, vec![Change::Type(t.clone())], events)?;
        Ok(t)
    }

    /// DeleteThingType: the type must have been deprecated at least the configured delay ago
    /// and no thing may use it.
    pub fn delete_thing_type(&self, name: &str) -> Result<()> {
        validate::name("thingTypeName", name)?;
        let mut st = self.lock()?;
        let t = self.type_in(&st, name)?.clone();
        let Some(since) = t.deprecated_ms.filter(|_| t.deprecated) else {
            return invalid(format!("Thing type {name} cannot be deleted because it is not deprecated; deprecate it first."));
        };
        let delay_ms = i64::try_from(self.config.thing_type_delete_delay.as_millis()).unwrap_or(i64::MAX);
        let wait_ms = since.saturating_add(delay_ms).saturating_sub(now_ms());
        if wait_ms > 0 {
            return invalid(format!(
                "Thing type {name} was deprecated less than {} seconds ago; it can be deleted in {} seconds.",
                self.config.thing_type_delete_delay.as_secs(),
                (wait_ms + 999) / 1000
            ));
        }
        // A deprecated type gains no things (a create or update that read it before the
        // deprecation fails its check), so this look is final.
        let things = self.find_things(Some(&store::state::Terms::Exact(crate::state::terms::of_type(name))), None, 100)?;
        if let Some((first, _)) = things.first() {
            let count = if things.len() == 100 { "100 or more".to_string() } else { things.len().to_string() };
            return invalid(format!("Can not delete thing type {name} because {count} thing(s) are still associated with it (e.g. {}).", first.name));
        }
        let events = vec![self.type_event("DELETED", &t)];
        self.commit(&mut st, vec![Change::DropType(name.to_string())], events)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::fixture;
    use crate::*;

    #[test]
    fn create_is_idempotent_and_limits_searchable_attributes() {
        let f = fixture(0);
        let r = &f.registry;
        let req = NewThingType { name: "bulb".into(), description: Some("light bulb".into()), searchable_attributes: vec!["w".into()], ..Default::default() };
        let a = r.create_thing_type(req.clone()).unwrap();
        assert_eq!(r.create_thing_type(req.clone()).unwrap(), a);
        let other = NewThingType { description: Some("other".into()), ..req };
        assert!(matches!(r.create_thing_type(other), Err(RegistryError::AlreadyExists { .. })));
        let four = NewThingType { name: "x".into(), searchable_attributes: vec!["a".into(), "b".into(), "c".into(), "d".into()], ..Default::default() };
        assert!(matches!(r.create_thing_type(four), Err(RegistryError::Invalid(_))));
    }

    #[test]
    fn delete_needs_deprecation_the_delay_and_no_things() {
        let f = fixture(300);
        let r = &f.registry;
        r.create_thing_type(NewThingType { name: "ty".into(), ..Default::default() }).unwrap();
        assert!(matches!(r.delete_thing_type("ty"), Err(RegistryError::Invalid(m)) if m.contains("not deprecated")));
        let t = r.deprecate_thing_type("ty", false).unwrap();
        assert!(t.deprecated && t.deprecated_ms.is_some());
        assert!(matches!(r.delete_thing_type("ty"), Err(RegistryError::Invalid(m)) if m.contains("300 seconds")));
        let t = r.deprecate_thing_type("ty", true).unwrap();
        assert!(!t.deprecated && t.deprecated_ms.is_none());
        assert!(matches!(r.delete_thing_type("nope"), Err(RegistryError::NotFound(_))));

        let f = fixture(0);
        let r = &f.registry;
        r.create_thing_type(NewThingType { name: "ty".into(), ..Default::default() }).unwrap();
        r.create_thing(NewThing { name: "t".into(), type_name: Some("ty".into()), ..Default::default() }).unwrap();
        r.deprecate_thing_type("ty", false).unwrap();
        assert!(matches!(r.delete_thing_type("ty"), Err(RegistryError::Invalid(m)) if m.contains("still associated")));
        r.update_thing(ThingUpdate { name: "t".into(), remove_type: true, ..Default::default() }).unwrap();
        r.delete_thing_type("ty").unwrap();
        assert!(matches!(r.describe_thing_type("ty"), Err(RegistryError::NotFound(_))));
    }

    #[test]
    fn only_the_mqtt5_configuration_can_be_updated() {
        let f = fixture(0);
        let r = &f.registry;
        r.create_thing_type(NewThingType { name: "ty".into(), description: Some("d".into()), ..Default::default() }).unwrap();
        let p = vec![PropagatingAttribute {
            user_property_key: Some("iot:ClientId".into()),
            thing_attribute: None,
            connection_attribute: Some("iot:ClientId".into()),
        }];
        let t = r
            .update_thing_type(ThingTypeUpdate {
                name: "ty".into(),
                description: Some("d".into()),
                propagating_attributes: Some(p.clone()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(t.propagating_attributes, Some(p));
        let e = r.update_thing_type(ThingTypeUpdate { name: "ty".into(), description: Some("new".into()), ..Default::default() });
        assert!(matches!(e, Err(RegistryError::Invalid(m)) if m.contains("immutable")));
    }

    #[test]
    fn list_filters_by_name_prefix() {
        let f = fixture(0);
        let r = &f.registry;
        for n in ["lamp", "lamp-2", "switch"] {
            r.create_thing_type(NewThingType { name: n.into(), ..Default::default() }).unwrap();
        }
        let names: Vec<String> = r.list_thing_types(Some("lamp"), None, 10).unwrap().items.into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["lamp", "lamp-2"]);
    }
}
