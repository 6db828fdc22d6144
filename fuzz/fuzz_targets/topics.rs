//! Fuzz target: topic names and filters from arbitrary bytes (cut in two at the first newline,
//! else in halves) through the mqtt topic functions, the reserved-topic table, the subscription
//! router and the retained store; none may panic, and the router and the retained store must
//! agree with `mqtt::topic::matches`.
#![no_main]

#[path = "../checks/topics.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
