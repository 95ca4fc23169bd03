//! `Dialogue`: the class JavaScript uses to start banter and ask for lines.

use std::rc::Rc;

use banter_protocol::{Line, ModelInfo, Reply, Request, SayRequest, MAX_HEARD_BYTES};
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use crate::connection::Connection;
use crate::error::HostError;
use crate::options;
use crate::urls::{origin, page_origin, SiteUrls};

/// Time `Dialogue.start` waits for the worker's ready reply when the caller does not set
/// `startTimeoutMs`. It covers spawning the worker, compiling onnxruntime-web's 13.6 MiB
/// wasm and fetching and loading the bundle.
const DEFAULT_START_TIMEOUT_MS: u32 = 30_000;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `Dialogue.start`. Relative URLs resolve against the page. */
export interface StartOptions {
  /** The worker's entry script; default `worker.js` next to `banter_host.js`. */
  workerUrl?: string;
  /** The model bundle folder; default the site's `model/` folder. */
  modelUrl?: string;
  /** The onnxruntime-web folder; default the site's `ort/` folder. */
  ortUrl?: string;
  /** Milliseconds to wait for the worker to load the model; default 30000. */
  startTimeoutMs?: number;
  /** Called as loading advances. */
  onProgress?: (progress: LoadProgress) => void;
}

/** Loading progress. */
export interface LoadProgress {
  stage: "runtime" | "manifest" | "download" | "session";
  /** Bundle bytes received so far. */
  loaded: number;
  /** Bundle bytes in all; 0 until the manifest is read. */
  total: number;
}

/** Options of `Dialogue.say`. */
export interface SayOptions {
  /** The words the character answers; at most 1024 UTF-8 bytes. */
  heard: string;
  /** Sampler seed: an integer from 0 to 2^53 - 1, or a BigInt from 0 to 2^64 - 1. */
  seed: number | bigint;
  /** Candidates kept per step, 1 to the vocabulary size; default 40. */
  topK?: number;
  /** Softmax temperature, above 0; default 0.9. */
  temperature?: number;
  /** Limit on generated tokens, 1 to 256; default 60. */
  maxNewTokens?: number;
  /**
   * Called with each new piece of the line; the pieces concatenate to `text`. The first
   * piece comes as soon as it is generated, later ones at most every 16 ms, so a piece
   * may hold several tokens.
   */
  onToken?: (delta: string) => void;
  /** Cancels the request: the Promise rejects with code `cancelled`. */
  signal?: AbortSignal;
}

/** A generated line. */
export interface SpokenLine {
  /** Id of the request. */
  id: number;
  /** The line: the first sentence of the continuation, without `"`. */
  text: string;
  /** Number of generated tokens. */
  tokens: number;
  /** The generated token ids. */
  tokenIds: number[];
  /** Number of prompt tokens. */
  promptTokens: number;
  stopReason: "sentence" | "end_of_text" | "max_tokens";
  /** Milliseconds the worker spent on the request. */
  elapsedMs: number;
  /**
   * The part of `elapsedMs` spent in the model's runs: the prefill and the decoding
   * steps, onnxruntime-web's bindings included. The rest went to tokenizing, sampling,
   * streaming and letting the worker's event loop run between steps.
   */
  modelMs: number;
}

/** The loaded model. */
export interface ModelDescription {
  name: string;
  /** True for deterministic stand-in weights. */
  standin: boolean;
  /** Milliseconds the worker took to load it. */
  loadMs: number;
}

/** Counters of a `Dialogue`. */
export interface DialogueStats {
  /** Say requests sent. */
  requests: number;
  completed: number;
  cancelled: number;
  failed: number;
  /** Start and say requests awaiting their reply. */
  pending: number;
  /** Tokens generated over all lines. */
  tokens: number;
  /** Workers spawned, the first one included. */
  workersStarted: number;
  /** Workers found dead. */
  crashes: number;
  /** True while a worker is running. */
  workerAlive: boolean;
}
"#;

/// A conversation partner backed by one banter worker.
#[wasm_bindgen]
pub struct Dialogue {
    connection: Rc<Connection>,
}

#[wasm_bindgen]
impl Dialogue {
    /// Spawns the worker and loads the model. Rejects with an `Error` whose `code` is
    /// `worker_start_timeout`, `worker_start_failed`, `model_load_failed`,
    /// `protocol_mismatch`, `worker_spawn_failed` or `invalid_request`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Dialogue>")]
    pub fn start(
        #[wasm_bindgen(unchecked_param_type = "StartOptions")] options: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let dialogue = start(&options).await.map_err(|error| error.to_js())?;
            Ok(dialogue.into())
        })
    }

    /// Generates a spoken line. When the worker died earlier, a new one is started first.
    /// Rejects with code `invalid_request`, `busy`, `cancelled`, `worker_crashed`,
    /// `inference_failed` or `closed`.
    #[wasm_bindgen(unchecked_return_type = "Promise<SpokenLine>")]
    pub fn say(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SayOptions")] options: JsValue,
    ) -> Promise {
        let connection = self.connection.clone();
        future_to_promise(async move {
            say(&connection, &options)
                .await
                .map_err(|error| error.to_js())
        })
    }

    /// Returns the loaded model.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelDescription")]
    pub fn model(&self) -> JsValue {
        match self.connection.model.borrow().as_ref() {
            Some(model) => model_to_js(model),
            None => JsValue::UNDEFINED,
        }
    }

    /// Returns counters of requests and workers.
    #[wasm_bindgen(unchecked_return_type = "DialogueStats")]
    pub fn stats(&self) -> JsValue {
        let stats = self.connection.stats.borrow().clone();
        let object = Object::new();
        set(&object, "requests", stats.requests);
        set(&object, "completed", stats.completed);
        set(&object, "cancelled", stats.cancelled);
        set(&object, "failed", stats.failed);
        set(&object, "pending", self.connection.pending_count() as u32);
        set(&object, "tokens", stats.tokens as f64);
        set(&object, "workersStarted", stats.workers_started);
        set(&object, "crashes", stats.crashes);
        set(&object, "workerAlive", self.connection.is_live());
        object.into()
    }

    /// Terminates the worker abruptly, as a crash would: pending requests reject with
    /// `worker_crashed` and the next `say` starts a new worker. Meant for testing recovery.
    #[wasm_bindgen(js_name = terminateWorker)]
    pub fn terminate_worker(&self) {
        self.connection.kill();
    }

    /// Stops the worker. Pending and later requests reject with code `closed`.
    pub fn close(&self) {
        self.connection.close();
    }
}

