//! One worker and the requests in flight to it: spawning, routing replies, and noticing
//! a worker that died.
//!
//! gloo-worker's bridge reports nothing when its worker fails, so four things watch it:
//! - the `Worker` object's `error` event (an uncaught exception, or a wasm trap such as a
//!   panic or a failed memory allocation), taken from the `Worker` constructor while
//!   gloo-worker calls it;
//! - [`Connection::kill`], which terminates the worker and reports it dead at once;
//! - a watchdog that, while requests are in flight, pings the worker every
//!   [`WATCHDOG_TICK_MS`] and declares it hung when a ping stays unanswered for
//!   [`PING_TIMEOUT_MS`] of ticks that ran on time;
//! - the start timeout, for a worker that never reports it has loaded.
//!
//! A dead worker is terminated, every pending request rejects with `worker_crashed`, and
//! the next request spawns a new worker.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use banter_protocol::gloo::{Packet, PacketCodec};
use banter_protocol::{
    decode, encode, peek_request_id, FromWorker, ModelInfo, Reply, Request, RequestId,
    StartRequest, ToWorker, PROTOCOL_VERSION, UNKNOWN_REQUEST_ID,
};
use futures::channel::oneshot;
use futures::future::{select, Either};
use gloo_worker::{HandlerId, Spawnable, Worker, WorkerBridge, WorkerScope};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::error::HostError;
use crate::timer::{now_ms, sleep, Interval};
use crate::urls::SiteUrls;

/// Period of the watchdog while requests are in flight.
const WATCHDOG_TICK_MS: u32 = 150;

/// Age after which an unanswered ping means a hung worker. The worker replies to pings between
/// model steps, which take a few milliseconds for TinyStories-sized models. The margin is
/// wide because the pong is handled on the page's main thread, which a busy page (software
/// WebGL in headless Chromium takes over 100 ms a frame) can keep from reading it for a
/// while. Crashes and terminations are reported at once by the other watchers.
const PING_TIMEOUT_MS: f64 = 2000.0;

/// A tick that comes later than this after the previous one means the page's main thread
/// was blocked, so that tick's wait is not counted against the worker.
const LATE_TICK_MS: f64 = 3.0 * WATCHDOG_TICK_MS as f64;

// gloo-worker creates the `Worker` inside its spawner and keeps it private. These two
// functions swap the global constructor for one that records the instance, around that
// call, so the host can listen for the worker's errors and terminate it.
#[wasm_bindgen(inline_js = r#"
let original = null;
let captured = null;
export function beginWorkerCapture() {
  original = globalThis.Worker;
  captured = null;
  const Capturing = function (url, options) {
    captured = new original(url, options);
    return captured;
  };
  Capturing.prototype = original.prototype;
  globalThis.Worker = Capturing;
}
export function endWorkerCapture() {
  if (original !== null) {
    globalThis.Worker = original;
    original = null;
  }
  const worker = captured;
  captured = null;
  return worker;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = beginWorkerCapture)]
    fn begin_worker_capture();
    #[wasm_bindgen(js_name = endWorkerCapture)]
    fn end_worker_capture() -> Option<web_sys::Worker>;
}

/// The host's view of the worker: gloo-worker needs a `Worker` type to know the message
/// types. It never runs on this side.
pub struct RemoteWorker;

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

/// Callbacks of one request, and where its terminal reply goes.
pub struct Pending {
    terminal: oneshot::Sender<Result<Reply, HostError>>,
    on_token: Option<Function>,
    on_progress: Option<Function>,
}

/// Counters for `Dialogue.stats()`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Say requests sent.
    pub requests: u32,
    /// Say requests that ended with a line.
    pub completed: u32,
    /// Say requests that were cancelled.
    pub cancelled: u32,
    /// Say requests that failed for any other reason.
    pub failed: u32,
    /// Tokens generated over all lines.
    pub tokens: u64,
    /// Workers spawned, the first one included.
    pub workers_started: u32,
    /// Workers found dead.
    pub crashes: u32,
}

