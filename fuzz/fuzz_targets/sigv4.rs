//! Fuzz target: arbitrary bytes as an HTTP request (method line, target line `path?query`,
//! `name: value` header lines, an empty line, the body) through SigV4 verification now and at
//! the request's own X-Amz-Date, and `parse_amz_date` on every line. None may panic;
//! `verify` must equal `verify_head` + `finish`; a request signed with `sign` must verify, and
//! no longer once its body changes.
#![no_main]

#[path = "../checks/sigv4.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
