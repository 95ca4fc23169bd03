//! The message types. Their field order and variant order are the wire format.

use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::{RequestId, MAX_ERROR_MESSAGE_BYTES, MAX_TOKEN_IDS};

/// A message from the host to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ToWorker {
    /// The request this message starts.
    pub id: RequestId,
    /// The requested operation.
    pub request: Request,
}

/// A message from the worker to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FromWorker {
    /// Id of the request this message replies to, or [`crate::UNKNOWN_REQUEST_ID`] when
    /// the request was too malformed to read it.
    pub id: RequestId,
    /// The answer.
    pub reply: Reply,
}

/// An operation the host requests from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Request {
    /// Load the model bundle and get ready to generate. Must be the first request.
    ///
    /// Its tag (0) and the position of `protocol_version` stay the same in every protocol
    /// version, so that any worker can read the version of any host.
    Start(StartRequest),
    /// Generate one spoken line. Non-terminal [`Reply::Token`] replies stream its text.
    Say(SayRequest),
    /// Cancel the say request whose id this message carries, queued or running. It gets no
    /// reply of its own: the cancelled request ends with an [`ErrorCode::Cancelled`] error,
    /// or with its normal reply if it finished first. An unknown id is ignored.
    Cancel,
    /// Ask for a [`Reply::Pong`], which the worker sends at once, even while a line is being generated.
    /// The host uses it to notice a worker that stopped responding.
    Ping,
}

/// Locations of the worker's files, and the host's protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StartRequest {
    /// The host's [`crate::PROTOCOL_VERSION`]. Must stay the first field.
    pub protocol_version: u32,
    /// Absolute URL of the model bundle folder (the one holding `manifest.json`), ending in
    /// `/`, at most [`crate::MAX_URL_BYTES`] bytes.
    pub model_url: String,
    /// Absolute URL of the folder holding the self-hosted onnxruntime-web files, ending in
    /// `/`, at most [`crate::MAX_URL_BYTES`] bytes.
    pub ort_url: String,
}

/// One line to generate: the words the character heard, and the sampling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SayRequest {
    /// The words the speaking character answers, at most [`crate::MAX_HEARD_BYTES`] bytes.
    pub heard: String,
    /// Seed of the sampler's PRNG: the same seed, text, parameters and model give the same line.
    pub seed: u64,
    /// Candidates kept at each step; `None` means the worker's default (40).
    pub top_k: Option<u32>,
    /// Softmax temperature; `None` means the worker's default (0.9).
    pub temperature: Option<f32>,
    /// Limit on generated tokens; `None` means the worker's default (60).
    pub max_new_tokens: Option<u32>,
}

/// A reply from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Reply {
    /// The model is loaded; terminal reply to [`Request::Start`].
    Ready(ModelInfo),
    /// A generated line; terminal reply to [`Request::Say`].
    Line(Line),
    /// The request failed; terminal reply to any request.
    ///
    /// Its tag (2) and the layout of [`WireError`] stay the same in every protocol
    /// version, so that a host can read a worker's protocol mismatch error.
    Error(WireError),
    /// The next piece of a line being generated; not terminal. The pieces of one request
    /// concatenate to the text of its [`Reply::Line`].
    Token(TokenDelta),
    /// The reply to [`Request::Ping`]; not terminal.
    Pong,
    /// Loading progress of a start request; not terminal.
    Progress(Progress),
}

/// A piece of streamed text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct TokenDelta {
    /// Text to append, whole UTF-8 characters only, at most [`crate::MAX_LINE_BYTES`] bytes.
    pub delta: String,
}

/// How far a start request has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Progress {
    /// The step being done.
    pub stage: LoadStage,
    /// Bytes of the bundle received so far, over all files.
    pub loaded: u64,
    /// Bytes of the bundle in all, from the manifest; 0 until the manifest is read.
    pub total: u64,
}

/// Steps of loading a model, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LoadStage {
    /// Loading onnxruntime-web.
    Runtime,
    /// Fetching `manifest.json`.
    Manifest,
    /// Fetching the bundle files.
    Download,
    /// Creating the tokenizer and the ONNX Runtime session.
    Session,
}

impl LoadStage {
    /// Returns the stable name the host exposes to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadStage::Runtime => "runtime",
            LoadStage::Manifest => "manifest",
            LoadStage::Download => "download",
            LoadStage::Session => "session",
        }
    }
}

