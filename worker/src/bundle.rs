//! Loading a model bundle into an [`Engine`]: check every file against the manifest,
//! load the tokenizer, create the ONNX Runtime session.

use std::sync::OnceLock;

use banter_bundle::{FileRole, Manifest};
use tokenizers::Tokenizer;

use crate::{Engine, OrtModel, WorkerError};

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// Returns the process-wide ONNX Runtime environment, created by [`init_native_runtime`]
/// or, in the browser, by the worker's start-up.
pub(crate) fn environment() -> Result<ort::environment::Environment, WorkerError> {
    ENVIRONMENT
        .get()
        .cloned()
        .ok_or_else(|| WorkerError::SessionLoad("ONNX Runtime is not initialised".into()))
}

/// Creates the process-wide environment once, with telemetry off. Later calls keep the
/// first environment, because ONNX Runtime allows one per process.
pub(crate) fn set_environment(
    builder: ort::environment::EnvironmentBuilder,
) -> Result<(), WorkerError> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let environment = builder
        .with_name("banter")
        .with_telemetry(false)
        .build()
        .map_err(|error| WorkerError::SessionLoad(error.to_string()))?;
    let _ = ENVIRONMENT.set(environment);
    Ok(())
}

/// Loads native ONNX Runtime from the shared library at `dylib` (for example
/// `libonnxruntime.so.1.30.0` from the PyPI `onnxruntime` wheel). Call it once before
/// [`load_dir`]; later calls are no-ops.
#[cfg(not(target_arch = "wasm32"))]
pub fn init_native_runtime(dylib: &std::path::Path) -> Result<(), WorkerError> {
    if ENVIRONMENT.get().is_some() {
        return Ok(());
    }
    let builder = ort::init_from(dylib).map_err(|error| {
        WorkerError::SessionLoad(format!(
            "could not load ONNX Runtime from {}: {error}",
            dylib.display()
        ))
    })?;
    set_environment(builder)
}

/// Checks the bundle files against the manifest and builds an engine from them.
pub async fn build_engine(
    manifest: &Manifest,
    graph: &[u8],
    tokenizer_json: &[u8],
) -> Result<Engine<OrtModel>, WorkerError> {
    manifest.file(FileRole::Graph)?.verify(graph)?;
    manifest.file(FileRole::Tokenizer)?.verify(tokenizer_json)?;

    let tokenizer = Tokenizer::from_bytes(tokenizer_json)
        .map_err(|error| WorkerError::Tokenizer(format!("tokenizer.json is invalid: {error}")))?;
    let model = OrtModel::from_bytes(graph, manifest).await?;

    let config = &manifest.config;
    Ok(Engine::new(
        tokenizer,
        model,
        config.vocab_size,
        config.max_position_embeddings,
        config.eos_token_id,
    ))
}

/// Reads a bundle folder from disk and builds an engine from it.
#[cfg(not(target_arch = "wasm32"))]
pub async fn load_dir(dir: &std::path::Path) -> Result<(Manifest, Engine<OrtModel>), WorkerError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|error| WorkerError::Fetch {
            url: path.display().to_string(),
            reason: error.to_string(),
        })
    };

    let manifest = Manifest::from_json(&read(banter_bundle::MANIFEST_FILE)?)?;
    let graph = read(&manifest.file(FileRole::Graph)?.name)?;
    let tokenizer_json = read(&manifest.file(FileRole::Tokenizer)?.name)?;
    let engine = build_engine(&manifest, &graph, &tokenizer_json).await?;
    Ok((manifest, engine))
}
