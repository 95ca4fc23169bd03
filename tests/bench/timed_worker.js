// banter's worker with a stopwatch around onnxruntime-web's `InferenceSession.run`, for
// the benchmark's split of the worker's time per token. `cargo xtask bench` serves it
// under /bench/; a `Dialogue` started with it as `workerUrl` runs the site's own worker
// code (/pkg/) and onnxruntime-web (/ort/).
//
// The stopwatch covers the whole of `run`, from the call to the settling of its Promise:
// onnxruntime-web's JavaScript and the graph's operators. The time between that and the
// worker's `modelMs` is what `ort` and `ort-web` add around each run. The page reads the
// totals over the BroadcastChannel `banter-bench-run`. The worker replies to any message
// there with `{ runMs, runs }`, summed since it started.

import * as ort from '../ort/ort.wasm.min.mjs';
import init from '../pkg/banter_worker.js';

const totals = { runMs: 0, runs: 0 };
const run = ort.InferenceSession.prototype.run;
ort.InferenceSession.prototype.run = async function timedRun(...args) {
  const started = performance.now();
  try {
    return await run.apply(this, args);
  } finally {
    totals.runMs += performance.now() - started;
    totals.runs += 1;
  }
};

const channel = new BroadcastChannel('banter-bench-run');
channel.onmessage = () => channel.postMessage({ ...totals });

await init();
