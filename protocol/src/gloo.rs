//! Transport over `gloo-worker`: an opaque [`Packet`] and a codec that never interprets it.
//!
//! gloo-worker wraps every input and output in its own envelope and passes it through a
//! [`gloo_worker::Codec`] whose `decode` cannot return an error. banter therefore sends
//! only [`Packet`]s, whose bytes are a message encoded by [`crate::encode`], and decodes
//! them with [`crate::decode`], where a malformed message is an error value.

use js_sys::Uint8Array;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::JsValue;

/// One encoded [`crate::ToWorker`] or [`crate::FromWorker`] message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet(pub Vec<u8>);

/// A gloo-worker codec that writes gloo's envelope with postcard into a `Uint8Array`.
#[derive(Debug)]
pub struct PacketCodec;

impl gloo_worker::Codec for PacketCodec {
    fn encode<I: Serialize>(input: I) -> JsValue {
        match postcard::to_allocvec(&input) {
            Ok(bytes) => Uint8Array::from(bytes.as_slice()).into(),
            // Serializing gloo's envelope around a byte vector cannot fail; an empty
            // array would be rejected by `decode` on the other side.
            Err(_) => Uint8Array::new_with_length(0).into(),
        }
    }

    #[allow(clippy::panic)]
    fn decode<O: DeserializeOwned>(input: JsValue) -> O {
        let bytes = Uint8Array::new(&input).to_vec();
        match postcard::from_bytes(&bytes) {
            Ok(value) => value,
            // Only gloo-worker's own bridge posts to the worker and back, always through
            // `encode` above, so this envelope is never built from outside input; the
            // message inside the packet is decoded fallibly by `crate::decode`.
            Err(error) => panic!(
                "gloo-worker envelope of {} bytes is corrupt: {error}",
                bytes.len()
            ),
        }
    }
}
