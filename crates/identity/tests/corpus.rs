//! Replays the fuzzers' `policy`, `sigv4` corpora (`fuzz/corpus/...`) through the checks of those
//! fuzz targets (`fuzz/checks/`, shared with the targets), so CI runs every seed.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/policy.rs"]
mod policy;

#[path = "../../../fuzz/checks/sigv4.rs"]
mod sigv4;

#[test]
fn policy_corpus_passes_the_fuzz_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "policy", 5, policy::check);
}

#[test]
fn sigv4_corpus_passes_the_fuzz_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "sigv4", 3, sigv4::check);
}
