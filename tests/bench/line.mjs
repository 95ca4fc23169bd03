// Benchmark of one spoken line in headless Chromium, run by `cargo xtask bench`.
//
// In one browser session it measures:
// - cold start: `Dialogue.start` until the worker is ready, and until the first line;
// - per line, alternating variants on the same model and prompt:
//   baseline: onnxruntime-web called directly on the page, re-running the bundle's graph
//             on the whole sequence each step, with a JavaScript top-k sampler;
//   banter:   the whole path, host → worker → engine → the same graph.
// and prints medians and the ratio banter / baseline. Every line is forced to 60 new
// tokens for the baseline; banter's lines stop at a sentence end or end-of-text, so the
// comparison uses milliseconds per token.

import { encode } from 'gpt-3-encoder';

import { openSession } from '../e2e/browser.mjs';

const ROUNDS = Number(process.env.BANTER_BENCH_ROUNDS ?? 8);
const HEARD = 'Where is the ball?';
const PROMPT = `A man was asked "${HEARD}". He smiled and said, "`;
const NEW_TOKENS = 60;
const TOP_K = 40;
const TEMPERATURE = 0.9;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const session = await openSession();
try {
  await session.gotoBlank();
  const site = session.url('').href;

  const cold = await session.page.evaluate(async ({ site, heard }) => {
    const { default: init, Dialogue } = await import(new URL('pkg/banter_host.js', site).href);
    await init();
    const started = performance.now();
    const dialogue = await Dialogue.start({});
    const ready = performance.now();
    const line = await dialogue.say({ heard, seed: 0 });
    const firstLine = performance.now();
    globalThis.benchDialogue = dialogue;
    return { readyMs: ready - started, firstLineMs: firstLine - started, tokens: line.tokens, model: dialogue.model };
  }, { site, heard: HEARD });

  await session.page.evaluate(async ({ site }) => {
    const ort = await import(new URL('ort/ort.wasm.min.mjs', site).href);
    ort.env.wasm.numThreads = 1;
    globalThis.benchSession = await ort.InferenceSession.create(new URL('model/model.onnx', site).href);
    globalThis.benchOrt = ort;
  }, { site });

  const baseline = [];
  const banter = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    baseline.push(await session.page.evaluate(async ({ promptIds, newTokens, topK, temperature, seed }) => {
      const ort = globalThis.benchOrt;
      const ids = promptIds.slice();
      let state = seed >>> 0;
      const random = () => {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        return state / 4294967296;
      };
      const started = performance.now();
      for (let step = 0; step < newTokens; step += 1) {
        const input = new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
        const output = await globalThis.benchSession.run({ input_ids: input });
        const logits = output.logits.data;
        const best = [];
        for (let id = 0; id < logits.length; id += 1) {
          if (best.length < topK || logits[id] > best[best.length - 1][0]) {
            best.push([logits[id], id]);
            best.sort((a, b) => b[0] - a[0]);
            if (best.length > topK) best.pop();
          }
        }
        const weights = best.map(([logit]) => Math.exp((logit - best[0][0]) / temperature));
        const total = weights.reduce((sum, weight) => sum + weight, 0);
        let draw = random() * total;
        let choice = best[best.length - 1][1];
        for (let i = 0; i < best.length; i += 1) {
          draw -= weights[i];
          if (draw < 0) {
            choice = best[i][1];
            break;
          }
        }
        ids.push(choice);
      }
      return { ms: performance.now() - started, tokens: newTokens };
    }, { promptIds: encode(PROMPT), newTokens: NEW_TOKENS, topK: TOP_K, temperature: TEMPERATURE, seed: round + 1 }));

    banter.push(await session.page.evaluate(async ({ heard, seed, newTokens }) => {
      const started = performance.now();
      const line = await globalThis.benchDialogue.say({ heard, seed, maxNewTokens: newTokens });
      return { ms: performance.now() - started, tokens: line.tokens, workerMs: line.elapsedMs };
    }, { heard: HEARD, seed: round + 1, newTokens: NEW_TOKENS }));
  }

  const perToken = (runs) => median(runs.map((run) => run.ms / run.tokens));
  const baselinePerToken = perToken(baseline);
  const banterPerToken = perToken(banter);
  const format = (value) => value.toFixed(2);

  console.log(`model: ${cold.model.name} (stand-in: ${cold.model.standin})`);
  console.log(`cold start: worker ready ${format(cold.readyMs)} ms, first line ${format(cold.firstLineMs)} ms (${cold.tokens} tokens)`);
  console.log(`rounds: ${ROUNDS}, prompt: ${encode(PROMPT).length} tokens, up to ${NEW_TOKENS} new tokens`);
  console.log('variant                          line ms (median)   ms/token (median)');
  console.log(`baseline: ort on the page, JS    ${format(median(baseline.map((run) => run.ms))).padStart(16)}   ${format(baselinePerToken).padStart(17)}`);
  console.log(`banter: host → worker → engine   ${format(median(banter.map((run) => run.ms))).padStart(16)}   ${format(banterPerToken).padStart(17)}`);
  console.log(`ratio banter / baseline, ms per token: ${format(banterPerToken / baselinePerToken)}`);
} finally {
  await session.close();
}
