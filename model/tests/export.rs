//! Export output is reproducible, and broken checkpoints give typed errors.

mod common;

use std::path::Path;

use banter_bundle::{Dim, FileRole, Layout, Manifest, WeightFormat};
use banter_model::export::{export, ExportOptions};
use banter_model::ModelError;

fn edit_config(checkpoint: &Path, field: &str, value: serde_json::Value) {
    let path = checkpoint.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config[field] = value;
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// Rewrites `model.safetensors` with `edit` applied to the list of tensors.
fn edit_weights(
    checkpoint: &Path,
    edit: impl FnOnce(&mut Vec<(String, banter_model::checkpoint::Tensor)>),
) {
    let path = checkpoint.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (
                name,
                banter_model::checkpoint::Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            )
        })
        .collect();
    edit(&mut tensors);
    std::fs::write(
        &path,
        banter_model::checkpoint::write_weights(&tensors).unwrap(),
    )
    .unwrap();
}

/// Every layout and weight format, in the order the tests export them.
const VARIANTS: [(Layout, WeightFormat); 4] = [
    (Layout::Banter, WeightFormat::Int8),
    (Layout::Banter, WeightFormat::Fp32),
    (Layout::Conventional, WeightFormat::Int8),
    (Layout::Conventional, WeightFormat::Fp32),
];

const MIB: u64 = 1024 * 1024;

#[test]
fn export_twice_gives_identical_files() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));

    for (layout, weights) in VARIANTS {
        let variant = format!("{}-{}", layout.as_str(), weights.as_str());
        let first = work.path().join(format!("{variant}-first"));
        let second = work.path().join(format!("{variant}-second"));
        common::export_bundle(&checkpoint, &first, layout, weights);
        common::export_bundle(&checkpoint, &second, layout, weights);

        for name in ["model.onnx", "tokenizer.json", "manifest.json"] {
            let a = std::fs::read(first.join(name)).unwrap();
            let b = std::fs::read(second.join(name)).unwrap();
            assert!(a == b, "{variant}: {name} differs between two exports");
        }
    }
}

#[test]
fn export_1m_int8_fits_4_mib() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));

    for layout in [Layout::Banter, Layout::Conventional] {
        let manifest = common::export_bundle(
            &checkpoint,
            &work.path().join(layout.as_str()),
            layout,
            WeightFormat::Int8,
        );
        let size = manifest.file(FileRole::Graph).unwrap().size;
        println!(
            "{} layout, int8: model.onnx is {size} bytes",
            layout.as_str()
        );
        assert!(
            size <= 4 * MIB,
            "{} layout: model.onnx is {size} bytes, over 4 MiB",
            layout.as_str()
        );
    }
}

/// TinyStories-8M's shape (hidden 256, 8 layers, 16 heads, vocab 50257): every bundle
/// file must stay within the 25 MiB per-file limit of common static hosts.
#[test]
fn export_8m_int8_files_fit_25_mib() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin_8m(&work.path().join("checkpoint"));
    let bundle = work.path().join("bundle");
    let manifest = common::export_bundle(&checkpoint, &bundle, Layout::Banter, WeightFormat::Int8);
    assert_eq!(manifest.config.hidden_size, 256);

    for entry in &manifest.files {
        println!("8M {}: {} bytes", entry.name, entry.size);
        assert!(
            entry.size <= 25 * MIB,
            "{} is {} bytes, over 25 MiB",
            entry.name,
            entry.size
        );
    }
    let manifest_size = std::fs::metadata(bundle.join("manifest.json"))
        .unwrap()
        .len();
    assert!(manifest_size <= 25 * MIB);
}

#[test]
fn export_manifest_describes_bundle() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    let bundle = work.path().join("bundle");
    export(&checkpoint, &bundle, &ExportOptions::default()).unwrap();

    let manifest =
        Manifest::from_json(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.source.standin);
    assert_eq!(manifest.source.name, "TinyStories-1M stand-in");
    assert!(manifest.exporter.starts_with("banter-model "));
    assert_eq!(manifest.config.hidden_size, 64);
    assert_eq!(manifest.config.attention_layers.len(), 8);
    assert_eq!(manifest.graph.opset, 17);
    assert_eq!(manifest.layout, Layout::Banter);
    assert_eq!(manifest.quantization.weights, WeightFormat::Int8);
    assert!(manifest.session_options.is_empty());
    assert_eq!(
        manifest.graph.contrib_ops,
        ["FastGelu", "MultiHeadAttention", "SkipLayerNormalization"]
    );

    let names = |tensors: &[banter_bundle::TensorInfo]| -> Vec<String> {
        tensors.iter().map(|tensor| tensor.name.clone()).collect()
    };
    assert_eq!(
        names(&manifest.graph.inputs),
        ["input_ids", "position_ids", "past", "top_k"]
    );
    assert_eq!(
        names(&manifest.graph.outputs),
        ["top_values", "top_ids", "present", "logits"]
    );
    let past = &manifest.graph.inputs[2];
    assert_eq!(past.dtype, "float32");
    assert_eq!(
        past.shape,
        [
            Dim::Fixed(16),
            Dim::Fixed(16),
            Dim::Named("past_sequence".into()),
            Dim::Fixed(4)
        ]
    );
    assert_eq!(manifest.graph.outputs[1].dtype, "int64");

    for role in [FileRole::Graph, FileRole::Tokenizer] {
        let entry = manifest.file(role).unwrap();
        entry
            .verify(&std::fs::read(bundle.join(&entry.name)).unwrap())
            .unwrap();
    }

    // The tied table is stored once: the fp32 graph is the checkpoint plus a little structure.
    let fp32 = common::export_bundle(
        &checkpoint,
        &work.path().join("fp32"),
        Layout::Banter,
        WeightFormat::Fp32,
    );
    let graph_size = fp32.file(FileRole::Graph).unwrap().size;
    let weights_size = std::fs::metadata(checkpoint.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        graph_size < weights_size + 1_000_000,
        "model.onnx is {graph_size} bytes, the weights {weights_size}"
    );
}

