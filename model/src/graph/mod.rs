//! The GPT-Neo forward pass with a KV cache as an ONNX graph, in two layouts.
//!
//! Both layouts follow Hugging Face's `GPTNeoForCausalLM` exactly:
//! - learned positions, read from the `position_ids` input;
//! - attention scores are `q·kᵀ` with no `1/sqrt(head_size)` scaling;
//! - global layers attend to every earlier position, local layers only to the last
//!   `window_size` positions (the query's own included);
//! - the MLP activation is `gelu_new`, `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))`;
//! - every layer norm uses the config's epsilon;
//! - the LM head is the token embedding table (tied), stored once in the file.
//!
//! [`banter`] is the layout the worker runs: fused `com.microsoft` operators, one packed
//! KV tensor in and out, top-k in the graph. [`conventional`] is the layout of Hugging
//! Face's ONNX exports, with standard operators only, for other runtimes and as a baseline.
//!
//! Positions must stay below `max_position_embeddings`: a larger position makes the
//! position `Gather` fail at run time.

pub mod banter;
mod builder;
pub mod conventional;

use std::collections::BTreeMap;

use banter_bundle::{Dim, GraphInfo, Layout, Quantization, TensorInfo, WeightFormat};
use prost::Message as _;

use crate::checkpoint::Weights;
use crate::config::NeoConfig;
use crate::onnx::*;
use crate::ModelError;

pub use banter::{PAST, PRESENT, TOP_IDS, TOP_K, TOP_VALUES};
pub use conventional::{past_key_name, past_value_name, present_key_name, present_value_name};

/// Default-domain opset of both layouts; `LayerNormalization` needs 17.
pub const OPSET: u32 = 17;

/// Domain of ONNX Runtime's contrib operators.
pub const CONTRIB_DOMAIN: &str = "com.microsoft";

/// Name of the token input, int64 `[1, sequence]`.
pub const INPUT_IDS: &str = "input_ids";

/// Name of the position input, int64 `[1, sequence]`: the absolute positions of the input
/// tokens, `past_sequence .. past_sequence + sequence`.
pub const POSITION_IDS: &str = "position_ids";

/// Name of the logits output.
pub const LOGITS: &str = "logits";

/// Name of the symbolic dimension for the number of new tokens.
pub const SEQUENCE_DIM: &str = "sequence";

/// Name of the symbolic dimension for the number of cached positions.
pub const PAST_SEQUENCE_DIM: &str = "past_sequence";

/// Name of the symbolic dimension for cached plus new positions.
pub const TOTAL_SEQUENCE_DIM: &str = "total_sequence";

/// Layout and weight format of a graph to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphOptions {
    /// Input and output convention.
    pub layout: Layout,
    /// Storage format of the weight matrices.
    pub weights: WeightFormat,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            layout: Layout::Banter,
            weights: WeightFormat::Int8,
        }
    }
}

/// A serialised graph and what the manifest records about it.
#[derive(Debug, Clone)]
pub struct BuiltGraph {
    /// The serialised `ModelProto`.
    pub bytes: Vec<u8>,
    /// Inputs, outputs, opset and contrib operators.
    pub info: GraphInfo,
    /// Session configuration entries the graph needs.
    pub session_options: BTreeMap<String, String>,
    /// Storage format of the weights.
    pub quantization: Quantization,
}

/// Builds the ONNX model for `config` with `weights` as initializers. The same inputs
/// always give the same bytes.
pub fn build_model(
    config: &NeoConfig,
    weights: &Weights,
    options: GraphOptions,
) -> Result<BuiltGraph, ModelError> {
    let mut graph = builder::GraphBuilder::new(options.weights);
    let doc_string = match options.layout {
        Layout::Banter => {
            banter::build(&mut graph, config, weights)?;
            "GPT-Neo causal LM, banter layout: packed KV cache, last-position top-k and logits"
        }
        Layout::Conventional => {
            conventional::build(&mut graph, config, weights)?;
            "GPT-Neo causal LM, conventional layout: per-layer KV cache, logits for every position"
        }
    };

    let contrib_ops: Vec<String> = graph.contrib_ops.iter().cloned().collect();
    let mut opset_import = vec![OperatorSetIdProto {
        domain: String::new(),
        version: i64::from(OPSET),
    }];
    if !contrib_ops.is_empty() {
        opset_import.push(OperatorSetIdProto {
            domain: CONTRIB_DOMAIN.to_owned(),
            version: 1,
        });
    }

    let info = GraphInfo {
        opset: OPSET,
        contrib_ops,
        inputs: graph.inputs.iter().map(tensor_info).collect(),
        outputs: graph.outputs.iter().map(tensor_info).collect(),
    };

    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "banter-model".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: doc_string.to_owned(),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: "gpt_neo".to_owned(),
            initializer: graph.initializers,
            input: graph.inputs,
            output: graph.outputs,
        }),
        opset_import,
    };

    Ok(BuiltGraph {
        bytes: model.encode_to_vec(),
        info,
        // The int8 tables are expanded with Cast and Mul, which ONNX Runtime folds into
        // float32 initializers when the session is created, so no option is needed.
        session_options: BTreeMap::new(),
        quantization: quantization(options.weights),
    })
}

fn quantization(weights: WeightFormat) -> Quantization {
    let description = match weights {
        WeightFormat::Fp32 => "all weights float32".to_owned(),
        WeightFormat::Int8 => {
            "weight-only symmetric int8 (values -127..127, scale = max |w| / 127): \
             the tied token embedding and the position table with one float32 scale per row, \
             every linear weight with one scale per output feature; biases and layer norms \
             float32. Each table is expanded to float32 by Cast and Mul on initializers, which \
             ONNX Runtime constant-folds at session creation, so inference runs in float32"
                .to_owned()
        }
    };
    Quantization {
        weights,
        description,
    }
}

/// Converts a graph input or output into its manifest entry.
fn tensor_info(value: &ValueInfoProto) -> TensorInfo {
    let tensor_type = value
        .r#type
        .as_ref()
        .and_then(|type_proto| type_proto.tensor_type.as_ref());
    let dtype = match tensor_type.map(|tensor| tensor.elem_type) {
        Some(DTYPE_FLOAT) => "float32",
        Some(DTYPE_INT64) => "int64",
        Some(DTYPE_INT8) => "int8",
        _ => "unknown",
    };
    let shape = tensor_type
        .and_then(|tensor| tensor.shape.as_ref())
        .map(|shape| {
            shape
                .dim
                .iter()
                .map(|dim| match &dim.value {
                    Some(DimensionValue::DimValue(size)) => Dim::Fixed(*size as u64),
                    Some(DimensionValue::DimParam(name)) => Dim::Named(name.clone()),
                    None => Dim::Named(String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    TensorInfo {
        name: value.name.clone(),
        dtype: dtype.to_owned(),
        shape,
    }
}
