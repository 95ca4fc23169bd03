//! The worker's error type and its mapping to wire error codes.

use banter_bundle::BundleError;
use banter_protocol::{ErrorCode, WireError};

/// Everything that can go wrong between a request and its reply.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The heard text is empty or only whitespace.
    #[error("heard text is empty; pass the words the character answers")]
    EmptyHeard,
    /// The heard text is longer than the protocol allows.
    #[error("heard text is {len} bytes, over the limit of {max}; shorten it")]
    HeardTooLong {
        /// Length of the text in UTF-8 bytes.
        len: usize,
        /// [`banter_protocol::MAX_HEARD_BYTES`].
        max: usize,
    },
    /// `top_k` is 0 or larger than the vocabulary.
    #[error("top_k {value} is out of range; use 1 to {vocab_size}")]
    TopKOutOfRange {
        /// The requested value.
        value: u32,
        /// Size of the model's vocabulary.
        vocab_size: u32,
    },
    /// `temperature` is not a finite number above zero.
    #[error("temperature {value} is invalid; use a finite number above 0 (default 0.9)")]
    InvalidTemperature {
        /// The requested value.
        value: f32,
    },
    /// `max_new_tokens` is 0 or above the worker's limit.
    #[error("max_new_tokens {value} is out of range; use 1 to {max}")]
    MaxNewTokensOutOfRange {
        /// The requested value.
        value: u32,
        /// [`crate::engine::MAX_NEW_TOKENS_LIMIT`].
        max: u32,
    },
    /// Prompt plus new tokens would not fit in the model's position table.
    #[error("prompt of {prompt_tokens} tokens plus {max_new_tokens} new tokens exceeds the model's {max_positions} positions; shorten the heard text")]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// Requested new tokens.
        max_new_tokens: u32,
        /// The model's `max_position_embeddings`.
        max_positions: u32,
    },
    /// A say request arrived before the model was loaded.
    #[error("the model is not loaded; send a start request first")]
    NotStarted,
    /// A bundle file could not be fetched or read.
    #[error("could not load {url}: {reason}")]
    Fetch {
        /// URL or path of the file.
        url: String,
        /// The failure, e.g. an HTTP status.
        reason: String,
    },
    /// The manifest is invalid or a file does not match it.
    #[error("model bundle rejected: {0}")]
    Bundle(#[from] BundleError),
    /// `tokenizer.json` could not be loaded, or a text could not be encoded or decoded.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    /// ONNX Runtime could not be initialised or could not create the session.
    #[error("ONNX Runtime could not load the model: {0}")]
    SessionLoad(String),
    /// ONNX Runtime failed while running the graph.
    #[error("ONNX Runtime failed during generation: {0}")]
    Inference(String),
    /// The graph returned logits of an unexpected size or with NaN values.
    #[error("the model returned invalid logits: {0}")]
    InvalidLogits(String),
    /// The host cancelled the request.
    #[error("the request was cancelled after {generated} generated tokens")]
    Cancelled {
        /// Tokens generated before the cancel took effect.
        generated: usize,
    },
}

impl WorkerError {
    /// Returns the wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            WorkerError::EmptyHeard
            | WorkerError::HeardTooLong { .. }
            | WorkerError::TopKOutOfRange { .. }
            | WorkerError::InvalidTemperature { .. }
            | WorkerError::MaxNewTokensOutOfRange { .. }
            | WorkerError::PromptTooLong { .. } => ErrorCode::InvalidRequest,
            WorkerError::NotStarted => ErrorCode::NotStarted,
            WorkerError::Fetch { .. } | WorkerError::Bundle(_) | WorkerError::SessionLoad(_) => {
                ErrorCode::ModelLoadFailed
            }
            WorkerError::Tokenizer(_)
            | WorkerError::Inference(_)
            | WorkerError::InvalidLogits(_) => ErrorCode::InferenceFailed,
            WorkerError::Cancelled { .. } => ErrorCode::Cancelled,
        }
    }

    /// Converts the error to the form sent to the host.
    pub fn to_wire(&self) -> WireError {
        WireError::new(self.code(), self.to_string())
    }
}
