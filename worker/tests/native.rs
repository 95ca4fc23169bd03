//! The engine against the real bundle: native ONNX Runtime and the bundle's tokenizer, and
//! scripted models for the stop rule.
//!
//! Needs `BANTER_BUNDLE_DIR` (a bundle folder, e.g. `target/site/model`) and
//! `ORT_DYLIB_PATH` (native `libonnxruntime`); `cargo xtask test` sets both.

use std::path::PathBuf;

use banter_protocol::{ErrorCode, SayRequest, StopReason};
use banter_worker::bundle::{init_native_runtime, load_dir};
use banter_worker::engine::sampler::Candidates;
use banter_worker::{Engine, LanguageModel, WorkerError};
use futures::executor::block_on;
use tokenizers::Tokenizer;

const EOS: u32 = 50256;

fn bundle_dir() -> PathBuf {
    let dir = std::env::var_os("BANTER_BUNDLE_DIR")
        .expect("BANTER_BUNDLE_DIR is not set: run `cargo xtask test`, or point it at a bundle folder such as target/site/model");
    PathBuf::from(dir)
}

fn ort_engine() -> Engine<banter_worker::OrtModel> {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .expect("ORT_DYLIB_PATH is not set: run `cargo xtask test`, or point it at libonnxruntime.so.1.30.0");
    init_native_runtime(&PathBuf::from(library)).unwrap();
    block_on(load_dir(&bundle_dir())).unwrap().1
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_file(bundle_dir().join("tokenizer.json")).unwrap()
}

fn say(heard: &str, seed: u64) -> SayRequest {
    SayRequest {
        heard: heard.into(),
        seed,
        top_k: None,
        temperature: None,
        max_new_tokens: None,
    }
}

/// A model that emits a fixed token script, one token per step, by giving the
/// scripted token a logit far above all others.
struct Scripted {
    script: Vec<u32>,
    step: usize,
}

impl LanguageModel for Scripted {
    fn reset(&mut self) {
        self.step = 0;
    }

    async fn next_candidates(
        &mut self,
        _ids: &[u32],
        top_k: usize,
    ) -> Result<Candidates, WorkerError> {
        let mut logits = vec![0.0f32; 50257];
        let token = self.script.get(self.step).copied().unwrap_or(EOS);
        logits[token as usize] = 1000.0;
        self.step += 1;
        Candidates::top_k(&logits, top_k)
    }
}

fn scripted(text: &str, then_eos: bool, max_positions: u32) -> Engine<Scripted> {
    let tokenizer = tokenizer();
    let mut script = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
    if then_eos {
        script.push(EOS);
    }
    Engine::new(
        tokenizer,
        Scripted { script, step: 0 },
        50257,
        max_positions,
        EOS,
    )
}

#[test]
fn same_seed_same_line() {
    let mut engine = ort_engine();
    let first = block_on(engine.say(&say("Where is the ball?", 7))).unwrap();
    let again = block_on(engine.say(&say("Where is the ball?", 7))).unwrap();
    let other = block_on(engine.say(&say("Where is the ball?", 8))).unwrap();

    assert_eq!(first.text, again.text);
    assert_eq!(first.token_ids, again.token_ids);
    assert_eq!(first.stop_reason, again.stop_reason);
    assert_ne!(first.token_ids, other.token_ids);
    assert!(first.model_ms > 0.0, "model_ms is {}", first.model_ms);
    assert_eq!(first.prompt_tokens, 16);
    assert!(!first.token_ids.is_empty());
    assert!(first.token_ids.len() <= 60);
}

#[test]
fn invalid_request_then_valid() {
    let mut engine = ort_engine();
    let bad = SayRequest {
        top_k: Some(0),
        ..say("Hello", 1)
    };
    let error = block_on(engine.say(&bad)).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidRequest);

    let line = block_on(engine.say(&say("Hello", 1))).unwrap();
    assert!(!line.token_ids.is_empty());
}

#[test]
fn scripted_sentence_stops_at_ender() {
    let mut engine = scripted("I like the ball. It is red.", false, 2048);
    let line = block_on(engine.say(&say("Hi", 1))).unwrap();
    assert_eq!(line.text, "I like the ball.");
    assert_eq!(line.stop_reason, StopReason::Sentence);
    assert_eq!(
        line.token_ids,
        tokenizer()
            .encode("I like the ball.", false)
            .unwrap()
            .get_ids()
    );
}

#[test]
fn scripted_quote_removed() {
    let mut engine = scripted("Yes!\" said Tim.", false, 2048);
    let line = block_on(engine.say(&say("Hi", 1))).unwrap();
    assert_eq!(line.text, "Yes!");
    assert_eq!(line.stop_reason, StopReason::Sentence);
}

#[test]
fn scripted_end_of_text() {
    let mut engine = scripted("We can play", true, 2048);
    let line = block_on(engine.say(&say("Hi", 1))).unwrap();
    assert_eq!(line.text, "We can play");
    assert_eq!(line.stop_reason, StopReason::EndOfText);
    assert!(!line.token_ids.contains(&EOS));
}

#[test]
fn scripted_max_tokens() {
    let mut engine = scripted(&"and ".repeat(50), false, 2048);
    let request = SayRequest {
        max_new_tokens: Some(5),
        ..say("Hi", 1)
    };
    let line = block_on(engine.say(&request)).unwrap();
    assert_eq!(line.token_ids.len(), 5);
    assert_eq!(line.stop_reason, StopReason::MaxTokens);
    assert_eq!(line.text, "and and and and and");
}

#[test]
fn prompt_too_long_rejected() {
    let mut engine = scripted("Hi.", false, 20);
    let error = block_on(engine.say(&say("Where is the ball?", 1))).unwrap_err();
    assert!(
        matches!(
            error,
            WorkerError::PromptTooLong {
                prompt_tokens: 16,
                max_new_tokens: 60,
                max_positions: 20
            }
        ),
        "{error}"
    );
    assert_eq!(error.code(), ErrorCode::InvalidRequest);
}