#[test]
fn export_builds_tokenizer_when_missing() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    let original = std::fs::read(checkpoint.join("tokenizer.json")).unwrap();
    std::fs::remove_file(checkpoint.join("tokenizer.json")).unwrap();

    let options = ExportOptions {
        name: Some("custom".to_owned()),
        ..ExportOptions::default()
    };
    let manifest = export(&checkpoint, &work.path().join("bundle"), &options).unwrap();
    assert_eq!(manifest.source.name, "custom");
    assert_eq!(
        std::fs::read(work.path().join("bundle/tokenizer.json")).unwrap(),
        original
    );
}

#[test]
fn export_rejects_other_model_type() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    edit_config(&checkpoint, "model_type", "gpt2".into());

    let error = export(
        &checkpoint,
        &work.path().join("bundle"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::UnsupportedModelType { found } if found == "gpt2"),
        "{error}"
    );
    assert!(error.to_string().contains("gpt2"));
}

#[test]
fn export_rejects_other_activation() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    edit_config(&checkpoint, "activation_function", "relu".into());

    let error = export(
        &checkpoint,
        &work.path().join("bundle"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::UnsupportedActivation { found } if found == "relu"),
        "{error}"
    );
}

#[test]
fn export_rejects_missing_tensor() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    edit_weights(&checkpoint, |tensors| {
        tensors.retain(|(name, _)| name != "transformer.h.5.mlp.c_proj.bias")
    });

    let error = export(
        &checkpoint,
        &work.path().join("bundle"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingTensor { name, expected, .. } if name == "transformer.h.5.mlp.c_proj.bias" && expected == &[64]),
        "{error}"
    );
    assert!(error
        .to_string()
        .contains("transformer.h.5.mlp.c_proj.bias"));
}

#[test]
fn export_rejects_wrong_shape() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    edit_weights(&checkpoint, |tensors| {
        let (_, tensor) = tensors
            .iter_mut()
            .find(|(name, _)| name == "transformer.h.2.attn.attention.q_proj.weight")
            .unwrap();
        tensor.shape = vec![32, 128];
    });

    let error = export(
        &checkpoint,
        &work.path().join("bundle"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, ModelError::TensorShape { name, expected, actual }
            if name == "transformer.h.2.attn.attention.q_proj.weight" && expected == &[64, 64] && actual == &[32, 128]),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("[32, 128]") && message.contains("[64, 64]"),
        "{message}"
    );
}

#[test]
fn export_rejects_inconsistent_attention_layers() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    edit_config(
        &checkpoint,
        "attention_layers",
        serde_json::json!(["global", "local"]),
    );

    let error = export(
        &checkpoint,
        &work.path().join("bundle"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            ModelError::InvalidConfig {
                field: "attention_layers",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn export_conventional_manifest_names_per_layer_cache() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    let manifest = common::export_bundle(
        &checkpoint,
        &work.path().join("bundle"),
        Layout::Conventional,
        WeightFormat::Fp32,
    );

    assert_eq!(manifest.layout, Layout::Conventional);
    assert!(manifest.graph.contrib_ops.is_empty());
    assert_eq!(manifest.graph.inputs.len(), 2 + 16);
    assert_eq!(manifest.graph.inputs[2].name, "past_key_values.0.key");
    assert_eq!(manifest.graph.inputs[17].name, "past_key_values.7.value");
    assert_eq!(manifest.graph.outputs[0].name, "logits");
    assert_eq!(
        manifest.graph.outputs[0].shape,
        [
            Dim::Fixed(1),
            Dim::Named("sequence".into()),
            Dim::Fixed(50257)
        ]
    );
    assert_eq!(manifest.graph.outputs[16].name, "present.7.value");
}
