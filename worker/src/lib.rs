//! The banter worker: turns "what a character heard" into a spoken line.
//!
//! The crate has two layers:
//! - [`engine`]: prompt, sampler, stop rule and the generation loop. It uses no browser
//!   types and runs against any [`LanguageModel`], which is how `cargo test` drives it
//!   with native ONNX Runtime.
//! - `web` (wasm32 only): the Web Worker itself. It receives postcard-encoded
//!   [`banter_protocol`] messages through `gloo-worker`, fetches and verifies the model
//!   bundle, creates the ONNX Runtime Web session through `ort-web`, and runs the engine.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod bundle;
pub mod engine;
mod error;
pub mod model;

#[cfg(target_arch = "wasm32")]
mod web;

pub use engine::{Engine, Generated};
pub use error::WorkerError;
pub use model::{LanguageModel, OrtModel};
