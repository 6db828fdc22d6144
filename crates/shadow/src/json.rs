//! JSON tree operations of the shadow: merge with metadata, pruning, delta, comparison, depth.

use serde_json::{Map, Number, Value};

/// The metadata of one leaf updated at `now`.
pub(crate) fn leaf_metadata(now: u64) -> Value {
    let mut m = Map::new();
    m.insert("timestamp".into(), now.into());
    Value::Object(m)
}

/// The metadata of a request value as echoed in `/update/accepted`: objects map their members,
/// everything else (scalars, `null` deletions and arrays, which are values) gets a timestamp.
pub(crate) fn request_metadata(value: &Value, now: u64) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), request_metadata(v, now)))
                .collect(),
        ),
        _ => leaf_metadata(now),
    }
}

/// Levels of nesting of a value: 0 for a scalar, one more than its deepest member for an object
/// or array (so an empty object is 1).
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether a `null` appears anywhere inside an array of `value` (AWS rejects those: arrays are
/// stored whole and cannot hold nulls). A `null` member of an object is a deletion and fine.
pub(crate) fn has_null_in_array(value: &Value) -> bool {
    fn walk(value: &Value, in_array: bool) -> bool {
        match value {
            Value::Null => in_array,
            Value::Object(m) => m.values().any(|v| walk(v, in_array)),
            Value::Array(a) => a.iter().any(|v| walk(v, true)),
            _ => false,
        }
    }
    walk(value, false)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn number_eq(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    if x.is_f64() || y.is_f64() {
        return matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q);
    }
    false
}

/// Merges a request section into a stored section and its metadata, as AWS does: a `null`
/// member deletes, an object merges member by member (replacing a non-object), anything else
/// (scalar or array) replaces the stored value and gets `now` as its timestamp. Then prunes.
pub(crate) fn merge(
    state: &mut Map<String, Value>,
    meta: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    now: u64,
) {
    merge_members(state, meta, patch, now);
    prune(state, meta);
}

fn merge_members(state: &mut Map<String, Value>, meta: &mut Map<String, Value>, patch: &Map<String, Value>, now: u64) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                state.remove(key);
                meta.remove(key);
            }
            Value::Object(members) => {
                let was_object = state.get(key).is_some_and(Value::is_object);
                if !was_object {
                    state.insert(key.clone(), Value::Object(Map::new()));
                }
                if !was_object || !meta.get(key).is_some_and(Value::is_object) {
                    meta.insert(key.clone(), Value::Object(Map::new()));
                }
                if let (Some(Value::Object(s)), Some(Value::Object(m))) = (state.get_mut(key), meta.get_mut(key)) {
                    merge_members(s, m, members, now);
                }
            }
            leaf => {
                state.insert(key.clone(), leaf.clone());
                meta.insert(key.clone(), leaf_metadata(now));
            }
        }
    }
}

/// Removes empty objects (bottom-up, not inside arrays, which are values) from a state section
/// and keeps its metadata in step: metadata of removed or absent members goes too.
pub(crate) fn prune(state: &mut Map<String, Value>, meta: &mut Map<String, Value>) {
    let mut empty = Vec::new();
    for (key, value) in state.iter_mut() {
        if let Value::Object(members) = value {
            let mut scratch = Map::new();
            let child_meta = match meta.get_mut(key) {
                Some(Value::Object(m)) => m,
                _ => &mut scratch,
            };
            prune(members, child_meta);
            if members.is_empty() {
                empty.push(key.clone());
            }
        }
    }
    for key in empty {
        state.remove(&key);
    }
    meta.retain(|key, _| state.contains_key(key));
}

/// The delta of `desired` against `reported`: every member of `desired` that `reported` lacks
/// or holds a different value for, objects compared member by member (the delta keeps the path
/// to the root), arrays and scalars compared whole.
pub(crate) fn delta(desired: &Map<String, Value>, reported: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, want) in desired {
        match (want, reported.and_then(|r| r.get(key))) {
            (_, None) => {
                out.insert(key.clone(), want.clone());
            }
            (Value::Object(w), Some(Value::Object(have))) => {
                let inner = delta(w, Some(have));
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (_, Some(have)) => {
                if !json_eq(want, have) {
                    out.insert(key.clone(), want.clone());
                }
            }
        }
    }
    out
}

/// The metadata of a delta: the `desired` metadata of the members the delta holds.
pub(crate) fn delta_metadata(delta: &Map<String, Value>, desired_meta: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in delta {
        match (value, desired_meta.get(key)) {
            (Value::Object(d), Some(Value::Object(m))) if !is_leaf_metadata(m) => {
                out.insert(key.clone(), Value::Object(delta_metadata(d, m)));
            }
            (_, Some(m)) => {
                out.insert(key.clone(), m.clone());
            }
            (_, None) => {}
        }
    }
    out
}

