//! The Web Worker: a gloo-worker that serves one host.
//!
//! Start and say requests wait in a FIFO queue of at most [`MAX_QUEUED_REQUESTS`] and are
//! run one at a time by a single task, so each gets exactly one terminal reply. Cancel and
//! ping are handled as soon as they arrive: a cancel removes a queued request or flags the
//! running one, which stops before its next model step; a ping is answered at once. Between
//! model steps the task lets the event loop run ([`yield_now`]), so those messages are seen
//! while a line is being generated.

mod fetch;
mod shim;
mod yield_now;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use banter_bundle::{FileRole, Manifest, MANIFEST_FILE};
use banter_protocol::gloo::{Packet, PacketCodec};
use banter_protocol::{
    decode_request, encode_reply, ErrorCode, FromWorker, Line, LoadStage, ModelInfo, Progress,
    Reply, Request, RequestId, SayRequest, StartRequest, ToWorker, TokenDelta, WireError,
};
use gloo_worker::{HandlerId, Registrable, Worker, WorkerScope};
use wasm_bindgen::prelude::*;

use crate::engine::Observer;
use crate::{Engine, OrtModel, WorkerError};
use fetch::fetch_bytes;
pub(crate) use fetch::now_ms;
use yield_now::yield_now;

/// Name of the onnxruntime-web entry script (the CPU-only ES module build).
const ORT_SCRIPT: &str = "ort.wasm.min.mjs";

/// Streamed text of a request is sent at most once per this many milliseconds, except
/// for its first piece, which goes out at once, and the rest, which goes out just before
/// the line. A message per token would cost the worker time on every step and wake the
/// page's main thread as often, while the page shows text at most once per frame; pieces
/// that arrive within one 60 Hz frame are therefore sent together.
pub const STREAM_INTERVAL_MS: f64 = 16.0;

/// Requests that may wait behind the running one; a request beyond them is rejected with
/// [`ErrorCode::Busy`]. The show asks for a few lines at a time, so 32 leaves ample room
/// while bounding the memory a runaway caller can pin.
pub const MAX_QUEUED_REQUESTS: usize = 32;

/// Registers the worker when its wasm module starts.
#[wasm_bindgen(start)]
pub fn start_worker() {
    console_error_panic_hook::set_once();
    BanterWorker::registrar()
        .encoding::<PacketCodec>()
        .register();
}

/// A start or say request waiting for its turn.
struct Queued {
    handler: HandlerId,
    message: ToWorker,
}

/// State shared by the message handler and the task that works through the queue.
#[derive(Default)]
struct Shared {
    queue: RefCell<VecDeque<Queued>>,
    draining: Cell<bool>,
    /// Id of the request being run, if any.
    running: Cell<Option<RequestId>>,
    /// Set by a cancel for the running request; checked before each model step.
    cancel_running: Cell<bool>,
    runtime_ready: Cell<bool>,
    engine: RefCell<Option<Engine<OrtModel>>>,
    model: RefCell<Option<ModelInfo>>,
}

/// The banter worker.
pub struct BanterWorker {
    shared: Rc<Shared>,
}

impl Worker for BanterWorker {
    type Message = ();
    type Input = Packet;
    type Output = Packet;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        BanterWorker {
            shared: Rc::new(Shared::default()),
        }
    }

    fn update(&mut self, _scope: &WorkerScope<Self>, _message: ()) {}

    fn received(&mut self, scope: &WorkerScope<Self>, packet: Packet, handler: HandlerId) {
        let message = match decode_request(&packet.0) {
            Ok(message) => message,
            Err(rejection) => {
                log_warning(&format!(
                    "rejected request {}: {}",
                    rejection.id, rejection.error
                ));
                scope.respond(handler, Packet(encode_reply(&rejection.to_reply())));
                return;
            }
        };

        match message.request {
            Request::Ping => reply(scope, handler, message.id, Reply::Pong),
            Request::Cancel => self.cancel(scope, message.id),
            Request::Start(_) | Request::Say(_) => self.enqueue(scope, handler, message),
        }
    }
}

