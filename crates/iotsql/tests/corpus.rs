//! Replays the fuzzers' `iotsql` corpora (`fuzz/corpus/...`) through the checks of those
//! fuzz targets (`fuzz/checks/`, shared with the targets), so CI runs every seed.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/iotsql.rs"]
mod iotsql;

#[test]
fn iotsql_corpus_passes_the_fuzz_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "iotsql", 8, iotsql::check);
}
