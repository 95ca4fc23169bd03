//! The hex examples in PROTOCOL.md are golden vectors: each decodes to the message listed
//! here and encodes back to the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use banter_protocol::{
    decode, encode, ErrorCode, FromWorker, Line, LoadStage, ModelInfo, Progress, Reply, Request,
    SayRequest, StartRequest, StopReason, ToWorker, TokenDelta, WireError, PROTOCOL_VERSION,
};

/// The expected message of each golden vector, by the name in its ```` ```hex golden=NAME ````
/// fence.
enum Expected {
    ToWorker(ToWorker),
    FromWorker(FromWorker),
}

fn expected() -> BTreeMap<&'static str, Expected> {
    BTreeMap::from([
        (
            "start",
            Expected::ToWorker(ToWorker {
                id: 1,
                request: Request::Start(StartRequest {
                    protocol_version: PROTOCOL_VERSION,
                    model_url: "http://127.0.0.1/model/".into(),
                    ort_url: "http://127.0.0.1/ort/".into(),
                }),
            }),
        ),
        (
            "say",
            Expected::ToWorker(ToWorker {
                id: 2,
                request: Request::Say(SayRequest {
                    heard: "Hi!".into(),
                    seed: 42,
                    top_k: Some(40),
                    temperature: Some(0.5),
                    max_new_tokens: None,
                }),
            }),
        ),
        (
            "say-varints",
            Expected::ToWorker(ToWorker {
                id: 300,
                request: Request::Say(SayRequest {
                    heard: "Où?".into(),
                    seed: u64::MAX,
                    top_k: None,
                    temperature: None,
                    max_new_tokens: Some(200),
                }),
            }),
        ),
        (
            "cancel",
            Expected::ToWorker(ToWorker {
                id: 2,
                request: Request::Cancel,
            }),
        ),
        (
            "ping",
            Expected::ToWorker(ToWorker {
                id: 7,
                request: Request::Ping,
            }),
        ),
        (
            "token",
            Expected::FromWorker(FromWorker {
                id: 2,
                reply: Reply::Token(TokenDelta {
                    delta: " Hi".into(),
                }),
            }),
        ),
        (
            "pong",
            Expected::FromWorker(FromWorker {
                id: 7,
                reply: Reply::Pong,
            }),
        ),
        (
            "progress",
            Expected::FromWorker(FromWorker {
                id: 1,
                reply: Reply::Progress(Progress {
                    stage: LoadStage::Download,
                    loaded: 16384,
                    total: 24584,
                }),
            }),
        ),
        (
            "ready",
            Expected::FromWorker(FromWorker {
                id: 1,
                reply: Reply::Ready(ModelInfo {
                    name: "stand-in".into(),
                    standin: true,
                    load_ms: 12.5,
                }),
            }),
        ),
        (
            "line",
            Expected::FromWorker(FromWorker {
                id: 2,
                reply: Reply::Line(Line {
                    text: "Hi.".into(),
                    token_ids: vec![17250, 13],
                    prompt_tokens: 9,
                    stop_reason: StopReason::Sentence,
                    elapsed_ms: 80.0,
                    model_ms: 70.0,
                }),
            }),
        ),
        (
            "error",
            Expected::FromWorker(FromWorker {
                id: 2,
                reply: Reply::Error(WireError {
                    code: ErrorCode::InvalidRequest,
                    message: "top_k 0 is out of range".into(),
                }),
            }),
        ),
        (
            "mismatch",
            Expected::FromWorker(FromWorker {
                id: 1,
                reply: Reply::Error(WireError {
                    code: ErrorCode::ProtocolMismatch,
                    message: "host 2, worker 1".into(),
                }),
            }),
        ),
    ])
}

/// Returns every ```` ```hex golden=NAME ```` block of `markdown` as (name, bytes).
fn golden_blocks(markdown: &str) -> Vec<(String, Vec<u8>)> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex golden=") else {
            continue;
        };
        let mut bytes = Vec::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            let digits = line.split('#').next().unwrap_or_default();
            for pair in digits.split_whitespace() {
                let byte = u8::from_str_radix(pair, 16)
                    .unwrap_or_else(|_| panic!("golden={name}: {pair:?} is not a hex byte"));
                bytes.push(byte);
            }
        }
        blocks.push((name.trim().to_owned(), bytes));
    }
    blocks
}

fn protocol_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../PROTOCOL.md");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("could not read {}: {error}", path.display()))
}

#[test]
fn golden_vectors_decode_and_reencode() {
    let mut expected = expected();
    let blocks = golden_blocks(&protocol_md());
    assert!(!blocks.is_empty(), "PROTOCOL.md has no golden blocks");

    for (name, bytes) in blocks {
        let message = expected
            .remove(name.as_str())
            .unwrap_or_else(|| panic!("golden={name} in PROTOCOL.md is unknown or repeated"));
        match message {
            Expected::ToWorker(message) => {
                assert_eq!(
                    decode::<ToWorker>(&bytes).unwrap(),
                    message,
                    "golden={name}"
                );
                assert_eq!(encode(&message).unwrap(), bytes, "golden={name}");
            }
            Expected::FromWorker(message) => {
                assert_eq!(
                    decode::<FromWorker>(&bytes).unwrap(),
                    message,
                    "golden={name}"
                );
                assert_eq!(encode(&message).unwrap(), bytes, "golden={name}");
            }
        }
    }

    let missing: Vec<_> = expected.keys().collect();
    assert!(
        missing.is_empty(),
        "PROTOCOL.md lacks golden blocks {missing:?}"
    );
}

#[test]
fn golden_parser_strips_comments() {
    let blocks = golden_blocks("```hex golden=x\n01 ff  # id = 1\n# note\n0a\n```\n");
    assert_eq!(blocks, vec![("x".to_owned(), vec![0x01, 0xff, 0x0a])]);
}
