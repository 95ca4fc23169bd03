// Benchmark of the graph layouts and of banter's whole path in headless Chromium, run by
// `cargo xtask bench` (which serves the site and, under `bench/`, the extra bundles).
//
// In one Chromium session, on one page of the site:
// 1. cold start: a fresh navigation, then the host's `Dialogue.start` and a first `say`,
//    timed from navigation start;
// 2. ROUNDS rounds, each decoding one line per variant in turn, so that drift of the
//    machine hits every variant alike. The graph variants run onnxruntime-web (wasm, one
//    thread) on the page with the same minimal loop: prefill, then one step per token,
//    greedy (candidate 0), 60 new tokens. Candidates come from a JavaScript top-40 over
//    the last position's logits (conventional layout) or from the graph's top_k output
//    (banter's layout). The `dialogue` variant is banter's whole path: host → worker →
//    engine → graph, through `Dialogue.say`, with its sampler (top-k 40, temperature 0.9).
//
// `prototype` re-runs the conventional int8 graph on the whole sequence with an empty KV
// cache each step, as the prototype's input_ids-only graph did. It is not the prototype's
// own file, which was 15.7 MB with a MatMulInteger LM head. The conventional graph
// computes logits for every position, so `prototype` also pays the LM head for the whole
// sequence each step. `prototype-last` re-runs banter's graph the same way, which
// computes the head for the last position only. `banter-turn` is the `banter` loop with
// one turn of the event loop before each step. Any loop that a cancel must stop between
// steps needs that turn, and the worker's engine takes it too.
//
// `banter-worker` and `banter-worker-turn` run the same two loops in a dedicated worker
// (loop_worker.js), the kind of thread banter's engine runs on. A second `Dialogue`, whose
// worker times onnxruntime-web's `InferenceSession.run` (timed_worker.js), splits the
// worker's time per token into onnxruntime-web's runs, what `ort` and `ort-web` add around
// them, and the engine's work outside the model.
//
// With BANTER_BENCH_OPTIMUM set, `optimum-fp32` is the conventional graph as Hugging Face
// Optimum's ONNX exporter writes it (tests/bench/export_optimum.py), served under
// bench/optimum/, with the same loop as `conventional` plus an attention mask.
//
// With BANTER_BENCH_NATIVE naming the JSON of model/examples/decode_bench.rs, the native
// ONNX Runtime figures are printed beside the browser's.

import { readFileSync } from 'node:fs';

import { encode } from 'gpt-3-encoder';

import { openSession } from '../e2e/browser.mjs';
import { setUpGraphs } from './page_loops.mjs';
import {
  HEARD, NEW_TOKENS, PROMPT, ROUNDS, TOP_K, WARMUP_LINES, fixed, machine, median,
} from './report.mjs';

// Graph variants: bundle folder on the site, and how the loop feeds the graph.
const VARIANTS = [
  { name: 'prototype', bundle: 'bench/conventional-int8/', wholeSequence: true },
  { name: 'prototype-last', bundle: 'model/', wholeSequence: true },
  { name: 'conventional', bundle: 'bench/conventional-int8/', wholeSequence: false },
  { name: 'conventional-fp32', bundle: 'bench/conventional-fp32/', wholeSequence: false },
  { name: 'banter', bundle: 'model/', wholeSequence: false },
  { name: 'banter-fp32', bundle: 'bench/banter-fp32/', wholeSequence: false },
  { name: 'banter-turn', bundle: 'model/', wholeSequence: false, turnPerStep: true },
  ...(process.env.BANTER_BENCH_OPTIMUM
    ? [{ name: 'optimum-fp32', bundle: 'bench/optimum/', wholeSequence: false, optimum: true }]
    : []),
];

// The bare banter loops again, inside a dedicated worker.
const WORKER_VARIANTS = [
  { name: 'banter-worker', bundle: 'model/', wholeSequence: false },
  { name: 'banter-worker-turn', bundle: 'model/', wholeSequence: false, turnPerStep: true },
];

function readNative() {
  const path = process.env.BANTER_BENCH_NATIVE;
  if (!path) {
    return null;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`could not read the native results ${path}: ${err.message}; run cargo xtask bench`);
  }
}

