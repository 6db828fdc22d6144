//! Table-driven tests of the update, get and delete rules and of their payloads.

use serde_json::{Value, json};

use crate::{Limits, Rejection, ShadowError, StoredShadow, UpdateOutcome, delete, get, update};

fn up(current: Option<&StoredShadow>, body: Value, now: u64) -> Result<UpdateOutcome, Rejection> {
    update(current, body.to_string().as_bytes(), now, &Limits::default())
}

/// Applies updates in turn from nothing, each at its own time, and returns the stored shadow.
fn build(bodies: &[(Value, u64)]) -> StoredShadow {
    let mut stored: Option<StoredShadow> = None;
    for (body, now) in bodies {
        stored = Some(up(stored.as_ref(), body.clone(), *now).expect("accepted").stored);
    }
    stored.expect("at least one update")
}

fn get_doc(stored: Option<&StoredShadow>, now: u64) -> Result<Value, Rejection> {
    get(stored, "thing1", b"", now, &Limits::default())
}

#[test]
fn first_update_creates_version_1() {
    let out = up(
        None,
        json!({"state": {"desired": {"color": "RED"}}, "clientToken": "c1"}),
        100,
    )
    .unwrap();
    assert_eq!(
        out.accepted,
        json!({"state": {"desired": {"color": "RED"}}, "metadata": {"desired": {"color": {"timestamp": 100}}},
               "version": 1, "timestamp": 100, "clientToken": "c1"})
    );
    assert_eq!(
        out.delta,
        Some(
            json!({"state": {"color": "RED"}, "metadata": {"color": {"timestamp": 100}},
                    "version": 1, "timestamp": 100, "clientToken": "c1"})
        )
    );
    assert_eq!(
        out.documents,
        json!({"previous": null,
               "current": {"state": {"desired": {"color": "RED"}},
                           "metadata": {"desired": {"color": {"timestamp": 100}}}, "version": 1},
               "timestamp": 100, "clientToken": "c1"})
    );
    assert_eq!(out.stored.live().map(|s| s.version), Some(1));
}

#[test]
fn documents_carry_previous_and_current() {
    let stored = build(&[(json!({"state": {"reported": {"t": 1}}}), 10)]);
    let out = up(Some(&stored), json!({"state": {"reported": {"t": 2}}}), 20).unwrap();
    assert_eq!(
        out.documents,
        json!({"previous": {"state": {"reported": {"t": 1}}, "metadata": {"reported": {"t": {"timestamp": 10}}},
                            "version": 1},
               "current": {"state": {"reported": {"t": 2}}, "metadata": {"reported": {"t": {"timestamp": 20}}},
                           "version": 2},
               "timestamp": 20})
    );
}

#[test]
fn when_delta_is_published() {
    let base = build(&[(
        json!({"state": {"desired": {"a": 1, "b": 2}, "reported": {"a": 1, "b": 0}}}),
        10,
    )]);
    // (request, expected /update/delta state or None)
    let cases = [
        // A desired update while desired still differs: the whole delta, not just the request's.
        (json!({"state": {"desired": {"a": 5}}}), Some(json!({"a": 5, "b": 2}))),
        // A desired update that leaves desired equal to reported: no delta.
        (json!({"state": {"desired": {"b": 0}}}), None),
        // A reported-only update: no delta, even though desired and reported still differ.
        (json!({"state": {"reported": {"a": 7}}}), None),
        // Deleting the desired section: nothing left to differ.
        (json!({"state": {"desired": null}}), None),
        // Clearing the state.
        (json!({"state": null}), None),
        // An empty desired object touches desired: the standing delta is published.
        (json!({"state": {"desired": {}}}), Some(json!({"b": 2}))),
        // Desired and reported in one request.
        (
            json!({"state": {"desired": {"c": 3}, "reported": {"b": 2}}}),
            Some(json!({"c": 3})),
        ),
        // Deleting a reported attribute that desired still has puts it in the delta.
        (
            json!({"state": {"desired": {"z": 0}, "reported": {"a": null}}}),
            Some(json!({"a": 1, "b": 2, "z": 0})),
        ),
    ];
    for (request, want) in cases {
        let out = up(Some(&base), request.clone(), 20).unwrap();
        assert_eq!(out.delta.as_ref().map(|d| d["state"].clone()), want, "{request}");
        if let Some(d) = out.delta {
            assert_eq!(d["version"], json!(2));
            assert_eq!(d["timestamp"], json!(20));
        }
    }
}

