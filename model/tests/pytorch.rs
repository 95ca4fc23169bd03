//! `pytorch_model.bin` checkpoints: read like safetensors, exported graphs match
//! transformers. The fixture comes from `model/golden/make_tiny_fixture.py`.

mod common;

use std::path::{Path, PathBuf};

use banter_bundle::{Layout, WeightFormat};
use banter_model::checkpoint::{read_pytorch_weights, read_weights, tensor_specs};
use banter_model::config::read_config;
use banter_model::ModelError;
use serde::Deserialize;

#[derive(Deserialize)]
struct TinyGolden {
    ids: Vec<i64>,
    prefill: usize,
    logits: Vec<Vec<f32>>,
}

fn fixture() -> PathBuf {
    common::repo_root().join("model/tests/fixtures/tiny-gpt-neo")
}

/// Copies the fixture's config and `pytorch_model.bin` (not its safetensors) into `dir`,
/// with GPT-2's tokenizer files so that export can build a tokenizer.
fn pytorch_checkpoint(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["config.json", "pytorch_model.bin"] {
        std::fs::copy(fixture().join(name), dir.join(name)).unwrap();
    }
    let gpt2 = common::gpt2_dir();
    std::fs::copy(gpt2.join("encoder.json"), dir.join("vocab.json")).unwrap();
    std::fs::copy(gpt2.join("vocab.bpe"), dir.join("merges.txt")).unwrap();
    dir.to_path_buf()
}

#[test]
fn pytorch_bin_matches_safetensors() {
    let config = read_config(&fixture().join("config.json")).unwrap();
    let from_bin = read_pytorch_weights(&fixture().join("pytorch_model.bin"), &config).unwrap();
    let from_safetensors = read_weights(&fixture().join("model.safetensors"), &config).unwrap();

    for spec in tensor_specs(&config) {
        assert_eq!(
            from_bin.get(&spec.name).unwrap(),
            from_safetensors.get(&spec.name).unwrap(),
            "{}",
            spec.name
        );
    }
}

#[test]
fn pytorch_export_matches_transformers() {
    let golden: TinyGolden =
        serde_json::from_slice(&std::fs::read(fixture().join("golden.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let checkpoint = pytorch_checkpoint(&work.path().join("checkpoint"));

    for layout in [Layout::Banter, Layout::Conventional] {
        let bundle = work.path().join(layout.as_str());
        let manifest = common::export_bundle(&checkpoint, &bundle, layout, WeightFormat::Fp32);
        let mut decoder = common::Decoder::new(&bundle, &manifest);

        let mut chunks = vec![&golden.ids[..golden.prefill]];
        chunks.extend(golden.ids[golden.prefill..].chunks(1));
        for (step, (chunk, expected)) in chunks.iter().zip(&golden.logits).enumerate() {
            let logits = decoder.step(chunk).logits;
            assert_eq!(logits.len(), expected.len());
            for (id, (actual, expected)) in logits.iter().zip(expected).enumerate() {
                assert!(
                    (actual - expected).abs() <= 1e-5,
                    "{} layout, step {step}, id {id}: {actual} vs transformers {expected}",
                    layout.as_str()
                );
            }
        }
    }
}

#[test]
fn pytorch_rejects_non_zip_file() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = pytorch_checkpoint(work.path());
    std::fs::write(
        checkpoint.join("pytorch_model.bin"),
        b"\x80\x02legacy pickle",
    )
    .unwrap();

    let config = read_config(&checkpoint.join("config.json")).unwrap();
    let error = read_pytorch_weights(&checkpoint.join("pytorch_model.bin"), &config).unwrap_err();
    assert!(
        matches!(&error, ModelError::InvalidPytorchCheckpoint { reason, .. } if reason.contains("zip")),
        "{error}"
    );
}

#[test]
fn pytorch_rejects_missing_tensor() {
    let config = read_config(&fixture().join("config.json")).unwrap();
    let mut bigger = config.clone();
    bigger.model.num_layers = 3;
    bigger.model.attention_layers.push("global".into());

    let error = read_pytorch_weights(&fixture().join("pytorch_model.bin"), &bigger).unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingTensor { name, file, .. }
            if name == "transformer.h.2.ln_1.weight" && file == "pytorch_model.bin"),
        "{error}"
    );
}

#[test]
fn export_without_weights_names_safetensors() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = pytorch_checkpoint(work.path());
    std::fs::remove_file(checkpoint.join("pytorch_model.bin")).unwrap();

    let error = banter_model::export::export(
        &checkpoint,
        &work.path().join("bundle"),
        &banter_model::export::ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingFile { path } if path.ends_with("model.safetensors")),
        "{error}"
    );
}
