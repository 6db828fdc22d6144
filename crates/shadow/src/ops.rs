//! The three shadow operations: update, get and delete, each from stored shadow and request to
//! new stored shadow and response payloads.

use serde_json::{Map, Value};

use crate::json::{delta, delta_metadata, merge, request_metadata};
use crate::request::{StateRequest, parse_plain, parse_update};
use crate::{Limits, Rejection, Sections, Shadow, ShadowError, StoredShadow};

/// What an accepted update produces.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The shadow to store (always [`StoredShadow::Live`]).
    pub stored: StoredShadow,
    /// The `/update/accepted` payload (also the UpdateThingShadow response body): the `state`
    /// of the request as sent, its `metadata`, the new `version`, `timestamp` and `clientToken`.
    pub accepted: Value,
    /// The `/update/delta` payload, when the request had a `desired` object and desired still
    /// differs from reported: the whole delta, its metadata, `version`, `timestamp`, `clientToken`.
    pub delta: Option<Value>,
    /// The `/update/documents` payload: `previous` (`null` when the shadow did not exist) and
    /// `current` documents (`state`, `metadata`, `version`), `timestamp` and `clientToken`.
    pub documents: Value,
}

/// What an accepted delete produces.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOutcome {
    /// The tombstone to store in place of the shadow (it keeps the version for 48 hours).
    pub stored: StoredShadow,
    /// The `/delete/accepted` payload (also the DeleteThingShadow response body): the deleted
    /// shadow's `version`, `timestamp` and `clientToken`.
    pub accepted: Value,
}

/// Applies an update request (the `/update` payload or UpdateThingShadow body) to the stored
/// shadow (`None` when the store has nothing for it) at `now` (epoch seconds).
///
/// Creates the shadow if it does not exist; a shadow deleted within the retention time continues
/// its version. A request `version` must equal the current one (409 otherwise). Each accepted
/// update increments the version by one, even one that changes nothing.
pub fn update(
    current: Option<&StoredShadow>,
    request: &[u8],
    now: u64,
    limits: &Limits,
) -> Result<UpdateOutcome, Rejection> {
    let req = parse_update(request, now, limits)?;
    let token = req.client_token;
    let fail = |error| Rejection::new(error, now, token.clone());
    let base = current.map_or(0, |stored| stored.base_version(now, limits));
    if req.version.is_some_and(|v| v != base) {
        return Err(fail(ShadowError::VersionConflict));
    }
    let previous = current.and_then(StoredShadow::live);
    let mut next = previous.cloned().unwrap_or_default();
    next.version = base.checked_add(1).ok_or_else(|| fail(ShadowError::InternalFailure))?;

    let mut echo_state = Value::Null;
    let mut echo_meta = None;
    let mut touched_desired = false;
    match req.state {
        StateRequest::Clear => {
            next.state = Sections::default();
            next.metadata = Sections::default();
        }
        StateRequest::Sections { desired, reported } => {
            touched_desired = desired.as_ref().is_some_and(Value::is_object);
            apply(
                &mut next.state.desired,
                &mut next.metadata.desired,
                desired.as_ref(),
                now,
            );
            apply(
                &mut next.state.reported,
                &mut next.metadata.reported,
                reported.as_ref(),
                now,
            );
            let (mut state, mut meta) = (Map::new(), Map::new());
            for (name, section) in [("desired", desired), ("reported", reported)] {
                if let Some(section) = section {
                    meta.insert(name.into(), request_metadata(&section, now));
                    state.insert(name.into(), section);
                }
            }
            echo_state = Value::Object(state);
            echo_meta = Some(Value::Object(meta));
        }
    }
    let size = serde_json::to_vec(&next.state).map_or(usize::MAX, |bytes| bytes.len());
    if size > limits.max_document_bytes {
        return Err(fail(ShadowError::PayloadTooLarge));
    }

    let mut accepted = Map::new();
    accepted.insert("state".into(), echo_state);
    if let Some(meta) = echo_meta {
        accepted.insert("metadata".into(), meta);
    }
    accepted.insert("version".into(), next.version.into());

    let delta = touched_desired.then(|| delta_payload(&next)).flatten();

    let mut documents = Map::new();
    documents.insert("previous".into(), previous.map_or(Value::Null, Shadow::document));
    documents.insert("current".into(), next.document());

    Ok(UpdateOutcome {
        stored: StoredShadow::Live(next),
        accepted: envelope(accepted, now, &token),
        delta: delta.map(|d| envelope(d, now, &token)),
        documents: envelope(documents, now, &token),
    })
}

