//! Export output is reproducible, and broken checkpoints give typed errors.

mod common;

use std::path::Path;

use banter_bundle::{FileRole, Manifest};
use banter_model::export::export;
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

#[test]
fn export_twice_gives_identical_files() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    export(&checkpoint, &work.path().join("first"), None).unwrap();
    export(&checkpoint, &work.path().join("second"), None).unwrap();

    for name in ["model.onnx", "tokenizer.json", "manifest.json"] {
        let a = std::fs::read(work.path().join("first").join(name)).unwrap();
        let b = std::fs::read(work.path().join("second").join(name)).unwrap();
        assert!(a == b, "{name} differs between two exports");
    }
}

#[test]
fn export_manifest_describes_bundle() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(&work.path().join("checkpoint"));
    let bundle = work.path().join("bundle");
    export(&checkpoint, &bundle, None).unwrap();

    let manifest =
        Manifest::from_json(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.source.standin);
    assert_eq!(manifest.source.name, "TinyStories-1M stand-in");
    assert!(manifest.exporter.starts_with("banter-model "));
    assert_eq!(manifest.config.hidden_size, 64);
    assert_eq!(manifest.config.attention_layers.len(), 8);
    assert_eq!(manifest.graph.opset, 17);
    assert_eq!(manifest.graph.inputs[0].name, "input_ids");
    assert_eq!(manifest.graph.outputs[0].name, "logits");

    for role in [FileRole::Graph, FileRole::Tokenizer] {
        let entry = manifest.file(role).unwrap();
        entry
            .verify(&std::fs::read(bundle.join(&entry.name)).unwrap())
            .unwrap();
    }

    // The tied table is stored once: the graph is the checkpoint plus a little structure.
    let graph_size = manifest.file(FileRole::Graph).unwrap().size;
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

    export(&checkpoint, &work.path().join("bundle"), Some("custom")).unwrap();
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

    let error = export(&checkpoint, &work.path().join("bundle"), None).unwrap_err();
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

    let error = export(&checkpoint, &work.path().join("bundle"), None).unwrap_err();
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

    let error = export(&checkpoint, &work.path().join("bundle"), None).unwrap_err();
    assert!(
        matches!(&error, ModelError::MissingTensor { name, expected } if name == "transformer.h.5.mlp.c_proj.bias" && expected == &[64]),
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

    let error = export(&checkpoint, &work.path().join("bundle"), None).unwrap_err();
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

    let error = export(&checkpoint, &work.path().join("bundle"), None).unwrap_err();
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
