//! `Dialogue`: one worker, its pending requests, and the Promises handed to JavaScript.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use banter_protocol::gloo::{Packet, PacketCodec};
use banter_protocol::{
    decode, encode, peek_request_id, FromWorker, Line, ModelInfo, Reply, Request, RequestId,
    SayRequest, StartRequest, ToWorker, MAX_HEARD_BYTES, PROTOCOL_VERSION,
};
use futures::channel::oneshot;
use futures::future::{select, Either};
use gloo_worker::{HandlerId, Spawnable, Worker, WorkerBridge, WorkerScope};
use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::error::HostError;
use crate::options;
use crate::urls::{origin, page_origin, SiteUrls};

/// Time `Dialogue.start` waits for the worker's ready reply when the caller does not say.
/// It covers spawning the worker, compiling onnxruntime-web's 13.6 MiB wasm and fetching
/// and loading the bundle.
const DEFAULT_START_TIMEOUT_MS: u32 = 30_000;

/// The host's view of the worker: gloo-worker needs a `Worker` type to know the message
/// types. It never runs on this side.
struct RemoteWorker;

impl Worker for RemoteWorker {
    type Message = ();
    type Input = Packet;
    type Output = Packet;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        RemoteWorker
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: ()) {}

    fn received(&mut self, _scope: &WorkerScope<Self>, _message: Packet, _handler: HandlerId) {}
}

type ReplySender = oneshot::Sender<Result<Reply, HostError>>;

/// State shared between the `Dialogue` and the bridge's reply callback.
struct Inner {
    bridge: RefCell<Option<WorkerBridge<RemoteWorker>>>,
    pending: RefCell<HashMap<RequestId, ReplySender>>,
    next_id: Cell<RequestId>,
    model: RefCell<Option<ModelInfo>>,
}

impl Inner {
    /// Routes one packet from the worker to the request it replies to.
    fn on_packet(&self, bytes: &[u8]) {
        match decode::<FromWorker>(bytes) {
            Ok(message) => {
                if let Some(sender) = self.pending.borrow_mut().remove(&message.id) {
                    let _ = sender.send(Ok(message.reply));
                }
            }
            Err(error) => {
                let sender =
                    peek_request_id(bytes).and_then(|id| self.pending.borrow_mut().remove(&id));
                match sender {
                    Some(sender) => {
                        let _ = sender.send(Err(HostError::BadReply(error.to_string())));
                    }
                    None => web_sys::console::error_1(
                        &format!("banter: undecodable reply from the worker: {error}").into(),
                    ),
                }
            }
        }
    }

    /// Sends a request and waits for its terminal reply.
    async fn request(&self, request: Request) -> Result<Reply, HostError> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));

        let bytes = encode(&ToWorker { id, request }).map_err(|error| {
            HostError::InvalidRequest(format!("request could not be encoded: {error}"))
        })?;
        let (sender, receiver) = oneshot::channel();
        {
            let bridge = self.bridge.borrow();
            let Some(bridge) = bridge.as_ref() else {
                return Err(HostError::Closed);
            };
            self.pending.borrow_mut().insert(id, sender);
            bridge.send(Packet(bytes));
        }

        receiver.await.unwrap_or(Err(HostError::Closed))
    }

    /// Drops the worker bridge and fails every pending request.
    fn close(&self) {
        self.bridge.replace(None);
        for (_, sender) in self.pending.borrow_mut().drain() {
            let _ = sender.send(Err(HostError::Closed));
        }
    }
}

/// A conversation partner backed by one banter worker.
#[wasm_bindgen]
pub struct Dialogue {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Dialogue {
    /// Spawns the worker and loads the model. Options (all optional): `workerUrl`,
    /// `modelUrl`, `ortUrl` (relative URLs resolve against the page) and `startTimeoutMs`
    /// (default 30000). Resolves to a `Dialogue`; rejects with an `Error` whose `code` is
    /// `worker_start_timeout`, `model_load_failed`, `protocol_mismatch`,
    /// `worker_spawn_failed` or `invalid_request`.
    pub fn start(options: JsValue) -> Promise {
        future_to_promise(async move {
            let dialogue = start(&options).await.map_err(|error| error.to_js())?;
            Ok(dialogue.into())
        })
    }