/// Answers a get request (the `/get` payload, usually empty, or the GetThingShadow body): the
/// `/get/accepted` payload with `state` (`desired`, `reported` and `delta` when there is one),
/// `metadata`, `version`, `timestamp` and `clientToken`. `name` is what the 404 message names
/// (the thing name for the classic shadow, the shadow name for a named one).
pub fn get(
    current: Option<&StoredShadow>,
    name: &str,
    request: &[u8],
    now: u64,
    limits: &Limits,
) -> Result<Value, Rejection> {
    let req = parse_plain(request, now, limits, false)?;
    let Some(shadow) = current.and_then(StoredShadow::live) else {
        return Err(Rejection::new(
            ShadowError::NoShadow { name: name.into() },
            now,
            req.client_token,
        ));
    };
    let mut state = match shadow.state.to_value() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(desired) = &shadow.state.desired {
        let d = delta(desired, shadow.state.reported.as_ref());
        if !d.is_empty() {
            state.insert("delta".into(), Value::Object(d));
        }
    }
    let mut doc = Map::new();
    doc.insert("state".into(), Value::Object(state));
    doc.insert("metadata".into(), shadow.metadata.to_value());
    doc.insert("version".into(), shadow.version.into());
    Ok(envelope(doc, now, &req.client_token))
}

/// Deletes the shadow (the `/delete` payload, whose content is ignored apart from a
/// `clientToken` and a `version`, which must then match; or the DeleteThingShadow body).
/// `name` is what the 404 message names.
pub fn delete(
    current: Option<&StoredShadow>,
    name: &str,
    request: &[u8],
    now: u64,
    limits: &Limits,
) -> Result<DeleteOutcome, Rejection> {
    let req = parse_plain(request, now, limits, true)?;
    let token = req.client_token;
    let Some(shadow) = current.and_then(StoredShadow::live) else {
        return Err(Rejection::new(ShadowError::NoShadow { name: name.into() }, now, token));
    };
    if req.version.is_some_and(|v| v != shadow.version) {
        return Err(Rejection::new(ShadowError::VersionConflict, now, token));
    }
    let mut accepted = Map::new();
    accepted.insert("version".into(), shadow.version.into());
    Ok(DeleteOutcome {
        stored: StoredShadow::Deleted {
            version: shadow.version,
            deleted_at: now,
        },
        accepted: envelope(accepted, now, &token),
    })
}

/// Applies one request section (absent, `null` or an object) to a stored section.
fn apply(
    section: &mut Option<Map<String, Value>>,
    meta: &mut Option<Map<String, Value>>,
    patch: Option<&Value>,
    now: u64,
) {
    match patch {
        Some(Value::Object(patch)) => {
            let mut s = section.take().unwrap_or_default();
            let mut m = meta.take().unwrap_or_default();
            merge(&mut s, &mut m, patch, now);
            *section = (!s.is_empty()).then_some(s);
            *meta = (!m.is_empty()).then_some(m);
        }
        Some(_) => {
            *section = None;
            *meta = None;
        }
        None => {}
    }
}

/// The `/update/delta` body (without timestamp and token), if desired differs from reported.
fn delta_payload(shadow: &Shadow) -> Option<Map<String, Value>> {
    let desired = shadow.state.desired.as_ref()?;
    let d = delta(desired, shadow.state.reported.as_ref());
    if d.is_empty() {
        return None;
    }
    let meta = shadow
        .metadata
        .desired
        .as_ref()
        .map(|m| delta_metadata(&d, m))
        .unwrap_or_default();
    let mut doc = Map::new();
    doc.insert("state".into(), Value::Object(d));
    doc.insert("metadata".into(), Value::Object(meta));
    doc.insert("version".into(), shadow.version.into());
    Some(doc)
}

/// Adds the response `timestamp` and, when the request had one, the `clientToken`.
fn envelope(mut doc: Map<String, Value>, now: u64, token: &Option<String>) -> Value {
    doc.insert("timestamp".into(), now.into());
    if let Some(token) = token {
        doc.insert("clientToken".into(), token.clone().into());
    }
    Value::Object(doc)
}