/// A running worker.
struct Live {
    bridge: WorkerBridge<RemoteWorker>,
    worker: Option<web_sys::Worker>,
    _on_error: Option<Closure<dyn FnMut(web_sys::Event)>>,
    _watchdog: Option<Interval>,
}

impl Live {
    fn terminate(self) {
        if let Some(worker) = &self.worker {
            worker.terminate();
        }
    }
}

/// State shared by the `Dialogue`, the bridge callback and the watchdog.
pub struct Connection {
    urls: SiteUrls,
    start_timeout_ms: u32,
    live: RefCell<Option<Live>>,
    /// True while a worker is being spawned and started, so the watchdog stays quiet.
    starting: Cell<bool>,
    pending: RefCell<HashMap<RequestId, Pending>>,
    next_id: Cell<RequestId>,
    /// The ping in flight: its id, and how long it has waited in ticks that ran on time.
    ping: Cell<Option<(RequestId, f64)>>,
    /// When the watchdog last ran.
    last_tick: Cell<f64>,
    /// The model of the last successful start.
    pub model: RefCell<Option<ModelInfo>>,
    /// Counters for `Dialogue.stats()`.
    pub stats: RefCell<Stats>,
    closed: Cell<bool>,
}

impl Connection {
    /// Creates a connection with no worker yet.
    pub fn new(urls: SiteUrls, start_timeout_ms: u32) -> Rc<Self> {
        Rc::new(Connection {
            urls,
            start_timeout_ms,
            live: RefCell::new(None),
            starting: Cell::new(false),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            ping: Cell::new(None),
            last_tick: Cell::new(0.0),
            model: RefCell::new(None),
            stats: RefCell::new(Stats::default()),
            closed: Cell::new(false),
        })
    }

    /// Returns true while a worker is running.
    pub fn is_live(&self) -> bool {
        self.live.borrow().is_some()
    }

    /// Returns the number of start and say requests waiting for their terminal reply.
    pub fn pending_count(&self) -> usize {
        self.pending.borrow().len()
    }

    /// Spawns a worker and starts it: loads the runtime and the model, with progress
    /// reported to `on_progress`.
    pub async fn spawn_and_start(
        self: &Rc<Self>,
        on_progress: Option<Function>,
    ) -> Result<ModelInfo, HostError> {
        if self.closed.get() {
            return Err(HostError::Closed);
        }
        self.starting.set(true);
        let result = self.spawn_and_start_inner(on_progress).await;
        self.starting.set(false);
        match result {
            Ok(model) => {
                self.model.replace(Some(model.clone()));
                Ok(model)
            }
            Err(error) => {
                self.tear_down(|| error.clone());
                Err(error)
            }
        }
    }

    async fn spawn_and_start_inner(
        self: &Rc<Self>,
        on_progress: Option<Function>,
    ) -> Result<ModelInfo, HostError> {
        self.spawn();
        self.stats.borrow_mut().workers_started += 1;

        let start = Request::Start(StartRequest {
            protocol_version: PROTOCOL_VERSION,
            model_url: self.urls.model.clone(),
            ort_url: self.urls.ort.clone(),
        });
        let (_, terminal) = self.send(start, None, on_progress)?;
        let timeout = sleep(self.start_timeout_ms);
        let reply = match select(terminal, Box::pin(timeout)).await {
            Either::Left((reply, _)) => reply.unwrap_or(Err(HostError::Closed))?,
            Either::Right(_) => {
                return Err(HostError::StartTimeout {
                    timeout_ms: self.start_timeout_ms,
                    worker_url: self.urls.worker.clone(),
                    ort_url: self.urls.ort.clone(),
                })
            }
        };

        match reply {
            Reply::Ready(model) => Ok(model),
            Reply::Error(error) => Err(HostError::Worker(error)),
            other => Err(HostError::BadReply(format!(
                "unexpected reply to a start request: {other:?}"
            ))),
        }
    }

