//! Node and initializer bookkeeping shared by both layouts.

use std::collections::BTreeSet;

use banter_bundle::WeightFormat;

use crate::checkpoint::{Tensor, Weights};
use crate::onnx::*;
use crate::ModelError;

use super::CONTRIB_DOMAIN;

/// Granularity of the int8 scales of a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScaleAxis {
    /// One scale per row: embedding tables, where a row is one token or position.
    Rows,
    /// One scale per column: `[in, out]` linear weights, one scale per output feature.
    Columns,
}

/// Names of the shared scalar and shape constants.
pub(super) mod constant {
    pub const ZERO: &str = "const.zero_i64";
    pub const ONE: &str = "const.one_i64";
    pub const AXIS_0: &str = "const.axes_0";
    pub const AXIS_1: &str = "const.axes_1";
    pub const AXIS_2: &str = "const.axes_2";
    pub const WINDOW: &str = "const.window_size";
    pub const MASKED_SCORE: &str = "const.masked_score";
}

/// Accumulates the nodes, initializers and interface of one graph.
pub(super) struct GraphBuilder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    pub inputs: Vec<ValueInfoProto>,
    pub outputs: Vec<ValueInfoProto>,
    /// `com.microsoft` operators used so far.
    pub contrib_ops: BTreeSet<String>,
    format: WeightFormat,
}

impl GraphBuilder {
    pub fn new(format: WeightFormat) -> Self {
        GraphBuilder {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            contrib_ops: BTreeSet::new(),
            format,
        }
    }

    /// Adds a default-domain node whose single output is named `output` and returns that name.
    pub fn node(
        &mut self,
        op_type: &str,
        output: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.push_node("", op_type, output, inputs, &[output], attribute);
        output.to_owned()
    }

    /// Adds a `com.microsoft` node whose single output is named `output` and returns that name.
    pub fn contrib_node(
        &mut self,
        op_type: &str,
        output: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.push_node(
            CONTRIB_DOMAIN,
            op_type,
            output,
            inputs,
            &[output],
            attribute,
        );
        output.to_owned()
    }

