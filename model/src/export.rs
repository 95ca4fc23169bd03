//! Checkpoint → bundle: `model.onnx`, `tokenizer.json` and `manifest.json`.

use std::path::Path;

use banter_bundle::{FileEntry, FileRole, Manifest, Source, FORMAT_VERSION, MANIFEST_FILE};

use crate::checkpoint::read_checkpoint_weights;
use crate::config::read_config;
use crate::graph::{build_model, GraphOptions};
use crate::standin::read_standin_info;
use crate::tokenizer::build_tokenizer_json;
use crate::ModelError;

/// File name of the ONNX graph inside a bundle.
pub const GRAPH_FILE: &str = "model.onnx";

/// File name of the tokenizer inside a checkpoint and a bundle.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Source name, layout and weight format of an export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Source name for the manifest; see [`export`].
    pub name: Option<String>,
    /// Graph layout and weight format.
    pub graph: GraphOptions,
}

/// Exports the checkpoint folder `checkpoint` into the bundle folder `out` and returns
/// the manifest it wrote.
///
/// The source name is `options.name` if given, else the `name` in `standin.json`, else
/// the checkpoint folder's name. `tokenizer.json` is copied from the checkpoint if
/// present, else built from its `vocab.json` and `merges.txt`. The same checkpoint and
/// options always give byte-identical files.
pub fn export(
    checkpoint: &Path,
    out: &Path,
    options: &ExportOptions,
) -> Result<Manifest, ModelError> {
    let config = read_config(&checkpoint.join("config.json"))?;
    let weights = read_checkpoint_weights(checkpoint, &config)?;
    let standin = read_standin_info(checkpoint)?;

    let source_name = match (&options.name, &standin) {
        (Some(name), _) => name.to_owned(),
        (None, Some(info)) => info.name.clone(),
        (None, None) => checkpoint_name(checkpoint),
    };

    let graph = build_model(&config, &weights, options.graph)?;
    let tokenizer = match checkpoint.join(TOKENIZER_FILE) {
        path if path.is_file() => crate::read_file(&path)?,
        _ => build_tokenizer_json(
            &checkpoint.join("vocab.json"),
            &checkpoint.join("merges.txt"),
        )?
        .into_bytes(),
    };

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        exporter: crate::EXPORTER.to_owned(),
        source: Source {
            name: source_name,
            standin: standin.is_some(),
        },
        graph: graph.info,
        layout: options.graph.layout,
        session_options: graph.session_options,
        quantization: graph.quantization,
        config: config.model,
        files: vec![
            FileEntry::describe(GRAPH_FILE, FileRole::Graph, &graph.bytes),
            FileEntry::describe(TOKENIZER_FILE, FileRole::Tokenizer, &tokenizer),
        ],
    };
    let manifest_text = manifest.to_json().map_err(|source| ModelError::Manifest {
        reason: source.to_string(),
    })?;

    crate::create_dir(out)?;
    crate::write_file(&out.join(GRAPH_FILE), &graph.bytes)?;
    crate::write_file(&out.join(TOKENIZER_FILE), &tokenizer)?;
    crate::write_file(&out.join(MANIFEST_FILE), manifest_text.as_bytes())?;
    Ok(manifest)
}

/// Returns the last component of the checkpoint path, for use as the source name.
fn checkpoint_name(checkpoint: &Path) -> String {
    let absolute = std::path::absolute(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
    absolute
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| absolute.display().to_string())
}
