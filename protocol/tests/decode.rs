//! Decoding of malformed, oversized and mismatched input, and the worker's replies to it.

use banter_protocol::{
    decode, decode_request, encode, encode_reply, peek_handshake, peek_request_id, ErrorCode,
    FromWorker, Line, ModelInfo, ProtocolError, Reply, Request, SayRequest, StartRequest,
    StopReason, ToWorker, WireError, MAX_ERROR_MESSAGE_BYTES, MAX_HEARD_BYTES, MAX_LINE_BYTES,
    MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_TOKEN_IDS, MAX_URL_BYTES, PROTOCOL_VERSION,
    UNKNOWN_REQUEST_ID,
};

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

fn start(version: u32) -> ToWorker {
    ToWorker {
        id: 1,
        request: Request::Start(StartRequest {
            protocol_version: version,
            model_url: "http://127.0.0.1:8000/model/".into(),
            ort_url: "http://127.0.0.1:8000/ort/".into(),
        }),
    }
}

fn line(text: String, token_ids: Vec<u32>) -> FromWorker {
    FromWorker {
        id: 3,
        reply: Reply::Line(Line {
            text,
            token_ids,
            prompt_tokens: 13,
            stop_reason: StopReason::Sentence,
            elapsed_ms: 80.0,
            model_ms: 70.0,
        }),
    }
}

/// Encodes with postcard directly, bypassing the limits that `encode` checks.
fn raw<T: serde::Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap()
}

#[test]
fn trailing_byte_rejected() {
    let mut bytes = encode(&say()).unwrap();
    let len = bytes.len();
    bytes.push(0);
    assert_eq!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::TrailingBytes { len, extra: 1 })
    );
}

