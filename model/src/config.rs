//! GPT-Neo `config.json`: the subset the exporter reads, and the configs of the stand-ins.

use std::path::Path;

use banter_bundle::ModelConfig;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ModelError;

/// `model_type` of the only supported architecture.
pub const MODEL_TYPE: &str = "gpt_neo";

/// Activation of the only supported MLP: the tanh approximation of GELU.
pub const ACTIVATION: &str = "gelu_new";

/// Fields of a Hugging Face GPT-Neo `config.json` that the exporter uses.
///
/// Unknown fields are ignored. Either `attention_layers` or `attention_types` must be
/// present; `transformers` writes both.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointConfig {
    /// Architecture name; must be [`MODEL_TYPE`].
    pub model_type: String,
    /// Number of tokens in the vocabulary.
    pub vocab_size: u32,
    /// Width of the residual stream.
    pub hidden_size: u32,
    /// Number of transformer blocks.
    pub num_layers: u32,
    /// Attention heads per block.
    pub num_heads: u32,
    /// Rows of the learned position table.
    pub max_position_embeddings: u32,
    /// Number of positions a local attention layer attends to, the query itself included.
    pub window_size: u32,
    /// `global` or `local` for each block.
    #[serde(default)]
    pub attention_layers: Option<Vec<String>>,
    /// Compact form of `attention_layers`: `[[pattern, repeats], ...]`.
    #[serde(default)]
    pub attention_types: Option<Vec<(Vec<String>, u32)>>,
    /// Epsilon of every layer norm.
    pub layer_norm_epsilon: f64,
    /// MLP activation; must be [`ACTIVATION`].
    pub activation_function: String,
    /// Width of the MLP's hidden layer; `null` means four times `hidden_size`.
    #[serde(default)]
    pub intermediate_size: Option<u32>,
    /// Token id that starts a text.
    pub bos_token_id: u32,
    /// Token id that ends a text.
    pub eos_token_id: u32,
    /// Whether the LM head reuses the token embedding; must be true (the default).
    #[serde(default)]
    pub tie_word_embeddings: Option<bool>,
}

/// A checked GPT-Neo configuration with every derived value filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct NeoConfig {
    /// The values recorded in the bundle manifest.
    pub model: ModelConfig,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: u32,
}

impl NeoConfig {
    /// Width of one attention head.
    pub fn head_size(&self) -> u32 {
        self.model.hidden_size / self.model.num_heads
    }

    /// Whether block `layer` uses windowed (local) attention.
    pub fn is_local(&self, layer: usize) -> bool {
        self.model
            .attention_layers
            .get(layer)
            .is_some_and(|kind| kind == "local")
    }
}

/// Reads and checks `config.json` in a checkpoint folder.
pub fn read_config(path: &Path) -> Result<NeoConfig, ModelError> {
    let bytes = crate::read_file(path)?;
    let raw: CheckpointConfig =
        serde_json::from_slice(&bytes).map_err(|source| ModelError::InvalidJson {
            path: path.to_path_buf(),
            source,
        })?;
    check_config(raw)
}

