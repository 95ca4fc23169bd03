// Settings and helpers shared by the benchmark scripts: the line every benchmark decodes,
// the round counts from the environment, and the formatting of the printed figures.

import { execFileSync } from 'node:child_process';
import os from 'node:os';

import { CHROMIUM_PATH } from '../e2e/browser.mjs';

/** Timed lines per variant (`BANTER_BENCH_ROUNDS`). */
export const ROUNDS = positiveInteger('BANTER_BENCH_ROUNDS', 8);
// Untimed lines per variant before the timed rounds. V8 compiles hot WebAssembly
// functions with its optimizing tier only after they have run a while. The worker has its
// own instance of onnxruntime-web, which warms up apart from the page's, so the worker's
// first few lines run markedly slower than later ones.
export const WARMUP_LINES = positiveInteger('BANTER_BENCH_WARMUP', 12);
/** What the character heard in every benchmark line. */
export const HEARD = 'Where is the ball?';
/** The show's prompt around `HEARD`. */
export const PROMPT = `A man was asked "${HEARD}". He smiled and said, "`;
// New tokens per line: the prefill gives the first, each decoding step one more, so a line
// is one prefill and NEW_TOKENS - 1 decoding steps, as in the worker's engine.
export const NEW_TOKENS = 60;
/** Candidates per step, as the show's default top-k. */
export const TOP_K = 40;

/** Reads a positive integer from the environment variable `variable`, or returns `fallback`. */
export function positiveInteger(variable, fallback) {
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

/** Median of a list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `value` with `digits` decimals, or 'n/a' when it is not a finite number. */
export function fixed(value, digits = 2) {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Describes this machine and the Chromium that the benchmarks run, in one line. */
export function machine() {
  const cpus = os.cpus();
  let chromium = 'unknown';
  try {
    chromium = execFileSync(process.env.BANTER_CHROMIUM ?? CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).trim();
  } catch (err) {
    chromium = `unknown (${err.message})`;
  }
  return `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; ${chromium}`;
}
