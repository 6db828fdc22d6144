//! Property tests of the shadow rules over generated states and requests.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::{Limits, Sections, StoredShadow, delete, get, update};

fn limits() -> Limits {
    Limits {
        max_document_bytes: usize::MAX,
        ..Limits::default()
    }
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        // Whole floats, to meet the integers they equal.
        (-3i64..3).prop_map(|n| json!(n as f64)),
        (-1e3f64..1e3).prop_map(|f| json!(f)),
        "[ab]{0,2}".prop_map(Value::from),
    ]
}

fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A state value: scalars, arrays of scalars and objects, at most four levels deep.
fn state_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![3 => scalar(), 1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from)];
    leaf.prop_recursive(3, 24, 4, object)
}

/// A request value: like a state value, with `null` (deletion) members in objects.
fn patch_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => scalar(),
        1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 4, object)
}

fn section(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), value, 0..5).prop_map(|m| m.into_iter().collect())
}

fn send(current: Option<&StoredShadow>, body: Value, now: u64) -> Result<crate::UpdateOutcome, crate::Rejection> {
    update(current, body.to_string().as_bytes(), now, &limits())
}

fn state_of(stored: &StoredShadow) -> Sections {
    stored.live().expect("live").state.clone()
}

/// RFC 7396 merge patch, then removal of empty objects: the documented update semantics,
/// written independently of the crate's merge.
fn reference_merge(target: Option<Value>, patch: &Value) -> Option<Value> {
    match patch {
        Value::Null => None,
        Value::Object(p) => {
            let mut t = match target {
                Some(Value::Object(t)) => t,
                _ => Map::new(),
            };
            for (k, v) in p {
                let old = t.remove(k);
                if let Some(merged) = reference_merge(old, v) {
                    t.insert(k.clone(), merged);
                }
            }
            let pruned: Map<String, Value> = t
                .into_iter()
                .filter(|(_, v)| v.as_object().is_none_or(|o| !o.is_empty()))
                .collect();
            (!pruned.is_empty()).then_some(Value::Object(pruned))
        }
        leaf => Some(leaf.clone()),
    }
}

/// Checks that metadata mirrors state: same members, a timestamp for each leaf.
fn mirrors(state: &Map<String, Value>, meta: &Map<String, Value>) -> bool {
    state.len() == meta.len()
        && state.iter().all(|(k, v)| match (v, meta.get(k)) {
            (Value::Object(s), Some(Value::Object(m))) => !s.is_empty() && mirrors(s, m),
            (_, Some(Value::Object(m))) => m.len() == 1 && m.get("timestamp").is_some_and(Value::is_u64),
            _ => false,
        })
}

fn check_invariants(stored: &StoredShadow) -> bool {
    let Some(shadow) = stored.live() else { return true };
    let pair = |s: &Option<Map<String, Value>>, m: &Option<Map<String, Value>>| match (s, m) {
        (None, None) => true,
        (Some(s), Some(m)) => !s.is_empty() && mirrors(s, m),
        _ => false,
    };
    pair(&shadow.state.desired, &shadow.metadata.desired) && pair(&shadow.state.reported, &shadow.metadata.reported)
}

