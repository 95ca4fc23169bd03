//! Errors as JavaScript receives them: `Error` objects with a stable string `code`.

use banter_protocol::WireError;
use wasm_bindgen::JsValue;

/// Failures detected on the page's side, before or instead of a worker reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// An option passed by JavaScript has the wrong type or value.
    #[error("{0}")]
    InvalidRequest(String),
    /// The worker sent no reply to the start request in time.
    #[error("the worker did not start within {timeout_ms} ms; check that {worker_url} and the onnxruntime-web files under {ort_url} are served")]
    StartTimeout {
        /// The timeout that passed.
        timeout_ms: u32,
        /// URL of the worker script.
        worker_url: String,
        /// URL of the onnxruntime-web folder.
        ort_url: String,
    },
    /// The worker's script failed to load, or it raised an error before it was ready.
    #[error("the worker from {worker_url} failed to start: {reason}")]
    StartFailed {
        /// URL of the worker script.
        worker_url: String,
        /// The worker's error message.
        reason: String,
    },
    /// The worker died or stopped responding after it started.
    #[error("the worker stopped ({reason}); the next request starts a new one")]
    WorkerCrashed {
        /// The evidence of its death, e.g. an error event's message.
        reason: String,
    },
    /// The caller's `AbortSignal` was aborted before the request was sent.
    #[error("the request was aborted before it was sent")]
    Aborted,
    /// The worker could not be created.
    #[error("could not spawn the worker from {url}: {reason}")]
    SpawnFailed {
        /// URL of the worker script.
        url: String,
        /// Why.
        reason: String,
    },
    /// The dialogue was closed before the request ended.
    #[error("the dialogue is closed; start a new one")]
    Closed,
    /// The worker sent something that is not a valid reply.
    #[error("the worker sent an unexpected reply: {0}")]
    BadReply(String),
    /// The worker answered with an error.
    #[error("{}", .0.message)]
    Worker(WireError),
}

impl HostError {
    /// Returns the stable code exposed as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            HostError::InvalidRequest(_) => "invalid_request",
            HostError::StartTimeout { .. } => "worker_start_timeout",
            HostError::SpawnFailed { .. } => "worker_spawn_failed",
            HostError::StartFailed { .. } => "worker_start_failed",
            HostError::WorkerCrashed { .. } => "worker_crashed",
            HostError::Aborted => "cancelled",
            HostError::Closed => "closed",
            HostError::BadReply(_) => "bad_message",
            HostError::Worker(error) => error.code.as_str(),
        }
    }

    /// Converts the error to a JavaScript `Error` with `code` set.
    pub fn to_js(&self) -> JsValue {
        let error = js_sys::Error::new(&self.to_string());
        // A cancelled request rejects like an aborted `fetch`, so callers can test for it
        // the usual way.
        error.set_name(if self.code() == "cancelled" {
            "AbortError"
        } else {
            "BanterError"
        });
        let _ = js_sys::Reflect::set(&error, &"code".into(), &self.code().into());
        error.into()
    }
}

impl From<HostError> for JsValue {
    fn from(error: HostError) -> Self {
        error.to_js()
    }
}