#[test]
fn delta_metadata_is_the_desired_metadata() {
    let stored = build(&[
        (json!({"state": {"desired": {"a": 1, "b": {"c": 1, "d": 1}}}}), 10),
        (json!({"state": {"reported": {"b": {"c": 1}}}}), 20),
    ]);
    let out = up(Some(&stored), json!({"state": {"desired": {"e": [1, 2]}}}), 30).unwrap();
    assert_eq!(
        out.delta.unwrap(),
        json!({"state": {"a": 1, "b": {"d": 1}, "e": [1, 2]},
               "metadata": {"a": {"timestamp": 10}, "b": {"d": {"timestamp": 10}}, "e": {"timestamp": 30}},
               "version": 3, "timestamp": 30})
    );
}

#[test]
fn accepted_echoes_the_request_state_with_nulls() {
    let stored = build(&[(
        json!({"state": {"desired": {"engine": "ON", "x": 1}, "reported": {"y": 2}}}),
        10,
    )]);
    let out = up(
        Some(&stored),
        json!({"state": {"desired": {"engine": null}, "reported": null}}),
        20,
    )
    .unwrap();
    assert_eq!(
        out.accepted,
        json!({"state": {"desired": {"engine": null}, "reported": null},
               "metadata": {"desired": {"engine": {"timestamp": 20}}, "reported": {"timestamp": 20}},
               "version": 2, "timestamp": 20})
    );
    let doc = get_doc(Some(&out.stored), 30).unwrap();
    assert_eq!(doc["state"], json!({"desired": {"x": 1}, "delta": {"x": 1}}));
    assert_eq!(doc["metadata"], json!({"desired": {"x": {"timestamp": 10}}}));
}

#[test]
fn null_state_clears_everything_but_keeps_the_shadow() {
    let stored = build(&[(json!({"state": {"desired": {"a": 1}, "reported": {"b": 2}}}), 10)]);
    let out = up(Some(&stored), json!({"state": null, "clientToken": "t"}), 20).unwrap();
    assert_eq!(
        out.accepted,
        json!({"state": null, "version": 2, "timestamp": 20, "clientToken": "t"})
    );
    assert_eq!(out.delta, None);
    assert_eq!(
        out.documents["current"],
        json!({"state": {}, "metadata": {}, "version": 2})
    );
    let doc = get_doc(Some(&out.stored), 30).unwrap();
    assert_eq!(doc, json!({"state": {}, "metadata": {}, "version": 2, "timestamp": 30}));
    // The next update increments the version again.
    let out = up(Some(&out.stored), json!({"state": {}}), 40).unwrap();
    assert_eq!(
        out.accepted,
        json!({"state": {}, "metadata": {}, "version": 3, "timestamp": 40})
    );
}

#[test]
fn empty_state_update_is_accepted_and_versioned() {
    let out = up(None, json!({"state": {}}), 5).unwrap();
    assert_eq!(
        out.accepted,
        json!({"state": {}, "metadata": {}, "version": 1, "timestamp": 5})
    );
    assert_eq!(get_doc(Some(&out.stored), 6).unwrap()["version"], json!(1));
}

#[test]
fn untouched_leaves_keep_their_timestamps() {
    let stored = build(&[
        (json!({"state": {"reported": {"a": 1, "b": {"c": 1, "d": 1}}}}), 10),
        (json!({"state": {"reported": {"b": {"d": 2}}}}), 20),
    ]);
    let doc = get_doc(Some(&stored), 30).unwrap();
    assert_eq!(
        doc["metadata"],
        json!({"reported": {"a": {"timestamp": 10}, "b": {"c": {"timestamp": 10}, "d": {"timestamp": 20}}}})
    );
    // Setting the same value again still counts as an update of that leaf.
    let out = up(Some(&stored), json!({"state": {"reported": {"a": 1}}}), 40).unwrap();
    let doc = get_doc(Some(&out.stored), 50).unwrap();
    assert_eq!(doc["metadata"]["reported"]["a"], json!({"timestamp": 40}));
}

