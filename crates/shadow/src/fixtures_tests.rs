//! The examples of the AWS IoT Developer Guide's Device Shadow pages, as fixtures.

use serde_json::{Value, json};

use crate::{Limits, Shadow, StoredShadow, UpdateOutcome, delete, get, update};

fn up(current: Option<&StoredShadow>, body: Value, now: u64) -> UpdateOutcome {
    update(current, body.to_string().as_bytes(), now, &Limits::default()).expect("accepted")
}

/// An empty shadow at `version`, so the next update gets `version + 1` as in the examples.
fn at_version(version: u64) -> StoredShadow {
    StoredShadow::Live(Shadow {
        version,
        ..Shadow::default()
    })
}

/// device-shadow-document.md, "Example document" (and the classic page's, with a delta).
#[test]
fn example_document() {
    let request = json!({
        "state": {
            "desired": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]},
            "reported": {"color": "GREEN"}
        },
        "clientToken": "UniqueClientToken"
    });
    let out = up(Some(&at_version(9)), request, 12345);
    let got = get(
        Some(&out.stored),
        "thing",
        br#"{"clientToken":"UniqueClientToken"}"#,
        123456789,
        &Limits::default(),
    );
    assert_eq!(
        got.unwrap(),
        json!({
            "state": {
                "desired": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]},
                "reported": {"color": "GREEN"},
                "delta": {"color": "RED", "sequence": ["RED", "GREEN", "BLUE"]}
            },
            "metadata": {
                "desired": {"color": {"timestamp": 12345}, "sequence": {"timestamp": 12345}},
                "reported": {"color": {"timestamp": 12345}}
            },
            "version": 10,
            "clientToken": "UniqueClientToken",
            "timestamp": 123456789
        })
    );
}

/// device-shadow-document.md, "Delta state": the first example.
#[test]
fn delta_state_example() {
    let stored = up(
        Some(&at_version(15)),
        json!({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}),
        12345,
    );
    let out = up(
        Some(&stored.stored),
        json!({"state": {"desired": {"color": "RED", "state": "STOP"}}}),
        12345,
    );
    assert_eq!(
        out.delta.unwrap(),
        json!({"state": {"color": "RED", "state": "STOP"},
               "metadata": {"color": {"timestamp": 12345}, "state": {"timestamp": 12345}},
               "version": 17, "timestamp": 12345})
    );
    let doc = get(Some(&out.stored), "t", b"", 123456789, &Limits::default()).unwrap();
    assert_eq!(
        doc["state"],
        json!({"desired": {"color": "RED", "state": "STOP"}, "reported": {"color": "GREEN", "engine": "ON"},
               "delta": {"color": "RED", "state": "STOP"}})
    );
}

/// device-shadow-document.md, "Delta state": nested objects keep the path to the root.
#[test]
fn nested_delta_example() {
    let body = json!({"state": {
        "desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}},
        "reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}
    }});
    let out = up(Some(&at_version(17)), body, 1);
    assert_eq!(
        out.delta.as_ref().unwrap()["state"],
        json!({"lights": {"color": {"g": 255}}})
    );
    let doc = get(Some(&out.stored), "t", b"", 123456789, &Limits::default()).unwrap();
    assert_eq!(doc["state"]["delta"], json!({"lights": {"color": {"g": 255}}}));
    assert_eq!(doc["version"], json!(18));
}

/// device-shadow-document.md, "Array values in shadow documents".
#[test]
fn arrays_are_replaced_whole_and_cannot_hold_null() {
    let initial = up(
        None,
        json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}),
        1,
    );
    let fin = up(
        Some(&initial.stored),
        json!({"state": {"desired": {"colors": ["RED"]}}}),
        2,
    );
    let doc = get(Some(&fin.stored), "t", b"", 3, &Limits::default()).unwrap();
    assert_eq!(doc["state"]["desired"], json!({"colors": ["RED"]}));
    let bad = json!({"state": {"desired": {"colors": [null, "RED", "GREEN"]}}});
    let r = update(Some(&fin.stored), bad.to_string().as_bytes(), 4, &Limits::default()).unwrap_err();
    assert_eq!(
        (r.code(), r.error.to_string()),
        (400, "State contains an invalid node".to_string())
    );
}

/// device-shadow-document.md, "Empty shadow document properties".
#[test]
fn empty_sections() {
    let both = up(
        None,
        json!({"state": {"desired": {"color": "RED"}, "reported": {"temp": 55}}}),
        1,
    );
    let out = up(
        Some(&both.stored),
        json!({"state": {"reported": {"color": "red"}, "desired": null}}),
        2,
    );
    let doc = get(Some(&out.stored), "t", b"", 3, &Limits::default()).unwrap();
    assert_eq!(doc["state"], json!({"reported": {"color": "red", "temp": 55}}));
    assert_eq!(
        doc["metadata"],
        json!({"reported": {"color": {"timestamp": 2}, "temp": {"timestamp": 1}}})
    );
    // Neither section: the empty, valid document.
    let out = up(Some(&out.stored), json!({"state": {"reported": null}}), 4);
    let doc = get(Some(&out.stored), "t", b"", 5, &Limits::default()).unwrap();
    assert_eq!(doc["state"], json!({}));
    assert_eq!(doc["metadata"], json!({}));
}