/// Resolves the URLs, spawns the worker and waits for the model.
async fn start(options: &JsValue) -> Result<Dialogue, HostError> {
    let urls = SiteUrls::resolve(
        options::string(options, "workerUrl")?,
        options::string(options, "modelUrl")?,
        options::string(options, "ortUrl")?,
    )?;
    let timeout_ms =
        options::integer(options, "startTimeoutMs", u32::MAX)?.unwrap_or(DEFAULT_START_TIMEOUT_MS);
    let on_progress = options::function(options, "onProgress")?;

    // gloo-worker panics when the Worker constructor throws, which it does for a script
    // on another origin, so that case is rejected here first.
    if origin(&urls.worker) != page_origin() {
        return Err(HostError::SpawnFailed {
            url: urls.worker.clone(),
            reason: "a worker script must be on the page's origin".into(),
        });
    }

    let connection = Connection::new(urls, timeout_ms);
    connection.spawn_and_start(on_progress).await?;
    Ok(Dialogue { connection })
}

/// Runs one say request, restarting a dead worker first.
async fn say(connection: &Rc<Connection>, options: &JsValue) -> Result<JsValue, HostError> {
    let request = say_request(options)?;
    let on_token = options::function(options, "onToken")?;
    let signal = options::field(options, "signal")?
        .map(|signal| {
            signal.dyn_into::<web_sys::AbortSignal>().map_err(|value| {
                HostError::InvalidRequest(format!("signal must be an AbortSignal, got {value:?}"))
            })
        })
        .transpose()?;
    if signal.as_ref().is_some_and(|signal| signal.aborted()) {
        return Err(HostError::Aborted);
    }

    if connection.is_closed() {
        return Err(HostError::Closed);
    }
    if !connection.is_live() {
        connection.spawn_and_start(None).await?;
    }

    connection.stats.borrow_mut().requests += 1;
    let (id, terminal) = connection.send(Request::Say(request), on_token, None)?;

    // An abort sends a cancel; the request still ends with the worker's terminal reply.
    let abort_listener = signal.as_ref().map(|signal| {
        let weak = Rc::downgrade(connection);
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(connection) = weak.upgrade() {
                connection.cancel(id);
            }
        });
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        listener
    });

    let reply = terminal.await.unwrap_or(Err(HostError::Closed));

    if let (Some(signal), Some(listener)) = (&signal, &abort_listener) {
        let _ =
            signal.remove_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
    }

    let mut stats = connection.stats.borrow_mut();
    match reply {
        Ok(Reply::Line(line)) => {
            stats.completed += 1;
            stats.tokens += line.token_ids.len() as u64;
            Ok(line_to_js(id, &line))
        }
        Ok(Reply::Error(error)) => {
            if error.code == banter_protocol::ErrorCode::Cancelled {
                stats.cancelled += 1;
            } else {
                stats.failed += 1;
            }
            Err(HostError::Worker(error))
        }
        Ok(other) => {
            stats.failed += 1;
            Err(HostError::BadReply(format!(
                "unexpected reply to a say request: {other:?}"
            )))
        }
        Err(error) => {
            stats.failed += 1;
            Err(error)
        }
    }
}

/// Reads the options of `say` into a request.
fn say_request(options: &JsValue) -> Result<SayRequest, HostError> {
    let heard = options::string(options, "heard")?.ok_or_else(|| {
        HostError::InvalidRequest("heard is required: pass the words the character answers".into())
    })?;
    if heard.len() > MAX_HEARD_BYTES {
        return Err(HostError::InvalidRequest(format!(
            "heard text is {} bytes, over the limit of {MAX_HEARD_BYTES}; shorten it",
            heard.len()
        )));
    }
    Ok(SayRequest {
        heard,
        seed: options::seed(options)?,
        top_k: options::integer(options, "topK", u32::MAX)?,
        temperature: options::number(options, "temperature")?.map(|value| value as f32),
        max_new_tokens: options::integer(options, "maxNewTokens", u32::MAX)?,
    })
}

/// Sets `object[key] = value`.
fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &key.into(), &value.into());
}

fn line_to_js(id: u32, line: &Line) -> JsValue {
    let object = Object::new();
    set(&object, "id", id);
    set(&object, "text", line.text.as_str());
    set(&object, "tokens", line.token_ids.len() as u32);
    let ids: Array = line.token_ids.iter().map(|&id| JsValue::from(id)).collect();
    set(&object, "tokenIds", ids);
    set(&object, "promptTokens", line.prompt_tokens);
    set(&object, "stopReason", line.stop_reason.as_str());
    set(&object, "elapsedMs", line.elapsed_ms);
    set(&object, "modelMs", line.model_ms);
    object.into()
}

fn model_to_js(model: &ModelInfo) -> JsValue {
    let object = Object::new();
    set(&object, "name", model.name.as_str());
    set(&object, "standin", model.standin);
    set(&object, "loadMs", model.load_ms);
    object.into()
}