    /// Generates a spoken line. Options: `heard` (string, required), `seed` (integer up to
    /// 2^53 - 1 or a BigInt, required), and optional `topK`, `temperature`,
    /// `maxNewTokens`. Resolves to `{ text, tokens, tokenIds, promptTokens, stopReason,
    /// elapsedMs }`.
    pub fn say(&self, options: JsValue) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let request = say_request(&options).map_err(|error| error.to_js())?;
            match inner
                .request(Request::Say(request))
                .await
                .map_err(|error| error.to_js())?
            {
                Reply::Line(line) => Ok(line_to_js(&line)),
                Reply::Error(error) => Err(HostError::Worker(error).to_js()),
                Reply::Ready(_) => {
                    Err(HostError::BadReply("ready reply to a say request".into()).to_js())
                }
            }
        })
    }

    /// Returns the loaded model as `{ name, standin, loadMs }`.
    #[wasm_bindgen(getter)]
    pub fn model(&self) -> JsValue {
        match self.inner.model.borrow().as_ref() {
            Some(model) => model_to_js(model),
            None => JsValue::UNDEFINED,
        }
    }

    /// Stops the worker. Pending requests reject with code `closed`.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// Spawns the worker, sends the start request and waits for the ready reply.
async fn start(options: &JsValue) -> Result<Dialogue, HostError> {
    let urls = SiteUrls::resolve(
        options::string(options, "workerUrl")?,
        options::string(options, "modelUrl")?,
        options::string(options, "ortUrl")?,
    )?;
    let timeout_ms =
        options::integer(options, "startTimeoutMs", u32::MAX)?.unwrap_or(DEFAULT_START_TIMEOUT_MS);

    // gloo-worker panics when the Worker constructor throws, which it does for a script
    // on another origin, so that case is rejected here first.
    if origin(&urls.worker) != page_origin() {
        return Err(HostError::SpawnFailed {
            url: urls.worker.clone(),
            reason: "a worker script must be on the page's origin".into(),
        });
    }

    let inner = Rc::new(Inner {
        bridge: RefCell::new(None),
        pending: RefCell::new(HashMap::new()),
        next_id: Cell::new(1),
        model: RefCell::new(None),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    let mut spawner = RemoteWorker::spawner();
    spawner.callback(move |packet: Packet| {
        if let Some(inner) = weak.upgrade() {
            inner.on_packet(&packet.0);
        }
    });
    spawner.with_loader(true);
    let bridge = spawner.encoding::<PacketCodec>().spawn(&urls.worker);
    inner.bridge.replace(Some(bridge));

    let start = Request::Start(StartRequest {
        protocol_version: PROTOCOL_VERSION,
        model_url: urls.model.clone(),
        ort_url: urls.ort.clone(),
    });
    let reply = {
        let request = Box::pin(inner.request(start));
        let timeout = Box::pin(sleep(timeout_ms));
        match select(request, timeout).await {
            Either::Left((reply, _)) => reply,
            Either::Right(_) => Err(HostError::StartTimeout {
                timeout_ms,
                worker_url: urls.worker.clone(),
                ort_url: urls.ort.clone(),
            }),
        }
    };

    match reply {
        Ok(Reply::Ready(model)) => {
            inner.model.replace(Some(model));
            Ok(Dialogue { inner })
        }
        Ok(Reply::Error(error)) => {
            inner.close();
            Err(HostError::Worker(error))
        }
        Ok(Reply::Line(_)) => {
            inner.close();
            Err(HostError::BadReply("line reply to a start request".into()))
        }
        Err(error) => {
            inner.close();
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

/// Resolves after `ms` milliseconds.
async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        let set_timeout = Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        if let Some(set_timeout) = set_timeout {
            let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Sets `object[key] = value`.
fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &key.into(), &value.into());
}

fn line_to_js(line: &Line) -> JsValue {
    let object = Object::new();
    set(&object, "text", line.text.as_str());
    set(&object, "tokens", line.token_ids.len() as u32);
    let ids: Array = line.token_ids.iter().map(|&id| JsValue::from(id)).collect();
    set(&object, "tokenIds", ids);
    set(&object, "promptTokens", line.prompt_tokens);
    set(&object, "stopReason", line.stop_reason.as_str());
    set(&object, "elapsedMs", line.elapsed_ms);
    object.into()
}

fn model_to_js(model: &ModelInfo) -> JsValue {
    let object = Object::new();
    set(&object, "name", model.name.as_str());
    set(&object, "standin", model.standin);
    set(&object, "loadMs", model.load_ms);
    object.into()
}
