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
// computes the head for the last position only.
//
// With BANTER_BENCH_NATIVE naming the JSON of model/examples/decode_bench.rs, the native
// ONNX Runtime figures are printed beside the browser's.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

import { encode } from 'gpt-3-encoder';

import { CHROMIUM_PATH, openSession } from '../e2e/browser.mjs';

const ROUNDS = positiveInteger('BANTER_BENCH_ROUNDS', 8);
const HEARD = 'Where is the ball?';
const PROMPT = `A man was asked "${HEARD}". He smiled and said, "`;
// New tokens per line: the prefill gives the first, each decoding step one more, so a line
// is one prefill and NEW_TOKENS - 1 decoding steps, as in the worker's engine.
const NEW_TOKENS = 60;
const TOP_K = 40;

// Graph variants: bundle folder on the site, and how the loop feeds the graph.
const VARIANTS = [
  { name: 'prototype', bundle: 'bench/conventional-int8/', wholeSequence: true },
  { name: 'prototype-last', bundle: 'model/', wholeSequence: true },
  { name: 'conventional', bundle: 'bench/conventional-int8/', wholeSequence: false },
  { name: 'conventional-fp32', bundle: 'bench/conventional-fp32/', wholeSequence: false },
  { name: 'banter', bundle: 'model/', wholeSequence: false },
  { name: 'banter-fp32', bundle: 'bench/banter-fp32/', wholeSequence: false },
];

function positiveInteger(variable, fallback) {
  const raw = process.env[variable];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${variable} is ${JSON.stringify(raw)}; set it to a positive integer`);
  }
  return value;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function fixed(value, digits = 2) {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function machine() {
  const cpus = os.cpus();
  let chromium = 'unknown';
  try {
    chromium = execFileSync(process.env.BANTER_CHROMIUM ?? CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).trim();
  } catch (err) {
    chromium = `unknown (${err.message})`;
  }
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; ${chromium}`;
}

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

