//! The conventional layout of Hugging Face's ONNX exports, with standard operators only.
//!
//! Inputs: `input_ids` and `position_ids`, int64 `[1, sequence]`; for each layer `i`,
//! `past_key_values.{i}.key` and `past_key_values.{i}.value`, float32
//! `[1, heads, past_sequence, head_size]` (`past_sequence` is 0 for a prefill).
//!
//! Outputs: `logits`, float32 `[1, sequence, vocab]`, for every new position; for each
//! layer, `present.{i}.key` and `present.{i}.value`, float32
//! `[1, heads, past_sequence + sequence, head_size]`.
//!
//! NOTE: the graph has no `attention_mask` input, so padded batches are not supported.
//! Loaders that always pass an attention mask need a graph with that input.

use crate::checkpoint::Weights;
use crate::config::NeoConfig;
use crate::onnx::{DTYPE_FLOAT, DTYPE_INT64};
use crate::ModelError;

use super::builder::{
    attr_float, attr_int, attr_ints, constant, dim_param, dim_value, GraphBuilder,
};
use super::{INPUT_IDS, LOGITS, PAST_SEQUENCE_DIM, POSITION_IDS, SEQUENCE_DIM, TOTAL_SEQUENCE_DIM};

/// Name of layer `layer`'s cached keys input.
pub fn past_key_name(layer: usize) -> String {
    format!("past_key_values.{layer}.key")
}

/// Name of layer `layer`'s cached values input.
pub fn past_value_name(layer: usize) -> String {
    format!("past_key_values.{layer}.value")
}

/// Name of layer `layer`'s keys output, past and new.
pub fn present_key_name(layer: usize) -> String {
    format!("present.{layer}.key")
}

/// Name of layer `layer`'s values output, past and new.
pub fn present_value_name(layer: usize) -> String {
    format!("present.{layer}.value")
}

/// Names of the boolean `[1, 1, sequence, total_sequence]` masks; true where the query
/// may attend to the key.
const GLOBAL_MASK: &str = "mask.causal";
const LOCAL_MASK: &str = "mask.local";

/// Names of the head-splitting shape constants.
const HEADS_SHAPE: &str = "const.split_heads_shape";
const MERGED_SHAPE: &str = "const.merge_heads_shape";

/// Names of the `gelu_new` constants.
const HALF: &str = "const.half";
const FLOAT_ONE: &str = "const.one_f32";
const GELU_CUBIC: &str = "const.gelu_cubic";
const GELU_SCALE: &str = "const.gelu_sqrt_2_over_pi";

