//! The language model behind the engine: an ONNX Runtime session over the bundle's graph.
//!
//! The same code runs natively (`ort` loading `libonnxruntime` at run time) and in the
//! browser (`ort` over `ort-web` and onnxruntime-web). Only session creation and the run
//! call differ, because the web backend is asynchronous.
//!
//! The graph is banter's layout (see `banter-model export`): `input_ids`, `position_ids`,
//! one packed `past` tensor and `top_k` in; `top_values`, `top_ids` and the packed
//! `present` out. The prompt is run once (prefill), then one token per step with the
//! KV cache of the previous steps, and only the top-k candidates of the last position are
//! copied out. The graph's full `logits` output is never requested here.

use banter_bundle::{Layout, Manifest};
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{DynValue, Tensor};

use crate::engine::sampler::Candidates;
use crate::WorkerError;

/// A causal language model that is fed a sequence piece by piece: the prompt first
/// (prefill), then one sampled token per step.
#[allow(async_fn_in_trait)]
pub trait LanguageModel {
    /// Starts a new sequence, dropping everything kept from the previous one.
    fn reset(&mut self);

    /// Appends `ids` to the sequence and returns the `top_k` best candidates for the next
    /// token.
    async fn next_candidates(
        &mut self,
        ids: &[u32],
        top_k: usize,
    ) -> Result<Candidates, WorkerError>;

    /// Returns the milliseconds spent in [`Self::next_candidates`] since the last
    /// [`Self::reset`], or 0 for a model that does not measure them.
    fn run_ms(&self) -> f64 {
        0.0
    }
}

/// Runs the session with the given options: synchronously natively, asynchronously in the
/// browser. In the browser the outputs stay in onnxruntime-web until each is synced.
macro_rules! run {
    ($session:expr, $inputs:expr, $options:expr) => {{
        #[cfg(not(target_arch = "wasm32"))]
        let outputs = $session
            .run_with_options($inputs, $options)
            .map_err(inference_error)?;
        #[cfg(target_arch = "wasm32")]
        let outputs = $session
            .run_async($inputs, $options)
            .await
            .map_err(inference_error)?;
        outputs
    }};
}

/// Tensor names of the KV-cache graph.
mod names {
    pub const INPUT_IDS: &str = "input_ids";
    pub const POSITION_IDS: &str = "position_ids";
    pub const PAST: &str = "past";
    pub const TOP_K: &str = "top_k";
    pub const TOP_VALUES: &str = "top_values";
    pub const TOP_IDS: &str = "top_ids";
    pub const PRESENT: &str = "present";
}

/// The KV cache of the sequence so far, packed as `[2·layers, heads, length, head_dim]`:
/// layer i's keys at index 2i and its values at 2i + 1.
///
/// It is the previous step's `present` output, kept as an ONNX Runtime value and passed
/// back unchanged as the next `past`. It is never copied into Rust memory, which in the
/// browser would mean two copies of the whole cache per token.
struct KvCache {
    present: Option<DynValue>,
    length: usize,
    planes: usize,
    heads: usize,
    head_dim: usize,
    options: RunOptions<HasSelectedOutputs>,
}

/// An ONNX Runtime session over a banter bundle graph.
pub struct OrtModel {
    session: Session,
    cache: KvCache,
    /// Milliseconds spent in steps since the last reset.
    run_ms: f64,
}

/// Returns milliseconds from a monotonic clock: `performance.now()` in the browser, and
/// the time since the first call natively.
fn clock_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        crate::web::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
}

fn load_error(error: impl std::fmt::Display) -> WorkerError {
    WorkerError::SessionLoad(error.to_string())
}

fn inference_error(error: impl std::fmt::Display) -> WorkerError {
    WorkerError::Inference(error.to_string())
}