impl BanterWorker {
    /// Queues a start or say request, or rejects it with `busy` when the queue is full.
    fn enqueue(&self, scope: &WorkerScope<Self>, handler: HandlerId, message: ToWorker) {
        if self.shared.queue.borrow().len() >= MAX_QUEUED_REQUESTS {
            let error = WireError::new(
                ErrorCode::Busy,
                format!(
                    "request {} rejected: {MAX_QUEUED_REQUESTS} requests are already queued; retry after one ends",
                    message.id
                ),
            );
            reply(scope, handler, message.id, Reply::Error(error));
            return;
        }

        self.shared
            .queue
            .borrow_mut()
            .push_back(Queued { handler, message });
        if !self.shared.draining.replace(true) {
            wasm_bindgen_futures::spawn_local(drain(self.shared.clone(), scope.clone()));
        }
    }

    /// Cancels request `id`: a queued one ends at once, the running one before its next
    /// model step. An id that is neither is ignored, because its request already ended.
    fn cancel(&self, scope: &WorkerScope<Self>, id: RequestId) {
        if self.shared.running.get() == Some(id) {
            self.shared.cancel_running.set(true);
            return;
        }

        let position = self
            .shared
            .queue
            .borrow()
            .iter()
            .position(|queued| queued.message.id == id);
        let removed = position.and_then(|position| self.shared.queue.borrow_mut().remove(position));
        if let Some(queued) = removed {
            let error = WorkerError::Cancelled { generated: 0 };
            reply(scope, queued.handler, id, Reply::Error(error.to_wire()));
        }
    }
}

/// Sends one reply to the host.
fn reply(scope: &WorkerScope<BanterWorker>, handler: HandlerId, id: RequestId, reply: Reply) {
    scope.respond(handler, Packet(encode_reply(&FromWorker { id, reply })));
}

fn log_warning(text: &str) {
    web_sys::console::warn_1(&format!("banter worker: {text}").into());
}

/// Runs queued requests in order until the queue is empty.
async fn drain(shared: Rc<Shared>, scope: WorkerScope<BanterWorker>) {
    loop {
        let next = shared.queue.borrow_mut().pop_front();
        let Some(Queued { handler, message }) = next else {
            shared.draining.set(false);
            return;
        };

        shared.running.set(Some(message.id));
        shared.cancel_running.set(false);
        let mut link = HostLink {
            shared: &shared,
            scope: &scope,
            handler,
            id: message.id,
            unsent: String::new(),
            last_sent_ms: None,
        };
        let result = match &message.request {
            Request::Start(start) => load(&shared, start, &mut link).await.map(Reply::Ready),
            Request::Say(say) => generate(&shared, say, &mut link).await.map(Reply::Line),
            Request::Cancel | Request::Ping => Err(WorkerError::Inference(
                "control message in the queue".into(),
            )),
        };
        shared.running.set(None);
        // The last streamed text goes out before the line, so the pieces arrive complete.
        if result.is_ok() {
            link.send_unsent();
        }

        let terminal = result.unwrap_or_else(|error| {
            if error.code() != ErrorCode::Cancelled {
                log_warning(&format!("request {} failed: {error}", message.id));
            }
            Reply::Error(error.to_wire())
        });
        reply(&scope, handler, message.id, terminal);

        // Let pings and cancels that arrived during the request run before the next one.
        yield_now().await;
    }
}

/// The running request's line back to the host: streamed text, progress and cancellation.
struct HostLink<'a> {
    shared: &'a Shared,
    scope: &'a WorkerScope<BanterWorker>,
    handler: HandlerId,
    id: RequestId,
    /// Streamed text not sent yet (see [`STREAM_INTERVAL_MS`]).
    unsent: String,
    /// When streamed text was last sent, from [`now_ms`].
    last_sent_ms: Option<f64>,
}

