//! Timers on the page's global object.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Returns `globalThis[name]` if it is a function.
fn global_function(name: &str) -> Option<Function> {
    Reflect::get(&js_sys::global(), &name.into())
        .ok()
        .and_then(|value| value.dyn_into::<Function>().ok())
}

/// Milliseconds from `performance.now()`, or from `Date.now()` where it is missing.
pub fn now_ms() -> f64 {
    let performance = Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = performance.as_ref().and_then(|performance| {
        let now = Reflect::get(performance, &"now".into())
            .ok()?
            .dyn_into::<Function>()
            .ok()?;
        now.call0(performance).ok()?.as_f64()
    });
    now.unwrap_or_else(js_sys::Date::now)
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Some(set_timeout) = global_function("setTimeout") {
            let _ = set_timeout.call2(&JsValue::UNDEFINED, &resolve, &JsValue::from(ms));
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// A repeating timer, cleared when dropped.
pub struct Interval {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Interval {
    /// Calls `tick` every `ms` milliseconds. Returns `None` if the global object has no
    /// `setInterval`.
    pub fn new(ms: u32, tick: impl FnMut() + 'static) -> Option<Self> {
        let callback = Closure::<dyn FnMut()>::new(tick);
        let set_interval = global_function("setInterval")?;
        let id = set_interval
            .call2(&JsValue::UNDEFINED, callback.as_ref(), &JsValue::from(ms))
            .ok()?;
        Some(Interval {
            id,
            _callback: callback,
        })
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        if let Some(clear_interval) = global_function("clearInterval") {
            let _ = clear_interval.call1(&JsValue::UNDEFINED, &self.id);
        }
    }
}
