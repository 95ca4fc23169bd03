//! banter's decoding layout, built for onnxruntime-web's single-threaded wasm CPU build.
//!
//! Inputs:
//! - `input_ids` and `position_ids`, int64 `[1, sequence]`;
//! - `past`, float32 `[2·layers, heads, past_sequence, head_size]`, with layer `i`'s keys
//!   at index `2i` and its values at `2i + 1`. `past_sequence` is 0 for a prefill;
//! - `top_k`, int64 `[1]`.
//!
//! Outputs: `top_values`, float32 `[1, k]`, the last position's largest logits in
//! descending order (ties: lower id first, as ONNX `TopK` specifies); `top_ids`, int64
//! `[1, k]`; `present`, float32 `[2·layers, heads, past_sequence + sequence, head_size]`;
//! `logits`, float32 `[1, vocab]`, the last position's full logits.
//!
//! In onnxruntime-web 1.30's single-threaded wasm build, a decoding step of the 1M model
//! pays a few microseconds per node and about 4 µs per graph input or output (measured in
//! headless Chromium), so the KV cache is one tensor and each block is 9 nodes: one
//! MatMul for Q, K and V, `MultiHeadAttention` (causal, `scale = 1`, the local window as an
//! additive attention bias), `SkipLayerNormalization` for each residual add followed by a
//! layer norm, and `FastGelu` (the tanh approximation, which is `gelu_new`) with the MLP
//! bias folded in.

use crate::checkpoint::{Tensor, Weights};
use crate::config::NeoConfig;
use crate::onnx::{DTYPE_FLOAT, DTYPE_INT64};
use crate::ModelError;

use super::builder::{
    attr_float, attr_int, constant, dim_param, dim_value, GraphBuilder, ScaleAxis,
};
use super::{INPUT_IDS, LOGITS, PAST_SEQUENCE_DIM, POSITION_IDS, SEQUENCE_DIM, TOTAL_SEQUENCE_DIM};

/// Name of the packed KV cache input.
pub const PAST: &str = "past";

/// Name of the packed KV cache output.
pub const PRESENT: &str = "present";

/// Name of the input with the number of top logits to return, int64 `[1]`, 1..=vocab.
pub const TOP_K: &str = "top_k";

/// Name of the output with the largest logits, descending.
pub const TOP_VALUES: &str = "top_values";

/// Name of the output with the token ids of [`TOP_VALUES`].
pub const TOP_IDS: &str = "top_ids";

/// Name of the additive attention bias of local layers.
const LOCAL_BIAS: &str = "mask.local_bias";

/// Names of the constants only this layout uses.
const LAST: &str = "const.last_index_i64";
const FLOAT_ZERO: &str = "const.zero_f32";

