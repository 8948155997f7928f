//! Compiles the vendor feeds in `feeds/` into the binary, so phonehome runs
//! with no files on disk: writes `$OUT_DIR/builtin_feeds.rs`, a list of
//! (file name, contents) pairs read with `include_str!`.

#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("feeds/ directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out = String::from(
        "/// Built-in feed files: (file name, TOML text).\npub(crate) const BUILTIN_FEEDS: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 file name");
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_feeds.rs");
    fs::write(dest, out).expect("write builtin_feeds.rs");
}
