//! Messages between the show's page and the banter worker.
//!
//! The host (`banter-host`, on the page's main thread) sends [`ToWorker`] messages and the
//! worker (`banter-worker`) replies with [`FromWorker`] messages. Both are encoded with
//! `postcard`, and [`encode`] and [`decode`] are the only ways in and out, so every limit
//! lives here. `PROTOCOL.md` at the repository root describes the wire format byte by byte.
//!
//! Every message carries a [`RequestId`] chosen by the host. A start or say request ends in
//! exactly one terminal reply: [`Reply::Ready`] for [`Request::Start`], [`Reply::Line`] for
//! [`Request::Say`], or [`Reply::Error`] for either. Before it, a start request may get
//! [`Reply::Progress`] and a say request [`Reply::Token`] replies. [`Request::Cancel`] and
//! [`Request::Ping`] are control messages: a cancel gets no reply of its own, and a ping
//! gets one [`Reply::Pong`].
//!
//! The first request on a new worker is [`Request::Start`], which carries
//! [`PROTOCOL_VERSION`]. A worker built with another version replies with
//! [`ErrorCode::ProtocolMismatch`]; [`decode_request`] makes that decision, even for a start
//! request that this version cannot decode.
//!
//! # Decoding untrusted bytes
//!
//! [`decode`] returns an error value for any input and never panics. It rejects input over
//! [`MAX_MESSAGE_BYTES`] before reading it, unknown enum tags, strings that are not UTF-8,
//! trailing bytes, non-minimal varints and fields over their limits
//! ([`MAX_HEARD_BYTES`], [`MAX_URL_BYTES`], [`MAX_LINE_BYTES`], [`MAX_TOKEN_IDS`],
//! [`MAX_NAME_BYTES`], [`MAX_ERROR_MESSAGE_BYTES`]). Its allocations are bounded by the input:
//! postcard 1.2 checks that a string's length prefix fits in the remaining input before the
//! string is copied, and `token_ids` is read by a visitor that rejects a count over
//! [`MAX_TOKEN_IDS`] before reserving memory. A decode therefore allocates at most about
//! twice the input size plus `4 * MAX_TOKEN_IDS` bytes (the decoded value, and the
//! re-encoding that the canonical-form check compares against).

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod codec;
mod error;
mod messages;

#[cfg(feature = "gloo")]
pub mod gloo;

pub use codec::{
    decode, decode_request, encode, encode_reply, peek_handshake, peek_request_id, Message,
    Rejection,
};
pub use error::ProtocolError;
pub use messages::{
    ErrorCode, FromWorker, Line, LoadStage, ModelInfo, Progress, Reply, Request, SayRequest,
    StartRequest, StopReason, ToWorker, TokenDelta, WireError,
};

/// Version of the wire format. Bump it on any change to the encoding of the message types.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest encoded message, in bytes, that [`encode`] writes and [`decode`] reads.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest `heard` text of a [`SayRequest`], in UTF-8 bytes.
pub const MAX_HEARD_BYTES: usize = 1024;

/// Largest `model_url` or `ort_url` of a [`StartRequest`], in UTF-8 bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Largest `text` of a [`Line`], in UTF-8 bytes.
///
/// NOTE: the worker cuts a line at its first sentence, so real lines are far shorter. The
/// limit is an estimate that leaves room for 256 tokens of 64 bytes each.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Largest number of `token_ids` in a [`Line`]. The worker generates at most 256 tokens.
pub const MAX_TOKEN_IDS: usize = 1024;

/// Largest `name` of a [`ModelInfo`], in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Largest `message` of a [`WireError`], in UTF-8 bytes. [`WireError::new`] truncates longer
/// messages to fit.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 8 * 1024;

/// Request id of an error reply to a message whose own id could not be read. The host
/// numbers its requests from 1.
pub const UNKNOWN_REQUEST_ID: RequestId = 0;

/// Identifier of one request, chosen by the host and echoed in every reply to it.
pub type RequestId = u32;
