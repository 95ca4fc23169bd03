// The host library's JavaScript API (pkg/banter_host.js), called from a blank
// page on the site's origin, without the show.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { IDLE_WORKER_PATH, openSession } from './browser.mjs';

// Budget of the first `Dialogue.start`, which loads the model in the worker.
const START_TIMEOUT_MS = 60_000;

// Budget of a `Dialogue.start` that must fail (missing onnxruntime folder or
// worker script): its startTimeoutMs of at most 5 s plus slack for a busy machine.
const FAILED_START_BUDGET_MS = 20_000;

const STOP_REASONS = ['sentence', 'end_of_text', 'max_tokens'];

describe('host API', () => {
  let session;

  before(async () => {
    session = await openSession();
    await session.gotoBlank();

    // The tests share the module as `window.host` and one started dialogue as
    // `window.dialogue`.
    await session.page.evaluate(async () => {
      const host = await import(new URL('pkg/banter_host.js', document.baseURI).href);
      await host.default();
      window.host = host;
    });
  });

  after(async () => {
    await session?.close();
  });

  test('start reports the model', { timeout: START_TIMEOUT_MS + 10_000 }, async () => {
    const model = await session.page.evaluate(async () => {
      window.dialogue = await window.host.Dialogue.start({});
      const { name, standin, loadMs } = window.dialogue.model;
      return { name, standin, loadMs };
    });

    assert.equal(typeof model.name, 'string');
    assert.notEqual(model.name, '');
    assert.equal(typeof model.standin, 'boolean');
    assert.equal(typeof model.loadMs, 'number');
    assert.ok(model.loadMs >= 0, `loadMs is ${model.loadMs}`);
  });

  test('empty heard is rejected', { timeout: 30_000 }, async () => {
    const outcome = await session.page.evaluate(async () => {
      try {
        const line = await window.dialogue.say({ heard: '', seed: 1 });
        return { resolved: line.text };
      } catch (err) {
        return { isError: err instanceof Error, code: err.code, message: err.message };
      }
    });

    assert.equal(outcome.resolved, undefined, `say resolved with ${JSON.stringify(outcome.resolved)}`);
    assert.equal(outcome.isError, true);
    assert.equal(outcome.code, 'invalid_request');
    assert.notEqual(outcome.message, '');
  });

  test('same seed gives the same line', { timeout: 60_000 }, async () => {
    const [first, second] = await session.page.evaluate(async () => {
      const request = { heard: 'Where is the ball?', seed: 7 };
      const lines = [];
      for (let i = 0; i < 2; i += 1) {
        const line = await window.dialogue.say(request);
        lines.push({ ...line, tokenIds: Array.from(line.tokenIds) });
      }
      return lines;
    });

    assert.notEqual(first.text.trim(), '', 'generated text is blank');
    assert.ok(STOP_REASONS.includes(first.stopReason), `unexpected stopReason ${JSON.stringify(first.stopReason)}`);
    assert.ok(first.tokenIds.length > 0, 'line has no token ids');
    assert.equal(first.tokens, first.tokenIds.length, 'tokens differs from the number of token ids');
    assert.ok(Number.isInteger(first.promptTokens), `promptTokens is ${first.promptTokens}`);
    assert.ok(first.promptTokens > 0, `promptTokens is ${first.promptTokens}`);
    assert.equal(typeof first.elapsedMs, 'number');
    assert.ok(first.modelMs > 0, `modelMs is ${first.modelMs}`);
    assert.ok(first.modelMs <= first.elapsedMs, `modelMs ${first.modelMs} exceeds elapsedMs ${first.elapsedMs}`);

    assert.equal(second.text, first.text);
    assert.deepEqual(second.tokenIds, first.tokenIds);
    assert.equal(second.stopReason, first.stopReason);
  });

  test('missing runtime folder rejects start', { timeout: FAILED_START_BUDGET_MS + 10_000 }, async () => {
    const ortUrl = session.url('no-such-ort/').href;
    const outcome = await session.page.evaluate(async ({ ortUrl, budgetMs }) => {
      const started = performance.now();
      const hung = new Promise((resolve) => setTimeout(() => resolve({ hung: true }), budgetMs));
      const attempt = window.host.Dialogue.start({ ortUrl, startTimeoutMs: 5000 }).then(
        (dialogue) => {
          dialogue.close();
          return { resolved: true };
        },
        (err) => ({ code: err.code, message: err.message, elapsedMs: performance.now() - started }),
      );
      return Promise.race([attempt, hung]);
    }, { ortUrl, budgetMs: FAILED_START_BUDGET_MS });

    assert.notEqual(outcome.hung, true, `Dialogue.start did not settle within ${FAILED_START_BUDGET_MS} ms`);
    assert.notEqual(outcome.resolved, true, `Dialogue.start resolved with ortUrl ${ortUrl}`);
    assert.equal(outcome.code, 'model_load_failed');
    assert.match(outcome.message, /no-such-ort/);
  });

  test('missing worker script fails start', { timeout: FAILED_START_BUDGET_MS + 10_000 }, async () => {
    const workerUrl = session.url('no-such-worker.js').href;
    const outcome = await startOutcome(workerUrl, 5000);

    assert.notEqual(outcome.hung, true, `Dialogue.start did not settle within ${FAILED_START_BUDGET_MS} ms`);
    assert.notEqual(outcome.resolved, true, `Dialogue.start resolved with workerUrl ${workerUrl}`);
    assert.equal(outcome.code, 'worker_start_failed');
    assert.ok(outcome.elapsedMs < 5000, `rejected after ${outcome.elapsedMs} ms, not before the 5000 ms timeout`);
    assert.match(outcome.message, /no-such-worker\.js/);
  });

  test('silent worker times out start', { timeout: FAILED_START_BUDGET_MS + 10_000 }, async () => {
    const workerUrl = session.url(IDLE_WORKER_PATH).href;
    const outcome = await startOutcome(workerUrl, 3000);

    assert.notEqual(outcome.hung, true, `Dialogue.start did not settle within ${FAILED_START_BUDGET_MS} ms`);
    assert.notEqual(outcome.resolved, true, `Dialogue.start resolved with workerUrl ${workerUrl}`);
    assert.equal(outcome.code, 'worker_start_timeout');
    assert.ok(outcome.elapsedMs >= 3000, `rejected after ${outcome.elapsedMs} ms, before the 3000 ms timeout`);
    assert.match(outcome.message, /__e2e_idle_worker__\.js/);
  });

  // Starts a dialogue with `workerUrl` and returns how it settled: { resolved },
  // { code, message, elapsedMs } or { hung } after FAILED_START_BUDGET_MS.
  async function startOutcome(workerUrl, startTimeoutMs) {
    return session.page.evaluate(async ({ workerUrl, startTimeoutMs, budgetMs }) => {
      const started = performance.now();
      const hung = new Promise((resolve) => setTimeout(() => resolve({ hung: true }), budgetMs));
      const attempt = window.host.Dialogue.start({ workerUrl, startTimeoutMs }).then(
        (dialogue) => {
          dialogue.close();
          return { resolved: true };
        },
        (err) => ({ code: err.code, message: err.message, elapsedMs: performance.now() - started }),
      );
      return Promise.race([attempt, hung]);
    }, { workerUrl, startTimeoutMs, budgetMs: FAILED_START_BUDGET_MS });
  }

  test('seed is validated', { timeout: 60_000 }, async () => {
    const outcomes = await session.page.evaluate(async () => {
      const attempt = (seed) =>
        window.dialogue.say({ heard: 'Hello', seed, maxNewTokens: 2 }).then(
          (line) => ({ tokens: line.tokens }),
          (err) => ({ code: err.code, message: err.message }),
        );
      return {
        negative: await attempt(-1),
        fraction: await attempt(1.5),
        unsafe: await attempt(2 ** 53),
        missing: await attempt(undefined),
        bigint: await attempt(2n ** 64n - 1n),
        bigintTooLarge: await attempt(2n ** 64n),
      };
    });

    for (const name of ['negative', 'fraction', 'unsafe', 'missing', 'bigintTooLarge']) {
      assert.equal(outcomes[name].code, 'invalid_request', `${name}: ${JSON.stringify(outcomes[name])}`);
      assert.match(outcomes[name].message, /seed/, `${name}: ${outcomes[name].message}`);
    }
    assert.equal(outcomes.bigint.tokens, 2, `bigint seed: ${JSON.stringify(outcomes.bigint)}`);
  });
});
