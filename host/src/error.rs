//! Errors as JavaScript sees them: `Error` objects with a stable string `code`.

use banter_protocol::WireError;
use wasm_bindgen::JsValue;

/// Failures detected on the page's side, before or instead of a worker reply.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// An option passed by JavaScript has the wrong type or value.
    #[error("{0}")]
    InvalidRequest(String),
    /// The worker did not answer the start request in time.
    #[error("the worker did not start within {timeout_ms} ms; check that {worker_url} and the onnxruntime-web files under {ort_url} are served")]
    StartTimeout {
        /// The timeout that passed.
        timeout_ms: u32,
        /// URL of the worker script.
        worker_url: String,
        /// URL of the onnxruntime-web folder.
        ort_url: String,
    },
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
    /// The worker answered with something that is not a valid reply.
    #[error("the worker sent an unexpected reply: {0}")]
    BadReply(String),
    /// The worker answered with an error.
    #[error("{}", .0.message)]
    Worker(WireError),
}

impl HostError {
    /// The stable code exposed as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            HostError::InvalidRequest(_) => "invalid_request",
            HostError::StartTimeout { .. } => "worker_start_timeout",
            HostError::SpawnFailed { .. } => "worker_spawn_failed",
            HostError::Closed => "closed",
            HostError::BadReply(_) => "bad_message",
            HostError::Worker(error) => error.code.as_str(),
        }
    }

    /// Converts the error to a JavaScript `Error` with `code` set.
    pub fn to_js(&self) -> JsValue {
        let error = js_sys::Error::new(&self.to_string());
        error.set_name("BanterError");
        let _ = js_sys::Reflect::set(&error, &"code".into(), &self.code().into());
        error.into()
    }
}

impl From<HostError> for JsValue {
    fn from(error: HostError) -> Self {
        error.to_js()
    }
}
