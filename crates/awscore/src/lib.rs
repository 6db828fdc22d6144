//! What every AWS-shaped service of Ferrite shares, in one place: ARNs ([`arn`]), ids
//! ([`id`]), the clock ([`clock`]) and pagination tokens ([`page`]). Pure but for the clock
//! and the OS's random source. (Not named `core`: that is Rust's own crate.)

pub mod arn;
pub mod clock;
pub mod id;
pub mod page;

pub use arn::Arn;
