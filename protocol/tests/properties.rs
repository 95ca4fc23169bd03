//! Property tests: every generated message round-trips, and no input makes decoding panic.

use banter_protocol::{
    decode, decode_request, encode, ErrorCode, FromWorker, Line, LoadStage, ModelInfo, Progress,
    Reply, Request, SayRequest, StartRequest, StopReason, ToWorker, TokenDelta, WireError,
    MAX_ERROR_MESSAGE_BYTES, MAX_HEARD_BYTES, MAX_LINE_BYTES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES,
    MAX_TOKEN_IDS, MAX_URL_BYTES,
};
use proptest::prelude::*;

/// A string of at most `max_bytes` UTF-8 bytes, mixing ASCII and multi-byte characters.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max_bytes.min(64)).prop_map(move |chars| {
        let mut text = String::new();
        for c in chars {
            if text.len() + c.len_utf8() > max_bytes {
                break;
            }
            text.push(c);
        }
        text
    })
}

/// Any `f32` but NaN, which would not compare equal to itself after the round trip.
fn number_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN", |value| !value.is_nan())
}

fn number_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN", |value| !value.is_nan())
}

fn request() -> impl Strategy<Value = Request> {
    let start = (any::<u32>(), text(MAX_URL_BYTES), text(MAX_URL_BYTES)).prop_map(
        |(protocol_version, model_url, ort_url)| {
            Request::Start(StartRequest {
                protocol_version,
                model_url,
                ort_url,
            })
        },
    );
    let say = (
        text(MAX_HEARD_BYTES),
        any::<u64>(),
        any::<Option<u32>>(),
        proptest::option::of(number_f32()),
        any::<Option<u32>>(),
    )
        .prop_map(|(heard, seed, top_k, temperature, max_new_tokens)| {
            Request::Say(SayRequest {
                heard,
                seed,
                top_k,
                temperature,
                max_new_tokens,
            })
        });
    prop_oneof![start, say, Just(Request::Cancel), Just(Request::Ping)]
}

fn stop_reason() -> impl Strategy<Value = StopReason> {
    prop_oneof![
        Just(StopReason::Sentence),
        Just(StopReason::EndOfText),
        Just(StopReason::MaxTokens),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::InvalidRequest),
        Just(ErrorCode::ProtocolMismatch),
        Just(ErrorCode::ModelLoadFailed),
        Just(ErrorCode::NotStarted),
        Just(ErrorCode::InferenceFailed),
        Just(ErrorCode::BadMessage),
        Just(ErrorCode::Cancelled),
        Just(ErrorCode::Busy),
    ]
}

fn load_stage() -> impl Strategy<Value = LoadStage> {
    prop_oneof![
        Just(LoadStage::Runtime),
        Just(LoadStage::Manifest),
        Just(LoadStage::Download),
        Just(LoadStage::Session),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    let ready =
        (text(MAX_NAME_BYTES), any::<bool>(), number_f64()).prop_map(|(name, standin, load_ms)| {
            Reply::Ready(ModelInfo {
                name,
                standin,
                load_ms,
            })
        });
    let line = (
        text(MAX_LINE_BYTES),
        proptest::collection::vec(any::<u32>(), 0..=MAX_TOKEN_IDS),
        any::<u32>(),
        stop_reason(),
        number_f64(),
        number_f64(),
    )
        .prop_map(
            |(text, token_ids, prompt_tokens, stop_reason, elapsed_ms, model_ms)| {
                Reply::Line(Line {
                    text,
                    token_ids,
                    prompt_tokens,
                    stop_reason,
                    elapsed_ms,
                    model_ms,
                })
            },
        );
    let error = (error_code(), text(MAX_ERROR_MESSAGE_BYTES))
        .prop_map(|(code, message)| Reply::Error(WireError { code, message }));
    let token = text(MAX_LINE_BYTES).prop_map(|delta| Reply::Token(TokenDelta { delta }));
    let progress = (load_stage(), any::<u64>(), any::<u64>()).prop_map(|(stage, loaded, total)| {
        Reply::Progress(Progress {
            stage,
            loaded,
            total,
        })
    });
    prop_oneof![ready, line, error, token, Just(Reply::Pong), progress]
}

fn to_worker() -> impl Strategy<Value = ToWorker> {
    (any::<u32>(), request()).prop_map(|(id, request)| ToWorker { id, request })
}

fn from_worker() -> impl Strategy<Value = FromWorker> {
    (any::<u32>(), reply()).prop_map(|(id, reply)| FromWorker { id, reply })
}

proptest! {
    #[test]
    fn to_worker_round_trips(message in to_worker()) {
        let bytes = encode(&message).unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        prop_assert_eq!(decode::<ToWorker>(&bytes).unwrap(), message);
    }

    #[test]
    fn from_worker_round_trips(message in from_worker()) {
        let bytes = encode(&message).unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        prop_assert_eq!(decode::<FromWorker>(&bytes).unwrap(), message);
    }

    #[test]
    fn nan_round_trips_bit_for_bit(bits in any::<u32>(), seed in any::<u64>()) {
        let message = ToWorker {
            id: 1,
            request: Request::Say(SayRequest {
                heard: "x".into(),
                seed,
                top_k: None,
                temperature: Some(f32::from_bits(bits)),
                max_new_tokens: None,
            }),
        };
        let bytes = encode(&message).unwrap();
        let decoded = decode::<ToWorker>(&bytes).unwrap();
        prop_assert_eq!(encode(&decoded).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(message) = decode::<ToWorker>(&bytes) {
            prop_assert_eq!(encode(&message).unwrap(), bytes.clone());
        }
        if let Ok(message) = decode::<FromWorker>(&bytes) {
            prop_assert_eq!(encode(&message).unwrap(), bytes.clone());
        }
        let _ = decode_request(&bytes);
    }

    #[test]
    fn mutated_messages_decode_canonically(
        message in to_worker(),
        reply in from_worker(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut bytes = encode(&message).unwrap();
        let at = position.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode::<ToWorker>(&bytes) {
            prop_assert_eq!(encode(&decoded).unwrap(), bytes);
        }

        let mut bytes = encode(&reply).unwrap();
        let at = position.index(bytes.len());
        bytes[at] = value;
        if let Ok(decoded) = decode::<FromWorker>(&bytes) {
            prop_assert_eq!(encode(&decoded).unwrap(), bytes);
        }
    }
}
