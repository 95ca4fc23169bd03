//! Transport over `gloo-worker`: an opaque [`Packet`] and a codec that never interprets it.
//!
//! gloo-worker wraps every input and output in its own envelope and passes it through a
//! [`gloo_worker::Codec`] whose `decode` cannot return an error. banter therefore sends
//! only [`Packet`]s, whose bytes are a message encoded by [`crate::encode`] and carried
//! unchanged, and decodes them with [`crate::decode`], where a malformed message is an
//! error value.
//!
//! The envelope itself comes from gloo-worker's bridge on the other side, through
//! `PacketCodec::encode`. Should a corrupt one arrive anyway (another script posting to
//! the worker), [`decode_envelope`] substitutes an envelope that gloo-worker ignores, so
//! the codec logs the corruption and does not panic.

use js_sys::Uint8Array;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// One encoded [`crate::ToWorker`] or [`crate::FromWorker`] message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet(pub Vec<u8>);

/// Encodings of gloo-worker 0.6 envelopes that it handles as no-ops, tried in order in
/// place of a corrupt envelope. Each fails to decode as the other direction's envelope.
const HARMLESS_ENVELOPES: [&[u8]; 2] = [
    // `ToWorker::Disconnected(HandlerId(u32::MAX))`, received by the worker: banter's worker
    // keeps the default `Worker::disconnected`, which does nothing. gloo-worker numbers its
    // handlers from 0, so this id is never a live one.
    &[0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
    // `FromWorker::WorkerLoaded`, received by the host: the bridge flushes its queue of
    // early messages on the first one and ignores any later one.
    &[0x00],
];

/// A gloo-worker envelope that did not decode.
#[derive(Debug)]
pub struct CorruptEnvelope<O> {
    /// Size of the corrupt envelope.
    pub len: usize,
    /// postcard's reason.
    pub error: postcard::Error,
    /// An envelope that gloo-worker ignores, when `O` is one of its envelope types.
    pub substitute: Option<O>,
}

/// Decodes a gloo-worker envelope, or reports it corrupt with a harmless substitute.
pub fn decode_envelope<O: DeserializeOwned>(bytes: &[u8]) -> Result<O, CorruptEnvelope<O>> {
    postcard::from_bytes(bytes).map_err(|error| CorruptEnvelope {
        len: bytes.len(),
        error,
        substitute: HARMLESS_ENVELOPES
            .iter()
            .find_map(|envelope| postcard::from_bytes(envelope).ok()),
    })
}

/// A gloo-worker codec that writes gloo's envelope with postcard into a `Uint8Array`.
#[derive(Debug)]
pub struct PacketCodec;

impl gloo_worker::Codec for PacketCodec {
    fn encode<I: Serialize>(input: I) -> JsValue {
        match postcard::to_allocvec(&input) {
            Ok(bytes) => Uint8Array::from(bytes.as_slice()).into(),
            // Serializing gloo's envelope around a byte vector cannot fail. An empty array
            // would be replaced by a harmless envelope on the other side.
            Err(_) => Uint8Array::new_with_length(0).into(),
        }
    }

    #[allow(clippy::panic)]
    fn decode<O: DeserializeOwned>(input: JsValue) -> O {
        // Anything other than a Uint8Array is treated as an empty, hence corrupt, envelope.
        let bytes = input
            .dyn_ref::<Uint8Array>()
            .map(Uint8Array::to_vec)
            .unwrap_or_default();

        match decode_envelope(&bytes) {
            Ok(envelope) => envelope,
            Err(corrupt) => {
                web_sys::console::error_1(
                    &format!(
                        "banter: ignored a corrupt gloo-worker envelope of {} bytes: {}",
                        corrupt.len, corrupt.error
                    )
                    .into(),
                );
                match corrupt.substitute {
                    Some(substitute) => substitute,
                    // gloo-worker only instantiates `decode` with its two envelope types,
                    // and both decode from `HARMLESS_ENVELOPES` (tested natively).
                    None => panic!(
                        "no harmless substitute for a corrupt gloo-worker envelope of {} bytes",
                        corrupt.len
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! gloo-worker's envelope enums are private, so these mirrors copy their serde shape
    //! from gloo-worker 0.6 (`actor/messages.rs`).

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone, Copy)]
    struct HandlerId(usize);

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    enum ToWorkerEnvelope {
        Connected(HandlerId),
        ProcessInput(HandlerId, Packet),
        Disconnected(HandlerId),
        Destroy,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    enum FromWorkerEnvelope {
        WorkerLoaded,
        ProcessOutput(HandlerId, Packet),
    }

    #[test]
    fn worker_substitute_is_disconnect() {
        let corrupt = decode_envelope::<ToWorkerEnvelope>(&[0x07]).unwrap_err();
        assert_eq!(
            corrupt.substitute,
            Some(ToWorkerEnvelope::Disconnected(HandlerId(u32::MAX as usize)))
        );
    }

    #[test]
    fn host_substitute_is_worker_loaded() {
        let corrupt = decode_envelope::<FromWorkerEnvelope>(&[0x07]).unwrap_err();
        assert_eq!(corrupt.substitute, Some(FromWorkerEnvelope::WorkerLoaded));
    }

    #[test]
    fn empty_envelope_gets_substitute() {
        assert!(decode_envelope::<ToWorkerEnvelope>(&[])
            .unwrap_err()
            .substitute
            .is_some());
        assert!(decode_envelope::<FromWorkerEnvelope>(&[])
            .unwrap_err()
            .substitute
            .is_some());
    }

    #[test]
    fn packet_bytes_carried_unchanged() {
        let packet = Packet(vec![0xFF, 0x00, 0x80, 0x01]);
        let envelope = ToWorkerEnvelope::ProcessInput(HandlerId(3), packet.clone());
        let bytes = postcard::to_allocvec(&envelope).unwrap();
        assert_eq!(&bytes[bytes.len() - 4..], packet.0.as_slice());
        assert_eq!(
            decode_envelope::<ToWorkerEnvelope>(&bytes).unwrap(),
            envelope
        );
    }
}
