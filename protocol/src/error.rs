//! The crate's error type.

use crate::ErrorCode;

/// Errors of encoding and decoding.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The message is larger than [`crate::MAX_MESSAGE_BYTES`].
    #[error(
        "message of {len} bytes exceeds the limit of {max} bytes; split or shorten its text fields"
    )]
    TooLarge {
        /// Size of the message.
        len: usize,
        /// The limit, [`crate::MAX_MESSAGE_BYTES`].
        max: usize,
    },
    /// The bytes are not a valid message of the expected direction.
    #[error("message of {len} bytes is malformed: {reason}; the sender must encode it with banter_protocol::encode of the same protocol version")]
    Malformed {
        /// Size of the message.
        len: usize,
        /// Description of the fault postcard found.
        reason: String,
    },
    /// A valid message was followed by more bytes.
    #[error(
        "{extra} unexpected bytes follow a {len}-byte message; send exactly one message per packet"
    )]
    TrailingBytes {
        /// Size of the valid message at the front.
        len: usize,
        /// Number of bytes left over.
        extra: usize,
    },
    /// The message decodes, but not from its one canonical encoding (a varint has
    /// redundant continuation bytes).
    #[error("message of {len} bytes is not in canonical form from byte {offset} on (a varint longer than needed); encode it with banter_protocol::encode")]
    NonCanonical {
        /// Size of the message.
        len: usize,
        /// Offset of the first byte that differs from the canonical encoding.
        offset: usize,
    },
    /// A text field is longer than its limit.
    #[error("{field} is {len} bytes, over the limit of {max} bytes; shorten it")]
    FieldTooLong {
        /// Name of the field, e.g. `heard`.
        field: &'static str,
        /// Length of the field in UTF-8 bytes.
        len: usize,
        /// The field's limit.
        max: usize,
    },
    /// A line carries more token ids than [`crate::MAX_TOKEN_IDS`].
    #[error("token_ids holds {count} ids, over the limit of {max}; generate fewer tokens")]
    TooManyTokenIds {
        /// Number of ids.
        count: usize,
        /// The limit, [`crate::MAX_TOKEN_IDS`].
        max: usize,
    },
    /// A start request carries another protocol version than this build's.
    #[error("host protocol version {host} differs from worker protocol version {worker}; serve the host and worker from the same build")]
    VersionMismatch {
        /// Version sent by the host.
        host: u32,
        /// [`crate::PROTOCOL_VERSION`] of this build.
        worker: u32,
    },
    /// postcard could not serialize the message.
    #[error("message could not be encoded: {reason}")]
    Encode {
        /// postcard's description of the failure.
        reason: String,
    },
}

impl ProtocolError {
    /// Returns the wire error code that reports this error to the other side.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::VersionMismatch { .. } => ErrorCode::ProtocolMismatch,
            _ => ErrorCode::BadMessage,
        }
    }
}

/// Describes a postcard decoding error in terms of the message.
pub(crate) fn describe_postcard_error(error: &postcard::Error) -> String {
    let reason = match error {
        postcard::Error::DeserializeUnexpectedEnd => "it ends before the message is complete",
        postcard::Error::DeserializeBadVarint => "a varint is longer than its type allows",
        postcard::Error::DeserializeBadBool => "a bool is neither 0 nor 1",
        postcard::Error::DeserializeBadOption => "an option tag is neither 0 nor 1",
        postcard::Error::DeserializeBadUtf8 => "a string is not valid UTF-8",
        // Serde reports unknown variant indices through `de::Error::custom`, as does the
        // bounded `token_ids` visitor, and postcard keeps no detail of either.
        postcard::Error::SerdeDeCustom => {
            "an enum tag is unknown, or token_ids is longer than MAX_TOKEN_IDS"
        }
        other => return other.to_string(),
    };
    reason.to_owned()
}
