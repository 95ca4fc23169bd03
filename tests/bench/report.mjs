// Helpers shared by the benchmark scripts: settings from the environment and the figures
// they print.

import { execFileSync } from 'node:child_process';
import os from 'node:os';

import { CHROMIUM_PATH } from '../e2e/browser.mjs';

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
