//! Registry events: the event configuration (UpdateEventConfigurations) and the MQTT messages
//! AWS IoT publishes under `$aws/events/...` when things, thing types and thing groups change
//! (developer guide, "Registry events"), handed to an [`EventSink`] after the change commits.

use crate::error::{Result, invalid};
use crate::model::{EVENT_TYPES, EventConfig, Thing, ThingGroup, ThingType};
use crate::state::{Change, State};
use crate::{Registry, ResourceKind, now_ms, uuid};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One event message.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event configuration type that governs it (`THING`, `THING_GROUP_MEMBERSHIP`, ...).
    pub event_type: &'static str,
    pub topic: String,
    /// The JSON payload.
    pub payload: Vec<u8>,
}

/// Where events go (the broker, in the binary). Called with the registry's lock held, in commit
/// order, so it must not block.
pub trait EventSink: Send + Sync {
    fn publish(&self, event: Event);
}

/// A sink that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _event: Event) {}
}

fn event(event_type: &'static str, topic: String, payload: Value) -> Event {
    Event { event_type, topic, payload: payload.to_string().into_bytes() }
}

impl Registry {
    /// The event configuration (every type off until changed).
    pub fn event_configurations(&self) -> EventConfig {
        let st = self.read();
        st.events.clone().unwrap_or_else(|| EventConfig::new(self.opened_ms))
    }

    /// Whether events of a type are published (for other services: jobs, certificates, ...).
    pub fn event_enabled(&self, event_type: &str) -> bool {
        self.read().events.as_ref().is_some_and(|c| c.is_enabled(event_type))
    }

    /// Turns event types on or off; types not named keep their setting.
    pub fn update_event_configurations(&self, changes: &BTreeMap<String, bool>) -> Result<()> {
        for k in changes.keys() {
            if !EVENT_TYPES.contains(&k.as_str()) {
                return invalid(format!("{k} is not an event type; valid types are {}.", EVENT_TYPES.join(", ")));
            }
        }
        let mut st = self.lock()?;
        let mut config = st.events.clone().unwrap_or_else(|| EventConfig::new(self.opened_ms));
        for (k, v) in changes {
            config.enabled.insert(k.clone(), *v);
        }
        config.modified_ms = now_ms();
        self.commit(&mut st, vec![Change::Events(config)], Vec::new())
    }

    fn base(&self, event_type: &str, operation: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("eventType".into(), json!(event_type));
        m.insert("eventId".into(), json!(uuid()));
        m.insert("timestamp".into(), json!(now_ms()));
        m.insert("operation".into(), json!(operation));
        m.insert("accountId".into(), json!(self.config.account_id));
        m
    }

    /// `$aws/events/thing/{thingName}/{created|updated|deleted}`.
    pub(crate) fn thing_event(&self, operation: &str, t: &Thing) -> Event {
        let mut m = self.base("THING_EVENT", operation);
        m.insert("thingId".into(), json!(t.id));
        m.insert("thingName".into(), json!(t.name));
        m.insert("versionNumber".into(), json!(t.version));
        m.insert("thingTypeName".into(), json!(t.type_name));
        m.insert("attributes".into(), json!(t.attributes));
        event("THING", format!("$aws/events/thing/{}/{}", t.name, operation.to_ascii_lowercase()), Value::Object(m))
    }

    /// `$aws/events/thingType/{thingTypeName}/{created|updated|deleted}`.
    pub(crate) fn type_event(&self, operation: &str, t: &ThingType) -> Event {
        let mut m = self.base("THING_TYPE_EVENT", operation);
        m.insert("thingTypeId".into(), json!(t.id));
        m.insert("thingTypeName".into(), json!(t.name));
        m.insert("isDeprecated".into(), json!(t.deprecated));
        m.insert("deprecationDate".into(), json!(t.deprecated_ms));
        m.insert("searchableAttributes".into(), json!(t.searchable_attributes));
        m.insert("description".into(), json!(t.description));
        event("THING_TYPE", format!("$aws/events/thingType/{}/{}", t.name, operation.to_ascii_lowercase()), Value::Object(m))
    }

