//! Fuzz target: arbitrary bytes as a Device Shadow request (update, get and delete payloads)
//! applied to no shadow, fixed live and deleted shadows and, when the input has a NUL byte, to
//! the stored shadow JSON before it (the request is then what follows). None may panic; an
//! accepted update must give the next version and a document within the size limit, which
//! the store reads back as it was written, and which can then be read and deleted.
#![no_main]

#[path = "../checks/shadow.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
