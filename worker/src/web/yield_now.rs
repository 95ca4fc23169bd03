//! Letting the worker's event loop run between model steps.
//!
//! onnxruntime-web's CPU backend computes inside `run()` and resolves its Promise at once,
//! so a generation loop that only awaits it never returns to the event loop: a cancel or
//! a ping sent meanwhile would wait until the whole line is done. A message posted to a
//! `MessageChannel` is a task of its own, so awaiting it lets queued messages run first.
//! `setTimeout(0)` would do the same but is clamped to 4 ms once nested.
//!
//! `scheduler.yield()` is not a substitute. In a dedicated worker of Chromium 156 its
//! continuation runs ahead of messages already queued for the worker, so a loop that
//! yields with it never receives a cancel.

use std::cell::OnceCell;

use js_sys::Promise;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::MessageChannel;

thread_local! {
    // One channel, reused: yields happen one at a time, from the single task that works
    // through the queue, and keeping the channel alive keeps its ports entangled.
    static CHANNEL: OnceCell<Option<MessageChannel>> = const { OnceCell::new() };
}

/// Resolves once the event loop has had a turn.
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _reject| {
        let posted = CHANNEL.with(|cell| {
            let channel = cell.get_or_init(|| MessageChannel::new().ok());
            match channel {
                Some(channel) => {
                    channel.port1().set_onmessage(Some(&resolve));
                    channel.port2().post_message(&JsValue::NULL).is_ok()
                }
                None => false,
            }
        });
        if !posted {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}