impl HostLink<'_> {
    fn progress(&self, stage: LoadStage, loaded: u64, total: u64) {
        reply(
            self.scope,
            self.handler,
            self.id,
            Reply::Progress(Progress {
                stage,
                loaded,
                total,
            }),
        );
    }

    /// Sends the streamed text held back so far, if any.
    fn send_unsent(&mut self) {
        if self.unsent.is_empty() {
            return;
        }
        let delta = std::mem::take(&mut self.unsent);
        reply(
            self.scope,
            self.handler,
            self.id,
            Reply::Token(TokenDelta { delta }),
        );
        self.last_sent_ms = Some(now_ms());
    }
}

impl Observer for HostLink<'_> {
    fn on_delta(&mut self, delta: &str) {
        self.unsent.push_str(delta);
        let due = self
            .last_sent_ms
            .is_none_or(|last| now_ms() - last >= STREAM_INTERVAL_MS);
        if due {
            self.send_unsent();
        }
    }

    async fn cancelled(&mut self) -> bool {
        yield_now().await;
        self.shared.cancel_running.get()
    }
}

/// Loads ONNX Runtime Web and the model bundle, and returns the model's description.
async fn load(
    shared: &Shared,
    start: &StartRequest,
    link: &mut HostLink<'_>,
) -> Result<ModelInfo, WorkerError> {
    if let Some(model) = shared.model.borrow().clone() {
        return Ok(model);
    }
    let started = now_ms();

    if !shared.runtime_ready.get() {
        link.progress(LoadStage::Runtime, 0, 0);
        shim::install();
        let dist = ort_web::Dist::new(folder_url(&start.ort_url)).with_script_name(ORT_SCRIPT);
        let api = ort_web::api(dist).await.map_err(|error| {
            WorkerError::SessionLoad(format!(
                "onnxruntime-web did not load from {}: {error}",
                start.ort_url
            ))
        })?;
        ort::set_api(api);
        crate::bundle::set_environment(ort::init())?;
        shared.runtime_ready.set(true);
    }

    link.progress(LoadStage::Manifest, 0, 0);
    let model_url = folder_url(&start.model_url);
    let manifest =
        Manifest::from_json(&fetch_bytes(&format!("{model_url}{MANIFEST_FILE}")).await?)?;
    let graph_file = manifest.file(FileRole::Graph)?.clone();
    let tokenizer_file = manifest.file(FileRole::Tokenizer)?.clone();
    let total = graph_file.size + tokenizer_file.size;

    link.progress(LoadStage::Download, 0, total);
    let graph = fetch_bytes(&format!("{model_url}{}", graph_file.name)).await?;
    link.progress(LoadStage::Download, graph.len() as u64, total);
    let tokenizer = fetch_bytes(&format!("{model_url}{}", tokenizer_file.name)).await?;
    let loaded = (graph.len() + tokenizer.len()) as u64;
    link.progress(LoadStage::Download, loaded, total);

    link.progress(LoadStage::Session, loaded, total);
    let engine = crate::bundle::build_engine(&manifest, &graph, &tokenizer).await?;

    let model = ModelInfo {
        name: manifest.source.name.clone(),
        standin: manifest.source.standin,
        load_ms: now_ms() - started,
    };
    shared.engine.replace(Some(engine));
    shared.model.replace(Some(model.clone()));
    Ok(model)
}

/// Runs one say request on the loaded engine, streaming its text.
async fn generate(
    shared: &Shared,
    say: &SayRequest,
    link: &mut HostLink<'_>,
) -> Result<Line, WorkerError> {
    // The engine is taken out for the duration of the request, so no RefCell borrow is held
    // across an await. Requests run one at a time, so no other task needs it meanwhile.
    let mut engine = shared
        .engine
        .borrow_mut()
        .take()
        .ok_or(WorkerError::NotStarted)?;
    let started = now_ms();
    let result = engine.say_observed(say, link).await;
    shared.engine.replace(Some(engine));

    let generated = result?;
    Ok(Line {
        text: generated.text,
        token_ids: generated.token_ids,
        prompt_tokens: generated.prompt_tokens as u32,
        stop_reason: generated.stop_reason,
        elapsed_ms: now_ms() - started,
        model_ms: generated.model_ms,
    })
}

/// Returns `url` with a trailing `/`, so file names can be appended.
fn folder_url(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}