/// Checks a parsed config against what the exporter supports and fills in defaults.
pub fn check_config(raw: CheckpointConfig) -> Result<NeoConfig, ModelError> {
    if raw.model_type != MODEL_TYPE {
        return Err(ModelError::UnsupportedModelType {
            found: raw.model_type,
        });
    }
    if raw.activation_function != ACTIVATION {
        return Err(ModelError::UnsupportedActivation {
            found: raw.activation_function,
        });
    }
    if raw.tie_word_embeddings == Some(false) {
        return Err(invalid(
            "tie_word_embeddings",
            "false",
            "the exported graph reuses the token embedding as the LM head",
        ));
    }

    for (field, value) in [
        ("vocab_size", raw.vocab_size),
        ("hidden_size", raw.hidden_size),
        ("num_layers", raw.num_layers),
        ("num_heads", raw.num_heads),
        ("max_position_embeddings", raw.max_position_embeddings),
        ("window_size", raw.window_size),
    ] {
        if value == 0 {
            return Err(invalid(field, "0", "it must be positive"));
        }
    }
    if !raw.hidden_size.is_multiple_of(raw.num_heads) {
        return Err(invalid(
            "num_heads",
            &raw.num_heads.to_string(),
            &format!("hidden_size {} is not a multiple of it", raw.hidden_size),
        ));
    }
    if raw.layer_norm_epsilon.is_nan() || raw.layer_norm_epsilon <= 0.0 {
        return Err(invalid(
            "layer_norm_epsilon",
            &raw.layer_norm_epsilon.to_string(),
            "it must be positive",
        ));
    }
    for (field, id) in [
        ("bos_token_id", raw.bos_token_id),
        ("eos_token_id", raw.eos_token_id),
    ] {
        if id >= raw.vocab_size {
            return Err(invalid(
                field,
                &id.to_string(),
                &format!("it is not below vocab_size {}", raw.vocab_size),
            ));
        }
    }

    let attention_layers = attention_layers(&raw)?;
    let intermediate_size = raw.intermediate_size.unwrap_or(4 * raw.hidden_size);

    Ok(NeoConfig {
        model: ModelConfig {
            model_type: raw.model_type,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_layers: raw.num_layers,
            num_heads: raw.num_heads,
            max_position_embeddings: raw.max_position_embeddings,
            window_size: raw.window_size,
            attention_layers,
            layer_norm_epsilon: raw.layer_norm_epsilon,
            activation_function: raw.activation_function,
            bos_token_id: raw.bos_token_id,
            eos_token_id: raw.eos_token_id,
        },
        intermediate_size,
    })
}

/// Returns the per-block attention kinds, expanding `attention_types` when
/// `attention_layers` is absent.
fn attention_layers(raw: &CheckpointConfig) -> Result<Vec<String>, ModelError> {
    let layers = match (&raw.attention_layers, &raw.attention_types) {
        (Some(layers), _) => layers.clone(),
        (None, Some(types)) => types
            .iter()
            .flat_map(|(pattern, repeats)| (0..*repeats).flat_map(move |_| pattern.iter().cloned()))
            .collect(),
        (None, None) => {
            return Err(invalid(
                "attention_layers",
                "missing",
                "neither attention_layers nor attention_types is set",
            ));
        }
    };

    if layers.len() != raw.num_layers as usize {
        return Err(invalid(
            "attention_layers",
            &format!("{layers:?}"),
            &format!(
                "it has {} entries but num_layers is {}",
                layers.len(),
                raw.num_layers
            ),
        ));
    }
    if let Some(kind) = layers
        .iter()
        .find(|kind| *kind != "global" && *kind != "local")
    {
        return Err(invalid(
            "attention_layers",
            kind,
            "each entry must be \"global\" or \"local\"",
        ));
    }
    Ok(layers)
}

fn invalid(field: &'static str, value: &str, reason: &str) -> ModelError {
    ModelError::InvalidConfig {
        field,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Returns the `config.json` of a GPT-Neo with TinyStories' settings and the given width.
///
/// `hidden_size` 64 gives TinyStories-1M's config and 256 TinyStories-8M's; both have
/// 8 blocks of 16 heads alternating global and local attention.
pub fn tinystories_config(hidden_size: u32) -> Value {
    let num_layers = 8;
    let attention_layers: Vec<&str> = (0..num_layers)
        .map(|layer| if layer % 2 == 0 { "global" } else { "local" })
        .collect();

    json!({
        "activation_function": "gelu_new",
        "architectures": ["GPTNeoForCausalLM"],
        "attention_dropout": 0.0,
        "attention_layers": attention_layers,
        "attention_types": [[["global", "local"], num_layers / 2]],
        "bos_token_id": 50256,
        "classifier_dropout": 0.1,
        "embed_dropout": 0.0,
        "eos_token_id": 50256,
        "gradient_checkpointing": false,
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": null,
        "layer_norm_epsilon": 1e-5,
        "max_position_embeddings": 2048,
        "model_type": "gpt_neo",
        "num_heads": 16,
        "num_layers": num_layers,
        "resid_dropout": 0.0,
        "summary_activation": null,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": true,
        "summary_type": "cls_index",
        "summary_use_proj": true,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "use_cache": true,
        "vocab_size": 50257,
        "window_size": 256
    })
}
