//! The tensors of a GPT-Neo checkpoint in Hugging Face's `GPTNeoForCausalLM` layout.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::config::NeoConfig;
use crate::ModelError;

/// File name of the safetensors weights inside a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// File name of the `torch.save` weights, read when a checkpoint has no safetensors file.
pub const PYTORCH_WEIGHTS_FILE: &str = "pytorch_model.bin";

/// Initialisation of a parameter in a stand-in checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterKind {
    /// Embedding table or linear weight: N(0, 0.02²).
    Matrix,
    /// Linear bias: N(0, 0.02²).
    Bias,
    /// Layer-norm scale: 1 + N(0, 0.1²).
    NormWeight,
    /// Layer-norm shift: N(0, 0.02²).
    NormBias,
}

/// Name, shape and kind of one checkpoint tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Hugging Face parameter name, e.g. `transformer.h.0.attn.attention.q_proj.weight`.
    pub name: String,
    /// Shape in PyTorch order; linear weights are `[out_features, in_features]`.
    pub shape: Vec<usize>,
    /// Initialisation used by the stand-in.
    pub kind: ParameterKind,
}

/// Lists every tensor of a `GPTNeoForCausalLM` checkpoint in the order of the module tree.
///
/// The tied LM head (`lm_head.weight`) is not listed: it is `transformer.wte.weight`.
pub fn tensor_specs(config: &NeoConfig) -> Vec<TensorSpec> {
    let vocab = config.model.vocab_size as usize;
    let hidden = config.model.hidden_size as usize;
    let positions = config.model.max_position_embeddings as usize;
    let inner = config.intermediate_size as usize;

    let spec = |name: String, shape: Vec<usize>, kind| TensorSpec { name, shape, kind };
    let mut specs = vec![
        spec(
            "transformer.wte.weight".into(),
            vec![vocab, hidden],
            ParameterKind::Matrix,
        ),
        spec(
            "transformer.wpe.weight".into(),
            vec![positions, hidden],
            ParameterKind::Matrix,
        ),
    ];

    for layer in 0..config.model.num_layers {
        let prefix = format!("transformer.h.{layer}");
        specs.extend([
            spec(
                format!("{prefix}.ln_1.weight"),
                vec![hidden],
                ParameterKind::NormWeight,
            ),
            spec(
                format!("{prefix}.ln_1.bias"),
                vec![hidden],
                ParameterKind::NormBias,
            ),
            spec(
                format!("{prefix}.attn.attention.k_proj.weight"),
                vec![hidden, hidden],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.attn.attention.v_proj.weight"),
                vec![hidden, hidden],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.attn.attention.q_proj.weight"),
                vec![hidden, hidden],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.attn.attention.out_proj.weight"),
                vec![hidden, hidden],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.attn.attention.out_proj.bias"),
                vec![hidden],
                ParameterKind::Bias,
            ),
            spec(
                format!("{prefix}.ln_2.weight"),
                vec![hidden],
                ParameterKind::NormWeight,
            ),
            spec(
                format!("{prefix}.ln_2.bias"),
                vec![hidden],
                ParameterKind::NormBias,
            ),
            spec(
                format!("{prefix}.mlp.c_fc.weight"),
                vec![inner, hidden],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.mlp.c_fc.bias"),
                vec![inner],
                ParameterKind::Bias,
            ),
            spec(
                format!("{prefix}.mlp.c_proj.weight"),
                vec![hidden, inner],
                ParameterKind::Matrix,
            ),
            spec(
                format!("{prefix}.mlp.c_proj.bias"),
                vec![hidden],
                ParameterKind::Bias,
            ),
        ]);
    }

    specs.extend([
        spec(
            "transformer.ln_f.weight".into(),
            vec![hidden],
            ParameterKind::NormWeight,
        ),
        spec(
            "transformer.ln_f.bias".into(),
            vec![hidden],
            ParameterKind::NormBias,
        ),
    ]);
    specs
}

/// A float32 tensor read from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape in PyTorch order.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Returns the transpose of a 2-D tensor: `[rows, cols]` becomes `[cols, rows]`.
    ///
    /// Linear weights are stored `[out, in]`; ONNX `MatMul` wants `[in, out]`. Callers pass
    /// only tensors whose 2-D shape [`read_weights`] checked.
    pub(crate) fn transposed(&self) -> Tensor {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; self.data.len()];
        for row in 0..rows {
            for col in 0..cols {
                data[col * rows + row] = self.data[row * cols + col];
            }
        }
        Tensor {
            shape: vec![cols, rows],
            data,
        }
    }
}