impl OrtModel {
    /// Creates a session from the graph bytes, with the session options and tensor names
    /// of the manifest. The ONNX Runtime environment must exist ([`crate::bundle`] creates it).
    pub async fn from_bytes(graph: &[u8], manifest: &Manifest) -> Result<Self, WorkerError> {
        let environment = crate::bundle::environment()?;
        let mut builder = Session::builder(&environment).map_err(load_error)?;
        for (key, value) in &manifest.session_options {
            builder = builder.with_config_entry(key, value).map_err(load_error)?;
        }

        #[cfg(not(target_arch = "wasm32"))]
        let session = builder.commit_from_memory(graph);
        #[cfg(target_arch = "wasm32")]
        let session = builder.commit_from_memory(graph).await;
        let session = session.map_err(load_error)?;

        if manifest.layout != Layout::Banter {
            return Err(WorkerError::SessionLoad(format!(
                "the bundle's graph has the {} layout; export it with `banter-model export --layout banter`",
                manifest.layout.as_str()
            )));
        }
        let config = &manifest.config;
        let heads = config.num_heads as usize;
        if heads == 0 || !(config.hidden_size as usize).is_multiple_of(heads) {
            return Err(WorkerError::SessionLoad(format!(
                "hidden size {} is not a multiple of {} heads",
                config.hidden_size, config.num_heads
            )));
        }
        let selector = OutputSelector::no_default()
            .with(names::TOP_VALUES)
            .with(names::TOP_IDS)
            .with(names::PRESENT);
        let cache = KvCache {
            present: None,
            length: 0,
            planes: 2 * config.num_layers as usize,
            heads,
            head_dim: config.hidden_size as usize / heads,
            options: RunOptions::new()
                .map_err(load_error)?
                .with_outputs(selector),
        };

        Ok(OrtModel {
            session,
            cache,
            run_ms: 0.0,
        })
    }
}

impl LanguageModel for OrtModel {
    fn reset(&mut self) {
        self.cache.present = None;
        self.cache.length = 0;
        self.run_ms = 0.0;
    }

    async fn next_candidates(
        &mut self,
        ids: &[u32],
        top_k: usize,
    ) -> Result<Candidates, WorkerError> {
        let started = clock_ms();
        let candidates = step_with_cache(&mut self.session, &mut self.cache, ids, top_k).await;
        self.run_ms += clock_ms() - started;
        candidates
    }

    fn run_ms(&self) -> f64 {
        self.run_ms
    }
}

/// Runs one step of the KV-cache graph: `ids` at the positions after the cache, the cache
/// itself as `past`, and `top_k`. Keeps `present` as the new cache.
async fn step_with_cache(
    session: &mut Session,
    cache: &mut KvCache,
    ids: &[u32],
    top_k: usize,
) -> Result<Candidates, WorkerError> {
    let count = ids.len();
    let input_ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    let position_ids: Vec<i64> = (cache.length..cache.length + count)
        .map(|position| position as i64)
        .collect();
    let past = match cache.present.take() {
        Some(present) => present,
        None => {
            let empty = Tensor::from_array((
                [cache.planes, cache.heads, 0, cache.head_dim],
                Vec::<f32>::new(),
            ))
            .map_err(inference_error)?;
            empty.into_dyn()
        }
    };

    let inputs = ort::inputs![
        names::INPUT_IDS => Tensor::from_array(([1usize, count], input_ids)).map_err(inference_error)?,
        names::POSITION_IDS => Tensor::from_array(([1usize, count], position_ids)).map_err(inference_error)?,
        names::PAST => past,
        names::TOP_K => Tensor::from_array(([1usize], vec![top_k as i64])).map_err(inference_error)?,
    ];
    let mut outputs = run!(session, inputs, &cache.options);

    let mut take = |name: &str| {
        outputs
            .remove(name)
            .ok_or_else(|| WorkerError::Inference(format!("the graph has no output {name:?}")))
    };
    let values = take(names::TOP_VALUES)?;
    let ids = take(names::TOP_IDS)?;
    let present = take(names::PRESENT)?;

    let expected_length = cache.length + count;
    let expected_shape = [cache.planes, cache.heads, expected_length, cache.head_dim];
    let present_shape = present
        .dtype()
        .tensor_shape()
        .map(|shape| shape.iter().map(|&dim| dim as usize).collect::<Vec<_>>());
    if present_shape.as_deref() != Some(&expected_shape[..]) {
        return Err(WorkerError::Inference(format!(
            "present has shape {present_shape:?}, expected {expected_shape:?}"
        )));
    }
    cache.present = Some(present);
    cache.length = expected_length;

    // In the browser, only the k candidates are copied out of onnxruntime-web. ort-web
    // 0.5 copies a CPU output into wasm memory synchronously on its first extraction, so
    // no awaited `ValueExt::sync` is needed.
    let (_, values) = values
        .try_extract_tensor::<f32>()
        .map_err(inference_error)?;
    let (_, ids) = ids.try_extract_tensor::<i64>().map_err(inference_error)?;
    let ids = ids
        .iter()
        .map(|&id| {
            u32::try_from(id)
                .map_err(|_| WorkerError::InvalidLogits(format!("top_ids contains {id}")))
        })
        .collect::<Result<Vec<u32>, WorkerError>>()?;
    Ok(Candidates {
        logits: values.to_vec(),
        ids,
    })
}