pub(super) fn build(
    graph: &mut GraphBuilder,
    config: &NeoConfig,
    weights: &Weights,
) -> Result<(), ModelError> {
    let layers = config.model.num_layers as usize;
    let heads = i64::from(config.model.num_heads);
    let head_size = i64::from(config.head_size());
    let vocab = i64::from(config.model.vocab_size);

    let kv_dims = |sequence: &str| {
        vec![
            dim_value(1),
            dim_value(heads),
            dim_param(sequence),
            dim_value(head_size),
        ]
    };
    graph.input(
        INPUT_IDS,
        DTYPE_INT64,
        vec![dim_value(1), dim_param(SEQUENCE_DIM)],
    );
    graph.input(
        POSITION_IDS,
        DTYPE_INT64,
        vec![dim_value(1), dim_param(SEQUENCE_DIM)],
    );
    for layer in 0..layers {
        graph.input(
            &past_key_name(layer),
            DTYPE_FLOAT,
            kv_dims(PAST_SEQUENCE_DIM),
        );
        graph.input(
            &past_value_name(layer),
            DTYPE_FLOAT,
            kv_dims(PAST_SEQUENCE_DIM),
        );
    }
    graph.output(
        LOGITS,
        DTYPE_FLOAT,
        vec![dim_value(1), dim_param(SEQUENCE_DIM), dim_value(vocab)],
    );
    for layer in 0..layers {
        graph.output(
            &present_key_name(layer),
            DTYPE_FLOAT,
            kv_dims(TOTAL_SEQUENCE_DIM),
        );
        graph.output(
            &present_value_name(layer),
            DTYPE_FLOAT,
            kv_dims(TOTAL_SEQUENCE_DIM),
        );
    }

    graph.add_constants(config.model.window_size);
    // Reshape copies a 0 entry from the input shape: [batch, sequence, heads, head_size].
    graph.int_initializer(HEADS_SHAPE, &[4], &[0, 0, heads, head_size]);
    graph.int_initializer(MERGED_SHAPE, &[3], &[0, 0, heads * head_size]);
    graph.float_initializer(HALF, &[], &[0.5]);
    graph.float_initializer(FLOAT_ONE, &[], &[1.0]);
    graph.float_initializer(GELU_CUBIC, &[], &[0.044715]);
    graph.float_initializer(
        GELU_SCALE,
        &[],
        &[(2.0 / std::f64::consts::PI).sqrt() as f32],
    );

    let embeddings = graph.embeddings(weights)?;
    let mut hidden = graph.node(
        "Add",
        "h.0.input",
        &[&embeddings.tokens, &embeddings.positions],
        vec![],
    );
    masks(graph, &past_key_name(0));

    for layer in 0..layers {
        hidden = block(graph, config, weights, layer, &hidden)?;
    }

    let epsilon = config.model.layer_norm_epsilon as f32;
    let normed = layer_norm(graph, weights, "transformer.ln_f", "ln_f", &hidden, epsilon)?;
    // A node on an initializer only: ONNX Runtime folds the transpose at session creation.
    let head = graph.node(
        "Transpose",
        "lm_head.weight.transposed",
        &[&embeddings.table],
        vec![attr_ints("perm", &[1, 0])],
    );
    graph.node("MatMul", LOGITS, &[&normed, &head], vec![]);
    Ok(())
}

/// Adds the causal mask and the local-window mask.
fn masks(graph: &mut GraphBuilder, past_key: &str) {
    let distance = graph.position_distance(past_key);
    let causal = graph.node(
        "GreaterOrEqual",
        "mask.causal_3d",
        &[&distance, constant::ZERO],
        vec![],
    );
    let in_window = graph.node(
        "Less",
        "mask.in_window",
        &[&distance, constant::WINDOW],
        vec![],
    );
    let local = graph.node("And", "mask.local_3d", &[&causal, &in_window], vec![]);
    graph.node(
        "Unsqueeze",
        GLOBAL_MASK,
        &[&causal, constant::AXIS_1],
        vec![],
    );
    graph.node("Unsqueeze", LOCAL_MASK, &[&local, constant::AXIS_1], vec![]);
}

/// Adds transformer block `layer` and returns its output residual stream.
fn block(
    graph: &mut GraphBuilder,
    config: &NeoConfig,
    weights: &Weights,
    layer: usize,
    input: &str,
) -> Result<String, ModelError> {
    let hf = format!("transformer.h.{layer}");
    let name = |suffix: &str| format!("h.{layer}.{suffix}");
    let epsilon = config.model.layer_norm_epsilon as f32;

    let ln_1 = layer_norm(
        graph,
        weights,
        &format!("{hf}.ln_1"),
        &name("ln_1"),
        input,
        epsilon,
    )?;
    let attention = attention(graph, config, weights, layer, &ln_1)?;
    let residual = graph.node("Add", &name("attn.residual"), &[input, &attention], vec![]);

    let ln_2 = layer_norm(
        graph,
        weights,
        &format!("{hf}.ln_2"),
        &name("ln_2"),
        &residual,
        epsilon,
    )?;
    let fc = graph.linear(
        weights,
        &format!("{hf}.mlp.c_fc"),
        &name("mlp.c_fc"),
        &ln_2,
        true,
    )?;
    let activation = gelu_new(graph, &name("mlp.gelu"), &fc);
    let projection = graph.linear(
        weights,
        &format!("{hf}.mlp.c_proj"),
        &name("mlp.c_proj"),
        &activation,
        true,
    )?;
    Ok(graph.node("Add", &name("output"), &[&residual, &projection], vec![]))
}

