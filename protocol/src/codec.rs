//! Encoding and decoding, the field limits, and the worker's decision on incoming bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::describe_postcard_error;
use crate::{
    ErrorCode, FromWorker, ProtocolError, Reply, Request, RequestId, ToWorker, WireError,
    MAX_ERROR_MESSAGE_BYTES, MAX_HEARD_BYTES, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES,
    MAX_TOKEN_IDS, MAX_URL_BYTES, PROTOCOL_VERSION, UNKNOWN_REQUEST_ID,
};

/// A top-level message of one direction: [`ToWorker`] or [`FromWorker`].
pub trait Message: Serialize + DeserializeOwned {
    /// Checks every field against its limit.
    fn check_limits(&self) -> Result<(), ProtocolError>;
}

impl Message for ToWorker {
    fn check_limits(&self) -> Result<(), ProtocolError> {
        match &self.request {
            Request::Start(start) => {
                check_text("model_url", &start.model_url, MAX_URL_BYTES)?;
                check_text("ort_url", &start.ort_url, MAX_URL_BYTES)
            }
            Request::Say(say) => check_text("heard", &say.heard, MAX_HEARD_BYTES),
            Request::Cancel | Request::Ping => Ok(()),
        }
    }
}

impl Message for FromWorker {
    fn check_limits(&self) -> Result<(), ProtocolError> {
        match &self.reply {
            Reply::Ready(model) => check_text("name", &model.name, MAX_NAME_BYTES),
            Reply::Line(line) => {
                check_text("text", &line.text, MAX_LINE_BYTES)?;
                if line.token_ids.len() > MAX_TOKEN_IDS {
                    return Err(ProtocolError::TooManyTokenIds {
                        count: line.token_ids.len(),
                        max: MAX_TOKEN_IDS,
                    });
                }
                Ok(())
            }
            Reply::Error(error) => check_text("message", &error.message, MAX_ERROR_MESSAGE_BYTES),
            Reply::Token(token) => check_text("delta", &token.delta, MAX_LINE_BYTES),
            Reply::Pong | Reply::Progress(_) => Ok(()),
        }
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Encodes a message with postcard after checking its field limits and, on the result,
/// [`MAX_MESSAGE_BYTES`].
pub fn encode<T: Message>(message: &T) -> Result<Vec<u8>, ProtocolError> {
    message.check_limits()?;

    let bytes = postcard::to_allocvec(message).map_err(|error| ProtocolError::Encode {
        reason: error.to_string(),
    })?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes one whole message from untrusted bytes.
///
/// Rejects input over [`MAX_MESSAGE_BYTES`] before reading it, then malformed input,
/// trailing bytes, fields over their limits and non-canonical encodings, so that every
/// message has exactly one encoding and `encode(&decode(bytes)?) == bytes`.
pub fn decode<T: Message>(bytes: &[u8]) -> Result<T, ProtocolError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }

    let (message, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|error| ProtocolError::Malformed {
            len: bytes.len(),
            reason: describe_postcard_error(&error),
        })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            len: bytes.len() - rest.len(),
            extra: rest.len(),
        });
    }

    message.check_limits()?;

    // postcard accepts varints with redundant continuation bytes (0x80 0x00 for 0).
    // Re-encoding shows them: only the canonical encoding reproduces the input.
    let canonical = postcard::to_allocvec(&message).map_err(|error| ProtocolError::Encode {
        reason: error.to_string(),
    })?;
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(bytes)
            .position(|(expected, found)| expected != found)
            .unwrap_or(canonical.len().min(bytes.len()));
        return Err(ProtocolError::NonCanonical {
            len: bytes.len(),
            offset,
        });
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

/// Reads the request id and protocol version at the front of a start request, without
/// decoding the rest. Returns `None` unless the bytes begin like a start request.
///
/// Every protocol version keeps this prefix (id, tag 0, `protocol_version`), so a worker
/// can tell a host of another version from a malformed message.
pub fn peek_handshake(bytes: &[u8]) -> Option<(RequestId, u32)> {
    let (id, rest) = postcard::take_from_bytes::<RequestId>(bytes).ok()?;
    let (tag, rest) = postcard::take_from_bytes::<u32>(rest).ok()?;
    if tag != 0 {
        return None;
    }
    let (version, _) = postcard::take_from_bytes::<u32>(rest).ok()?;
    Some((id, version))
}

/// A request that the worker rejects before running it, and the id to reply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Id of the rejected request, or [`UNKNOWN_REQUEST_ID`] when it could not be read.
    pub id: RequestId,
    /// Cause of the rejection.
    pub error: ProtocolError,
}

impl Rejection {
    /// Builds the error reply the worker sends for this rejection.
    pub fn to_reply(&self) -> FromWorker {
        FromWorker {
            id: self.id,
            reply: Reply::Error(WireError::new(self.error.code(), self.error.to_string())),
        }
    }
}

/// Decodes a message received by the worker, or returns the rejection to reply with.
///
/// A start request of another [`PROTOCOL_VERSION`] is rejected with
/// [`ProtocolError::VersionMismatch`], also when the rest of it does not decode under this
/// version. Any other undecodable message is rejected with its decoding error and, when its
/// id can be read, that id.
pub fn decode_request(bytes: &[u8]) -> Result<ToWorker, Rejection> {
    let error = match decode::<ToWorker>(bytes) {
        Ok(message) => match &message.request {
            Request::Start(start) if start.protocol_version != PROTOCOL_VERSION => {
                return Err(Rejection {
                    id: message.id,
                    error: ProtocolError::VersionMismatch {
                        host: start.protocol_version,
                        worker: PROTOCOL_VERSION,
                    },
                });
            }
            _ => return Ok(message),
        },
        Err(error) => error,
    };

    if let Some((id, version)) = peek_handshake(bytes) {
        if version != PROTOCOL_VERSION {
            return Err(Rejection {
                id,
                error: ProtocolError::VersionMismatch {
                    host: version,
                    worker: PROTOCOL_VERSION,
                },
            });
        }
    }
    Err(Rejection {
        id: peek_request_id(bytes).unwrap_or(UNKNOWN_REQUEST_ID),
        error,
    })
}

/// Encodes a reply from the worker, and never fails (tested by the `round_trip` fuzz target).
///
/// An error message over [`MAX_ERROR_MESSAGE_BYTES`] is truncated. A reply that still cannot
/// be encoded (a field over its limit) is replaced by a [`ErrorCode::BadMessage`] error reply
/// to the same request, so the host always receives a terminal reply it can decode.
pub fn encode_reply(message: &FromWorker) -> Vec<u8> {
    let error = match &message.reply {
        Reply::Error(error) if error.message.len() > MAX_ERROR_MESSAGE_BYTES => {
            let truncated = FromWorker {
                id: message.id,
                reply: Reply::Error(WireError::new(error.code, error.message.clone())),
            };
            encode(&truncated)
        }
        _ => encode(message),
    };
    let error = match error {
        Ok(bytes) => return bytes,
        Err(error) => error,
    };

    let fallback = FromWorker {
        id: message.id,
        reply: Reply::Error(WireError::new(
            ErrorCode::BadMessage,
            format!("the worker's reply could not be encoded: {error}"),
        )),
    };
    match encode(&fallback) {
        Ok(bytes) => bytes,
        // The fallback has only short fields, so this is not reached. The hand-built reply
        // below carries the id, tag 2 (Error), code 5 (BadMessage) and an empty message.
        Err(_) => {
            let mut bytes = postcard::to_allocvec(&message.id).unwrap_or_default();
            bytes.extend_from_slice(&[2, 5, 0]);
            bytes
        }
    }
}