/// Replaces every timestamp by 0, to compare metadata shapes.
fn zero_timestamps(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    if k == "timestamp" && v.is_u64() {
                        (k.clone(), json!(0))
                    } else {
                        (k.clone(), zero_timestamps(v))
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

proptest! {
    /// Applying the delta to reported yields desired on the keys the delta covers: no delta is
    /// left, and every leaf of the delta is now reported as desired.
    #[test]
    fn reporting_the_delta_converges(desired in section(state_value()), reported in section(state_value())) {
        let first = send(None, json!({"state": {"desired": desired, "reported": reported}}), 1).unwrap();
        let doc = get(Some(&first.stored), "t", b"", 2, &limits()).unwrap();
        let delta = doc["state"].get("delta").cloned().unwrap_or(json!({}));
        let second = send(Some(&first.stored), json!({"state": {"reported": delta}}), 3).unwrap();
        prop_assert_eq!(second.delta, None);
        let doc = get(Some(&second.stored), "t", b"", 4, &limits()).unwrap();
        prop_assert!(doc["state"].get("delta").is_none(), "{}", doc);
        prop_assert!(check_invariants(&second.stored));
        // And the desired state was never touched.
        prop_assert_eq!(state_of(&second.stored).desired, state_of(&first.stored).desired);
    }

    /// An update then a get returns the merged state.
    #[test]
    fn update_then_get_returns_the_merged_state(initial in section(state_value()), patch in section(patch_value())) {
        let first = send(None, json!({"state": {"reported": initial.clone()}}), 1).unwrap();
        let second = send(Some(&first.stored), json!({"state": {"reported": patch.clone()}}), 2).unwrap();
        let want = reference_merge(reference_merge(None, &Value::Object(initial)), &Value::Object(patch));
        let doc = get(Some(&second.stored), "t", b"", 3, &limits()).unwrap();
        prop_assert_eq!(doc["state"].get("reported").cloned(), want);
        prop_assert!(check_invariants(&second.stored));
    }

    /// Each accepted update increments the version by exactly one; a rejected one changes nothing.
    #[test]
    fn version_increases_by_one_per_accepted_update(
        steps in prop::collection::vec((section(patch_value()), prop::option::of(-2i64..2)), 1..8)
    ) {
        let mut stored: Option<StoredShadow> = None;
        let mut version = 0u64;
        for (now, (patch, offset)) in (1u64..).zip(steps) {
            let mut body = json!({"state": {"desired": patch}});
            if let Some(offset) = offset {
                body["version"] = json!(version as i64 + offset);
            }
            let result = send(stored.as_ref(), body, now);
            match offset {
                None | Some(0) => {
                    let out = result.unwrap();
                    version += 1;
                    prop_assert_eq!(out.accepted["version"].as_u64(), Some(version));
                    prop_assert_eq!(out.stored.live().map(|s| s.version), Some(version));
                    prop_assert!(check_invariants(&out.stored));
                    stored = Some(out.stored);
                }
                Some(_) => {
                    let r = result.unwrap_err();
                    // A negative version is invalid, a wrong one a conflict.
                    prop_assert!(r.code() == 409 || r.code() == 400);
                }
            }
        }
    }

    /// A `null` member deletes it, wherever it is.
    #[test]
    fn null_deletes(initial in section(state_value()), pick in any::<prop::sample::Index>()) {
        prop_assume!(!initial.is_empty());
        let first = send(None, json!({"state": {"desired": initial.clone()}}), 1).unwrap();
        let Some(stored) = state_of(&first.stored).desired else { return Ok(()) };
        let keys: Vec<&String> = stored.keys().collect();
        let victim = keys[pick.index(keys.len())].clone();
        let patch: Map<String, Value> = [(victim.clone(), Value::Null)].into_iter().collect();
        let second = send(Some(&first.stored), json!({"state": {"desired": patch}}), 2).unwrap();
        let after = state_of(&second.stored).desired.unwrap_or_default();
        prop_assert!(!after.contains_key(&victim));
        prop_assert_eq!(after.len(), stored.len() - 1);
        prop_assert!(check_invariants(&second.stored));
    }

    /// The same request twice leaves the same state; only version and timestamps move.
    #[test]
    fn identical_requests_are_idempotent(
        initial in section(state_value()),
        desired in section(patch_value()),
        reported in section(patch_value()),
    ) {
        let base = send(None, json!({"state": {"desired": initial}}), 1).unwrap();
        let body = json!({"state": {"desired": desired, "reported": reported}});
        let once = send(Some(&base.stored), body.clone(), 2).unwrap();
        let twice = send(Some(&once.stored), body, 3).unwrap();
        let (a, b) = (once.stored.live().unwrap(), twice.stored.live().unwrap());
        prop_assert_eq!(&a.state, &b.state);
        prop_assert_eq!(b.version, a.version + 1);
        prop_assert_eq!(zero_timestamps(&a.metadata.to_value()), zero_timestamps(&b.metadata.to_value()));
        prop_assert_eq!(once.delta.map(|d| d["state"].clone()), twice.delta.map(|d| d["state"].clone()));
    }

    /// A request without `desired` never publishes a delta.
    #[test]
    fn reported_only_updates_publish_no_delta(desired in section(state_value()), reported in section(patch_value())) {
        let base = send(None, json!({"state": {"desired": desired}}), 1).unwrap();
        let out = send(Some(&base.stored), json!({"state": {"reported": reported}}), 2).unwrap();
        prop_assert_eq!(out.delta, None);
    }

    /// The stored shadow survives the store's JSON round trip, tombstones included.
    #[test]
    fn stored_shadow_round_trips(desired in section(state_value()), reported in section(state_value()), del in any::<bool>()) {
        let mut stored = send(None, json!({"state": {"desired": desired, "reported": reported}}), 1).unwrap().stored;
        if del {
            stored = delete(Some(&stored), "t", b"", 2, &limits()).unwrap().stored;
        }
        let bytes = serde_json::to_vec(&stored).unwrap();
        let back: StoredShadow = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(back, stored);
    }

    /// Accepted updates never leave a state over the size limit.
    #[test]
    fn size_limit_holds(steps in prop::collection::vec(section(patch_value()), 1..6), max in 2usize..200) {
        let limits = Limits { max_document_bytes: max, ..Limits::default() };
        let mut stored: Option<StoredShadow> = None;
        for (now, patch) in (1u64..).zip(steps) {
            let body = json!({"state": {"reported": patch}}).to_string();
            match update(stored.as_ref(), body.as_bytes(), now, &limits) {
                Ok(out) => {
                    let size = serde_json::to_vec(&out.stored.live().unwrap().state).unwrap().len();
                    prop_assert!(size <= max);
                    stored = Some(out.stored);
                }
                Err(r) => prop_assert_eq!(r.code(), 413),
            }
        }
    }

    /// No input makes any operation panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let stored = send(None, json!({"state": {"desired": {"a": 1}}}), 1).unwrap().stored;
        for current in [None, Some(&stored)] {
            if let Ok(out) = update(current, &bytes, 2, &limits()) {
                prop_assert!(check_invariants(&out.stored));
            }
            let _ = get(current, "t", &bytes, 2, &limits());
            let _ = delete(current, "t", &bytes, 2, &limits());
        }
    }

    /// Nor does any JSON document, and whatever is accepted keeps the invariants.
    #[test]
    fn arbitrary_json_never_panics(state in patch_value(), token in prop::option::of("[a-z]{0,70}"), version in prop::option::of(0u64..3)) {
        let mut body = json!({"state": state});
        if let Some(t) = token { body["clientToken"] = json!(t); }
        if let Some(v) = version { body["version"] = json!(v); }
        if let Ok(out) = send(None, body, 1) {
            prop_assert!(check_invariants(&out.stored));
        }
    }
}