/// Adds masked multi-head self-attention over the cached and new positions, with its
/// output projection. Also defines the layer's `present` outputs.
fn attention(
    graph: &mut GraphBuilder,
    config: &NeoConfig,
    weights: &Weights,
    layer: usize,
    input: &str,
) -> Result<String, ModelError> {
    let hf = format!("transformer.h.{layer}.attn.attention");
    let name = |suffix: &str| format!("h.{layer}.attn.{suffix}");

    // Each projection becomes [1, heads, sequence, head_size].
    let mut heads = Vec::with_capacity(3);
    for projection in ["q", "k", "v"] {
        let flat = graph.linear(
            weights,
            &format!("{hf}.{projection}_proj"),
            &name(projection),
            input,
            false,
        )?;
        let split = graph.node(
            "Reshape",
            &name(&format!("{projection}.split")),
            &[&flat, HEADS_SHAPE],
            vec![],
        );
        heads.push(graph.node(
            "Transpose",
            &name(&format!("{projection}.heads")),
            &[&split],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
        ));
    }

    let keys = graph.node(
        "Concat",
        &present_key_name(layer),
        &[&past_key_name(layer), &heads[1]],
        vec![attr_int("axis", 2)],
    );
    let values = graph.node(
        "Concat",
        &present_value_name(layer),
        &[&past_value_name(layer), &heads[2]],
        vec![attr_int("axis", 2)],
    );
    let keys_t = graph.node(
        "Transpose",
        &name("k.transposed"),
        &[&keys],
        vec![attr_ints("perm", &[0, 1, 3, 2])],
    );

    // [1, heads, sequence, total_sequence]; GPT-Neo does not scale by 1/sqrt(head_size).
    let scores = graph.node("MatMul", &name("scores"), &[&heads[0], &keys_t], vec![]);
    let mask = if config.is_local(layer) {
        LOCAL_MASK
    } else {
        GLOBAL_MASK
    };
    let masked = graph.node(
        "Where",
        &name("masked_scores"),
        &[mask, &scores, constant::MASKED_SCORE],
        vec![],
    );
    let probs = graph.node(
        "Softmax",
        &name("probs"),
        &[&masked],
        vec![attr_int("axis", -1)],
    );

    let context = graph.node("MatMul", &name("context"), &[&probs, &values], vec![]);
    let context = graph.node(
        "Transpose",
        &name("context.positions_first"),
        &[&context],
        vec![attr_ints("perm", &[0, 2, 1, 3])],
    );
    let context = graph.node(
        "Reshape",
        &name("context.merged"),
        &[&context, MERGED_SHAPE],
        vec![],
    );
    graph.linear(
        weights,
        &format!("{hf}.out_proj"),
        &name("out_proj"),
        &context,
        true,
    )
}

fn layer_norm(
    graph: &mut GraphBuilder,
    weights: &Weights,
    module: &str,
    output: &str,
    input: &str,
    epsilon: f32,
) -> Result<String, ModelError> {
    let scale = graph.vector(weights, &format!("{module}.weight"))?;
    let shift = graph.vector(weights, &format!("{module}.bias"))?;
    Ok(graph.node(
        "LayerNormalization",
        output,
        &[input, &scale, &shift],
        vec![attr_int("axis", -1), attr_float("epsilon", epsilon)],
    ))
}

/// Adds `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))` with plain arithmetic ops.
fn gelu_new(graph: &mut GraphBuilder, output: &str, x: &str) -> String {
    let name = |suffix: &str| format!("{output}.{suffix}");

    let square = graph.node("Mul", &name("square"), &[x, x], vec![]);
    let cube = graph.node("Mul", &name("cube"), &[&square, x], vec![]);
    let cubic_term = graph.node("Mul", &name("cubic_term"), &[&cube, GELU_CUBIC], vec![]);
    let inner = graph.node("Add", &name("inner"), &[x, &cubic_term], vec![]);
    let scaled = graph.node("Mul", &name("scaled"), &[&inner, GELU_SCALE], vec![]);
    let tanh = graph.node("Tanh", &name("tanh"), &[&scaled], vec![]);
    let gate = graph.node("Add", &name("gate"), &[&tanh, FLOAT_ONE], vec![]);
    let half_x = graph.node("Mul", &name("half_x"), &[x, HALF], vec![]);
    graph.node("Mul", output, &[&half_x, &gate], vec![])
}
