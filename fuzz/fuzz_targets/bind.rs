//! Fuzz target: arbitrary bytes as a request to one operation of one AWS model, bound and
//! validated by `awsmodel::bind` (see `checks/bind.rs`). Nothing may panic.
#![no_main]

#[path = "../checks/bind.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
