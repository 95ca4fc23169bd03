//! Fetching bundle files from the worker.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, WorkerGlobalScope};

use crate::WorkerError;

/// Returns the worker's global scope.
pub fn global() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Milliseconds since the worker started, from `performance.now()`.
pub fn now_ms() -> f64 {
    global()
        .performance()
        .map(|performance| performance.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Describes a JavaScript exception: its message for `Error` objects, else its debug text.
pub fn js_error_text(value: &JsValue) -> String {
    if let Some(text) = value.as_string() {
        return text;
    }
    match value.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => format!("{value:?}"),
    }
}

/// Fetches `url` and returns its body; a non-2xx status is an error naming the status.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, WorkerError> {
    let failed = |reason: String| WorkerError::Fetch {
        url: url.to_owned(),
        reason,
    };

    let response = JsFuture::from(global().fetch_with_str(url))
        .await
        .map_err(|error| failed(js_error_text(&error)))?;
    let response: Response = response
        .dyn_into()
        .map_err(|value| failed(format!("not a Response: {value:?}")))?;
    if !response.ok() {
        return Err(failed(format!("HTTP status {}", response.status())));
    }

    let body = response
        .array_buffer()
        .map_err(|error| failed(js_error_text(&error)))?;
    let body = JsFuture::from(body)
        .await
        .map_err(|error| failed(js_error_text(&error)))?;
    Ok(Uint8Array::new(&body).to_vec())
}
