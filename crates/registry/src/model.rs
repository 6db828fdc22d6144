//! The registry's entities as they are kept in memory and stored (one JSON document each), and
//! the inputs of the operations that change them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tags by key (a value may be empty, never absent).
pub use awscore::tags::Tags;
/// Attributes by name.
pub type Attributes = BTreeMap<String, String>;

/// A thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thing {
    pub name: String,
    /// A UUID.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    /// 1 at creation, +1 at every UpdateThing.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_group: Option<String>,
    /// Static thing groups the thing was added to, each with the membership id generated then.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// Attached principals.
    #[serde(default)]
    pub principals: BTreeMap<String, PrincipalType>,
    pub created_ms: i64,
}

/// How a principal is attached to a thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalType {
    /// The thing is the only thing attached to the principal.
    Exclusive,
    /// Other things may be attached to the principal too.
    NonExclusive,
}

impl PrincipalType {
    /// The wire name (`EXCLUSIVE_THING`, `NON_EXCLUSIVE_THING`).
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Exclusive => "EXCLUSIVE_THING",
            PrincipalType::NonExclusive => "NON_EXCLUSIVE_THING",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<PrincipalType> {
        match s {
            "EXCLUSIVE_THING" => Some(PrincipalType::Exclusive),
            "NON_EXCLUSIVE_THING" => Some(PrincipalType::NonExclusive),
            _ => None,
        }
    }
}

/// A thing type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingType {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub searchable_attributes: Vec<String>,
    /// The MQTT 5 configuration's propagating attributes, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagating_attributes: Option<Vec<PropagatingAttribute>>,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_ms: Option<i64>,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Tags,
}

/// A thing or connection attribute propagated into MQTT 5 user properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropagatingAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_property_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_attribute: Option<String>,
}

/// A static thing group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThingGroup {
    pub name: String,
    pub id: String,
    /// Fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub attributes: Attributes,
    pub version: i64,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Tags,
}

/// A billing group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingGroup {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub version: i64,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Tags,
}

/// Attributes given to a create or update call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributePayload {
    /// `None`: the payload had no `attributes` member.
    pub attributes: Option<Attributes>,
    /// Merge into the stored attributes (an empty value removes one) instead of replacing them.
    /// Only UpdateThing and UpdateThingGroup honour it.
    pub merge: bool,
}

/// CreateThing's input.
#[derive(Debug, Clone, Default)]
pub struct NewThing {
    pub name: String,
    pub type_name: Option<String>,
    pub attributes: Option<AttributePayload>,
    pub billing_group: Option<String>,
}

/// UpdateThing's input.
#[derive(Debug, Clone, Default)]
pub struct ThingUpdate {
    pub name: String,
    pub type_name: Option<String>,
    pub remove_type: bool,
    pub attributes: Option<AttributePayload>,
    pub expected_version: Option<i64>,
}

/// ListThings' filters.
#[derive(Debug, Clone, Default)]
pub struct ThingFilter {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    /// Match attribute values that start with `attribute_value`.
    pub prefix: bool,
    pub type_name: Option<String>,
}

/// CreateThingType's input.
#[derive(Debug, Clone, Default)]
pub struct NewThingType {
    pub name: String,
    pub description: Option<String>,
    pub searchable_attributes: Vec<String>,
    pub propagating_attributes: Option<Vec<PropagatingAttribute>>,
    pub tags: Vec<(String, String)>,
}

/// CreateThingGroup's input.
#[derive(Debug, Clone, Default)]
pub struct NewThingGroup {
    pub name: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: Option<AttributePayload>,
    pub tags: Vec<(String, String)>,
}

/// UpdateThingGroup's input.
#[derive(Debug, Clone, Default)]
pub struct ThingGroupUpdate {
    pub name: String,
    /// `None`: unchanged.
    pub description: Option<String>,
    pub attributes: Option<AttributePayload>,
    pub expected_version: Option<i64>,
}

/// A thing or group given by name or by ARN (AddThingToThingGroup and friends).
#[derive(Debug, Clone, Default)]
pub struct NameOrArn {
    pub name: Option<String>,
    pub arn: Option<String>,
}

pub use awscore::page::Page;

awscore::keyed!(Thing => name, ThingGroup => name, ThingType => name, BillingGroup => name);

/// Whether each kind of event is published (UpdateEventConfigurations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventConfig {
    pub enabled: BTreeMap<String, bool>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// The event types of the model's EventType enum, in its order.
pub const EVENT_TYPES: [&str; 11] = [
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
];

impl EventConfig {
    /// Every event type off (AWS's default).
    pub fn new(now_ms: i64) -> EventConfig {
        EventConfig { enabled: EVENT_TYPES.iter().map(|t| (t.to_string(), false)).collect(), created_ms: now_ms, modified_ms: now_ms }
    }

    /// Whether events of this type are published.
    pub fn is_enabled(&self, event_type: &str) -> bool {
        self.enabled.get(event_type).copied().unwrap_or(false)
    }
}