    /// Adds a node with several outputs; an empty input or output name skips an optional one.
    pub fn push_node(
        &mut self,
        domain: &str,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        if domain == CONTRIB_DOMAIN {
            self.contrib_ops.insert(op_type.to_owned());
        }
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|name| (*name).to_owned()).collect(),
            output: outputs.iter().map(|name| (*name).to_owned()).collect(),
            name: name.to_owned(),
            op_type: op_type.to_owned(),
            attribute,
            domain: domain.to_owned(),
        });
    }

    pub fn input(&mut self, name: &str, elem_type: i32, dims: Vec<Dimension>) {
        self.inputs.push(value_info(name, elem_type, dims));
    }

    pub fn output(&mut self, name: &str, elem_type: i32, dims: Vec<Dimension>) {
        self.outputs.push(value_info(name, elem_type, dims));
    }

    pub fn float_initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&dim| dim as i64).collect(),
            data_type: DTYPE_FLOAT,
            name: name.to_owned(),
            raw_data: data.iter().flat_map(|value| value.to_le_bytes()).collect(),
        });
        name.to_owned()
    }

    pub fn int_initializer(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&dim| dim as i64).collect(),
            data_type: DTYPE_INT64,
            name: name.to_owned(),
            raw_data: data.iter().flat_map(|value| value.to_le_bytes()).collect(),
        });
        name.to_owned()
    }

    /// Adds the scalar and shape constants that both layouts use.
    pub fn add_constants(&mut self, window_size: u32) {
        self.int_initializer(constant::ZERO, &[], &[0]);
        self.int_initializer(constant::ONE, &[], &[1]);
        self.int_initializer(constant::AXIS_0, &[1], &[0]);
        self.int_initializer(constant::AXIS_1, &[1], &[1]);
        self.int_initializer(constant::AXIS_2, &[1], &[2]);
        self.int_initializer(constant::WINDOW, &[], &[i64::from(window_size)]);
        // Hugging Face fills masked scores with the float32 minimum too.
        self.float_initializer(constant::MASKED_SCORE, &[], &[f32::MIN]);
    }

    /// Adds a checkpoint vector (bias, layer-norm scale or shift) as a float32
    /// initializer under its Hugging Face name.
    pub fn vector(&mut self, weights: &Weights, name: &str) -> Result<String, ModelError> {
        let tensor = weights.get(name)?;
        Ok(self.float_initializer(name, &tensor.shape, &tensor.data))
    }

    /// Adds a 2-D weight under `name` in the builder's weight format and returns the name
    /// of the float32 value the graph reads.
    ///
    /// In int8 format the file stores `{name}.int8` and `{name}.scale`, and a Cast and a
    /// Mul node expand them. Both nodes have only initializer inputs, so ONNX Runtime
    /// folds them into one float32 initializer when the session is created.
    pub fn matrix(&mut self, name: &str, tensor: &Tensor, axis: ScaleAxis) -> String {
        if self.format == WeightFormat::Fp32 {
            return self.float_initializer(name, &tensor.shape, &tensor.data);
        }

        let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
        let (quantized, scales) = quantize(tensor, axis);
        let scale_shape = match axis {
            ScaleAxis::Rows => [rows, 1],
            ScaleAxis::Columns => [1, cols],
        };

        let int8_name = format!("{name}.int8");
        self.initializers.push(TensorProto {
            dims: vec![rows as i64, cols as i64],
            data_type: DTYPE_INT8,
            name: int8_name.clone(),
            raw_data: quantized.iter().map(|value| *value as u8).collect(),
        });
        let scale_name = self.float_initializer(&format!("{name}.scale"), &scale_shape, &scales);

        let widened = self.node(
            "Cast",
            &format!("{name}.int8_as_float"),
            &[&int8_name],
            vec![attr_int("to", i64::from(DTYPE_FLOAT))],
        );
        self.node("Mul", name, &[&widened, &scale_name], vec![])
    }

    /// Adds the transpose of the linear weight `{module}.weight` (`[out, in]` → `[in, out]`)
    /// for `MatMul`.
    pub fn linear_weight(&mut self, weights: &Weights, module: &str) -> Result<String, ModelError> {
        let name = format!("{module}.weight");
        let tensor = weights.get(&name)?.transposed();
        Ok(self.matrix(&format!("{name}.transposed"), &tensor, ScaleAxis::Columns))
    }

    /// Adds `input · weightᵀ (+ bias)` for the Hugging Face `Linear` module `module`.
    pub fn linear(
        &mut self,
        weights: &Weights,
        module: &str,
        output: &str,
        input: &str,
        has_bias: bool,
    ) -> Result<String, ModelError> {
        let weight = self.linear_weight(weights, module)?;
        if !has_bias {
            return Ok(self.node("MatMul", output, &[input, &weight], vec![]));
        }
        let product = self.node(
            "MatMul",
            &format!("{output}.matmul"),
            &[input, &weight],
            vec![],
        );
        let bias = self.vector(weights, &format!("{module}.bias"))?;
        Ok(self.node("Add", output, &[&product, &bias], vec![]))
    }

    /// Adds the token embedding table (also the LM head) and the position table, and the
    /// lookups of `input_ids` and `position_ids`. Returns the token, position and table names.
    pub fn embeddings(&mut self, weights: &Weights) -> Result<Embeddings, ModelError> {
        let wte = self.matrix(
            "transformer.wte.weight",
            weights.get("transformer.wte.weight")?,
            ScaleAxis::Rows,
        );
        let wpe = self.matrix(
            "transformer.wpe.weight",
            weights.get("transformer.wpe.weight")?,
            ScaleAxis::Rows,
        );

        let tokens = self.node(
            "Gather",
            "token_embeddings",
            &[&wte, super::INPUT_IDS],
            vec![attr_int("axis", 0)],
        );
        let positions = self.node(
            "Gather",
            "position_embeddings",
            &[&wpe, super::POSITION_IDS],
            vec![attr_int("axis", 0)],
        );
        Ok(Embeddings {
            tokens,
            positions,
            table: wte,
        })
    }

    /// Adds the distance from every query to every key and returns its name: entry
    /// `[0, i, j]` of the int64 `[1, sequence, total_sequence]` result is query `i`'s
    /// position minus key `j`'s, where the keys are the cached positions
    /// `0..past_sequence` followed by the new ones.
    ///
    /// `past_length_source` is a tensor whose axis 2 is the past sequence length.
    pub fn position_distance(&mut self, past_length_source: &str) -> String {
        let past_length = self.node(
            "Shape",
            "mask.past_length",
            &[past_length_source],
            vec![attr_int("start", 2), attr_int("end", 3)],
        );
        let new_length = self.node(
            "Shape",
            "mask.new_length",
            &[super::INPUT_IDS],
            vec![attr_int("start", 1), attr_int("end", 2)],
        );
        let total = self.node(
            "Add",
            "mask.total_length_1d",
            &[&past_length, &new_length],
            vec![],
        );
        let total = self.node(
            "Squeeze",
            "mask.total_length",
            &[&total, constant::AXIS_0],
            vec![],
        );
        let keys = self.node(
            "Range",
            "mask.key_positions",
            &[constant::ZERO, &total, constant::ONE],
            vec![],
        );
        let queries = self.node(
            "Unsqueeze",
            "mask.query_positions",
            &[super::POSITION_IDS, constant::AXIS_2],
            vec![],
        );
        self.node("Sub", "mask.distance", &[&queries, &keys], vec![])
    }
}

