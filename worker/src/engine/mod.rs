//! Generation: from a say request to a spoken line, free of browser types.
//!
//! The data flow of one request: validate the parameters → build the prompt → encode it
//! → prefill the model with the prompt → sample → check the stop rule → feed the token
//! back → repeat → cut the line.

pub mod prompt;
pub mod sampler;
pub mod stop;

use banter_protocol::{SayRequest, StopReason, MAX_HEARD_BYTES};
use tokenizers::Tokenizer;

use crate::{LanguageModel, WorkerError};
use sampler::Sampler;

/// Candidates kept per step when a request does not say.
pub const DEFAULT_TOP_K: u32 = 40;
/// Softmax temperature when a request does not say.
pub const DEFAULT_TEMPERATURE: f32 = 0.9;
/// New tokens generated at most when a request does not say.
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 60;
/// Largest `max_new_tokens` a request may ask for.
pub const MAX_NEW_TOKENS_LIMIT: u32 = 256;

// Every generated id must fit in the protocol's line reply.
const _: () = assert!(MAX_NEW_TOKENS_LIMIT as usize <= banter_protocol::MAX_TOKEN_IDS);

/// Validated sampling parameters of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// PRNG seed.
    pub seed: u64,
    /// Candidates kept per step.
    pub top_k: u32,
    /// Softmax temperature.
    pub temperature: f32,
    /// Limit on generated tokens.
    pub max_new_tokens: u32,
}

impl Params {
    /// Applies defaults to a request's parameters and checks their ranges.
    pub fn from_request(request: &SayRequest, vocab_size: u32) -> Result<Self, WorkerError> {
        if request.heard.len() > MAX_HEARD_BYTES {
            return Err(WorkerError::HeardTooLong {
                len: request.heard.len(),
                max: MAX_HEARD_BYTES,
            });
        }
        if request.heard.trim().is_empty() {
            return Err(WorkerError::EmptyHeard);
        }

        let top_k = request.top_k.unwrap_or(DEFAULT_TOP_K);
        if top_k == 0 || top_k > vocab_size {
            return Err(WorkerError::TopKOutOfRange {
                value: top_k,
                vocab_size,
            });
        }

        let temperature = request.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        if !temperature.is_finite() || temperature <= 0.0 {
            return Err(WorkerError::InvalidTemperature { value: temperature });
        }

        let max_new_tokens = request.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
        if max_new_tokens == 0 || max_new_tokens > MAX_NEW_TOKENS_LIMIT {
            return Err(WorkerError::MaxNewTokensOutOfRange {
                value: max_new_tokens,
                max: MAX_NEW_TOKENS_LIMIT,
            });
        }

        Ok(Params {
            seed: request.seed,
            top_k,
            temperature,
            max_new_tokens,
        })
    }
}

/// The result of one request, before timing is added.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The spoken line (see [`stop::spoken_line`]).
    pub text: String,
    /// The generated token ids, including the one that ended the sentence but not the
    /// end-of-text token.
    pub token_ids: Vec<u32>,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Why generation stopped.
    pub stop_reason: StopReason,
    /// Milliseconds spent in the model's runs (see [`LanguageModel::run_ms`]).
    pub model_ms: f64,
}

/// Hooks into a running request: streamed text and cancellation.
#[allow(async_fn_in_trait)]
pub trait Observer {
    /// Receives the next piece of the spoken line as soon as later tokens cannot change
    /// it. The pieces of one request concatenate to its final text.
    fn on_delta(&mut self, _delta: &str) {}

    /// Returns true to stop the request. It is awaited before each model step, so an
    /// implementation may let its event loop run here.
    async fn cancelled(&mut self) -> bool {
        false
    }
}

/// An observer that streams nothing and never cancels.
#[derive(Debug, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// A tokenizer and a language model, ready to answer say requests.
pub struct Engine<M> {
    tokenizer: Tokenizer,
    model: M,
    vocab_size: u32,
    max_positions: u32,
    eos_token_id: u32,
}

impl<M: LanguageModel> Engine<M> {
    /// Creates an engine for a model with the given vocabulary size, position table size
    /// and end-of-text id.
    pub fn new(
        tokenizer: Tokenizer,
        model: M,
        vocab_size: u32,
        max_positions: u32,
        eos_token_id: u32,
    ) -> Self {
        Engine {
            tokenizer,
            model,
            vocab_size,
            max_positions,
            eos_token_id,
        }
    }

    /// Generates the spoken line for `request`.
    pub async fn say(&mut self, request: &SayRequest) -> Result<Generated, WorkerError> {
        self.say_observed(request, &mut Unobserved).await
    }