    /// Creates the worker and its bridge, capturing the `Worker` object on the way.
    fn spawn(self: &Rc<Self>) {
        let weak: Weak<Connection> = Rc::downgrade(self);
        let mut spawner = RemoteWorker::spawner();
        spawner.callback(move |packet: Packet| {
            if let Some(connection) = weak.upgrade() {
                connection.on_packet(&packet.0);
            }
        });
        spawner.with_loader(true);

        begin_worker_capture();
        let bridge = spawner.encoding::<PacketCodec>().spawn(&self.urls.worker);
        let worker = end_worker_capture();

        let on_error = worker.as_ref().map(|worker| {
            let weak = Rc::downgrade(self);
            // A failed script load fires a plain `Event`, an exception an `ErrorEvent` with
            // a message, so the message is read without assuming the type.
            let listener =
                Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
                    event.prevent_default();
                    if let Some(connection) = weak.upgrade() {
                        let message = Reflect::get(&event, &"message".into())
                            .ok()
                            .and_then(|value| value.as_string());
                        let reason = match message {
                            Some(message) if !message.is_empty() => message,
                            _ => "the worker script failed to load or raised an error".to_owned(),
                        };
                        connection.worker_died(reason);
                    }
                });
            worker.set_onerror(Some(listener.as_ref().unchecked_ref()));
            listener
        });

        let weak = Rc::downgrade(self);
        let watchdog = Interval::new(WATCHDOG_TICK_MS, move || {
            if let Some(connection) = weak.upgrade() {
                connection.watchdog_tick();
            }
        });

        self.live.replace(Some(Live {
            bridge,
            worker,
            _on_error: on_error,
            _watchdog: watchdog,
        }));
    }

    /// Sends a request; returns its id and the receiver of its terminal reply.
    pub fn send(
        &self,
        request: Request,
        on_token: Option<Function>,
        on_progress: Option<Function>,
    ) -> Result<(RequestId, oneshot::Receiver<Result<Reply, HostError>>), HostError> {
        let id = self.take_id();
        let bytes = encode(&ToWorker { id, request }).map_err(|error| {
            HostError::InvalidRequest(format!("request could not be encoded: {error}"))
        })?;

        let live = self.live.borrow();
        let Some(live) = live.as_ref() else {
            return Err(HostError::Closed);
        };
        let (terminal, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(
            id,
            Pending {
                terminal,
                on_token,
                on_progress,
            },
        );
        live.bridge.send(Packet(bytes));
        Ok((id, receiver))
    }

    /// Sends a control message that gets no terminal reply (cancel, ping).
    fn send_control(&self, id: RequestId, request: Request) {
        if let (Ok(bytes), Some(live)) = (
            encode(&ToWorker { id, request }),
            self.live.borrow().as_ref(),
        ) {
            live.bridge.send(Packet(bytes));
        }
    }

    /// Asks the worker to cancel request `id`.
    pub fn cancel(&self, id: RequestId) {
        self.send_control(id, Request::Cancel);
    }

    fn take_id(&self) -> RequestId {
        let id = self.next_id.get();
        let next = id.wrapping_add(1);
        self.next_id
            .set(if next == UNKNOWN_REQUEST_ID { 1 } else { next });
        id
    }

    /// Routes one packet from the worker.
    fn on_packet(&self, bytes: &[u8]) {
        let message = match decode::<FromWorker>(bytes) {
            Ok(message) => message,
            Err(error) => {
                let sender =
                    peek_request_id(bytes).and_then(|id| self.pending.borrow_mut().remove(&id));
                match sender {
                    Some(pending) => {
                        let _ = pending
                            .terminal
                            .send(Err(HostError::BadReply(error.to_string())));
                    }
                    None => log_error(&format!("undecodable reply from the worker: {error}")),
                }
                return;
            }
        };

        match message.reply {
            Reply::Pong => {
                if matches!(self.ping.get(), Some((id, _)) if id == message.id) {
                    self.ping.set(None);
                }
            }
            Reply::Token(token) => {
                let callback = self
                    .pending
                    .borrow()
                    .get(&message.id)
                    .and_then(|pending| pending.on_token.clone());
                if let Some(callback) = callback {
                    call_back(&callback, &JsValue::from(token.delta));
                }
            }
            Reply::Progress(progress) => {
                let callback = self
                    .pending
                    .borrow()
                    .get(&message.id)
                    .and_then(|pending| pending.on_progress.clone());
                if let Some(callback) = callback {
                    let object = Object::new();
                    let _ = Reflect::set(&object, &"stage".into(), &progress.stage.as_str().into());
                    let _ =
                        Reflect::set(&object, &"loaded".into(), &(progress.loaded as f64).into());
                    let _ = Reflect::set(&object, &"total".into(), &(progress.total as f64).into());
                    call_back(&callback, &object.into());
                }
            }
            terminal @ (Reply::Ready(_) | Reply::Line(_) | Reply::Error(_)) => {
                let pending = self.pending.borrow_mut().remove(&message.id);
                match pending {
                    Some(pending) => {
                        let _ = pending.terminal.send(Ok(terminal));
                    }
                    None if message.id == UNKNOWN_REQUEST_ID => log_error(&format!(
                        "the worker rejected an unreadable request: {terminal:?}"
                    )),
                    None => {}
                }
            }
        }
    }

    /// Pings the worker while requests are in flight and declares it hung when a ping
    /// goes unanswered for [`PING_TIMEOUT_MS`].
    fn watchdog_tick(&self) {
        let now = now_ms();
        let since_last_tick = now - self.last_tick.replace(now);
        if self.starting.get() || !self.is_live() || self.pending.borrow().is_empty() {
            self.ping.set(None);
            return;
        }

        match self.ping.get() {
            None => {
                let id = self.take_id();
                self.ping.set(Some((id, 0.0)));
                self.send_control(id, Request::Ping);
            }
            Some((id, waited)) => {
                // Only ticks that ran on time count: after a long task on this thread the
                // pong may be queued but not yet read.
                let waited = if since_last_tick > LATE_TICK_MS {
                    waited
                } else {
                    waited + since_last_tick
                };
                if waited > PING_TIMEOUT_MS {
                    self.worker_died(format!(
                        "the worker did not answer a ping for {waited:.0} ms"
                    ));
                } else {
                    self.ping.set(Some((id, waited)));
                }
            }
        }
    }

    /// Handles a dead worker: terminates it and rejects everything pending.
    fn worker_died(&self, reason: String) {
        if !self.is_live() {
            return;
        }
        log_error(&format!("the worker stopped: {reason}"));
        if self.starting.get() {
            let worker_url = self.urls.worker.clone();
            self.tear_down(|| HostError::StartFailed {
                worker_url: worker_url.clone(),
                reason: reason.clone(),
            });
        } else {
            self.stats.borrow_mut().crashes += 1;
            self.tear_down(|| HostError::WorkerCrashed {
                reason: reason.clone(),
            });
        }
    }

    /// Terminates the worker, if any, and rejects every pending request with `error()`.
    fn tear_down(&self, error: impl Fn() -> HostError) {
        self.ping.set(None);
        if let Some(live) = self.live.take() {
            live.terminate();
        }
        let pending: Vec<Pending> = self
            .pending
            .borrow_mut()
            .drain()
            .map(|(_, pending)| pending)
            .collect();
        for pending in pending {
            let _ = pending.terminal.send(Err(error()));
        }
    }

    /// Terminates the worker as a crash would, for tests of crash recovery: pending
    /// requests reject with `worker_crashed` at once.
    pub fn kill(&self) {
        self.worker_died("the worker was terminated".to_owned());
    }

    /// Stops the worker for good; pending requests reject with `closed`.
    pub fn close(&self) {
        self.closed.set(true);
        self.tear_down(|| HostError::Closed);
    }

    /// Returns true after [`Connection::close`].
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

/// Calls a JavaScript callback, logging (not propagating) what it throws.
fn call_back(callback: &Function, argument: &JsValue) {
    if let Err(error) = callback.call1(&JsValue::UNDEFINED, argument) {
        web_sys::console::error_2(&"banter: a callback threw".into(), &error);
    }
}

fn log_error(text: &str) {
    web_sys::console::error_1(&format!("banter: {text}").into());
}
