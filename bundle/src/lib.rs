//! The model bundle's manifest.
//!
//! A bundle is a folder of static files: the ONNX graph, `tokenizer.json`, and
//! `manifest.json`, which this crate describes. `banter-model export` writes the manifest;
//! the worker reads it first, then fetches each file and checks its size and sha256
//! against it with [`FileEntry::verify`] before using the bytes.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the manifest format written by this crate.
///
/// Version 2 added `layout`, `session_options`, `quantization` and `graph.contrib_ops`.
pub const FORMAT_VERSION: u32 = 2;

/// File name of the manifest inside a bundle folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Name and version of the tool that wrote the bundle, e.g. `banter-model 0.1.0`.
    pub exporter: String,
    /// Origin of the weights.
    pub source: Source,
    /// The model's hyperparameters, as read from the checkpoint's `config.json`.
    pub config: ModelConfig,
    /// The ONNX graph's interface.
    pub graph: GraphInfo,
    /// Input and output convention of the graph.
    pub layout: Layout,
    /// Session configuration entries (`key` → `value`, as for ONNX Runtime's
    /// `AddSessionConfigEntry`) that every session of this graph must set.
    pub session_options: BTreeMap<String, String>,
    /// Storage format of the weights in the graph file.
    pub quantization: Quantization,
    /// Every other file of the bundle, with its size and digest.
    pub files: Vec<FileEntry>,
}

/// Origin of the bundle's weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Human-readable name, e.g. `TinyStories-1M` or `TinyStories-1M stand-in`.
    pub name: String,
    /// True for deterministic stand-in weights, false for a trained checkpoint.
    pub standin: bool,
}

/// GPT-Neo hyperparameters that the graph and the worker depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `model_type` of the checkpoint; only `gpt_neo` is supported.
    pub model_type: String,
    /// Number of tokens in the vocabulary.
    pub vocab_size: u32,
    /// Width of the residual stream.
    pub hidden_size: u32,
    /// Number of transformer blocks.
    pub num_layers: u32,
    /// Attention heads per block.
    pub num_heads: u32,
    /// Maximum sequence length the learned position table covers.
    pub max_position_embeddings: u32,
    /// Number of positions a local attention layer attends to, its own included.
    pub window_size: u32,
    /// `global` or `local` for each block, in order.
    pub attention_layers: Vec<String>,
    /// Epsilon of every layer norm.
    pub layer_norm_epsilon: f64,
    /// Name of the MLP activation; only `gelu_new` is supported.
    pub activation_function: String,
    /// Token id that starts a text.
    pub bos_token_id: u32,
    /// Token id that ends a text.
    pub eos_token_id: u32,
}

/// Input and output convention of a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// banter's decoding graph: `input_ids`, `position_ids`, one packed `past` tensor and
    /// `top_k` in; `top_values`, `top_ids`, one packed `present` tensor and last-position
    /// `logits` out. Uses `com.microsoft` contrib operators.
    Banter,
    /// The layout of Hugging Face's ONNX exports: `past_key_values.{i}.key` / `.value` in,
    /// `logits` for every position and `present.{i}.key` / `.value` out. Standard operators
    /// only.
    Conventional,
}

impl Layout {
    /// Name of the layout in the manifest and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Banter => "banter",
            Layout::Conventional => "conventional",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = BundleError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "banter" => Ok(Layout::Banter),
            "conventional" => Ok(Layout::Conventional),
            _ => Err(BundleError::UnknownName {
                kind: "layout",
                value: value.to_owned(),
                expected: "banter, conventional",
            }),
        }
    }
}

/// Storage format of the weights inside the graph file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// Every weight stored as float32.
    Fp32,
    /// Matrices (the tied embedding, the position table and every linear weight) stored
    /// as symmetric int8 with float32 scales, expanded to float32 once when the session
    /// is created. The computation itself is float32.
    Int8,
}

impl WeightFormat {
    /// Name of the format in the manifest and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightFormat::Fp32 => "fp32",
            WeightFormat::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for WeightFormat {
    type Err = BundleError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "fp32" => Ok(WeightFormat::Fp32),
            "int8" => Ok(WeightFormat::Int8),
            _ => Err(BundleError::UnknownName {
                kind: "weight format",
                value: value.to_owned(),
                expected: "fp32, int8",
            }),
        }
    }
}

/// Storage of the weights in the graph file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// Storage format.
    pub weights: WeightFormat,
    /// The scheme in words: which tensors, granularity of the scales, how they are expanded.
    pub description: String,
}

