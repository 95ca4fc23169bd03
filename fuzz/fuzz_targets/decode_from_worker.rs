//! Decodes arbitrary bytes as a message from the worker, as the host does.

#![no_main]

use banter_protocol::{decode, encode, FromWorker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Only the canonical encoding of a message decodes.
    if let Ok(message) = decode::<FromWorker>(bytes) {
        assert_eq!(encode(&message).as_deref(), Ok(bytes));
    }
});
