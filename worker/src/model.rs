//! The language model behind the engine: an ONNX Runtime session over the bundle's graph.
//!
//! The same code runs natively (`ort` loading `libonnxruntime` at run time) and in the
//! browser (`ort` over `ort-web` and onnxruntime-web). Only session creation and the run
//! call differ, because the web backend is asynchronous.

use banter_bundle::Manifest;
use ort::session::Session;
use ort::value::Tensor;

use crate::WorkerError;

/// Something that returns next-token logits for a token sequence.
#[allow(async_fn_in_trait)]
pub trait LanguageModel {
    /// Returns the logits of the last position of `ids`, one per vocabulary entry.
    async fn last_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>, WorkerError>;
}

/// An ONNX Runtime session over a banter bundle graph (`input_ids` → last-position logits).
pub struct OrtModel {
    session: Session,
    input_name: String,
    output_name: String,
    #[cfg(target_arch = "wasm32")]
    run_options: ort::session::RunOptions,
}

impl OrtModel {
    /// Creates a session from the graph bytes, using the input and output names of the
    /// manifest. The ONNX Runtime environment must exist ([`crate::bundle`] creates it).
    pub async fn from_bytes(graph: &[u8], manifest: &Manifest) -> Result<Self, WorkerError> {
        let input_name = manifest
            .graph
            .inputs
            .first()
            .map(|input| input.name.clone())
            .ok_or_else(|| WorkerError::SessionLoad("the manifest lists no graph input".into()))?;
        let output_name = manifest
            .graph
            .outputs
            .first()
            .map(|output| output.name.clone())
            .ok_or_else(|| WorkerError::SessionLoad("the manifest lists no graph output".into()))?;

        let environment = crate::bundle::environment()?;
        let mut builder = Session::builder(&environment)
            .map_err(|error| WorkerError::SessionLoad(error.to_string()))?;

        #[cfg(not(target_arch = "wasm32"))]
        let session = builder.commit_from_memory(graph);
        #[cfg(target_arch = "wasm32")]
        let session = builder.commit_from_memory(graph).await;
        let session = session.map_err(|error| WorkerError::SessionLoad(error.to_string()))?;

        Ok(OrtModel {
            session,
            input_name,
            output_name,
            #[cfg(target_arch = "wasm32")]
            run_options: ort::session::RunOptions::new()
                .map_err(|error| WorkerError::SessionLoad(error.to_string()))?,
        })
    }
}

impl LanguageModel for OrtModel {
    async fn last_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>, WorkerError> {
        let input: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let tensor = Tensor::from_array(([1usize, input.len()], input))
            .map_err(|error| WorkerError::Inference(error.to_string()))?;
        let inputs = ort::inputs![self.input_name.as_str() => tensor];

        #[cfg(not(target_arch = "wasm32"))]
        let outputs = self
            .session
            .run(inputs)
            .map_err(|error| WorkerError::Inference(error.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        let outputs = {
            let mut outputs = self
                .session
                .run_async(inputs, &self.run_options)
                .await
                .map_err(|error| WorkerError::Inference(error.to_string()))?;
            ort_web::sync_outputs(&mut outputs)
                .await
                .map_err(|error| WorkerError::Inference(error.to_string()))?;
            outputs
        };

        let logits = outputs.get(self.output_name.as_str()).ok_or_else(|| {
            WorkerError::Inference(format!("the graph has no output {:?}", self.output_name))
        })?;
        let (_, values) = logits
            .try_extract_tensor::<f32>()
            .map_err(|error| WorkerError::Inference(error.to_string()))?;
        Ok(values.to_vec())
    }
}
