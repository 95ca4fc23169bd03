//! Messages between the show's page and the banter worker.
//!
//! The host (`banter-host`, on the page's main thread) sends [`ToWorker`] messages and the
//! worker (`banter-worker`) replies with [`FromWorker`] messages. Both are encoded with
//! `postcard`; [`encode`] and [`decode`] are the only ways in and out, so every size check
//! lives here.
//!
//! Every message carries a [`RequestId`] chosen by the host. A request ends in exactly one
//! terminal reply: [`Reply::Ready`] for [`Request::Start`], [`Reply::Line`] for
//! [`Request::Say`], or [`Reply::Error`] for either.
//!
//! The first request on a new worker is [`Request::Start`], which carries
//! [`PROTOCOL_VERSION`]; a worker built with another version replies with
//! [`ErrorCode::ProtocolMismatch`].

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde::{de::DeserializeOwned, Deserialize, Serialize};

#[cfg(feature = "gloo")]
pub mod gloo;

/// Version of the wire format. Bump it on any change to the types below.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest encoded message, in bytes, that [`encode`] writes and [`decode`] reads.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest `heard` text of a [`SayRequest`], in UTF-8 bytes.
pub const MAX_HEARD_BYTES: usize = 1024;

/// Identifier of one request, chosen by the host and echoed in every reply to it.
pub type RequestId = u32;

/// A message from the host to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToWorker {
    /// The request this message starts.
    pub id: RequestId,
    /// The requested operation.
    pub request: Request,
}

/// A message from the worker to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FromWorker {
    /// Id of the request this message replies to.
    pub id: RequestId,
    /// The answer.
    pub reply: Reply,
}

/// An operation the host requests from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Load the model bundle and get ready to generate. Must be the first request.
    Start(StartRequest),
    /// Generate one spoken line.
    Say(SayRequest),
}

/// Locations of the worker's files, and the host's protocol version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// The host's [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// Absolute URL of the model bundle folder (the one holding `manifest.json`), ending in `/`.
    pub model_url: String,
    /// Absolute URL of the folder holding the self-hosted onnxruntime-web files, ending in `/`.
    pub ort_url: String,
}

/// One line to generate: the words the character heard, and the sampling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SayRequest {
    /// The words the speaking character answers, at most [`MAX_HEARD_BYTES`] bytes.
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
pub enum Reply {
    /// The model is loaded; terminal reply to [`Request::Start`].
    Ready(ModelInfo),
    /// A generated line; terminal reply to [`Request::Say`].
    Line(Line),
    /// The request failed; terminal reply to any request.
    Error(WireError),
}

/// Facts about the loaded model, for the page to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Human-readable model name from the bundle manifest.
    pub name: String,
    /// True when the bundle was made from deterministic stand-in weights, not a trained checkpoint.
    pub standin: bool,
    /// Milliseconds from the start request to the ready reply, measured in the worker.
    pub load_ms: f64,
}

/// A generated line and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The spoken line: the first sentence of the continuation, without `"`.
    pub text: String,
    /// Ids of the generated tokens, in order.
    pub token_ids: Vec<u32>,
    /// Number of tokens in the prompt.
    pub prompt_tokens: u32,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Milliseconds the worker spent on this request, from tokenization to the cut line.
    pub elapsed_ms: f64,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct WireError {
    /// The kind of failure, for callers to branch on.
    pub code: ErrorCode,
    /// Description of the failure, with the offending value and the fix.
    pub message: String,
}

/// Kinds of failure the worker reports. The host exposes each as a stable string code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// A request parameter is out of range (empty text, top-k 0, and so on).
    InvalidRequest,
    /// The host and the worker were built with different [`PROTOCOL_VERSION`]s.
    ProtocolMismatch,
    /// The model bundle could not be fetched, verified or loaded.
    ModelLoadFailed,
    /// A say request arrived before a successful start request.
    NotStarted,
    /// The model failed while generating.
    InferenceFailed,
    /// The worker could not decode a message.
    BadMessage,
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
        }
    }
}

/// Errors of encoding and decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The message is larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the message.
        len: usize,
        /// The limit, [`MAX_MESSAGE_BYTES`].
        max: usize,
    },
    /// The bytes are not a valid message of the expected direction.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A valid message was followed by more bytes.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// Number of bytes left over.
        extra: usize,
    },
}

/// Encodes a message with postcard, rejecting results over [`MAX_MESSAGE_BYTES`].
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, ProtocolError> {
    let bytes = postcard::to_allocvec(message)
        .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes one whole message: no size over [`MAX_MESSAGE_BYTES`], no trailing bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let (message, rest) = postcard::take_from_bytes(bytes)
        .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes { extra: rest.len() });
    }
    Ok(message)
}

/// Reads the request id at the front of a message that failed to decode, so the error reply
/// can name it. Returns `None` when even the id is unreadable.
pub fn peek_request_id(bytes: &[u8]) -> Option<RequestId> {
    postcard::take_from_bytes::<RequestId>(bytes)
        .ok()
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say() -> ToWorker {
        ToWorker {
            id: 7,
            request: Request::Say(SayRequest {
                heard: "Where is the ball?".into(),
                seed: u64::MAX,
                top_k: Some(40),
                temperature: None,
                max_new_tokens: Some(60),
            }),
        }
    }

    #[test]
    fn request_round_trip() {
        let start = ToWorker {
            id: 1,
            request: Request::Start(StartRequest {
                protocol_version: PROTOCOL_VERSION,
                model_url: "http://127.0.0.1:8000/model/".into(),
                ort_url: "http://127.0.0.1:8000/ort/".into(),
            }),
        };
        for message in [start, say()] {
            let bytes = encode(&message).unwrap();
            assert_eq!(decode::<ToWorker>(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn reply_round_trip() {
        let replies = [
            Reply::Ready(ModelInfo {
                name: "stand-in".into(),
                standin: true,
                load_ms: 12.5,
            }),
            Reply::Line(Line {
                text: "I like the ball.".into(),
                token_ids: vec![40, 588, 262, 2613, 13],
                prompt_tokens: 13,
                stop_reason: StopReason::Sentence,
                elapsed_ms: 80.0,
            }),
            Reply::Error(WireError {
                code: ErrorCode::InvalidRequest,
                message: "top_k 0".into(),
            }),
        ];
        for reply in replies {
            let message = FromWorker { id: 3, reply };
            let bytes = encode(&message).unwrap();
            assert_eq!(decode::<FromWorker>(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn trailing_byte_rejected() {
        let mut bytes = encode(&say()).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<ToWorker>(&bytes),
            Err(ProtocolError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn unknown_variant_rejected() {
        let mut bytes = encode(&say()).unwrap();
        bytes[1] = 9;
        assert!(matches!(
            decode::<ToWorker>(&bytes),
            Err(ProtocolError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_message_rejected() {
        let bytes = encode(&say()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode::<ToWorker>(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    #[test]
    fn oversized_message_rejected() {
        let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            decode::<ToWorker>(&bytes),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn request_id_read_from_bad_message() {
        let mut bytes = encode(&say()).unwrap();
        bytes[1] = 9;
        assert_eq!(peek_request_id(&bytes), Some(7));
    }
}
