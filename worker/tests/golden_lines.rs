//! Golden lines: 50 (heard, seed) pairs and the token ids the engine samples for them on
//! native ONNX Runtime. The end-to-end test `tests/e2e/golden_lines.test.mjs` checks the
//! same table in Chromium, so together they show native and web runs agree.
//!
//! The table belongs to one model bundle, named by its graph's sha256. To rewrite it after
//! a deliberate change to the model or the sampler, run this test with
//! `BANTER_UPDATE_GOLDEN=1`.

use std::path::{Path, PathBuf};

use banter_bundle::FileRole;
use banter_protocol::SayRequest;
use banter_worker::bundle::{init_native_runtime, load_dir};
use futures::executor::block_on;
use serde::{Deserialize, Serialize};

const HEARD: [&str; 10] = [
    "Where is the ball?",
    "Do you want to play?",
    "Why is the sky blue?",
    "Can I have a cookie?",
    "Hello",
    "What is your name?",
    "Look at the big tree!",
    "Are you sad?",
    "Où est le chat?",
    "I found a shiny 🐚 on the beach.",
];
const SEEDS: [u64; 5] = [0, 1, 7, 2024, u64::MAX];

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Table {
    /// sha256 of the bundle's model.onnx that produced the table.
    graph_sha256: String,
    cases: Vec<Case>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Case {
    heard: String,
    seed: String,
    token_ids: Vec<u32>,
    text: String,
    stop_reason: String,
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden_lines.json")
}

#[test]
fn golden_lines_native() {
    let bundle = PathBuf::from(std::env::var_os("BANTER_BUNDLE_DIR").expect(
        "BANTER_BUNDLE_DIR is not set: run `cargo xtask test`, or point it at a bundle folder such as target/site/model",
    ));
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .expect("ORT_DYLIB_PATH is not set: run `cargo xtask test`, or point it at libonnxruntime.so.1.30.0");
    init_native_runtime(Path::new(&library)).unwrap();
    let (manifest, mut engine) = block_on(load_dir(&bundle)).unwrap();
    let graph_sha256 = manifest.file(FileRole::Graph).unwrap().sha256.clone();

    let mut cases = Vec::new();
    for heard in HEARD {
        for seed in SEEDS {
            let request = SayRequest {
                heard: heard.into(),
                seed,
                top_k: None,
                temperature: None,
                max_new_tokens: None,
            };
            let line = block_on(engine.say(&request)).unwrap();
            cases.push(Case {
                heard: heard.into(),
                seed: seed.to_string(),
                token_ids: line.token_ids,
                text: line.text,
                stop_reason: line.stop_reason.as_str().into(),
            });
        }
    }
    let actual = Table {
        graph_sha256,
        cases,
    };

    if std::env::var_os("BANTER_UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(golden_path(), text).unwrap();
        return;
    }

    let expected: Table =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).unwrap()).unwrap();
    assert_eq!(
        actual.graph_sha256, expected.graph_sha256,
        "the bundle's model.onnx differs from the one the golden lines were made with; if the change is deliberate, rerun with BANTER_UPDATE_GOLDEN=1"
    );
    assert_eq!(actual.cases.len(), 50);
    for (actual, expected) in actual.cases.iter().zip(&expected.cases) {
        assert_eq!(
            actual, expected,
            "heard {:?}, seed {}",
            expected.heard, expected.seed
        );
    }
}
