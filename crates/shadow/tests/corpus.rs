//! Replays the fuzzers' `shadow` corpora (`fuzz/corpus/...`) through the checks of those
//! fuzz targets (`fuzz/checks/`, shared with the targets), so CI runs every seed.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/shadow.rs"]
mod shadow;

#[test]
fn shadow_corpus_passes_the_fuzz_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "shadow", 8, shadow::check);
}
