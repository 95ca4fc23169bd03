//! The GPT-Neo forward pass as an ONNX graph (opset 17, standard operators only).
//!
//! Input `input_ids`, int64 `[1, sequence]`; output `logits`, float32 `[1, vocab_size]`,
//! for the last position only. `sequence` must be between 1 and
//! `max_position_embeddings`: a longer input makes the position `Gather` fail at run time.
//!
//! The graph follows Hugging Face's `GPTNeoForCausalLM`:
//! - learned positions `0..sequence` are computed in the graph with `Range`;
//! - attention scores are `q·kᵀ` with no `1/sqrt(head_size)` scaling;
//! - masked scores are replaced by the float32 minimum before the softmax. Global layers
//!   mask keys after the query. Local layers also mask keys `window_size` or more
//!   positions back;
//! - the MLP activation is `gelu_new`, `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))`;
//! - the LM head is a `Gemm` with `transB = 1` on the same `wte` initializer the token
//!   lookup uses, so the table is stored once.

use banter_bundle::{Dim, GraphInfo, TensorInfo};
use prost::Message as _;

use crate::checkpoint::{Tensor, Weights};
use crate::config::NeoConfig;
use crate::onnx::*;
use crate::ModelError;

/// Default-domain opset of the graph; `LayerNormalization` needs 17.
pub const OPSET: u32 = 17;

/// Name of the graph input.
pub const INPUT_IDS: &str = "input_ids";

/// Name of the graph output.
pub const LOGITS: &str = "logits";

/// Name of the symbolic sequence-length dimension of `input_ids`.
pub const SEQUENCE_DIM: &str = "sequence";

/// Returns the graph's interface as recorded in the manifest.
pub fn graph_info(config: &NeoConfig) -> GraphInfo {
    GraphInfo {
        opset: OPSET,
        inputs: vec![TensorInfo {
            name: INPUT_IDS.to_owned(),
            dtype: "int64".to_owned(),
            shape: vec![Dim::Fixed(1), Dim::Named(SEQUENCE_DIM.to_owned())],
        }],
        outputs: vec![TensorInfo {
            name: LOGITS.to_owned(),
            dtype: "float32".to_owned(),
            shape: vec![
                Dim::Fixed(1),
                Dim::Fixed(u64::from(config.model.vocab_size)),
            ],
        }],
    }
}

/// Builds the ONNX model for `config` with `weights` as initializers and returns the
/// serialised `ModelProto`. The same inputs always give the same bytes.
pub fn build_model(config: &NeoConfig, weights: &Weights) -> Result<Vec<u8>, ModelError> {
    let mut graph = GraphBuilder::default();
    graph.add_constants(config);

    let hidden = graph.embeddings(weights)?;
    graph.masks();

    let mut hidden = hidden;
    for layer in 0..config.model.num_layers as usize {
        hidden = graph.block(config, weights, layer, &hidden)?;
    }
    graph.head(config, weights, &hidden)?;

    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "banter-model".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: "GPT-Neo causal LM: last-position logits for input_ids".to_owned(),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: "gpt_neo".to_owned(),
            initializer: graph.initializers,
            input: vec![value_info(
                INPUT_IDS,
                DTYPE_INT64,
                vec![dim_value(1), dim_param(SEQUENCE_DIM)],
            )],
            output: vec![value_info(
                LOGITS,
                DTYPE_FLOAT,
                vec![dim_value(1), dim_value(i64::from(config.model.vocab_size))],
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: i64::from(OPSET),
        }],
    };
    Ok(model.encode_to_vec())
}

/// Names of the shared constant initializers.
mod constant {
    pub const ZERO: &str = "const.zero_i64";
    pub const ONE: &str = "const.one_i64";
    pub const LAST: &str = "const.last_index_i64";
    pub const AXIS_0: &str = "const.axes_0";
    pub const AXIS_1: &str = "const.axes_1";
    pub const WINDOW: &str = "const.window_size";
    pub const HEADS_SHAPE: &str = "const.split_heads_shape";
    pub const MERGED_SHAPE: &str = "const.merge_heads_shape";
    pub const MASKED_SCORE: &str = "const.masked_score";
    pub const HALF: &str = "const.half";
    pub const FLOAT_ONE: &str = "const.one_f32";
    pub const GELU_CUBIC: &str = "const.gelu_cubic";
    pub const GELU_SCALE: &str = "const.gelu_sqrt_2_over_pi";
}