#[test]
fn optimistic_locking() {
    let live = build(&[
        (json!({"state": {"desired": {"a": 1}}}), 1),
        (json!({"state": {"desired": {"a": 2}}}), 2),
    ]);
    let recent = StoredShadow::Deleted {
        version: 4,
        deleted_at: 1000,
    };
    let old = StoredShadow::Deleted {
        version: 4,
        deleted_at: 0,
    };
    let later = 1000 + 48 * 3600 - 1;
    // (current, request version, now, accepted with this new version or rejected)
    let cases: [(Option<&StoredShadow>, Value, u64, Option<u64>); 12] = [
        (Some(&live), json!(2), 10, Some(3)),
        (Some(&live), json!(1), 10, None),
        (Some(&live), json!(3), 10, None),
        (Some(&live), json!(null), 10, Some(3)),
        (None, json!(0), 10, Some(1)),
        (None, json!(1), 10, None),
        (Some(&recent), json!(4), later, Some(5)),
        (Some(&recent), json!(0), later, None),
        (Some(&recent), json!(null), later, Some(5)),
        (Some(&old), json!(0), 48 * 3600, Some(1)),
        (Some(&old), json!(4), 48 * 3600, None),
        (Some(&old), json!(null), 48 * 3600, Some(1)),
    ];
    for (current, version, now, want) in cases {
        let body = json!({"state": {"reported": {"r": 1}}, "version": version, "clientToken": "ct"});
        match (up(current, body, now), want) {
            (Ok(out), Some(v)) => {
                assert_eq!(out.accepted["version"], json!(v), "{current:?} {version}");
                assert_eq!(out.stored.live().map(|s| s.version), Some(v));
            }
            (Err(r), None) => {
                assert_eq!(
                    r.payload(),
                    json!({"code": 409, "message": "Version conflict", "timestamp": now,
                                               "clientToken": "ct"})
                );
            }
            (got, _) => panic!("{current:?} version {version}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn document_size_limit() {
    let limits = Limits {
        max_document_bytes: 30,
        ..Limits::default()
    };
    // {"desired":{"k":"xxxxxxxxxx"}} is exactly 30 bytes.
    let fits = json!({"state": {"desired": {"k": "x".repeat(10)}}});
    let stored = update(None, fits.to_string().as_bytes(), 1, &limits).unwrap().stored;
    let grow = json!({"state": {"reported": {"m": 1}}, "clientToken": "big"});
    let r = update(Some(&stored), grow.to_string().as_bytes(), 2, &limits).unwrap_err();
    assert_eq!(
        r.payload(),
        json!({"code": 413, "message": "The payload exceeds the maximum size allowed", "timestamp": 2,
               "clientToken": "big"})
    );
    // Metadata does not count, and a request that shrinks the state is fine.
    let shrink = json!({"state": {"desired": {"k": "y"}}});
    assert!(update(Some(&stored), shrink.to_string().as_bytes(), 3, &limits).is_ok());
    let over = json!({"state": {"desired": {"k": "x".repeat(11)}}});
    assert_eq!(
        update(None, over.to_string().as_bytes(), 1, &limits)
            .unwrap_err()
            .code(),
        413
    );
}

#[test]
fn rejections_echo_a_valid_client_token_only() {
    let limits = Limits::default();
    let cases: [(&[u8], u16, &str, Option<&str>); 6] = [
        (
            br#"{"clientToken":"abc"}"#,
            400,
            "Missing required node: state",
            Some("abc"),
        ),
        (
            br#"{"clientToken":"abc","state":{"desired":2}}"#,
            400,
            "Desired node must be an object",
            Some("abc"),
        ),
        (
            br#"{"clientToken":"abc","state":{"reported":2}}"#,
            400,
            "Reported node must be an object",
            Some("abc"),
        ),
        (
            br#"{"clientToken":"abc","state":{"x":{}}}"#,
            400,
            "State contains an invalid node",
            Some("abc"),
        ),
        (
            br#"{"clientToken":["abc"],"state":{}}"#,
            400,
            "Invalid clientToken",
            None,
        ),
        (
            b"{\"clientToken\":\"abc\",\"state\":{\"desired\":\"\xc3\x28\"}}",
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
            None,
        ),
    ];
    for (body, code, message, token) in cases {
        let r = update(None, body, 77, &limits).unwrap_err();
        assert_eq!(
            (r.code(), r.error.to_string().as_str(), r.client_token.as_deref()),
            (code, message, token)
        );
        assert_eq!(r.timestamp, 77);
    }
}

#[test]
fn get_rules() {
    let limits = Limits::default();
    let stored = build(&[(
        json!({"state": {"desired": {"a": 1}, "reported": {"a": 2, "b": 3}}}),
        10,
    )]);
    let doc = get(Some(&stored), "thing1", br#"{"clientToken":"g1"}"#, 20, &limits).unwrap();
    assert_eq!(
        doc,
        json!({"state": {"desired": {"a": 1}, "reported": {"a": 2, "b": 3}, "delta": {"a": 1}},
               "metadata": {"desired": {"a": {"timestamp": 10}},
                            "reported": {"a": {"timestamp": 10}, "b": {"timestamp": 10}}},
               "version": 1, "timestamp": 20, "clientToken": "g1"})
    );
    let tomb = StoredShadow::Deleted {
        version: 1,
        deleted_at: 15,
    };
    for current in [None, Some(&tomb)] {
        let r = get(current, "thing1", br#"{"clientToken":"g2"}"#, 20, &limits).unwrap_err();
        assert_eq!(
            r.payload(),
            json!({"code": 404, "message": "No shadow exists with name: 'thing1'", "timestamp": 20,
                   "clientToken": "g2"})
        );
    }
    assert_eq!(
        get(Some(&stored), "t", b"nope", 20, &limits).unwrap_err().error,
        ShadowError::InvalidJson
    );
    let long = format!(r#"{{"clientToken":"{}"}}"#, "x".repeat(65));
    assert_eq!(
        get(Some(&stored), "t", long.as_bytes(), 20, &limits).unwrap_err().error,
        ShadowError::InvalidClientToken
    );
    // No delta member when desired matches reported.
    let same = build(&[(json!({"state": {"desired": {"a": 1}, "reported": {"a": 1.0}}}), 10)]);
    assert_eq!(
        get_doc(Some(&same), 11).unwrap()["state"],
        json!({"desired": {"a": 1}, "reported": {"a": 1.0}})
    );
}

#[test]
fn delete_rules() {
    let limits = Limits::default();
    let stored = build(&[
        (json!({"state": {"desired": {"a": 1}}}), 1),
        (json!({"state": {"desired": {"a": 2}}}), 2),
        (json!({"state": {"desired": {"a": 3}}}), 3),
        (json!({"state": {"desired": {"a": 4}}}), 4),
    ]);
    let out = delete(Some(&stored), "thing1", b"", 1591057529, &limits).unwrap();
    assert_eq!(out.accepted, json!({"version": 4, "timestamp": 1591057529}));
    assert_eq!(
        out.stored,
        StoredShadow::Deleted {
            version: 4,
            deleted_at: 1591057529
        }
    );

    let out = delete(
        Some(&stored),
        "thing1",
        br#"{"clientToken":"d1","version":4}"#,
        9,
        &limits,
    )
    .unwrap();
    assert_eq!(out.accepted, json!({"version": 4, "timestamp": 9, "clientToken": "d1"}));
    // The content is otherwise ignored, even when it is not JSON.
    assert!(delete(Some(&stored), "thing1", b"\x00\xffwhatever", 9, &limits).is_ok());

    let r = delete(
        Some(&stored),
        "thing1",
        br#"{"clientToken":"d2","version":3}"#,
        9,
        &limits,
    )
    .unwrap_err();
    assert_eq!(
        r.payload(),
        json!({"code": 409, "message": "Version conflict", "timestamp": 9, "clientToken": "d2"})
    );

    let tomb = out.stored;
    for current in [None, Some(&tomb)] {
        let r = delete(current, "lamp", b"", 10, &limits).unwrap_err();
        assert_eq!(
            r.payload(),
            json!({"code": 404, "message": "No shadow exists with name: 'lamp'", "timestamp": 10})
        );
    }
    assert_eq!(get_doc(Some(&tomb), 10).unwrap_err().code(), 404);
}

#[test]
fn recreated_shadow_follows_the_deleted_version() {
    let limits = Limits::default();
    let stored = build(&[
        (json!({"state": {"reported": {"a": 1}}}), 1),
        (json!({"state": {"reported": {"a": 2}}}), 2),
    ]);
    let tomb = delete(Some(&stored), "t", b"", 100, &limits).unwrap().stored;
    // Within 48 hours: the version follows the deleted one, and the old state is gone.
    let out = up(
        Some(&tomb),
        json!({"state": {"desired": {"b": 1}}}),
        100 + 48 * 3600 - 1,
    )
    .unwrap();
    assert_eq!(out.accepted["version"], json!(3));
    assert_eq!(out.documents["previous"], Value::Null);
    assert_eq!(out.documents["current"]["state"], json!({"desired": {"b": 1}}));
    // After 48 hours: a fresh start.
    let out = up(Some(&tomb), json!({"state": {"desired": {"b": 1}}}), 100 + 48 * 3600).unwrap();
    assert_eq!(out.accepted["version"], json!(1));
    assert!(tomb.is_expired(100 + 48 * 3600, &limits));
}
