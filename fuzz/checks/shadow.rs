//! The checks of the `shadow` fuzz target, shared with its corpus replay test (`#[path]`-included by
//! both): arbitrary bytes as a Device Shadow request (update, get and delete payloads)
//! applied to no shadow, fixed live and deleted shadows and, when the input has a NUL byte, to
//! the stored shadow JSON before it (the request is then what follows). None may panic; an
//! accepted update must give the next version and a document within the size limit, which
//! the store reads back as it was written, and which can then be read and deleted.

use shadow::{Limits, StoredShadow, delete, get, update, validate_shadow_name, validate_thing_name};
use std::sync::LazyLock;


/// The clock (epoch seconds) of every request.
const NOW: u64 = 1_700_000_000;

/// A live shadow with both sections, nested state and its metadata.
const LIVE: &str = r#"{"status":"live","state":{"desired":{"color":"red","n":{"a":1,"b":[1,2]}},"reported":{"color":"blue","on":true}},"metadata":{"desired":{"color":{"timestamp":100},"n":{"a":{"timestamp":100},"b":{"timestamp":100}}},"reported":{"color":{"timestamp":90},"on":{"timestamp":90}}},"version":7}"#;

/// The shadows every request is applied to, as the store keeps them.
static STORED: LazyLock<Vec<StoredShadow>> = LazyLock::new(|| {
    vec![
        serde_json::from_str(LIVE).expect("LIVE is a stored shadow"),
        // Deleted ten seconds ago: an update continues its version.
        StoredShadow::Deleted { version: 5, deleted_at: NOW - 10 },
        // Deleted long ago: an update starts again from version 1.
        StoredShadow::Deleted { version: 9, deleted_at: NOW - 1_000_000 },
    ]
});

/// AWS's limits, and tight ones that make the size, depth and token checks bite.
static LIMITS: LazyLock<[Limits; 2]> = LazyLock::new(|| {
    let tight = Limits { max_document_bytes: 64, max_depth: 2, max_client_token_bytes: 4, ..Limits::default() };
    [Limits::default(), tight]
});

pub fn check(data: &[u8]) {
    let first_line = String::from_utf8_lossy(data.split(|&b| b == b'\n').next().unwrap_or_default());
    let _ = (validate_thing_name(&first_line), validate_shadow_name(&first_line));
    for limits in LIMITS.iter() {
        match data.iter().position(|&b| b == 0) {
            Some(nul) => {
                let (doc, request) = (&data[..nul], &data[nul + 1..]);
                if let Ok(stored) = serde_json::from_slice::<StoredShadow>(doc) {
                    apply(Some(&stored), request, limits, false);
                }
                apply(None, request, limits, true);
            }
            None => {
                apply(None, data, limits, true);
                for stored in STORED.iter() {
                    apply(Some(stored), data, limits, true);
                }
            }
        }
    }
}

/// The version an update of `stored` must produce.
fn next_version(stored: Option<&StoredShadow>, limits: &Limits) -> Option<u64> {
    let base = match stored {
        None => 0,
        Some(s @ StoredShadow::Deleted { version, .. }) => {
            if s.is_expired(NOW, limits) {
                0
            } else {
                *version
            }
        }
        Some(StoredShadow::Live(s)) => s.version,
    };
    base.checked_add(1)
}

/// Applies the request as an update, a get and a delete. `trusted`: the stored shadow is one
/// that updates could have written, so what an update gives must survive the store.
fn apply(stored: Option<&StoredShadow>, request: &[u8], limits: &Limits, trusted: bool) {
    match update(stored, request, NOW, limits) {
        Ok(out) => {
            let live = out.stored.live().expect("an accepted update stores a live shadow");
            assert_eq!(Some(live.version), next_version(stored, limits), "the version after an update of {stored:?}");
            let size = serde_json::to_vec(&live.state).expect("state serializes").len();
            assert!(size <= limits.max_document_bytes, "an accepted update left {size} bytes of state");
            let _ = (out.accepted.to_string(), out.delta.as_ref().map(|d| d.to_string()), out.documents.to_string());
            if trusted {
                let text = serde_json::to_string(&out.stored).expect("the stored shadow serializes");
                let back: StoredShadow = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} does not read back: {e}"));
                assert_eq!(back, out.stored, "the stored shadow changed through the store");
            }
            get(Some(&out.stored), "thing", b"", NOW, limits).expect("an updated shadow can be read");
            let deleted = delete(Some(&out.stored), "thing", b"", NOW, limits).expect("an updated shadow can be deleted");
            assert_eq!(deleted.stored, StoredShadow::Deleted { version: live.version, deleted_at: NOW });
            // The same request again, on the shadow it made and on its tombstone.
            if let Ok(again) = update(Some(&out.stored), request, NOW + 1, limits) {
                assert_eq!(again.stored.live().map(|s| s.version), live.version.checked_add(1));
            }
            if let Ok(again) = update(Some(&deleted.stored), request, NOW + 1, limits) {
                assert_eq!(again.stored.live().map(|s| s.version), live.version.checked_add(1));
            }
        }
        Err(rejection) => {
            let _ = (rejection.code(), rejection.payload().to_string(), rejection.error.to_string());
        }
    }
    match get(stored, "thing", request, NOW, limits) {
        Ok(doc) => {
            assert!(stored.and_then(StoredShadow::live).is_some(), "get answered for no shadow");
            let _ = doc.to_string();
        }
        Err(rejection) => {
            let _ = rejection.payload().to_string();
        }
    }
    match delete(stored, "thing", request, NOW, limits) {
        Ok(out) => {
            let version = stored.and_then(StoredShadow::live).map(|s| s.version).expect("delete answered for no shadow");
            assert_eq!(out.stored, StoredShadow::Deleted { version, deleted_at: NOW });
            let _ = out.accepted.to_string();
        }
        Err(rejection) => {
            let _ = rejection.payload().to_string();
        }
    }
}
