//! Encodes structured messages of both directions and decodes them again.
//!
//! Messages are compared by their encodings, because a NaN float is not equal to itself.

#![no_main]

use banter_protocol::{decode, encode, encode_reply, FromWorker, Message, ProtocolError, ToWorker};
use libfuzzer_sys::fuzz_target;

fn check<T: Message + std::fmt::Debug>(message: &T) {
    match encode(message) {
        Ok(bytes) => {
            let decoded = decode::<T>(&bytes).unwrap_or_else(|error| {
                panic!("{message:?} encoded to {bytes:02x?}, which does not decode: {error}")
            });
            assert_eq!(encode(&decoded).as_deref(), Ok(bytes.as_slice()));
        }
        Err(error) => {
            assert!(
                matches!(
                    error,
                    ProtocolError::FieldTooLong { .. }
                        | ProtocolError::TooManyTokenIds { .. }
                        | ProtocolError::TooLarge { .. }
                ),
                "{message:?} failed to encode: {error}"
            );
        }
    }
}

fuzz_target!(|messages: (ToWorker, FromWorker)| {
    let (request, reply) = messages;
    check(&request);
    check(&reply);

    // The worker's reply encoding never fails and always decodes to the same request id.
    let bytes = encode_reply(&reply);
    let decoded = decode::<FromWorker>(&bytes);
    assert_eq!(decoded.map(|decoded| decoded.id), Ok(reply.id));
});
