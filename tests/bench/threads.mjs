// One onnxruntime-web thread against two, run by `cargo xtask bench` after graphs.mjs.
//
// onnxruntime-web runs its operators on more than one thread only on a cross-origin
// isolated page (Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp), where SharedArrayBuffer exists. This
// script serves every file with those two headers and opens two pages of the site in one
// Chromium. It sets `ort.env.wasm.numThreads` to 1 on one page and 2 on the other, since
// the runtime reads the setting once per page when it starts. Then both pages decode
// lines with banter's graph in turn, with the same loop as graphs.mjs.

import { encode } from 'gpt-3-encoder';

import { BLANK_PAGE_PATH, openSession } from '../e2e/browser.mjs';
import { parseHeaderRules } from '../e2e/headers.mjs';
import { setUpGraphs } from './page_loops.mjs';
import {
  NEW_TOKENS, PROMPT, ROUNDS, TOP_K, WARMUP_LINES, fixed, machine, median,
} from './report.mjs';

const THREAD_COUNTS = [1, 2];
const VARIANT = { name: 'banter', bundle: 'model/', wholeSequence: false };

const ISOLATION_HEADERS = `/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
`;

const promptIds = encode(PROMPT);
const session = await openSession({ headerRules: parseHeaderRules(ISOLATION_HEADERS) });
try {
  const pages = [];
  for (const threads of THREAD_COUNTS) {
    const page = pages.length === 0 ? session.page : await session.context.newPage();
    await page.goto(session.url(BLANK_PAGE_PATH).href);
    const isolated = await page.evaluate(() => globalThis.crossOriginIsolated === true);
    if (!isolated) {
      throw new Error('the page is not cross-origin isolated, so onnxruntime-web cannot start threads; check that the server passes the COOP and COEP headers');
    }
    await page.evaluate(setUpGraphs, {
      site: session.url('').href,
      variants: [VARIANT],
      promptIds,
      newTokens: NEW_TOKENS,
      topK: TOP_K,
      threads,
    });
    // onnxruntime-web runs its extra threads in Web Workers of the page.
    pages.push({ threads, page, runs: [], workers: page.workers().length });
  }

  const line = ({ page }) => page.evaluate((name) => globalThis.benchGraphLine(name), VARIANT.name);
  for (let round = 0; round < WARMUP_LINES; round += 1) {
    for (const entry of pages) {
      await line(entry);
    }
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const entry of pages) {
      entry.runs.push(await line(entry));
    }
  }

  const stepMs = (runs) => median(runs.map((run) => (run.lineMs - run.prefillMs) / (NEW_TOKENS - 1)));
  const lineMs = (runs) => median(runs.map((run) => run.lineMs));
  const prefillMs = (runs) => median(runs.map((run) => run.prefillMs));
  const single = pages[0].runs;
  const singleTokens = single.at(-1).tokens.join(',');

  console.log(`\nonnxruntime-web threads, banter's graph, cross-origin isolated pages`);
  console.log(`machine: ${machine()}`);
  console.log(`${promptIds.length}-token prompt, ${NEW_TOKENS} new tokens per line, greedy; ${WARMUP_LINES} untimed and ${ROUNDS} timed lines per thread count, alternating`);
  console.log(['threads'.padEnd(8), 'workers'.padStart(8), 'prefill ms'.padStart(11), 'step ms'.padStart(8), 'line ms'.padStart(8), '÷ 1 thread'.padStart(11), '  same greedy line'].join(' '));
  for (const { threads, runs, workers } of pages) {
    console.log([
      String(threads).padEnd(8),
      String(workers).padStart(8),
      fixed(prefillMs(runs), 3).padStart(11),
      fixed(stepMs(runs), 3).padStart(8),
      fixed(lineMs(runs)).padStart(8),
      fixed(lineMs(runs) / lineMs(single)).padStart(11),
      `  ${runs.at(-1).tokens.join(',') === singleTokens ? 'yes' : 'no'}`,
    ].join(' '));
  }
} finally {
  await session.close();
}