/// device-shadow-data-flow.md: an app requests a change, the device reports it, an app deletes
/// a property.
#[test]
fn data_flow() {
    let app = up(
        None,
        json!({"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}}),
        1,
    );
    assert_eq!(
        app.delta.as_ref().unwrap()["state"],
        json!({"color": {"r": 10}, "engine": "ON"})
    );
    let device = up(
        Some(&app.stored),
        json!({"state": {"reported": {"color": {"r": 10}, "engine": "ON"}}}),
        2,
    );
    assert_eq!(device.delta, None);
    assert_eq!(
        device.accepted,
        json!({"state": {"reported": {"color": {"r": 10}, "engine": "ON"}},
               "metadata": {"reported": {"color": {"r": {"timestamp": 2}}, "engine": {"timestamp": 2}}},
               "version": 2, "timestamp": 2})
    );
    let doc = get(Some(&device.stored), "t", b"", 3, &Limits::default()).unwrap();
    assert!(doc["state"].get("delta").is_none());
    let removal = up(Some(&device.stored), json!({"state": {"desired": {"engine": null}}}), 4);
    let doc = get(Some(&removal.stored), "t", b"", 5, &Limits::default()).unwrap();
    assert_eq!(doc["state"]["desired"], json!({"color": {"r": 10}}));
    assert_eq!(doc["state"]["reported"], json!({"color": {"r": 10}, "engine": "ON"}));
}

/// device-shadow-data-flow.md, "Optimistic locking".
#[test]
fn optimistic_locking_example() {
    let initial = up(
        Some(&at_version(9)),
        json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}),
        1,
    );
    assert_eq!(initial.stored.live().unwrap().version, 10);
    let stale = json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 9,
                       "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"});
    let r = update(
        Some(&initial.stored),
        stale.to_string().as_bytes(),
        2,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        r.payload(),
        json!({"code": 409, "message": "Version conflict", "timestamp": 2,
               "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"})
    );
    let fresh = up(
        Some(&initial.stored),
        json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 10}),
        3,
    );
    assert_eq!(
        fresh.documents["current"]["state"],
        json!({"desired": {"colors": ["BLUE"]}})
    );
    assert_eq!(fresh.documents["current"]["version"], json!(11));
}

/// device-shadow-data-flow.md, "Deleting a shadow": the abbreviated accepted document.
#[test]
fn delete_example() {
    let stored = at_version(4);
    let out = delete(Some(&stored), "t", b"", 1591057529, &Limits::default()).unwrap();
    assert_eq!(out.accepted, json!({"version": 4, "timestamp": 1591057529}));
}

/// iot-device-shadows.md, "Message order": deltas are cumulative and carry increasing versions.
#[test]
fn message_order_example() {
    let initial = up(
        Some(&at_version(8)),
        json!({"state": {"reported": {"color": "blue"}}}),
        123456776,
    );
    assert_eq!(initial.accepted["version"], json!(9));
    let first = up(
        Some(&initial.stored),
        json!({"state": {"desired": {"color": "RED"}}}),
        123456777,
    );
    let second = up(
        Some(&first.stored),
        json!({"state": {"desired": {"color": "GREEN"}}}),
        123456778,
    );
    let (d1, d2) = (first.delta.unwrap(), second.delta.unwrap());
    assert_eq!(d1["state"], json!({"color": "RED"}));
    assert_eq!(d2["state"], json!({"color": "GREEN"}));
    assert!(d2["version"].as_u64() > d1["version"].as_u64());
    let fin = up(
        Some(&second.stored),
        json!({"state": {"reported": {"color": "GREEN"}}}),
        123456779,
    );
    assert_eq!(fin.accepted["version"], json!(12));
    assert!(
        get(Some(&fin.stored), "t", b"", 1, &Limits::default()).unwrap()["state"]
            .get("delta")
            .is_none()
    );
}

/// device-shadow-mqtt.md, "/update/delta" message body rules.
#[test]
fn delta_body_rules() {
    let base = up(
        None,
        json!({"state": {"desired": {"same": 1, "differs": 1, "only_desired": 1},
                                         "reported": {"same": 1, "differs": 2, "only_reported": 1,
                                                      "deleted": 1}}}),
        1,
    );
    let out = up(
        Some(&base.stored),
        json!({"state": {"desired": {"deleted": 1}, "reported": {"deleted": null}}}),
        2,
    );
    // Every differing desired attribute, whether in this update or stored; none that match;
    // none that are only reported; and one deleted from reported but still desired.
    assert_eq!(
        out.delta.unwrap()["state"],
        json!({"differs": 1, "only_desired": 1, "deleted": 1})
    );
}

/// device-shadow-document.md, "Request state document" with both sections, and the response
/// state documents' formats.
#[test]
fn request_and_response_documents() {
    let body = json!({"state": {"desired": {"attribute1": 2, "attribute2": "string2", "attributeN": true},
                                "reported": {"attribute1": 1, "attribute2": "string1", "attributeN": true}},
                      "clientToken": "token", "version": 0});
    let out = up(None, body, 42);
    let meta =
        json!({"attribute1": {"timestamp": 42}, "attribute2": {"timestamp": 42}, "attributeN": {"timestamp": 42}});
    assert_eq!(
        out.accepted,
        json!({"state": {"desired": {"attribute1": 2, "attribute2": "string2", "attributeN": true},
                         "reported": {"attribute1": 1, "attribute2": "string1", "attributeN": true}},
               "metadata": {"desired": meta, "reported": meta},
               "timestamp": 42, "clientToken": "token", "version": 1})
    );
    assert_eq!(
        out.delta.unwrap(),
        json!({"state": {"attribute1": 2, "attribute2": "string2"},
               "metadata": {"attribute1": {"timestamp": 42}, "attribute2": {"timestamp": 42}},
               "timestamp": 42, "clientToken": "token", "version": 1})
    );
    let docs = out.documents;
    assert_eq!(docs["previous"], Value::Null);
    assert_eq!(docs["current"]["metadata"], json!({"desired": meta, "reported": meta}));
    assert_eq!(
        (docs["timestamp"].clone(), docs["clientToken"].clone()),
        (json!(42), json!("token"))
    );
}