/// Facts about the loaded model, for the page to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ModelInfo {
    /// Human-readable model name from the bundle manifest, at most
    /// [`crate::MAX_NAME_BYTES`] bytes.
    pub name: String,
    /// True when the bundle was made from deterministic stand-in weights, not a trained checkpoint.
    pub standin: bool,
    /// Milliseconds from the start request to the ready reply, measured in the worker.
    pub load_ms: f64,
}

/// A generated line and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Line {
    /// The spoken line: the first sentence of the continuation, without `"`, at most
    /// [`crate::MAX_LINE_BYTES`] bytes.
    pub text: String,
    /// Ids of the generated tokens, in order, at most [`crate::MAX_TOKEN_IDS`] of them.
    #[serde(deserialize_with = "deserialize_token_ids")]
    pub token_ids: Vec<u32>,
    /// Number of tokens in the prompt.
    pub prompt_tokens: u32,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Milliseconds the worker spent on this request, from tokenization to the cut line.
    pub elapsed_ms: f64,
    /// Milliseconds of `elapsed_ms` spent in the model's runs (the prefill and every
    /// decoding step), from the call into ONNX Runtime to the copied-out candidates.
    pub model_ms: f64,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StopReason {
    /// The continuation contains a complete sentence (`.`, `!` or `?`).
    Sentence,
    /// The model produced its end-of-text token.
    EndOfText,
    /// The request's limit on new tokens was reached.
    MaxTokens,
}

impl StopReason {
    /// Returns the stable name the host exposes to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Sentence => "sentence",
            StopReason::EndOfText => "end_of_text",
            StopReason::MaxTokens => "max_tokens",
        }
    }
}

/// A failure, as sent over the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WireError {
    /// The kind of failure, for callers to branch on.
    pub code: ErrorCode,
    /// Description of the failure, with the offending value and the fix, at most
    /// [`crate::MAX_ERROR_MESSAGE_BYTES`] bytes.
    pub message: String,
}

impl WireError {
    /// Builds a wire error, truncating `message` at a character boundary to
    /// [`MAX_ERROR_MESSAGE_BYTES`] so that the error always fits its limit.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE_BYTES {
            const ELLIPSIS: &str = "…";
            let mut end = MAX_ERROR_MESSAGE_BYTES - ELLIPSIS.len();
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(ELLIPSIS);
        }
        WireError { code, message }
    }
}

/// Kinds of failure the worker reports. The host exposes each as a stable string code.
///
/// New codes are only ever appended, so the tags of existing codes stay the same in every
/// protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ErrorCode {
    /// A request parameter is out of range (empty text, top-k 0, and so on).
    InvalidRequest,
    /// The host and the worker were built with different [`crate::PROTOCOL_VERSION`]s.
    ProtocolMismatch,
    /// The model bundle could not be fetched, verified or loaded.
    ModelLoadFailed,
    /// A say request arrived before a successful start request.
    NotStarted,
    /// The model failed while generating.
    InferenceFailed,
    /// The worker could not decode a message.
    BadMessage,
    /// The host cancelled the request.
    Cancelled,
    /// The worker's queue is full; retry after a pending request ends.
    Busy,
}

impl ErrorCode {
    /// Returns the stable name the host exposes to JavaScript as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::ModelLoadFailed => "model_load_failed",
            ErrorCode::NotStarted => "not_started",
            ErrorCode::InferenceFailed => "inference_failed",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Busy => "busy",
        }
    }
}

/// Reads `token_ids`, rejecting a count over [`MAX_TOKEN_IDS`] before it reserves memory.
///
/// serde's own `Vec` visitor would reserve up to 1 MiB for whatever count the length prefix
/// claims; this one reserves at most `MAX_TOKEN_IDS` ids.
fn deserialize_token_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    deserializer.deserialize_seq(TokenIdsVisitor)
}

struct TokenIdsVisitor;

impl<'de> Visitor<'de> for TokenIdsVisitor {
    type Value = Vec<u32>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "a sequence of at most {MAX_TOKEN_IDS} token ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u32>, A::Error> {
        let declared = seq.size_hint().unwrap_or(0);
        if declared > MAX_TOKEN_IDS {
            return Err(serde::de::Error::invalid_length(declared, &self));
        }

        let mut ids = Vec::with_capacity(declared);
        while let Some(id) = seq.next_element()? {
            if ids.len() == MAX_TOKEN_IDS {
                return Err(serde::de::Error::invalid_length(ids.len() + 1, &self));
            }
            ids.push(id);
        }
        Ok(ids)
    }
}