fn is_leaf_metadata(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.get("timestamp").is_some_and(Value::is_number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn depth_counts_containers() {
        let cases = [
            (json!(1), 0),
            (json!(null), 0),
            (json!({}), 1),
            (json!([]), 1),
            (json!({"a": 1}), 1),
            (json!({"a": {"b": 1}}), 2),
            (json!({"a": [1, [2]]}), 3),
            (json!({"one": {"two": {"three": {"four": {"five": {}}}}}}), 6),
        ];
        for (v, want) in cases {
            assert_eq!(depth(&v), want, "{v}");
        }
    }

    #[test]
    fn nulls_in_arrays_are_found() {
        let cases = [
            (json!({"a": null}), false),
            (json!({"a": [1, 2]}), false),
            (json!({"a": [null, "RED"]}), true),
            (json!({"a": [[1, null]]}), true),
            (json!({"a": [{"b": null}]}), true),
            (json!({"a": {"b": [{"c": 1}]}}), false),
        ];
        for (v, want) in cases {
            assert_eq!(has_null_in_array(&v), want, "{v}");
        }
    }

    #[test]
    fn equality_compares_numbers_by_value() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(-1), json!(-1.0), true),
            (json!(1), json!(2), false),
            (json!(u64::MAX), json!(-1), false),
            (json!(0.5), json!(0.5), true),
            (json!([1, {"a": 2.0}]), json!([1.0, {"a": 2}]), true),
            (json!([1, 2]), json!([2, 1]), false),
            (json!({"a": 1}), json!({"a": 1, "b": 2}), false),
            (json!("1"), json!(1), false),
            (json!(null), json!(null), true),
        ];
        for (a, b, want) in cases {
            assert_eq!(json_eq(&a, &b), want, "{a} vs {b}");
            assert_eq!(json_eq(&b, &a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn merge_replaces_deletes_recurses_and_prunes() {
        let mut state = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"}));
        let mut meta = obj(
            json!({"a": {"timestamp": 1}, "b": {"c": {"timestamp": 1}, "d": {"timestamp": 1}},
                                  "e": {"timestamp": 1}, "f": {"timestamp": 1}}),
        );
        let patch = obj(json!({"a": null, "b": {"c": null, "g": true}, "e": [3], "f": {"h": 1}, "i": {}}));
        merge(&mut state, &mut meta, &patch, 9);
        assert_eq!(state, obj(json!({"b": {"d": 3, "g": true}, "e": [3], "f": {"h": 1}})));
        assert_eq!(
            meta,
            obj(
                json!({"b": {"d": {"timestamp": 1}, "g": {"timestamp": 9}}, "e": {"timestamp": 9},
                       "f": {"h": {"timestamp": 9}}})
            )
        );
    }

    #[test]
    fn deleting_the_last_member_removes_the_parent() {
        let mut state = obj(json!({"lights": {"color": {"r": 1}}, "x": 1}));
        let mut meta = obj(json!({"lights": {"color": {"r": {"timestamp": 1}}}, "x": {"timestamp": 1}}));
        merge(
            &mut state,
            &mut meta,
            &obj(json!({"lights": {"color": {"r": null}}})),
            2,
        );
        assert_eq!(state, obj(json!({"x": 1})));
        assert_eq!(meta, obj(json!({"x": {"timestamp": 1}})));
    }

    #[test]
    fn an_object_replacing_a_leaf_drops_the_leaf_metadata() {
        // A leaf's metadata is itself an object: it must not survive as a member's metadata.
        let mut state = obj(json!({"a": 5}));
        let mut meta = obj(json!({"a": {"timestamp": 1}}));
        merge(&mut state, &mut meta, &obj(json!({"a": {"b": 1}})), 2);
        assert_eq!(meta, obj(json!({"a": {"b": {"timestamp": 2}}})));
        merge(&mut state, &mut meta, &obj(json!({"a": 7})), 3);
        assert_eq!(
            (state, meta),
            (obj(json!({"a": 7})), obj(json!({"a": {"timestamp": 3}})))
        );
    }

    #[test]
    fn request_metadata_mirrors_the_request() {
        let req = json!({"color": {"r": 10}, "engine": "ON", "gone": null, "list": [1, 2], "empty": {}});
        assert_eq!(
            request_metadata(&req, 5),
            json!({"color": {"r": {"timestamp": 5}}, "engine": {"timestamp": 5}, "gone": {"timestamp": 5},
                   "list": {"timestamp": 5}, "empty": {}})
        );
    }

    #[test]
    fn delta_table() {
        let cases = [
            // reported-only members are not in the delta; desired-only ones are.
            (json!({"a": 1}), json!({"b": 2}), json!({"a": 1})),
            (json!({"a": 1}), json!({"a": 1}), json!({})),
            (json!({"a": 1}), json!({"a": 1.0}), json!({})),
            (json!({"a": 1}), json!({"a": "1"}), json!({"a": 1})),
            (json!({"a": [1, 2]}), json!({"a": [1]}), json!({"a": [1, 2]})),
            (json!({"a": [{"x": 1}]}), json!({"a": [{"x": 1}]}), json!({})),
            (
                json!({"a": {"b": 1, "c": 2}}),
                json!({"a": {"b": 1, "c": 3}}),
                json!({"a": {"c": 2}}),
            ),
            (json!({"a": {"b": 1}}), json!({"a": 5}), json!({"a": {"b": 1}})),
            (json!({"a": 5}), json!({"a": {"b": 1}}), json!({"a": 5})),
            (
                json!({"a": {"b": {"c": 1}}}),
                json!({"a": {"b": {"c": 1}, "d": 2}}),
                json!({}),
            ),
        ];
        for (desired, reported, want) in cases {
            assert_eq!(
                delta(&obj(desired.clone()), Some(&obj(reported.clone()))),
                obj(want),
                "{desired} vs {reported}"
            );
        }
        assert_eq!(delta(&obj(json!({"a": {"b": 1}})), None), obj(json!({"a": {"b": 1}})));
    }

    #[test]
    fn delta_metadata_follows_desired() {
        let d = obj(json!({"lights": {"color": {"g": 255}}, "list": [1], "obj": {"x": 1}}));
        let m = obj(
            json!({"lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 2}}},
                           "list": {"timestamp": 3}, "obj": {"x": {"timestamp": 4}}, "other": {"timestamp": 5}}),
        );
        assert_eq!(
            delta_metadata(&d, &m),
            obj(
                json!({"lights": {"color": {"g": {"timestamp": 2}}}, "list": {"timestamp": 3},
                       "obj": {"x": {"timestamp": 4}}})
            )
        );
    }
}
