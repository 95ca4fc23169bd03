//! The stand-in checkpoint is deterministic and pinned.

mod common;

/// sha256 of the 1M stand-in's `model.safetensors`. A change here means every stand-in
/// weight changed: regenerate `model/golden/tinystories-1m-standin.json` with
/// `model/golden/make_golden.py` and update this value.
const STANDIN_1M_SHA256: &str = "6db474d028db533bcfe5632fb63825fc11343ff66225f77455cabf4f46fe8e89";

const CHECKPOINT_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "standin.json",
];

#[test]
fn standin_runs_give_identical_bytes() {
    let work = tempfile::tempdir().unwrap();
    let first = common::standin(&work.path().join("first"));
    let second = common::standin(&work.path().join("second"));

    for name in CHECKPOINT_FILES {
        let a = std::fs::read(first.join(name)).unwrap();
        let b = std::fs::read(second.join(name)).unwrap();
        assert!(a == b, "{name} differs between two stand-in runs");
    }
}

#[test]
fn standin_weights_match_pinned_digest() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    assert_eq!(
        common::sha256_file(&checkpoint.join("model.safetensors")),
        STANDIN_1M_SHA256
    );
}

#[test]
fn standin_config_is_tinystories_1m() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("config.json")).unwrap()).unwrap();

    assert_eq!(config["model_type"], "gpt_neo");
    assert_eq!(
        config["architectures"],
        serde_json::json!(["GPTNeoForCausalLM"])
    );
    assert_eq!(config["hidden_size"], 64);
    assert_eq!(config["num_layers"], 8);
    assert_eq!(config["num_heads"], 16);
    assert_eq!(
        config["attention_types"],
        serde_json::json!([[["global", "local"], 4]])
    );
    assert_eq!(config["window_size"], 256);
    assert_eq!(config["vocab_size"], 50257);
    assert_eq!(config["intermediate_size"], serde_json::Value::Null);
    assert_eq!(config["tie_word_embeddings"], true);

    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoint.join("standin.json")).unwrap()).unwrap();
    assert_eq!(info["seed"], banter_model::standin::SEED);
}

#[test]
fn standin_layer_norms_are_not_identity() {
    let work = tempfile::tempdir().unwrap();
    let checkpoint = common::standin(work.path());
    let bytes = std::fs::read(checkpoint.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();

    for name in [
        "transformer.h.0.ln_1.weight",
        "transformer.h.3.ln_2.bias",
        "transformer.ln_f.weight",
        "transformer.h.7.mlp.c_fc.bias",
    ] {
        let values: Vec<f32> = file
            .tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let first = values[0];
        assert!(
            values.iter().any(|&value| value != first),
            "{name} is constant"
        );
    }
}
