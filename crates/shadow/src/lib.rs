//! The pure core of the AWS IoT Device Shadow service: documents in, documents out.
//!
//! This crate does no I/O and has no async. The caller loads the [`StoredShadow`] of one shadow
//! (or `None` if the store has nothing), hands it with the request payload and the clock to
//! [`update`], [`get`] or [`delete`], stores what comes back and publishes the payloads:
//!
//! | call | on success | on failure |
//! | --- | --- | --- |
//! | [`update`] | [`UpdateOutcome`]: the new [`StoredShadow`], the `/update/accepted` payload, the `/update/delta` payload (when one is due) and the `/update/documents` payload | [`Rejection`]: `/update/rejected` |
//! | [`get`] | the `/get/accepted` payload | `/get/rejected` |
//! | [`delete`] | [`DeleteOutcome`]: the tombstone to store and the `/delete/accepted` payload | `/delete/rejected` |
//!
//! The same payloads are the HTTP response bodies of UpdateThingShadow, GetThingShadow and
//! DeleteThingShadow; [`Rejection::code`] is the HTTP status of a failure.
//!
//! The rules are those of the AWS IoT Developer Guide (device shadow documents, data flow, MQTT
//! topics, REST API, error messages and service limits). A [`StoredShadow`] is `serde`
//! serializable, so the store keeps it as a JSON document; a deleted shadow leaves a tombstone
//! that keeps its version for [`Limits::deleted_version_retention_secs`] (48 hours), because a
//! shadow recreated within that time continues the deleted one's version.

mod document;
mod error;
mod json;
mod limits;
mod ops;
mod request;

pub use document::{Sections, Shadow, StoredShadow};
pub use error::{Rejection, ShadowError};
pub use limits::{
    Limits, MAX_SHADOW_NAME_BYTES, MAX_THING_NAME_BYTES, NameError, validate_shadow_name, validate_thing_name,
};
pub use ops::{DeleteOutcome, UpdateOutcome, delete, get, update};

#[cfg(test)]
mod fixtures_tests;
#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod prop_tests;
