//! The `bind` fuzz target's corpus, replayed through its checks.

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[path = "../../../fuzz/checks/bind.rs"]
mod bind;

#[test]
fn bind_corpus_passes_its_checks() {
    replay::replay(env!("CARGO_MANIFEST_DIR"), "bind", 8, bind::check);
}