pub(super) fn build(
    graph: &mut GraphBuilder,
    config: &NeoConfig,
    weights: &Weights,
) -> Result<(), ModelError> {
    let layers = config.model.num_layers as usize;
    let heads = i64::from(config.model.num_heads);
    let head_size = i64::from(config.head_size());
    let vocab = i64::from(config.model.vocab_size);
    let epsilon = config.model.layer_norm_epsilon as f32;

    let kv_dims = |sequence: &str| {
        vec![
            dim_value(2 * layers as i64),
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
    graph.input(PAST, DTYPE_FLOAT, kv_dims(PAST_SEQUENCE_DIM));
    graph.input(TOP_K, DTYPE_INT64, vec![dim_value(1)]);
    graph.output(TOP_VALUES, DTYPE_FLOAT, vec![dim_value(1), dim_param("k")]);
    graph.output(TOP_IDS, DTYPE_INT64, vec![dim_value(1), dim_param("k")]);
    graph.output(PRESENT, DTYPE_FLOAT, kv_dims(TOTAL_SEQUENCE_DIM));
    graph.output(LOGITS, DTYPE_FLOAT, vec![dim_value(1), dim_value(vocab)]);

    graph.add_constants(config.model.window_size);
    graph.int_initializer(LAST, &[], &[-1]);
    graph.float_initializer(FLOAT_ZERO, &[], &[0.0]);
    let embeddings = graph.embeddings(weights)?;

    // Split `past` along axis 0 into one [1, heads, past_sequence, head_size] tensor per
    // layer and kind; with no `split` input the parts are equal.
    let past_names: Vec<String> = (0..layers)
        .flat_map(|layer| [format!("past.{layer}.key"), format!("past.{layer}.value")])
        .collect();
    let past_refs: Vec<&str> = past_names.iter().map(String::as_str).collect();
    graph.push_node(
        "",
        "Split",
        "past.split",
        &[PAST],
        &past_refs,
        vec![attr_int("axis", 0)],
    );

    if (0..layers).any(|layer| config.is_local(layer)) {
        local_bias(graph);
    }

    // The first layer norm also adds the two embeddings: its fourth output is the sum.
    let mut normed = "h.0.ln_1".to_owned();
    let mut residual = "h.0.input".to_owned();
    let ln_1_weight = graph.vector(weights, "transformer.h.0.ln_1.weight")?;
    let ln_1_bias = graph.vector(weights, "transformer.h.0.ln_1.bias")?;
    graph.push_node(
        super::CONTRIB_DOMAIN,
        "SkipLayerNormalization",
        &normed,
        &[
            &embeddings.tokens,
            &embeddings.positions,
            &ln_1_weight,
            &ln_1_bias,
        ],
        &[&normed, "", "", &residual],
        vec![attr_float("epsilon", epsilon)],
    );

    for layer in 0..layers {
        let block = block(graph, config, weights, layer, &normed, &residual)?;
        normed = block.normed;
        residual = block.residual;
    }

    let present_names: Vec<String> = (0..layers)
        .flat_map(|layer| {
            [
                format!("present.{layer}.key"),
                format!("present.{layer}.value"),
            ]
        })
        .collect();
    let present_refs: Vec<&str> = present_names.iter().map(String::as_str).collect();
    graph.node("Concat", PRESENT, &present_refs, vec![attr_int("axis", 0)]);

    // `normed` is ln_f of every position; layer norm works per position, so taking the
    // last position afterwards is exact.
    let last = graph.node(
        "Gather",
        "last_position",
        &[&normed, LAST],
        vec![attr_int("axis", 1)],
    );
    graph.node(
        "Gemm",
        LOGITS,
        &[&last, &embeddings.table],
        vec![attr_int("transB", 1)],
    );
    graph.push_node(
        "",
        "TopK",
        "top_k",
        &[LOGITS, TOP_K],
        &[TOP_VALUES, TOP_IDS],
        vec![
            attr_int("axis", -1),
            attr_int("largest", 1),
            attr_int("sorted", 1),
        ],
    );
    Ok(())
}

/// Adds the `[1, 1, sequence, total_sequence]` float bias of local layers: 0 where the key
/// is fewer than `window_size` positions before the query, the float32 minimum elsewhere.
/// Keys after the query are masked by `MultiHeadAttention`'s `unidirectional` attribute.
fn local_bias(graph: &mut GraphBuilder) {
    let distance = graph.position_distance(PAST);
    let in_window = graph.node(
        "Less",
        "mask.in_window",
        &[&distance, constant::WINDOW],
        vec![],
    );
    let bias = graph.node(
        "Where",
        "mask.local_bias_3d",
        &[&in_window, FLOAT_ZERO, constant::MASKED_SCORE],
        vec![],
    );
    graph.node("Unsqueeze", LOCAL_BIAS, &[&bias, constant::AXIS_1], vec![]);
}

/// Outputs of one block: the next layer norm's output and the residual stream.
struct BlockOutput {
    normed: String,
    residual: String,
}

/// Adds transformer block `layer`. `normed` is `ln_1(residual)`, computed by the previous
/// block's last node. The block ends with the next block's `ln_1`, or `ln_f` after the
/// last block.
fn block(
    graph: &mut GraphBuilder,
    config: &NeoConfig,
    weights: &Weights,
    layer: usize,
    normed: &str,
    residual: &str,
) -> Result<BlockOutput, ModelError> {
    let hf = format!("transformer.h.{layer}");
    let name = |suffix: &str| format!("h.{layer}.{suffix}");
    let epsilon = config.model.layer_norm_epsilon as f32;
    let last_layer = layer + 1 == config.model.num_layers as usize;

    let qkv_weight = qkv_weight(graph, weights, layer)?;
    let qkv = graph.node("MatMul", &name("attn.qkv"), &[normed, &qkv_weight], vec![]);
    let (query, key, value) = (name("attn.q"), name("attn.k"), name("attn.v"));
    graph.push_node(
        "",
        "Split",
        &name("attn.qkv.split"),
        &[&qkv],
        &[&query, &key, &value],
        vec![attr_int("axis", 2)],
    );

    let bias = if config.is_local(layer) {
        LOCAL_BIAS
    } else {
        ""
    };
    let past_key = format!("past.{layer}.key");
    let past_value = format!("past.{layer}.value");
    let context = name("attn.context");
    graph.push_node(
        super::CONTRIB_DOMAIN,
        "MultiHeadAttention",
        &context,
        &[&query, &key, &value, "", "", bias, &past_key, &past_value],
        &[
            &context,
            &format!("present.{layer}.key"),
            &format!("present.{layer}.value"),
        ],
        vec![
            attr_int("num_heads", i64::from(config.model.num_heads)),
            // GPT-Neo does not scale scores by 1/sqrt(head_size); 0 would mean that default.
            attr_float("scale", 1.0),
            attr_int("unidirectional", 1),
        ],
    );
    let projected = graph.linear(
        weights,
        &format!("{hf}.attn.attention.out_proj"),
        &name("attn.out_proj"),
        &context,
        false,
    )?;

    let ln_2 = name("ln_2");
    let attention_residual = name("attn.residual");
    skip_layer_norm(
        graph,
        weights,
        &format!("{hf}.ln_2"),
        &format!("{hf}.attn.attention.out_proj.bias"),
        [&projected, residual],
        [&ln_2, &attention_residual],
        epsilon,
    )?;

    let fc = graph.linear(
        weights,
        &format!("{hf}.mlp.c_fc"),
        &name("mlp.c_fc"),
        &ln_2,
        false,
    )?;
    let fc_bias = graph.vector(weights, &format!("{hf}.mlp.c_fc.bias"))?;
    let activation = graph.contrib_node("FastGelu", &name("mlp.gelu"), &[&fc, &fc_bias], vec![]);
    let projected = graph.linear(
        weights,
        &format!("{hf}.mlp.c_proj"),
        &name("mlp.c_proj"),
        &activation,
        false,
    )?;

    let (next_norm, next_normed, next_residual) = if last_layer {
        (
            "transformer.ln_f".to_owned(),
            "ln_f".to_owned(),
            String::new(),
        )
    } else {
        (
            format!("transformer.h.{}.ln_1", layer + 1),
            format!("h.{}.ln_1", layer + 1),
            name("output"),
        )
    };
    skip_layer_norm(
        graph,
        weights,
        &next_norm,
        &format!("{hf}.mlp.c_proj.bias"),
        [&projected, &attention_residual],
        [&next_normed, &next_residual],
        epsilon,
    )?;

    Ok(BlockOutput {
        normed: next_normed,
        residual: next_residual,
    })
}

/// Adds `SkipLayerNormalization`: `sum = input + skip + bias`, `normed = norm(sum)`.
/// `outputs` is `[normed, sum]`; an empty `sum` name leaves that output out.
fn skip_layer_norm(
    graph: &mut GraphBuilder,
    weights: &Weights,
    norm_module: &str,
    bias: &str,
    [input, skip]: [&str; 2],
    [normed, sum]: [&str; 2],
    epsilon: f32,
) -> Result<(), ModelError> {
    let scale = graph.vector(weights, &format!("{norm_module}.weight"))?;
    let shift = graph.vector(weights, &format!("{norm_module}.bias"))?;
    let bias = graph.vector(weights, bias)?;
    let outputs: &[&str] = if sum.is_empty() {
        &[normed]
    } else {
        &[normed, "", "", sum]
    };
    graph.push_node(
        super::CONTRIB_DOMAIN,
        "SkipLayerNormalization",
        normed,
        &[input, skip, &scale, &shift, &bias],
        outputs,
        vec![attr_float("epsilon", epsilon)],
    );
    Ok(())
}

/// Adds the `[hidden, 3·hidden]` weight whose columns are the transposed Q, K and V
/// projections side by side, so one MatMul computes all three.
fn qkv_weight(
    graph: &mut GraphBuilder,
    weights: &Weights,
    layer: usize,
) -> Result<String, ModelError> {
    let prefix = format!("transformer.h.{layer}.attn.attention");
    let mut parts = Vec::with_capacity(3);
    for projection in ["q", "k", "v"] {
        parts.push(
            weights
                .get(&format!("{prefix}.{projection}_proj.weight"))?
                .transposed(),
        );
    }

    let rows = parts[0].shape[0];
    let width: usize = parts.iter().map(|part| part.shape[1]).sum();
    let mut data = Vec::with_capacity(rows * width);
    for row in 0..rows {
        for part in &parts {
            let cols = part.shape[1];
            data.extend_from_slice(&part.data[row * cols..(row + 1) * cols]);
        }
    }
    let tensor = Tensor {
        shape: vec![rows, width],
        data,
    };
    Ok(graph.matrix(
        &format!("{prefix}.qkv_proj.weight.transposed"),
        &tensor,
        ScaleAxis::Columns,
    ))
}
