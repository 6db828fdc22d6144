//! The stored shadow (state, metadata, version) and its tombstone, serializable with serde.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Limits;

/// The `desired` and `reported` sections of a shadow's state, or of its metadata. A section is
/// `None` when it is empty: AWS removes a section that an update leaves empty.
///
/// In metadata, each section mirrors the state's: every leaf of the state (a scalar or an array,
/// arrays being values) has `{"timestamp": epoch_secs}` of its last update, and every object an
/// object of its members' metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sections {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Map<String, Value>>,
}

impl Sections {
    /// The sections as a JSON object (`{}` when both are empty).
    pub fn to_value(&self) -> Value {
        let mut doc = Map::new();
        if let Some(d) = &self.desired {
            doc.insert("desired".into(), Value::Object(d.clone()));
        }
        if let Some(r) = &self.reported {
            doc.insert("reported".into(), Value::Object(r.clone()));
        }
        Value::Object(doc)
    }

    /// Whether neither section holds anything.
    pub fn is_empty(&self) -> bool {
        self.desired.as_ref().is_none_or(Map::is_empty) && self.reported.as_ref().is_none_or(Map::is_empty)
    }
}

/// A shadow that exists: its state, the metadata of that state and its version (the number of
/// accepted updates, continued across a recent delete).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    #[serde(default)]
    pub state: Sections,
    #[serde(default)]
    pub metadata: Sections,
    pub version: u64,
}

impl Shadow {
    /// The shadow document as in `/update/documents`: `{"state", "metadata", "version"}`.
    pub fn document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("state".into(), self.state.to_value());
        doc.insert("metadata".into(), self.metadata.to_value());
        doc.insert("version".into(), self.version.into());
        Value::Object(doc)
    }
}

/// What the store keeps for one shadow: the live shadow, or the tombstone a delete leaves.
///
/// Serialized with a `status` tag: `{"status":"live","state":{..},"metadata":{..},"version":3}`
/// or `{"status":"deleted","version":3,"deleted_at":1700000000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum StoredShadow {
    /// The shadow exists.
    Live(Shadow),
    /// The shadow was deleted at `deleted_at` (epoch seconds) when at `version`. GET and DELETE
    /// answer 404; an UPDATE recreates it, continuing `version` if within the retention time.
    Deleted { version: u64, deleted_at: u64 },
}

impl From<Shadow> for StoredShadow {
    fn from(shadow: Shadow) -> Self {
        StoredShadow::Live(shadow)
    }
}

impl StoredShadow {
    /// The live shadow, if it is not deleted.
    pub fn live(&self) -> Option<&Shadow> {
        match self {
            StoredShadow::Live(shadow) => Some(shadow),
            StoredShadow::Deleted { .. } => None,
        }
    }

    /// Whether the store may forget this entry at `now`: a tombstone older than the retention
    /// time (an update then starts from version 0 either way). A live shadow is never forgotten.
    pub fn is_expired(&self, now: u64, limits: &Limits) -> bool {
        match self {
            StoredShadow::Live(_) => false,
            StoredShadow::Deleted { deleted_at, .. } => {
                now.saturating_sub(*deleted_at) >= limits.deleted_version_retention_secs
            }
        }
    }

    /// The version an update's `version` must match and that the update increments.
    pub(crate) fn base_version(&self, now: u64, limits: &Limits) -> u64 {
        match self {
            StoredShadow::Live(shadow) => shadow.version,
            StoredShadow::Deleted { .. } if self.is_expired(now, limits) => 0,
            StoredShadow::Deleted { version, .. } => *version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn live_shadow_round_trips_through_json() {
        let shadow = Shadow {
            state: Sections {
                desired: Some(obj(json!({"color": "RED"}))),
                reported: None,
            },
            metadata: Sections {
                desired: Some(obj(json!({"color": {"timestamp": 12345}}))),
                reported: None,
            },
            version: 10,
        };
        let stored = StoredShadow::from(shadow.clone());
        let text = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            text,
            json!({"status": "live", "state": {"desired": {"color": "RED"}},
                   "metadata": {"desired": {"color": {"timestamp": 12345}}}, "version": 10})
        );
        let back: StoredShadow = serde_json::from_value(text).unwrap();
        assert_eq!(back, stored);
        assert_eq!(back.live(), Some(&shadow));
    }

    #[test]
    fn tombstone_round_trips_through_json() {
        let stored = StoredShadow::Deleted {
            version: 4,
            deleted_at: 1591057529,
        };
        let text = serde_json::to_string(&stored).unwrap();
        assert_eq!(text, r#"{"status":"deleted","version":4,"deleted_at":1591057529}"#);
        assert_eq!(serde_json::from_str::<StoredShadow>(&text).unwrap(), stored);
        assert_eq!(stored.live(), None);
    }

    #[test]
    fn missing_sections_deserialize_empty() {
        let stored: StoredShadow = serde_json::from_str(r#"{"status":"live","version":2}"#).unwrap();
        assert_eq!(
            stored,
            StoredShadow::Live(Shadow {
                version: 2,
                ..Shadow::default()
            })
        );
    }

    #[test]
    fn tombstone_keeps_its_version_for_48_hours() {
        let limits = Limits::default();
        let t = StoredShadow::Deleted {
            version: 4,
            deleted_at: 1000,
        };
        assert_eq!(t.base_version(1000, &limits), 4);
        assert_eq!(t.base_version(1000 + 48 * 3600 - 1, &limits), 4);
        assert!(!t.is_expired(1000 + 48 * 3600 - 1, &limits));
        assert_eq!(t.base_version(1000 + 48 * 3600, &limits), 0);
        assert!(t.is_expired(1000 + 48 * 3600, &limits));
        // A clock that went backwards does not expire it.
        assert_eq!(t.base_version(10, &limits), 4);
        let live = StoredShadow::Live(Shadow {
            version: 9,
            ..Shadow::default()
        });
        assert_eq!(live.base_version(u64::MAX, &limits), 9);
        assert!(!live.is_expired(u64::MAX, &limits));
    }

    #[test]
    fn document_shape() {
        let shadow = Shadow {
            version: 3,
            ..Shadow::default()
        };
        assert_eq!(shadow.document(), json!({"state": {}, "metadata": {}, "version": 3}));
        assert!(shadow.state.is_empty());
    }
}