/// Names and shapes of the graph's inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphInfo {
    /// ONNX opset of the default domain.
    pub opset: u32,
    /// Operators of the `com.microsoft` domain (opset 1) that the graph uses, sorted.
    /// Empty for a graph of standard operators only.
    pub contrib_ops: Vec<String>,
    /// Graph inputs.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
}

/// One graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Tensor name in the graph.
    pub name: String,
    /// Element type, e.g. `int64` or `float32`.
    pub dtype: String,
    /// Dimensions: a number, or the name of a dimension fixed only at run time.
    pub shape: Vec<Dim>,
}

/// A tensor dimension in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A dimension of fixed size.
    Fixed(u64),
    /// A dimension named in the graph and set per run.
    Named(String),
}

/// Purpose of a bundle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The ONNX graph with its weights.
    Graph,
    /// The Hugging Face `tokenizer.json`.
    Tokenizer,
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the bundle folder.
    pub name: String,
    /// Purpose of the file.
    pub role: FileRole,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
    /// Subresource Integrity string (`sha256-<base64>`), usable as a fetch `integrity` option.
    pub integrity: String,
}

/// Errors of reading a manifest or checking a file against it.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// `manifest.json` is not valid JSON of the expected shape.
    #[error("manifest.json is invalid: {0}")]
    InvalidManifest(#[from] serde_json::Error),
    /// The manifest was written for another format version.
    #[error("manifest format version {found} is not supported (expected {expected}); re-export the bundle with this version of banter-model")]
    UnsupportedFormat {
        /// Version in the manifest.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// A layout or weight format name is not one of the known names.
    #[error("{value:?} is not a known {kind}; expected one of: {expected}")]
    UnknownName {
        /// Kind of name being parsed, e.g. `layout`.
        kind: &'static str,
        /// The name given.
        value: String,
        /// The accepted names.
        expected: &'static str,
    },
    /// The manifest lists no file with the given role.
    #[error("manifest lists no {0:?} file")]
    MissingFile(FileRole),
    /// A file's size differs from the manifest's.
    #[error("{name} is {actual} bytes but the manifest says {expected}; the bundle is incomplete or stale")]
    SizeMismatch {
        /// File name.
        name: String,
        /// Size in the manifest.
        expected: u64,
        /// Size of the bytes received.
        actual: u64,
    },
    /// A file's SHA-256 differs from the manifest's.
    #[error("{name} has sha256 {actual} but the manifest says {expected}; the bundle is corrupt or stale")]
    DigestMismatch {
        /// File name.
        name: String,
        /// Digest in the manifest.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
}

impl Manifest {
    /// Parses `manifest.json` and checks its format version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(BundleError::UnsupportedFormat {
                found: manifest.format_version,
                expected: FORMAT_VERSION,
            });
        }
        Ok(manifest)
    }

    /// Serializes the manifest as pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, BundleError> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Returns the first file with the given role.
    pub fn file(&self, role: FileRole) -> Result<&FileEntry, BundleError> {
        self.files
            .iter()
            .find(|file| file.role == role)
            .ok_or(BundleError::MissingFile(role))
    }
}

impl FileEntry {
    /// Describes `bytes` as the bundle file `name`.
    pub fn describe(name: &str, role: FileRole, bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        FileEntry {
            name: name.to_owned(),
            role,
            size: bytes.len() as u64,
            sha256: hex::encode(digest),
            integrity: format!(
                "sha256-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        }
    }

    /// Checks that `bytes` have this entry's size and SHA-256.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), BundleError> {
        if bytes.len() as u64 != self.size {
            return Err(BundleError::SizeMismatch {
                name: self.name.clone(),
                expected: self.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != self.sha256 {
            return Err(BundleError::DigestMismatch {
                name: self.name.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_entry_digest_known_value() {
        let entry = FileEntry::describe("a.txt", FileRole::Tokenizer, b"abc");
        assert_eq!(
            entry.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            entry.integrity,
            "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(entry.size, 3);
    }

    #[test]
    fn verify_rejects_changed_byte() {
        let entry = FileEntry::describe("a.txt", FileRole::Tokenizer, b"abc");
        assert!(entry.verify(b"abc").is_ok());
        assert!(matches!(
            entry.verify(b"abd"),
            Err(BundleError::DigestMismatch { .. })
        ));
        assert!(matches!(
            entry.verify(b"ab"),
            Err(BundleError::SizeMismatch {
                expected: 3,
                actual: 2,
                ..
            })
        ));
    }
}
