//! Fuzz target: arbitrary bytes as an AWS IoT policy document, evaluated when it parses for a
//! few actions and resources under a few sets of policy variables; the glob matcher and the
//! variable substitution on the input's two halves. None may panic, and the decisions must
//! be consistent (a policy that allows everything allows each request; a policy twice decides
//! as once).
#![no_main]

#[path = "../checks/policy.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
