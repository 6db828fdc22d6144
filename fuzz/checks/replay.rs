//! Replays a fuzz target's checked-in corpus (`fuzz/corpus/<target>`) in a unit test, so CI runs
//! every seed through the same checks as the fuzzer (`#[path]`-included by the replay tests).

/// Runs `check` on every file of `fuzz/corpus/<target>` (from the crate at `manifest_dir`);
/// panics naming the first file that fails, or when fewer than `min_seeds` seeds are there.
pub fn replay(manifest_dir: &str, target: &str, min_seeds: usize, check: fn(&[u8])) {
    let dir = std::path::Path::new(manifest_dir).join("../../fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut seeds = 0;
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("{} fails the checks of the {target} fuzz target", path.display());
        }
        seeds += path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-")) as usize;
    }
    assert!(seeds >= min_seeds, "only {seeds} seeds in {}", dir.display());
}
