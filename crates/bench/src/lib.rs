//! Ferrite's benchmark tools: `ferrite-bench`, an MQTT load generator, and `ferrite-relay`, a
//! minimal MQTT forwarder that is the ceiling the brokers are compared with.
//!
//! The generator is built on the `mqtt` codec over tokio TCP, one task per client. Publishers
//! copy a PUBLISH encoded once by [`mqtt::encode_publish`] and patch the packet id and the
//! 16-byte payload header (send time, publisher id, sequence number, see [`payload`]); writes are
//! batched and reads use large buffers. Subscribers parse frames in place, measure latency into an
//! HDR histogram and keep one bit per (publisher, sequence) to count lost and duplicate messages.
//!
//! [`run`] is the entry point: it takes [`Options`] (the command line) and returns a [`Report`].

pub mod client;
pub mod error;
pub mod options;
pub mod payload;
pub mod relay;
pub mod report;
pub mod run;
pub mod stats;

pub use error::BenchError;
pub use options::{Options, Scenario};
pub use report::Report;
pub use run::run;
