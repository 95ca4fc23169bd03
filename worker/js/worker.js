// Entry script of the banter Web Worker, spawned as a module worker by banter-host.
// Loading the wasm-bindgen glue runs the worker's start function, which registers it
// with gloo-worker and notifies the host that it is ready for messages.
import init from './banter_worker.js';

const exports = await init();

// The worker's wasm memory, for tests that check it stays flat across requests
// (`memory.buffer.byteLength` grows when the Rust heap does and never shrinks).
globalThis.banterWasmMemory = exports.memory;