#[test]
fn unknown_request_tag_rejected() {
    let mut bytes = encode(&say()).unwrap();
    bytes[1] = 9;
    assert!(matches!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn unknown_error_code_rejected() {
    let reply = FromWorker {
        id: 2,
        reply: Reply::Error(WireError::new(ErrorCode::BadMessage, "x")),
    };
    let mut bytes = encode(&reply).unwrap();
    assert_eq!(bytes[2], 5);
    bytes[2] = 8;
    assert!(matches!(
        decode::<FromWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn invalid_utf8_rejected() {
    let mut bytes = encode(&say()).unwrap();
    // id, tag, length, then the first byte of `heard`.
    bytes[3] = 0xFF;
    let error = decode::<ToWorker>(&bytes).unwrap_err();
    assert!(error.to_string().contains("UTF-8"), "{error}");
}

#[test]
fn bad_bool_and_option_rejected() {
    let ready = FromWorker {
        id: 1,
        reply: Reply::Ready(ModelInfo {
            name: "m".into(),
            standin: true,
            load_ms: 1.0,
        }),
    };
    let mut bytes = encode(&ready).unwrap();
    // id, tag, name length, name, then `standin`.
    bytes[4] = 2;
    assert!(matches!(
        decode::<FromWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
    ));

    let mut bytes = encode(&say()).unwrap();
    let top_k = 3 + "Where is the ball?".len() + 10;
    assert_eq!(bytes[top_k], 1);
    bytes[top_k] = 2;
    assert!(matches!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
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
    assert_eq!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::TooLarge {
            len: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        })
    );
}

#[test]
fn overlong_varint_rejected() {
    // id 7 written as 0x87 0x00 instead of 0x07.
    let canonical = encode(&say()).unwrap();
    let mut bytes = vec![0x87, 0x00];
    bytes.extend_from_slice(&canonical[1..]);
    assert_eq!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::NonCanonical {
            len: bytes.len(),
            offset: 0
        })
    );
}

#[test]
fn huge_string_length_prefix_rejected() {
    // id 1, tag Say, then a `heard` length of 2^32 - 1 with no text behind it.
    let bytes = [0x01, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    assert!(matches!(
        decode::<ToWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn huge_token_count_rejected() {
    // id 1, tag Line, empty text, then a token count of 2^32 - 1 followed by 4000 ids.
    let mut bytes = vec![0x01, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    bytes.extend(std::iter::repeat_n(0x01, 4000));
    assert!(matches!(
        decode::<FromWorker>(&bytes),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn token_ids_over_limit_rejected() {
    let over = line("Hi.".into(), vec![1; MAX_TOKEN_IDS + 1]);
    assert_eq!(
        encode(&over),
        Err(ProtocolError::TooManyTokenIds {
            count: MAX_TOKEN_IDS + 1,
            max: MAX_TOKEN_IDS
        })
    );
    assert!(matches!(
        decode::<FromWorker>(&raw(&over)),
        Err(ProtocolError::Malformed { .. })
    ));

    let at_limit = line("Hi.".into(), vec![1; MAX_TOKEN_IDS]);
    let bytes = encode(&at_limit).unwrap();
    assert_eq!(decode::<FromWorker>(&bytes).unwrap(), at_limit);
}

#[test]
fn heard_over_limit_rejected() {
    let mut message = say();
    if let Request::Say(say) = &mut message.request {
        say.heard = "a".repeat(MAX_HEARD_BYTES + 1);
    }
    let expected = ProtocolError::FieldTooLong {
        field: "heard",
        len: MAX_HEARD_BYTES + 1,
        max: MAX_HEARD_BYTES,
    };
    assert_eq!(encode(&message), Err(expected.clone()));
    assert_eq!(decode::<ToWorker>(&raw(&message)), Err(expected));
}

#[test]
fn text_fields_over_limit_rejected() {
    let mut start = start(PROTOCOL_VERSION);
    if let Request::Start(request) = &mut start.request {
        request.ort_url = "u".repeat(MAX_URL_BYTES + 1);
    }
    assert!(matches!(
        decode::<ToWorker>(&raw(&start)),
        Err(ProtocolError::FieldTooLong {
            field: "ort_url",
            ..
        })
    ));

    let long_line = line("a".repeat(MAX_LINE_BYTES + 1), vec![]);
    assert!(matches!(
        decode::<FromWorker>(&raw(&long_line)),
        Err(ProtocolError::FieldTooLong { field: "text", .. })
    ));

    let ready = FromWorker {
        id: 1,
        reply: Reply::Ready(ModelInfo {
            name: "n".repeat(MAX_NAME_BYTES + 1),
            standin: false,
            load_ms: 0.0,
        }),
    };
    assert!(matches!(
        decode::<FromWorker>(&raw(&ready)),
        Err(ProtocolError::FieldTooLong { field: "name", .. })
    ));

    let error = FromWorker {
        id: 1,
        reply: Reply::Error(WireError {
            code: ErrorCode::InferenceFailed,
            message: "m".repeat(MAX_ERROR_MESSAGE_BYTES + 1),
        }),
    };
    assert!(matches!(
        decode::<FromWorker>(&raw(&error)),
        Err(ProtocolError::FieldTooLong {
            field: "message",
            ..
        })
    ));
}

#[test]
fn messages_at_every_limit_fit() {
    let start = ToWorker {
        id: u32::MAX,
        request: Request::Start(StartRequest {
            protocol_version: u32::MAX,
            model_url: "u".repeat(MAX_URL_BYTES),
            ort_url: "u".repeat(MAX_URL_BYTES),
        }),
    };
    let say = ToWorker {
        id: u32::MAX,
        request: Request::Say(SayRequest {
            heard: "h".repeat(MAX_HEARD_BYTES),
            seed: u64::MAX,
            top_k: Some(u32::MAX),
            temperature: Some(f32::MAX),
            max_new_tokens: Some(u32::MAX),
        }),
    };
    for message in [start, say] {
        let bytes = encode(&message).unwrap();
        assert_eq!(decode::<ToWorker>(&bytes).unwrap(), message);
    }

    let replies = [
        Reply::Ready(ModelInfo {
            name: "n".repeat(MAX_NAME_BYTES),
            standin: true,
            load_ms: f64::MAX,
        }),
        Reply::Line(Line {
            text: "t".repeat(MAX_LINE_BYTES),
            token_ids: vec![u32::MAX; MAX_TOKEN_IDS],
            prompt_tokens: u32::MAX,
            stop_reason: StopReason::MaxTokens,
            elapsed_ms: f64::MAX,
            model_ms: f64::MAX,
        }),
        Reply::Error(WireError::new(
            ErrorCode::BadMessage,
            "m".repeat(MAX_ERROR_MESSAGE_BYTES),
        )),
    ];
    for reply in replies {
        let message = FromWorker {
            id: u32::MAX,
            reply,
        };
        let bytes = encode(&message).unwrap();
        assert_eq!(decode::<FromWorker>(&bytes).unwrap(), message);
    }
}

#[test]
fn wire_error_truncated_at_char_boundary() {
    let error = WireError::new(
        ErrorCode::ModelLoadFailed,
        "é".repeat(MAX_ERROR_MESSAGE_BYTES),
    );
    assert!(error.message.len() <= MAX_ERROR_MESSAGE_BYTES);
    assert!(error.message.ends_with('…'));

    let short = WireError::new(ErrorCode::ModelLoadFailed, "fetch failed");
    assert_eq!(short.message, "fetch failed");
}

#[test]
fn request_id_read_from_bad_message() {
    let mut bytes = encode(&say()).unwrap();
    bytes[1] = 9;
    assert_eq!(peek_request_id(&bytes), Some(7));
    assert_eq!(peek_request_id(&[]), None);
}

#[test]
fn decode_request_accepts_valid_messages() {
    for message in [start(PROTOCOL_VERSION), say()] {
        let bytes = encode(&message).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), message);
    }
}

#[test]
fn decode_request_rejects_other_version() {
    let bytes = encode(&start(PROTOCOL_VERSION + 1)).unwrap();
    let rejection = decode_request(&bytes).unwrap_err();
    assert_eq!(rejection.id, 1);
    assert_eq!(
        rejection.error,
        ProtocolError::VersionMismatch {
            host: PROTOCOL_VERSION + 1,
            worker: PROTOCOL_VERSION
        }
    );

    let reply = rejection.to_reply();
    let Reply::Error(error) = &reply.reply else {
        panic!("expected an error reply, got {reply:?}");
    };
    assert_eq!(error.code, ErrorCode::ProtocolMismatch);
    assert!(error
        .message
        .contains(&format!("host protocol version {}", PROTOCOL_VERSION + 1)));
    assert!(error
        .message
        .contains(&format!("worker protocol version {PROTOCOL_VERSION}")));
}

#[test]
fn decode_request_reads_version_of_unknown_layout() {
    // A start request of a later version whose fields after the version changed: here,
    // one u32 replaced the two URLs.
    let later = PROTOCOL_VERSION + 1;
    let bytes = [0x05, 0x00, later as u8, 0x2A];
    assert_eq!(peek_handshake(&bytes), Some((5, later)));
    let rejection = decode_request(&bytes).unwrap_err();
    assert_eq!(rejection.id, 5);
    assert_eq!(rejection.error.code(), ErrorCode::ProtocolMismatch);
}

#[test]
fn decode_request_reports_bad_message_with_id() {
    let mut bytes = encode(&say()).unwrap();
    bytes[1] = 9;
    let rejection = decode_request(&bytes).unwrap_err();
    assert_eq!(rejection.id, 7);
    assert_eq!(rejection.error.code(), ErrorCode::BadMessage);

    let reply = encode_reply(&rejection.to_reply());
    let decoded = decode::<FromWorker>(&reply).unwrap();
    assert_eq!(decoded.id, 7);
    assert!(matches!(
        decoded.reply,
        Reply::Error(WireError {
            code: ErrorCode::BadMessage,
            ..
        })
    ));
}

#[test]
fn decode_request_without_id_uses_unknown() {
    let rejection = decode_request(&[0xFF]).unwrap_err();
    assert_eq!(rejection.id, UNKNOWN_REQUEST_ID);
    assert_eq!(rejection.error.code(), ErrorCode::BadMessage);
}

#[test]
fn start_of_same_version_malformed_is_bad_message() {
    let mut bytes = encode(&start(PROTOCOL_VERSION)).unwrap();
    bytes.push(0);
    let rejection = decode_request(&bytes).unwrap_err();
    assert_eq!(rejection.error.code(), ErrorCode::BadMessage);
}

#[test]
fn encode_reply_truncates_long_error() {
    let message = FromWorker {
        id: 4,
        reply: Reply::Error(WireError {
            code: ErrorCode::ModelLoadFailed,
            message: "x".repeat(MAX_ERROR_MESSAGE_BYTES * 2),
        }),
    };
    let decoded = decode::<FromWorker>(&encode_reply(&message)).unwrap();
    let Reply::Error(error) = decoded.reply else {
        panic!("expected an error reply");
    };
    assert_eq!(error.code, ErrorCode::ModelLoadFailed);
    assert!(error.message.len() <= MAX_ERROR_MESSAGE_BYTES);
}

#[test]
fn encode_reply_replaces_oversized_line() {
    let message = line("a".repeat(MAX_LINE_BYTES + 1), vec![1, 2]);
    let decoded = decode::<FromWorker>(&encode_reply(&message)).unwrap();
    assert_eq!(decoded.id, 3);
    let Reply::Error(error) = decoded.reply else {
        panic!("expected an error reply");
    };
    assert_eq!(error.code, ErrorCode::BadMessage);
    assert!(error.message.contains("text is"), "{}", error.message);
}
