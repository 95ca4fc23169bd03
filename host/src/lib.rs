//! banter-host: the JavaScript face of banter.
//!
//! Built with `wasm-bindgen --target web` into `pkg/banter_host.js`, whose default export
//! initialises the module and whose [`Dialogue`] class spawns the banter worker and turns
//! say requests into Promises of spoken lines:
//!
//! ```js
//! import init, { Dialogue } from './pkg/banter_host.js';
//! await init();
//! const dialogue = await Dialogue.start({});
//! const line = await dialogue.say({ heard: 'Where is the ball?', seed: 7 });
//! ```
//!
//! Every failure rejects with an `Error` whose `code` is one of the strings listed in
//! [`error::HostError::code`] or [`banter_protocol::ErrorCode::as_str`].

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod connection;
mod dialogue;
pub mod error;
mod options;
mod timer;
mod urls;

pub use dialogue::Dialogue;

use wasm_bindgen::prelude::*;

/// Installs a panic hook that prints Rust panics to the console.
#[wasm_bindgen(start)]
pub fn start_host() {
    console_error_panic_hook::set_once();
}
