//! Fuzz target: arbitrary bytes as an AWS IoT SQL statement (each SQL version), an expression
//! and a substitution template, evaluated against fixed JSON and binary payloads, and as a JSON
//! payload; none may panic, and JSON the engine prints must read back to the same text.
#![no_main]

#[path = "../checks/iotsql.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
