//! Decodes arbitrary bytes as a message to the worker, as the worker does.

#![no_main]

use banter_protocol::{
    decode, decode_request, encode, encode_reply, FromWorker, Request, ToWorker, PROTOCOL_VERSION,
    UNKNOWN_REQUEST_ID,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let decoded = decode::<ToWorker>(bytes);

    // Only the canonical encoding of a message decodes.
    if let Ok(message) = &decoded {
        assert_eq!(encode(message).as_deref(), Ok(bytes));
    }

    // Messages are compared by their encodings, because a NaN float is not equal to itself.
    match decode_request(bytes) {
        Ok(message) => {
            assert!(decoded.is_ok());
            assert_eq!(encode(&message).as_deref(), Ok(bytes));
        }
        Err(rejection) => {
            if let Ok(message) = &decoded {
                assert!(
                    matches!(&message.request, Request::Start(start) if start.protocol_version != PROTOCOL_VERSION)
                );
            }
            if rejection.id != UNKNOWN_REQUEST_ID {
                assert_eq!(banter_protocol::peek_request_id(bytes), Some(rejection.id));
            }

            // The worker's reply to any rejected request decodes on the host.
            let reply = encode_reply(&rejection.to_reply());
            let reply = decode::<FromWorker>(&reply);
            assert_eq!(reply.map(|reply| reply.id), Ok(rejection.id));
        }
    }
});
