//! The Web Worker: a gloo-worker that serves one host and runs requests one at a time.
//!
//! Requests are queued in arrival order and handled by a single task, so at most one
//! request touches the engine at a time and each gets exactly one reply.

mod fetch;
mod shim;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use banter_bundle::{FileRole, Manifest, MANIFEST_FILE};
use banter_protocol::gloo::{Packet, PacketCodec};
use banter_protocol::{
    decode, encode, peek_request_id, FromWorker, Line, ModelInfo, Reply, Request, SayRequest,
    StartRequest, ToWorker, PROTOCOL_VERSION,
};
use gloo_worker::{HandlerId, Registrable, Worker, WorkerScope};
use wasm_bindgen::prelude::*;

use crate::{Engine, OrtModel, WorkerError};
use fetch::{fetch_bytes, now_ms};

/// Name of the onnxruntime-web entry script (the CPU-only ES module build).
const ORT_SCRIPT: &str = "ort.wasm.min.mjs";

/// Registers the worker when its wasm module starts.
#[wasm_bindgen(start)]
pub fn start_worker() {
    console_error_panic_hook::set_once();
    BanterWorker::registrar()
        .encoding::<PacketCodec>()
        .register();
}

/// State shared by the message handler and the task that works through the queue.
#[derive(Default)]
struct Shared {
    queue: RefCell<VecDeque<(HandlerId, Packet)>>,
    draining: Cell<bool>,
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
        self.shared.queue.borrow_mut().push_back((handler, packet));
        if !self.shared.draining.replace(true) {
            wasm_bindgen_futures::spawn_local(drain(self.shared.clone(), scope.clone()));
        }
    }
}

/// Handles queued packets in order until the queue is empty.
async fn drain(shared: Rc<Shared>, scope: WorkerScope<BanterWorker>) {
    loop {
        let next = shared.queue.borrow_mut().pop_front();
        let Some((handler, packet)) = next else {
            shared.draining.set(false);
            return;
        };
        let reply = handle(&shared, &packet.0).await;
        scope.respond(handler, reply);
    }
}

/// Decodes one message, runs it and encodes the terminal reply.
async fn handle(shared: &Shared, bytes: &[u8]) -> Packet {
    let (id, result) = match decode::<ToWorker>(bytes) {
        Ok(message) => {
            let reply = match message.request {
                Request::Start(start) => load(shared, &start).await.map(Reply::Ready),
                Request::Say(say) => generate(shared, &say).await.map(Reply::Line),
            };
            (message.id, reply)
        }
        Err(error) => (
            peek_request_id(bytes).unwrap_or(0),
            Err(WorkerError::BadMessage(error)),
        ),
    };

    let reply = result.unwrap_or_else(|error| Reply::Error(error.to_wire()));
    let message = FromWorker { id, reply };
    match encode(&message) {
        Ok(bytes) => Packet(bytes),
        Err(error) => {
            let fallback = FromWorker {
                id,
                reply: Reply::Error(WorkerError::BadMessage(error).to_wire()),
            };
            Packet(encode(&fallback).unwrap_or_default())
        }
    }
}

/// Loads ONNX Runtime Web and the model bundle, and returns the model's description.
async fn load(shared: &Shared, start: &StartRequest) -> Result<ModelInfo, WorkerError> {
    if start.protocol_version != PROTOCOL_VERSION {
        return Err(WorkerError::ProtocolMismatch {
            host: start.protocol_version,
            worker: PROTOCOL_VERSION,
        });
    }
    if let Some(model) = shared.model.borrow().clone() {
        return Ok(model);
    }
    let started = now_ms();

    if !shared.runtime_ready.get() {
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

    let model_url = folder_url(&start.model_url);
    let manifest =
        Manifest::from_json(&fetch_bytes(&format!("{model_url}{MANIFEST_FILE}")).await?)?;
    let graph = fetch_bytes(&format!(
        "{model_url}{}",
        manifest.file(FileRole::Graph)?.name
    ))
    .await?;
    let tokenizer = fetch_bytes(&format!(
        "{model_url}{}",
        manifest.file(FileRole::Tokenizer)?.name
    ))
    .await?;
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

/// Runs one say request on the loaded engine.
async fn generate(shared: &Shared, say: &SayRequest) -> Result<Line, WorkerError> {
    // The engine is taken out for the duration of the request, so no RefCell borrow is held
    // across an await. Requests run one at a time, so no other task needs it meanwhile.
    let mut engine = shared
        .engine
        .borrow_mut()
        .take()
        .ok_or(WorkerError::NotStarted)?;
    let started = now_ms();
    let result = engine.say(say).await;
    shared.engine.replace(Some(engine));

    let generated = result?;
    Ok(Line {
        text: generated.text,
        token_ids: generated.token_ids,
        prompt_tokens: generated.prompt_tokens as u32,
        stop_reason: generated.stop_reason,
        elapsed_ms: now_ms() - started,
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