/// Names of the embedding lookups.
pub(super) struct Embeddings {
    /// `[1, sequence, hidden]` token embeddings.
    pub tokens: String,
    /// `[1, sequence, hidden]` position embeddings.
    pub positions: String,
    /// The float32 `[vocab, hidden]` token table, reused as the LM head.
    pub table: String,
}

/// Quantizes a 2-D tensor to symmetric int8 with one scale per row or column.
///
/// `scale = max |w| / 127` over the row or column (1 if all are zero), and
/// `q = round(w / scale)`, so `q · scale` is within `scale / 2` of `w`.
fn quantize(tensor: &Tensor, axis: ScaleAxis) -> (Vec<i8>, Vec<f32>) {
    let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
    let group_count = match axis {
        ScaleAxis::Rows => rows,
        ScaleAxis::Columns => cols,
    };
    let group_of = |index: usize| match axis {
        ScaleAxis::Rows => index / cols,
        ScaleAxis::Columns => index % cols,
    };

    let mut max_abs = vec![0.0f32; group_count];
    for (index, value) in tensor.data.iter().enumerate() {
        let group = group_of(index);
        max_abs[group] = max_abs[group].max(value.abs());
    }
    let scales: Vec<f32> = max_abs
        .iter()
        .map(|&max| if max > 0.0 { max / 127.0 } else { 1.0 })
        .collect();

    let quantized = tensor
        .data
        .iter()
        .enumerate()
        .map(|(index, value)| {
            (value / scales[group_of(index)])
                .round()
                .clamp(-127.0, 127.0) as i8
        })
        .collect();
    (quantized, scales)
}

pub(super) fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        i: Some(value),
        r#type: ATTR_INT,
        ..Default::default()
    }
}

pub(super) fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        ints: values.to_vec(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

pub(super) fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        f: Some(value),
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}

pub(super) fn dim_value(size: i64) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimValue(size)),
    }
}

pub(super) fn dim_param(name: &str) -> Dimension {
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