    /// Generates the spoken line for `request`, streaming it to `observer` and stopping
    /// with [`WorkerError::Cancelled`] when the observer reports a cancel.
    pub async fn say_observed(
        &mut self,
        request: &SayRequest,
        observer: &mut impl Observer,
    ) -> Result<Generated, WorkerError> {
        let params = Params::from_request(request, self.vocab_size)?;

        let prompt = prompt::build_prompt(&request.heard);
        let prompt_ids = self.encode(&prompt)?;
        let positions_needed = prompt_ids.len() + params.max_new_tokens as usize;
        if positions_needed > self.max_positions as usize {
            return Err(WorkerError::PromptTooLong {
                prompt_tokens: prompt_ids.len(),
                max_new_tokens: params.max_new_tokens,
                max_positions: self.max_positions,
            });
        }

        let mut sampler = Sampler::new(params.seed, params.temperature);
        let mut generated: Vec<u32> = Vec::with_capacity(params.max_new_tokens as usize);
        let mut continuation = String::new();
        let mut streamed = String::new();
        let mut stop_reason = StopReason::MaxTokens;

        let requested_candidates =
            (params.top_k as usize + sampler::CANDIDATE_MARGIN).min(self.vocab_size as usize);

        // Prefill with the whole prompt, then feed back one sampled token per step.
        self.model.reset();
        let mut step_input = prompt_ids.clone();
        while generated.len() < params.max_new_tokens as usize {
            if observer.cancelled().await {
                return Err(WorkerError::Cancelled {
                    generated: generated.len(),
                });
            }
            let candidates = self
                .model
                .next_candidates(&step_input, requested_candidates)
                .await?;
            let next = sampler.sample(&candidates, params.top_k as usize)?;
            if next >= self.vocab_size {
                return Err(WorkerError::InvalidLogits(format!(
                    "token id {next} is outside the vocabulary of {}",
                    self.vocab_size
                )));
            }
            if next == self.eos_token_id {
                stop_reason = StopReason::EndOfText;
                break;
            }
            generated.push(next);
            step_input = vec![next];

            continuation = self.decode(&generated)?;
            stream(observer, &mut streamed, &stop::stable_prefix(&continuation));
            if stop::sentence_end(&continuation.replace('"', "")).is_some() {
                stop_reason = StopReason::Sentence;
                break;
            }
        }

        let text = stop::spoken_line(&continuation);
        stream(observer, &mut streamed, &text);
        Ok(Generated {
            text,
            token_ids: generated,
            prompt_tokens: prompt_ids.len(),
            stop_reason,
            model_ms: self.model.run_ms(),
        })
    }

    /// Encodes text to token ids, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, WorkerError> {
        let encoding = self.tokenizer.encode(text, false).map_err(|error| {
            WorkerError::Tokenizer(format!("could not encode {text:?}: {error}"))
        })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes token ids to text. Decoding the whole list, not token by token, keeps a
    /// character whose UTF-8 bytes span several byte-level tokens intact.
    pub fn decode(&self, ids: &[u32]) -> Result<String, WorkerError> {
        self.tokenizer.decode(ids, false).map_err(|error| {
            WorkerError::Tokenizer(format!("could not decode {} ids: {error}", ids.len()))
        })
    }
}

/// Sends the part of `visible` not streamed yet. `visible` always extends `streamed`
/// (see [`stop::stable_prefix`]); if it ever did not, nothing is sent.
fn stream(observer: &mut impl Observer, streamed: &mut String, visible: &str) {
    if visible.len() > streamed.len() && visible.starts_with(streamed.as_str()) {
        observer.on_delta(&visible[streamed.len()..]);
        *streamed = visible.to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SayRequest {
        SayRequest {
            heard: "Hi".into(),
            seed: 1,
            top_k: None,
            temperature: None,
            max_new_tokens: None,
        }
    }

    #[test]
    fn params_defaults() {
        let params = Params::from_request(&request(), 50257).unwrap();
        assert_eq!(
            params,
            Params {
                seed: 1,
                top_k: 40,
                temperature: 0.9,
                max_new_tokens: 60
            }
        );
    }

    #[test]
    fn params_rejected_values() {
        let cases: Vec<(SayRequest, &str)> = vec![
            (
                SayRequest {
                    heard: "  ".into(),
                    ..request()
                },
                "empty",
            ),
            (
                SayRequest {
                    heard: "a".repeat(MAX_HEARD_BYTES + 1),
                    ..request()
                },
                "1025 bytes",
            ),
            (
                SayRequest {
                    top_k: Some(0),
                    ..request()
                },
                "top_k 0",
            ),
            (
                SayRequest {
                    top_k: Some(50258),
                    ..request()
                },
                "top_k 50258",
            ),
            (
                SayRequest {
                    temperature: Some(0.0),
                    ..request()
                },
                "temperature 0",
            ),
            (
                SayRequest {
                    temperature: Some(f32::NAN),
                    ..request()
                },
                "temperature NaN",
            ),
            (
                SayRequest {
                    temperature: Some(-1.0),
                    ..request()
                },
                "temperature -1",
            ),
            (
                SayRequest {
                    max_new_tokens: Some(0),
                    ..request()
                },
                "max_new_tokens 0",
            ),
            (
                SayRequest {
                    max_new_tokens: Some(257),
                    ..request()
                },
                "max_new_tokens 257",
            ),
        ];
        for (request, expected) in cases {
            let error = Params::from_request(&request, 50257).unwrap_err();
            assert_eq!(error.code(), banter_protocol::ErrorCode::InvalidRequest);
            assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected:?}"
            );
        }
    }
}