// Runs in the page: imports onnxruntime-web from the site and opens one session per
// variant, with the session options of its manifest. Installs `globalThis.benchGraphLine`.
async function setUpGraphs({ site, variants, promptIds, newTokens, topK }) {
  const ort = await import(new URL('ort/ort.wasm.min.mjs', site).href);
  ort.env.wasm.numThreads = 1;

  const fetchOk = async (path) => {
    const response = await fetch(new URL(path, site));
    if (!response.ok) {
      throw new Error(`GET ${path} failed with status ${response.status}; run this through cargo xtask bench, which serves the bench/ bundles`);
    }
    return response;
  };

  const graphs = {};
  for (const variant of variants) {
    const manifest = await (await fetchOk(`${variant.bundle}manifest.json`)).json();
    const bytes = new Uint8Array(await (await fetchOk(`${variant.bundle}model.onnx`)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      extra: manifest.session_options,
    });

    const { num_layers: layers, num_heads: heads, hidden_size: hidden } = manifest.config;
    const headSize = hidden / heads;
    const banter = manifest.layout === 'banter';
    const emptyPast = {};
    let fetches;
    if (banter) {
      emptyPast.past = new ort.Tensor('float32', new Float32Array(0), [2 * layers, heads, 0, headSize]);
      fetches = variant.wholeSequence ? ['top_values', 'top_ids'] : ['top_values', 'top_ids', 'present'];
    } else {
      for (let layer = 0; layer < layers; layer += 1) {
        for (const kind of ['key', 'value']) {
          emptyPast[`past_key_values.${layer}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headSize]);
        }
      }
      fetches = ['logits'];
      if (!variant.wholeSequence) {
        for (let layer = 0; layer < layers; layer += 1) {
          fetches.push(`present.${layer}.key`, `present.${layer}.value`);
        }
      }
    }
    graphs[variant.name] = { ...variant, session, banter, layers, emptyPast, fetches, fileBytes: bytes.byteLength };
  }

  // The k largest logits of `logits[offset .. offset + vocab]` as ids, descending; ties go
  // to the lower id.
  const topKIds = (logits, offset, vocab, k) => {
    const values = new Float32Array(k).fill(-Infinity);
    const ids = new Int32Array(k).fill(-1);
    for (let id = 0; id < vocab; id += 1) {
      const value = logits[offset + id];
      if (value <= values[k - 1]) {
        continue;
      }
      let slot = k - 1;
      while (slot > 0 && values[slot - 1] < value) {
        values[slot] = values[slot - 1];
        ids[slot] = ids[slot - 1];
        slot -= 1;
      }
      values[slot] = value;
      ids[slot] = id;
    }
    return ids;
  };

  const topKTensor = new ort.Tensor('int64', BigInt64Array.from([BigInt(topK)]), [1]);
  const int64 = (values) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);

  // Decodes one line with the minimal loop and returns its time, its prefill time and
  // its new tokens.
  globalThis.benchGraphLine = async (name) => {
    const graph = graphs[name];
    const sequence = promptIds.slice();
    let feed = promptIds.slice();
    let pastLength = 0;
    let past = graph.emptyPast;
    let prefillMs = 0;

    const started = performance.now();
    for (let step = 0; step < newTokens; step += 1) {
      if (graph.wholeSequence) {
        feed = sequence.slice();
        pastLength = 0;
      }
      const positions = Array.from(feed, (_, index) => pastLength + index);
      const feeds = { input_ids: int64(feed), position_ids: int64(positions), ...past };
      if (graph.banter) {
        feeds.top_k = topKTensor;
      }
      const outputs = await graph.session.run(feeds, graph.fetches);

      let next;
      if (graph.banter) {
        next = Number(outputs.top_ids.data[0]);
        if (!graph.wholeSequence) {
          past = { past: outputs.present };
        }
      } else {
        const vocab = outputs.logits.dims[2];
        next = topKIds(outputs.logits.data, (feed.length - 1) * vocab, vocab, topK)[0];
        if (!graph.wholeSequence) {
          past = {};
          for (let layer = 0; layer < graph.layers; layer += 1) {
            past[`past_key_values.${layer}.key`] = outputs[`present.${layer}.key`];
            past[`past_key_values.${layer}.value`] = outputs[`present.${layer}.value`];
          }
        }
      }

      pastLength += feed.length;
      sequence.push(next);
      feed = [next];
      if (step === 0) {
        prefillMs = performance.now() - started;
      }
    }
    const lineMs = performance.now() - started;
    return { lineMs, prefillMs, tokens: sequence.slice(promptIds.length) };
  };

  return Object.fromEntries(Object.values(graphs).map((graph) => [graph.name, graph.fileBytes]));
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

  // One untimed line per variant first, so that first-run allocations do not count.
  const runGraph = (name) => session.page.evaluate((name) => globalThis.benchGraphLine(name), name);
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
      stopReason: line.stopReason,
    };
  }, { heard: HEARD, seed, newTokens: NEW_TOKENS });
  for (const variant of VARIANTS) {
    await runGraph(variant.name);
  }
  await runDialogue(1);

  const results = Object.fromEntries(VARIANTS.map((variant) => [variant.name, []]));
  const dialogue = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const variant of VARIANTS) {
      results[variant.name].push(await runGraph(variant.name));
    }
    dialogue.push(await runDialogue(round + 2));
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
  console.log(`prompt: ${promptIds.length} tokens; ${NEW_TOKENS} new tokens per line (prefill + ${NEW_TOKENS - 1} decoding steps); ${ROUNDS} rounds; onnxruntime-web wasm, 1 thread`);
  console.log('step ms: a line\'s mean decoding step, prefill excluded; line ms: prefill + decoding steps; medians over lines');
  console.log('prototype: the conventional int8 graph re-run on the whole sequence with an empty KV cache each step, logits for every position (not the prototype\'s own 15.7 MB file)');
  console.log('prototype-last: banter\'s int8 graph re-run the same way, logits for the last position only');
  console.log('');
  const header = [
    'variant'.padEnd(18), 'file MB'.padStart(8),
    'wasm step'.padStart(10), 'wasm line'.padStart(10), '÷ banter'.padStart(9),
    'native step'.padStart(12), 'native line'.padStart(12), '÷ banter'.padStart(9),
    '  same greedy line as banter',
  ].join(' ');
  console.log(header);
  for (const variant of VARIANTS) {
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
  const bareBanterPerToken = perToken(results.banter);
  const prototypePerToken = perToken(results.prototype);
  const conventionalPerToken = perToken(results.conventional);
  console.log('');
  console.log(`banter's whole path (Dialogue.say, top-k ${TOP_K}, temperature 0.9, up to ${NEW_TOKENS} new tokens), alternating with the loops above:`);
  console.log(`  line ms (median): ${fixed(median(dialogue.map((run) => run.lineMs)))}; tokens per line: ${dialogue.map((run) => run.tokens).join(' ')}`);
  console.log(`  ms per token (median): page ${fixed(dialoguePerToken, 3)}, worker's elapsedMs ${fixed(dialogueWorkerPerToken, 3)}; bare banter loop ${fixed(bareBanterPerToken, 3)}`);
  console.log(`  overhead of host → worker → engine over the bare banter loop, per token: ${fixed((dialoguePerToken / bareBanterPerToken - 1) * 100, 1)} % (target ≤ 10 %)`);
  console.log(`  prototype / whole path, per token: ${fixed(prototypePerToken / dialoguePerToken)} (target ≥ 12)`);
  console.log(`  prototype-last / whole path, per token: ${fixed(perToken(results['prototype-last']) / dialoguePerToken)}`);
  console.log(`  conventional / whole path, per token: ${fixed(conventionalPerToken / dialoguePerToken)} (target ≥ 2)`);
  console.log(`  conventional / banter, per line (bare loops): ${fixed(lineMs(results.conventional) / banterLine)} (target ≥ 2)`);
  // The first streamed delta can lag the first token when that token is whitespace or part
  // of a character, which the stream holds back.
  console.log(`  time to first streamed text (median): ${fixed(median(dialogue.map((run) => run.firstTokenMs).filter(Number.isFinite)))} ms`);
  console.log(`cold page load (fresh profile): Dialogue ready ${fixed(cold.readyMs)} ms, first line (${cold.tokens} tokens) ${fixed(cold.firstLineMs)} ms after navigation start`);
} finally {
  await session.close();
}
