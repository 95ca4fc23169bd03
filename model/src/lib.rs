//! Builds banter's model bundle from a Hugging Face GPT-Neo checkpoint.
//!
//! Three steps, each behind a subcommand of the `banter-model` binary:
//!
//! - [`standin`] writes a checkpoint with TinyStories-1M's architecture and deterministic
//!   pseudo-random weights, for building and testing without the trained weights.
//! - [`fetch`] downloads a checkpoint pinned to a commit and checks it against a lock file.
//! - [`export`] turns a checkpoint into a bundle: `model.onnx` (written here from the
//!   `model.safetensors` or `pytorch_model.bin` weights, see [`graph`]), `tokenizer.json`
//!   and `manifest.json`.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod checkpoint;
pub mod config;
pub mod export;
pub mod fetch;
pub mod graph;
pub mod standin;
pub mod tokenizer;

mod error;
mod onnx;
mod pytorch;

pub use error::ModelError;

/// Name and version written into bundle manifests and ONNX files.
pub const EXPORTER: &str = concat!("banter-model ", env!("CARGO_PKG_VERSION"));

/// Writes `bytes` to `path`, naming the path in the error.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), ModelError> {
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `path`, naming the path in the error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `dir` and its parents, naming the path in the error.
pub(crate) fn create_dir(dir: &std::path::Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })
}