/// The tensors listed by [`tensor_specs`], checked for presence, dtype and shape.
#[derive(Debug, Clone)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    /// Returns the tensor named `name`.
    pub fn get(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_owned(),
                expected: Vec::new(),
                file: "the checkpoint".to_owned(),
            })
    }
}

/// A tensor as stored in a checkpoint file, before any check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredTensor {
    /// Element type in safetensors' notation, e.g. `F32` or `BF16`.
    pub dtype: String,
    /// Shape in PyTorch order.
    pub shape: Vec<usize>,
    /// Elements in row-major order, little-endian.
    pub data: Vec<u8>,
}

/// Reads the weights of the checkpoint folder `checkpoint`: `model.safetensors` if
/// present, else `pytorch_model.bin` (`torch.save`'s zip format).
pub fn read_checkpoint_weights(
    checkpoint: &Path,
    config: &NeoConfig,
) -> Result<Weights, ModelError> {
    let safetensors = checkpoint.join(WEIGHTS_FILE);
    if safetensors.is_file() {
        return read_weights(&safetensors, config);
    }
    let pytorch = checkpoint.join(PYTORCH_WEIGHTS_FILE);
    if pytorch.is_file() {
        return read_pytorch_weights(&pytorch, config);
    }
    Err(ModelError::MissingFile { path: safetensors })
}

/// Reads `model.safetensors` and checks that every tensor the config implies is present,
/// float32, and of the expected shape. Extra tensors (a stored tied LM head, attention
/// mask buffers of older exports) are ignored.
pub fn read_weights(path: &Path, config: &NeoConfig) -> Result<Weights, ModelError> {
    let bytes = crate::read_file(path)?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|source| ModelError::InvalidSafetensors {
            path: path.to_path_buf(),
            reason: source.to_string(),
        })?;

    check_tensors(config, WEIGHTS_FILE, |name| {
        file.tensor(name).ok().map(|view| StoredTensor {
            dtype: format!("{:?}", view.dtype()),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        })
    })
}

/// Reads a `torch.save` state dict (`pytorch_model.bin`) with the same checks as
/// [`read_weights`]. Only the zip format of PyTorch 1.6 and later is read.
pub fn read_pytorch_weights(path: &Path, config: &NeoConfig) -> Result<Weights, ModelError> {
    let mut tensors = crate::pytorch::read_state_dict(path)?;
    check_tensors(config, PYTORCH_WEIGHTS_FILE, |name| tensors.remove(name))
}

/// Collects the tensors of [`tensor_specs`] through `find` and checks each one's presence,
/// shape and dtype. `file` names the weights file in errors.
fn check_tensors(
    config: &NeoConfig,
    file: &str,
    mut find: impl FnMut(&str) -> Option<StoredTensor>,
) -> Result<Weights, ModelError> {
    let mut tensors = BTreeMap::new();
    for spec in tensor_specs(config) {
        let stored = find(&spec.name).ok_or_else(|| ModelError::MissingTensor {
            name: spec.name.clone(),
            expected: spec.shape.clone(),
            file: file.to_owned(),
        })?;
        if stored.shape != spec.shape {
            return Err(ModelError::TensorShape {
                name: spec.name,
                expected: spec.shape,
                actual: stored.shape,
            });
        }
        if stored.dtype != "F32" {
            return Err(ModelError::TensorDtype {
                name: spec.name,
                found: stored.dtype,
            });
        }

        let data = stored
            .data
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        tensors.insert(
            spec.name,
            Tensor {
                shape: spec.shape,
                data,
            },
        );
    }
    Ok(Weights { tensors })
}

/// Serialises float32 tensors as a safetensors file with `{"format": "pt"}` metadata, as
/// `transformers` writes it. The output depends only on the tensors, not on their order.
pub fn write_weights(tensors: &[(String, Tensor)]) -> Result<Vec<u8>, ModelError> {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, tensor)| {
            let bytes = tensor
                .data
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect();
            (name.clone(), tensor.shape.clone(), bytes)
        })
        .collect();

    let mut views = Vec::with_capacity(buffers.len());
    for (name, shape, bytes) in &buffers {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(
            |source| ModelError::InvalidSafetensors {
                path: WEIGHTS_FILE.into(),
                reason: format!("tensor {name}: {source}"),
            },
        )?;
        views.push((name.as_str(), view));
    }

    let metadata = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::serialize(views, Some(metadata)).map_err(|source| ModelError::InvalidSafetensors {
        path: WEIGHTS_FILE.into(),
        reason: source.to_string(),
    })
}