    /// `$aws/events/thingTypeAssociation/thing/{thingName}/{typeName}` (CREATED or DELETED).
    pub(crate) fn type_association_event(&self, operation: &str, t: &Thing, type_name: &str) -> Event {
        let payload = json!({
            "eventId": uuid(),
            "eventType": "THING_TYPE_ASSOCIATION_EVENT",
            "operation": operation,
            "thingId": t.id,
            "thingName": t.name,
            "thingTypeName": type_name,
            "timestamp": now_ms(),
        });
        event("THING_TYPE_ASSOCIATION", format!("$aws/events/thingTypeAssociation/thing/{}/{type_name}", t.name), payload)
    }

    /// `$aws/events/thingGroup/{groupName}/{created|updated|deleted}`.
    pub(crate) fn group_event(&self, st: &State, operation: &str, g: &ThingGroup) -> Event {
        let mut m = self.base("THING_GROUP_EVENT", operation);
        // Computed from the parent, so that it works before the group itself is applied.
        let parent = g.parent.as_ref().and_then(|p| st.groups.get(p));
        let mut ancestors = parent.map(|p| st.ancestors(&p.name)).unwrap_or_default();
        ancestors.extend(parent);
        m.insert("thingGroupId".into(), json!(g.id));
        m.insert("thingGroupName".into(), json!(g.name));
        m.insert("versionNumber".into(), json!(g.version));
        m.insert("parentGroupName".into(), json!(g.parent));
        m.insert("parentGroupId".into(), json!(parent.map(|p| p.id.clone())));
        m.insert("description".into(), json!(g.description));
        let roots: Vec<Value> = ancestors.iter().map(|a| json!({"groupArn": self.arn(ResourceKind::ThingGroup, &a.name), "groupId": a.id})).collect();
        m.insert("rootToParentThingGroups".into(), if roots.is_empty() { Value::Null } else { Value::Array(roots) });
        m.insert("attributes".into(), json!(g.attributes));
        m.insert("dynamicGroupMappingId".into(), Value::Null);
        event("THING_GROUP", format!("$aws/events/thingGroup/{}/{}", g.name, operation.to_ascii_lowercase()), Value::Object(m))
    }

    /// `$aws/events/thingGroupMembership/thingGroup/{group}/thing/{thing}/{added|removed}`.
    pub(crate) fn membership_event(&self, operation: &str, g: &ThingGroup, t: &Thing, membership_id: &str) -> Event {
        let mut m = self.base("THING_GROUP_MEMBERSHIP_EVENT", operation);
        m.insert("groupArn".into(), json!(self.arn(ResourceKind::ThingGroup, &g.name)));
        m.insert("groupId".into(), json!(g.id));
        m.insert("thingArn".into(), json!(self.arn(ResourceKind::Thing, &t.name)));
        m.insert("thingId".into(), json!(t.id));
        m.insert("membershipId".into(), json!(membership_id));
        let topic = format!("$aws/events/thingGroupMembership/thingGroup/{}/thing/{}/{}", g.name, t.name, operation.to_ascii_lowercase());
        event("THING_GROUP_MEMBERSHIP", topic, Value::Object(m))
    }

    /// `$aws/events/thingGroupHierarchy/thingGroup/{parent}/childThingGroup/{child}/{added|removed}`.
    pub(crate) fn hierarchy_event(&self, operation: &str, parent: &ThingGroup, child: &ThingGroup) -> Event {
        let mut m = self.base("THING_GROUP_HIERARCHY_EVENT", operation);
        m.insert("thingGroupId".into(), json!(parent.id));
        m.insert("thingGroupName".into(), json!(parent.name));
        m.insert("childGroupId".into(), json!(child.id));
        m.insert("childGroupName".into(), json!(child.name));
        let topic = format!("$aws/events/thingGroupHierarchy/thingGroup/{}/childThingGroup/{}/{}", parent.name, child.name, operation.to_ascii_lowercase());
        event("THING_GROUP_HIERARCHY", topic, Value::Object(m))
    }
}
