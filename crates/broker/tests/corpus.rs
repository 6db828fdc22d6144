//! Replays the fuzzers' `topics` corpora (`fuzz/corpus/...`) through the checks of those
//! fuzz targets (`fuzz/checks/`, shared with the targets), so CI runs every seed.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/topics.rs"]
mod topics;

#[test]
fn topics_corpus_passes_the_fuzz_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "topics", 10, topics::check);
}
