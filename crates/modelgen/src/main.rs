//! `cargo run -p modelgen`: regenerates `crates/awsmodel/src/generated/` from `models/`.

fn main() -> anyhow::Result<()> {
    let root = modelgen::workspace_root();
    let out = root.join("crates/awsmodel/src/generated");
    let files = modelgen::generate(&root.join("models"))?;
    std::fs::create_dir_all(&out)?;
    for old in std::fs::read_dir(&out)? {
        let old = old?.path();
        if old.extension().is_some_and(|e| e == "rs") {
            std::fs::remove_file(old)?;
        }
    }
    for (name, text) in &files {
        std::fs::write(out.join(name), text)?;
    }
    println!("wrote {} files to {}", files.len(), out.display());
    Ok(())
}