/// Names of the mask tensors shared by all blocks.
const GLOBAL_MASK: &str = "mask.causal";
const LOCAL_MASK: &str = "mask.local";

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    /// Adds a node whose single output is named `output` and returns that name.
    fn node(
        &mut self,
        op_type: &str,
        output: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|name| (*name).to_owned()).collect(),
            output: vec![output.to_owned()],
            name: output.to_owned(),
            op_type: op_type.to_owned(),
            attribute,
            domain: String::new(),
        });
        output.to_owned()
    }

    fn float_initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&dim| dim as i64).collect(),
            data_type: DTYPE_FLOAT,
            name: name.to_owned(),
            raw_data: data.iter().flat_map(|value| value.to_le_bytes()).collect(),
        });
        name.to_owned()
    }

    fn int_initializer(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&dim| dim as i64).collect(),
            data_type: DTYPE_INT64,
            name: name.to_owned(),
            raw_data: data.iter().flat_map(|value| value.to_le_bytes()).collect(),
        });
        name.to_owned()
    }

    /// Adds a checkpoint tensor as an initializer under its Hugging Face name.
    fn weight(&mut self, weights: &Weights, name: &str) -> Result<String, ModelError> {
        let tensor = weights.get(name)?;
        Ok(self.float_initializer(name, &tensor.shape, &tensor.data))
    }

    /// Adds the transpose of a linear weight (`[out, in]` → `[in, out]`) for `MatMul`.
    fn linear_weight(&mut self, weights: &Weights, name: &str) -> Result<String, ModelError> {
        let tensor: Tensor = weights.get(name)?.transposed();
        Ok(self.float_initializer(&format!("{name}.transposed"), &tensor.shape, &tensor.data))
    }

    fn add_constants(&mut self, config: &NeoConfig) {
        let heads = i64::from(config.model.num_heads);
        let head_size = i64::from(config.head_size());

        self.int_initializer(constant::ZERO, &[], &[0]);
        self.int_initializer(constant::ONE, &[], &[1]);
        self.int_initializer(constant::LAST, &[], &[-1]);
        self.int_initializer(constant::AXIS_0, &[1], &[0]);
        self.int_initializer(constant::AXIS_1, &[1], &[1]);
        self.int_initializer(
            constant::WINDOW,
            &[],
            &[i64::from(config.model.window_size)],
        );
        // Reshape copies a 0 entry from the input shape: [batch, sequence, heads, head_size].
        self.int_initializer(constant::HEADS_SHAPE, &[4], &[0, 0, heads, head_size]);
        self.int_initializer(constant::MERGED_SHAPE, &[3], &[0, 0, heads * head_size]);

        self.float_initializer(constant::MASKED_SCORE, &[], &[f32::MIN]);
        self.float_initializer(constant::HALF, &[], &[0.5]);
        self.float_initializer(constant::FLOAT_ONE, &[], &[1.0]);
        self.float_initializer(constant::GELU_CUBIC, &[], &[0.044715]);
        self.float_initializer(
            constant::GELU_SCALE,
            &[],
            &[(2.0 / std::f64::consts::PI).sqrt() as f32],
        );
    }

    /// Adds the token and position lookups and returns the first residual stream,
    /// `[1, sequence, hidden]`. Also defines `positions`, used by [`Self::masks`].
    fn embeddings(&mut self, weights: &Weights) -> Result<String, ModelError> {
        let wte = self.weight(weights, "transformer.wte.weight")?;
        let wpe = self.weight(weights, "transformer.wpe.weight")?;

        let length = self.node(
            "Shape",
            "sequence_length_1d",
            &[INPUT_IDS],
            vec![attr_int("start", 1)],
        );
        let length = self.node(
            "Squeeze",
            "sequence_length",
            &[&length, constant::AXIS_0],
            vec![],
        );
        let positions = self.node(
            "Range",
            "positions",
            &[constant::ZERO, &length, constant::ONE],
            vec![],
        );

        let tokens = self.node(
            "Gather",
            "token_embeddings",
            &[&wte, INPUT_IDS],
            vec![attr_int("axis", 0)],
        );
        let places = self.node(
            "Gather",
            "position_embeddings",
            &[&wpe, &positions],
            vec![attr_int("axis", 0)],
        );
        Ok(self.node("Add", "h.0.input", &[&tokens, &places], vec![]))
    }

    /// Adds the boolean `[sequence, sequence]` masks: entry `[i, j]` is true where query
    /// `i` may attend to key `j`.
    fn masks(&mut self) {
        let queries = self.node(
            "Unsqueeze",
            "mask.query_positions",
            &["positions", constant::AXIS_1],
            vec![],
        );
        let keys = self.node(
            "Unsqueeze",
            "mask.key_positions",
            &["positions", constant::AXIS_0],
            vec![],
        );
        let distance = self.node("Sub", "mask.distance", &[&queries, &keys], vec![]);

        self.node(
            "GreaterOrEqual",
            GLOBAL_MASK,
            &[&distance, constant::ZERO],
            vec![],
        );
        let in_window = self.node(
            "Less",
            "mask.in_window",
            &[&distance, constant::WINDOW],
            vec![],
        );
        self.node("And", LOCAL_MASK, &[GLOBAL_MASK, &in_window], vec![]);
    }

    /// Adds transformer block `layer` and returns its output residual stream.
    fn block(
        &mut self,
        config: &NeoConfig,
        weights: &Weights,
        layer: usize,
        input: &str,
    ) -> Result<String, ModelError> {
        let hf = format!("transformer.h.{layer}");
        let name = |suffix: &str| format!("h.{layer}.{suffix}");
        let epsilon = config.model.layer_norm_epsilon as f32;

        let ln_1 = self.layer_norm(
            weights,
            &format!("{hf}.ln_1"),
            &name("ln_1"),
            input,
            epsilon,
        )?;
        let attention = self.attention(config, weights, layer, &ln_1)?;
        let residual = self.node("Add", &name("attn.residual"), &[input, &attention], vec![]);

        let ln_2 = self.layer_norm(
            weights,
            &format!("{hf}.ln_2"),
            &name("ln_2"),
            &residual,
            epsilon,
        )?;
        let fc = self.linear(
            weights,
            &format!("{hf}.mlp.c_fc"),
            &name("mlp.c_fc"),
            &ln_2,
            true,
        )?;
        let activation = self.gelu_new(&name("mlp.gelu"), &fc);
        let projection = self.linear(
            weights,
            &format!("{hf}.mlp.c_proj"),
            &name("mlp.c_proj"),
            &activation,
            true,
        )?;
        Ok(self.node("Add", &name("output"), &[&residual, &projection], vec![]))
    }

    /// Adds masked multi-head self-attention with its output projection.
    fn attention(
        &mut self,
        config: &NeoConfig,
        weights: &Weights,
        layer: usize,
        input: &str,
    ) -> Result<String, ModelError> {
        let hf = format!("transformer.h.{layer}.attn.attention");
        let name = |suffix: &str| format!("h.{layer}.attn.{suffix}");

        let mut heads = Vec::with_capacity(3);
        for (projection, perm) in [
            ("q", [0, 2, 1, 3]),
            ("k", [0, 2, 3, 1]),
            ("v", [0, 2, 1, 3]),
        ] {
            let flat = self.linear(
                weights,
                &format!("{hf}.{projection}_proj"),
                &name(projection),
                input,
                false,
            )?;
            let split = self.node(
                "Reshape",
                &name(&format!("{projection}.split")),
                &[&flat, constant::HEADS_SHAPE],
                vec![],
            );
            heads.push(self.node(
                "Transpose",
                &name(&format!("{projection}.heads")),
                &[&split],
                vec![attr_ints("perm", &perm)],
            ));
        }
        let (query, key_t, value) = (&heads[0], &heads[1], &heads[2]);

        // [1, heads, sequence, sequence]; GPT-Neo does not scale by 1/sqrt(head_size).
        let scores = self.node("MatMul", &name("scores"), &[query, key_t], vec![]);
        let mask = if config.is_local(layer) {
            LOCAL_MASK
        } else {
            GLOBAL_MASK
        };
        let masked = self.node(
            "Where",
            &name("masked_scores"),
            &[mask, &scores, constant::MASKED_SCORE],
            vec![],
        );
        let probs = self.node(
            "Softmax",
            &name("probs"),
            &[&masked],
            vec![attr_int("axis", -1)],
        );

        let context = self.node("MatMul", &name("context"), &[&probs, value], vec![]);
        let context = self.node(
            "Transpose",
            &name("context.positions_first"),
            &[&context],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
        );
        let context = self.node(
            "Reshape",
            &name("context.merged"),
            &[&context, constant::MERGED_SHAPE],
            vec![],
        );
        self.linear(
            weights,
            &format!("{hf}.out_proj"),
            &name("out_proj"),
            &context,
            true,
        )
    }

    /// Adds `input · weightᵀ (+ bias)` for the Hugging Face `Linear` module `module`.
    fn linear(
        &mut self,
        weights: &Weights,
        module: &str,
        output: &str,
        input: &str,
        has_bias: bool,
    ) -> Result<String, ModelError> {
        let weight = self.linear_weight(weights, &format!("{module}.weight"))?;
        let product_name = if has_bias {
            format!("{output}.matmul")
        } else {
            output.to_owned()
        };
        let product = self.node("MatMul", &product_name, &[input, &weight], vec![]);
        if !has_bias {
            return Ok(product);
        }
        let bias = self.weight(weights, &format!("{module}.bias"))?;
        Ok(self.node("Add", output, &[&product, &bias], vec![]))
    }

    fn layer_norm(
        &mut self,
        weights: &Weights,
        module: &str,
        output: &str,
        input: &str,
        epsilon: f32,
    ) -> Result<String, ModelError> {
        let scale = self.weight(weights, &format!("{module}.weight"))?;
        let shift = self.weight(weights, &format!("{module}.bias"))?;
        Ok(self.node(
            "LayerNormalization",
            output,
            &[input, &scale, &shift],
            vec![attr_int("axis", -1), attr_float("epsilon", epsilon)],
        ))
    }

    /// Adds `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))` with plain arithmetic ops.
    fn gelu_new(&mut self, output: &str, x: &str) -> String {
        let name = |suffix: &str| format!("{output}.{suffix}");

        let square = self.node("Mul", &name("square"), &[x, x], vec![]);
        let cube = self.node("Mul", &name("cube"), &[&square, x], vec![]);
        let cubic_term = self.node(
            "Mul",
            &name("cubic_term"),
            &[&cube, constant::GELU_CUBIC],
            vec![],
        );
        let inner = self.node("Add", &name("inner"), &[x, &cubic_term], vec![]);
        let scaled = self.node(
            "Mul",
            &name("scaled"),
            &[&inner, constant::GELU_SCALE],
            vec![],
        );
        let tanh = self.node("Tanh", &name("tanh"), &[&scaled], vec![]);
        let gate = self.node("Add", &name("gate"), &[&tanh, constant::FLOAT_ONE], vec![]);
        let half_x = self.node("Mul", &name("half_x"), &[x, constant::HALF], vec![]);
        self.node("Mul", output, &[&half_x, &gate], vec![])
    }

    /// Adds the final layer norm and the tied LM head on the last position only.
    fn head(
        &mut self,
        config: &NeoConfig,
        weights: &Weights,
        hidden: &str,
    ) -> Result<(), ModelError> {
        let epsilon = config.model.layer_norm_epsilon as f32;

        // Layer norm works per position, so picking the last position first is exact.
        let last = self.node(
            "Gather",
            "last_position",
            &[hidden, constant::LAST],
            vec![attr_int("axis", 1)],
        );
        let normed = self.layer_norm(weights, "transformer.ln_f", "ln_f", &last, epsilon)?;
        self.node(
            "Gemm",
            LOGITS,
            &[&normed, "transformer.wte.weight"],
            vec![attr_int("transB", 1)],
        );
        Ok(())
    }
}

fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        i: Some(value),
        r#type: ATTR_INT,
        ..Default::default()
    }
}

fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        ints: values.to_vec(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        f: Some(value),
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}

fn dim_value(size: i64) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimValue(size)),
    }
}

fn dim_param(name: &str) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimParam(name.to_owned())),
    }
}

fn value_info(name: &str, elem_type: i32, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}
