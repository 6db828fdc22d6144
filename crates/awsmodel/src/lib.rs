//! AWS's service models as Rust tables, and what is pure about serving them: matching a request
//! to an operation ([`route`]) and turning its parts into one validated input ([`bind`]).
//!
//! The tables in [`generated`] are made by `cargo run -p modelgen` from the botocore models in
//! `models/` and checked in; no I/O happens here.

pub mod generated;
mod model;
pub mod bind;
pub mod output;
pub mod route;

pub use model::*;

/// A service model by botocore name (`iot`, `iot-data`, ...).
pub fn service(name: &str) -> Option<&'static Service> {
    generated::ALL.iter().copied().find(|s| s.name == name)
}