const promptIds = encode(PROMPT);
const native = readNative();
const session = await openSession();
try {
  // Cold start on a fresh profile: nothing of the site is cached yet.
  await session.gotoBlank();
  const site = session.url('').href;
  const cold = await session.page.evaluate(async ({ site, heard, newTokens }) => {
    const { default: init, Dialogue } = await import(new URL('pkg/banter_host.js', site).href);
    await init();
    const dialogue = await Dialogue.start({});
    const readyMs = performance.now();
    const line = await dialogue.say({ heard, seed: 0, maxNewTokens: newTokens });
    const firstLineMs = performance.now();
    globalThis.benchDialogue = dialogue;
    return { readyMs, firstLineMs, tokens: line.tokens, model: dialogue.model };
  }, { site, heard: HEARD, newTokens: NEW_TOKENS });

  const fileBytes = await session.page.evaluate(setUpGraphs, {
    site,
    variants: VARIANTS,
    promptIds,
    newTokens: NEW_TOKENS,
    topK: TOP_K,
  });

  const workerFileBytes = await session.page.evaluate(async ({ site, setup }) => {
    const worker = new Worker(new URL('bench/loop_worker.js', site), { type: 'module' });
    globalThis.benchLoopWorker = (message) => new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data));
      worker.onerror = (event) => reject(new Error(`bench/loop_worker.js failed: ${event.message}`));
      worker.postMessage(message);
    });
    const { fileBytes } = await globalThis.benchLoopWorker({ setup: { ...setup, site } });

    const { Dialogue } = await import(new URL('pkg/banter_host.js', site).href);
    globalThis.benchTimedDialogue = await Dialogue.start({ workerUrl: new URL('bench/timed_worker.js', site).href });
    const channel = new BroadcastChannel('banter-bench-run');
    globalThis.benchRunTotals = () => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out after 10 s waiting for bench/timed_worker.js to reply on the BroadcastChannel banter-bench-run; check the worker console for a failed start')), 10_000);
      channel.onmessage = ({ data }) => {
        clearTimeout(timer);
        resolve(data);
      };
      channel.postMessage(null);
    });
    return fileBytes;
  }, {
    site,
    setup: { variants: WORKER_VARIANTS, promptIds, newTokens: NEW_TOKENS, topK: TOP_K },
  });
  Object.assign(fileBytes, workerFileBytes);

  // Untimed lines first, alternating like the timed rounds, so that neither first-run
  // allocations nor V8's tier-up count.
  const runGraph = (name) => session.page.evaluate((name) => globalThis.benchGraphLine(name), name);
  const runWorkerGraph = (name) => session.page.evaluate((name) => globalThis.benchLoopWorker({ line: name }), name);

  // A line through the timed worker, with the time spent in onnxruntime-web's runs.
  const timedDialogueLine = (seed) => session.page.evaluate(async ({ heard, seed, newTokens }) => {
    const before = await globalThis.benchRunTotals();
    const line = await globalThis.benchTimedDialogue.say({ heard, seed, maxNewTokens: newTokens });
    const after = await globalThis.benchRunTotals();
    return {
      tokens: line.tokens,
      workerMs: line.elapsedMs,
      modelMs: line.modelMs,
      runMs: after.runMs - before.runMs,
      runs: after.runs - before.runs,
    };
  }, { heard: HEARD, seed, newTokens: NEW_TOKENS });

  // A line takes one run per token, plus one if it ends with the end-of-text token.
  const runTimedDialogue = async (seed) => {
    const line = await timedDialogueLine(seed);
    if (line.runs < line.tokens || line.runs > line.tokens + 1) {
      throw new Error(`bench/timed_worker.js timed ${line.runs} runs for a line of ${line.tokens} tokens; it must import onnxruntime-web from the URL the worker loads it from`);
    }
    return line;
  };

  const runDialogue = (seed) => session.page.evaluate(async ({ heard, seed, newTokens }) => {
    const started = performance.now();
    let firstTokenAt = NaN;
    const onToken = () => {
      if (Number.isNaN(firstTokenAt)) firstTokenAt = performance.now();
    };
    const line = await globalThis.benchDialogue.say({ heard, seed, maxNewTokens: newTokens, onToken });
    return {
      lineMs: performance.now() - started,
      firstTokenMs: firstTokenAt - started,
      tokens: line.tokens,
      workerMs: line.elapsedMs,
      modelMs: line.modelMs,
      stopReason: line.stopReason,
    };
  }, { heard: HEARD, seed, newTokens: NEW_TOKENS });
  for (let line = 0; line < WARMUP_LINES; line += 1) {
    for (const variant of VARIANTS) {
      await runGraph(variant.name);
    }
    for (const variant of WORKER_VARIANTS) {
      await runWorkerGraph(variant.name);
    }
    await runDialogue(1000 + line);
    await runTimedDialogue(1000 + line);
  }

  const results = Object.fromEntries([...VARIANTS, ...WORKER_VARIANTS].map((variant) => [variant.name, []]));
  const dialogue = [];
  const timed = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const variant of VARIANTS) {
      results[variant.name].push(await runGraph(variant.name));
    }
    for (const variant of WORKER_VARIANTS) {
      results[variant.name].push(await runWorkerGraph(variant.name));
    }
    dialogue.push(await runDialogue(round + 2));
    timed.push(await runTimedDialogue(round + 2));
  }

  // Report.
  const stepMs = (runs) => median(runs.map((run) => (run.lineMs - run.prefillMs) / (NEW_TOKENS - 1)));
  const lineMs = (runs) => median(runs.map((run) => run.lineMs));
  const banterLine = lineMs(results.banter);
  const banterTokens = results.banter.at(-1).tokens.join(',');
  const nativeByName = Object.fromEntries((native?.variants ?? []).map((entry) => [entry.name, entry]));
  const nativeBanter = nativeByName.banter;

  console.log(`\nmachine: ${machine()}`);
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`model: ${cold.model.name} (stand-in: ${cold.model.standin})`);
  console.log(`prompt: ${promptIds.length} tokens; ${NEW_TOKENS} new tokens per line (prefill + ${NEW_TOKENS - 1} decoding steps); ${WARMUP_LINES} untimed and ${ROUNDS} timed lines per variant; onnxruntime-web wasm, 1 thread`);
  console.log('step ms: a line\'s mean decoding step, prefill excluded; line ms: prefill + decoding steps; medians over lines');
  console.log('prototype: the conventional int8 graph re-run on the whole sequence with an empty KV cache each step, logits for every position (not the prototype\'s own 15.7 MB file)');
  console.log('prototype-last: banter\'s int8 graph re-run the same way, logits for the last position only');
  console.log('banter-worker, banter-worker-turn: the banter and banter-turn loops in a dedicated worker');
  if (process.env.BANTER_BENCH_OPTIMUM) {
    console.log('optimum-fp32: the fp32 checkpoint exported by Hugging Face Optimum (text-generation-with-past), the conventional loop with an attention mask');
  }
  console.log('');
  const header = [
    'variant'.padEnd(18), 'file MB'.padStart(8),
    'wasm step'.padStart(10), 'wasm line'.padStart(10), '÷ banter'.padStart(9),
    'native step'.padStart(12), 'native line'.padStart(12), '÷ banter'.padStart(9),
    '  same greedy line as banter',
  ].join(' ');
  console.log(header);
  for (const variant of [...VARIANTS, ...WORKER_VARIANTS]) {
    const runs = results[variant.name];
    const line = lineMs(runs);
    const nativeEntry = nativeByName[variant.name];
    console.log([
      variant.name.padEnd(18),
      fixed(fileBytes[variant.name] / 1e6).padStart(8),
      fixed(stepMs(runs), 3).padStart(10),
      fixed(line).padStart(10),
      fixed(line / banterLine).padStart(9),
      fixed(nativeEntry?.stepMs, 3).padStart(12),
      fixed(nativeEntry?.lineMs).padStart(12),
      fixed(nativeEntry ? nativeEntry.lineMs / nativeBanter.lineMs : NaN).padStart(9),
      `  wasm ${runs.at(-1).tokens.join(',') === banterTokens ? 'yes' : 'no'}, native ${nativeEntry?.sameLineAsBanter === undefined ? 'n/a' : nativeEntry.sameLineAsBanter ? 'yes' : 'no'}`,
    ].join(' '));
  }
  if (!native) {
    console.log('(no native figures: BANTER_BENCH_NATIVE is not set)');
  }

  // banter's whole path. Its lines may stop early at a sentence end, so it is compared per
  // token: line ms / new tokens.
  const perToken = (runs) => median(runs.map((run) => run.lineMs / run.tokens.length));
  const dialoguePerToken = median(dialogue.map((run) => run.lineMs / run.tokens));
  const dialogueWorkerPerToken = median(dialogue.map((run) => run.workerMs / run.tokens));
  const dialogueModelPerToken = median(dialogue.map((run) => run.modelMs / run.tokens));
  const dialogueOutsideModelPerToken = median(dialogue.map((run) => (run.workerMs - run.modelMs) / run.tokens));
  const bareBanterPerToken = perToken(results.banter);
  const turnBanterPerToken = perToken(results['banter-turn']);
  const prototypePerToken = perToken(results.prototype);
  const conventionalPerToken = perToken(results.conventional);
  console.log('');
  console.log(`banter's whole path (Dialogue.say, top-k ${TOP_K}, temperature 0.9, up to ${NEW_TOKENS} new tokens), alternating with the loops above:`);
  console.log(`  line ms (median): ${fixed(median(dialogue.map((run) => run.lineMs)))}; tokens per line: ${dialogue.map((run) => run.tokens).join(' ')}`);
  console.log(`  ms per token (median): page ${fixed(dialoguePerToken, 3)}, worker's elapsedMs ${fixed(dialogueWorkerPerToken, 3)}; bare banter loop ${fixed(bareBanterPerToken, 3)}, with an event-loop turn per step ${fixed(turnBanterPerToken, 3)}`);
  console.log(`  overhead of host → worker → engine over the bare banter loop, per token: ${fixed((dialoguePerToken / bareBanterPerToken - 1) * 100, 1)} % (target ≤ 10 %)`);
  console.log(`  the same over the bare loop with an event-loop turn per step: ${fixed((dialoguePerToken / turnBanterPerToken - 1) * 100, 1)} %`);
  console.log(`  worker's time per token (medians): in the model's runs (modelMs) ${fixed(dialogueModelPerToken, 3)}, of which ${fixed(dialogueModelPerToken - bareBanterPerToken, 3)} above the bare loop; outside them ${fixed(dialogueOutsideModelPerToken, 3)}`);
  console.log(`  prototype / whole path, per token: ${fixed(prototypePerToken / dialoguePerToken)} (target ≥ 12)`);
  console.log(`  prototype-last / whole path, per token: ${fixed(perToken(results['prototype-last']) / dialoguePerToken)}`);
  console.log(`  conventional / whole path, per token: ${fixed(conventionalPerToken / dialoguePerToken)} (target ≥ 2)`);
  console.log(`  conventional / banter, per line (bare loops): ${fixed(lineMs(results.conventional) / banterLine)} (target ≥ 2)`);
  if (results['optimum-fp32']) {
    console.log(`  optimum-fp32 / whole path, per token: ${fixed(perToken(results['optimum-fp32']) / dialoguePerToken)} (target ≥ 2 against a conventional loop)`);
  }

  // The first streamed delta can lag the first token when that token is whitespace or part
  // of a character, which the stream holds back.
  console.log(`  time to first streamed text (median): ${fixed(median(dialogue.map((run) => run.firstTokenMs).filter(Number.isFinite)))} ms`);
  console.log(`cold page load (fresh profile): Dialogue ready ${fixed(cold.readyMs)} ms, first line (${cold.tokens} tokens) ${fixed(cold.firstLineMs)} ms after navigation start`);

  // The worker's time per token, split with the timed worker's second Dialogue.
  const timedPerToken = (part) => median(timed.map((run) => part(run) / run.tokens));
  const timedWorker = timedPerToken((run) => run.workerMs);
  const timedModel = timedPerToken((run) => run.modelMs);
  const timedRun = timedPerToken((run) => run.runMs);
  const workerBare = perToken(results['banter-worker']);
  const workerTurn = perToken(results['banter-worker-turn']);
  console.log('');
  console.log(`banter's worker, ms per token (medians; a second Dialogue whose worker times onnxruntime-web's run, ${timed.map((run) => run.runs).join(' ')} runs per line):`);
  console.log(`  elapsedMs ${fixed(timedWorker, 3)}: in onnxruntime-web's runs ${fixed(timedRun, 3)}, around them in ort and ort-web ${fixed(timedModel - timedRun, 3)} (modelMs ${fixed(timedModel, 3)}), outside the model's runs ${fixed(timedWorker - timedModel, 3)}`);
  console.log(`  bare banter loop in a dedicated worker ${fixed(workerBare, 3)}, with an event-loop turn per step ${fixed(workerTurn, 3)}`);
  console.log(`  onnxruntime-web's runs in banter's worker beyond the whole bare worker loop: ${fixed(timedRun - workerBare, 3)}`);
  console.log(`  elapsedMs over the bare worker loop: ${fixed((timedWorker / workerBare - 1) * 100, 1)} %, over the worker loop with a turn per step: ${fixed((timedWorker / workerTurn - 1) * 100, 1)} %`);
} finally {
  await session.close();
}
