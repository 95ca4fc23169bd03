// The generation runtime through the host API, on a blank page of the site:
// streaming, cancel, the queue, determinism across requests and workers, crash
// recovery, and the worker's wasm memory over many requests.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openSession } from './browser.mjs';

const HEARD = 'Where is the ball?';

// Requests of the memory test, and how many run before the first measurement.
const MEMORY_REQUESTS = 200;
const MEMORY_WARM_UP = 20;

describe('runtime', () => {
  let session;

  before(async () => {
    session = await openSession();
    await session.gotoBlank();
    await session.page.evaluate(async () => {
      const host = await import(new URL('pkg/banter_host.js', document.baseURI).href);
      await host.default();
      window.host = host;
      window.dialogue = await host.Dialogue.start({});
      // Settles a promise into a plain object, so outcomes can be compared in Node.
      window.outcome = (promise) =>
        promise.then(
          (line) => ({ text: line.text, tokenIds: Array.from(line.tokenIds), stopReason: line.stopReason }),
          (err) => ({ code: err.code, name: err.name, message: err.message }),
        );
    });
  });

  after(async () => {
    await session?.close();
  });

  test('streamed deltas concatenate to the line', { timeout: 60_000 }, async () => {
    const result = await session.page.evaluate(async (heard) => {
      const events = [];
      const line = await window.dialogue.say({
        heard,
        seed: 3,
        onToken: (delta) => events.push({ delta, at: performance.now() }),
      });
      return {
        deltas: events.map((event) => event.delta),
        text: line.text,
        elapsedMs: line.elapsedMs,
        firstAt: events[0]?.at,
        resolvedAt: performance.now(),
      };
    }, HEARD);

    assert.notEqual(result.text, '', 'the line is empty');
    assert.ok(result.deltas.length > 1, `only ${result.deltas.length} deltas`);
    assert.equal(result.deltas.join(''), result.text);
    assert.ok(result.firstAt < result.resolvedAt, 'the first delta arrived after the line');
    // The worker sends the first piece at once, then at most one per 16 ms, then the rest.
    const maxDeltas = Math.ceil(result.elapsedMs / 16) + 2;
    assert.ok(result.deltas.length <= maxDeltas, `${result.deltas.length} deltas in ${result.elapsedMs} ms; at most ${maxDeltas} expected`);
  });

  test('back-to-back requests match running alone', { timeout: 60_000 }, async () => {
    const result = await session.page.evaluate(async (heard) => {
      const alone = [];
      for (const seed of [11, 12]) {
        alone.push(await window.outcome(window.dialogue.say({ heard, seed })));
      }
      const together = await Promise.all([11, 12].map((seed) => window.outcome(window.dialogue.say({ heard, seed }))));
      return { alone, together };
    }, HEARD);

    assert.deepEqual(result.together[0], result.alone[0]);
    assert.deepEqual(result.together[1], result.alone[1]);
    assert.notDeepEqual(result.alone[0].tokenIds, result.alone[1].tokenIds);
  });

  test('cancel after two deltas, then a normal line', { timeout: 60_000 }, async () => {
    const result = await session.page.evaluate(async (heard) => {
      const reference = await window.outcome(window.dialogue.say({ heard, seed: 21 }));

      // The cancelled request sets the longest line allowed, 256 tokens, and this seed
      // reaches no sentence end. The worker sends a piece of text at most every 16 ms, so
      // the second piece comes long before the line would end, even on a fast machine.
      const controller = new AbortController();
      let deltas = 0;
      const cancelled = await window.outcome(
        window.dialogue.say({
          heard,
          seed: 22,
          maxNewTokens: 256,
          signal: controller.signal,
          onToken: () => {
            deltas += 1;
            if (deltas === 2) controller.abort();
          },
        }),
      );

      const after = await window.outcome(window.dialogue.say({ heard, seed: 21 }));
      return { reference, cancelled, deltas, after };
    }, HEARD);

    assert.equal(result.cancelled.code, 'cancelled');
    assert.equal(result.cancelled.name, 'AbortError');
    assert.ok(result.deltas >= 2, `only ${result.deltas} deltas arrived before the cancel`);
    assert.ok(result.deltas <= 4, `${result.deltas} deltas arrived after the cancel`);
    assert.deepEqual(result.after, result.reference);
  });

  test('queued request can be cancelled', { timeout: 60_000 }, async () => {
    const result = await session.page.evaluate(async (heard) => {
      const controller = new AbortController();
      const running = window.outcome(window.dialogue.say({ heard, seed: 31 }));
      const queued = window.outcome(window.dialogue.say({ heard, seed: 32, signal: controller.signal }));
      controller.abort();
      const aborted = await window.outcome(
        window.dialogue.say({ heard, seed: 33, signal: AbortSignal.abort() }),
      );
      return { running: await running, queued: await queued, aborted };
    }, HEARD);

    assert.equal(result.queued.code, 'cancelled');
    assert.equal(result.aborted.code, 'cancelled');
    assert.equal(typeof result.running.text, 'string', JSON.stringify(result.running));
  });

  test('requests beyond the queue are busy', { timeout: 60_000 }, async () => {
    const outcomes = await session.page.evaluate(async (heard) => {
      const requests = [];
      for (let seed = 0; seed < 40; seed += 1) {
        requests.push(window.outcome(window.dialogue.say({ heard, seed, maxNewTokens: 1 })));
      }
      return Promise.all(requests);
    }, HEARD);

    const busy = outcomes.filter((outcome) => outcome.code === 'busy');
    const lines = outcomes.filter((outcome) => typeof outcome.text === 'string');
    assert.ok(busy.length >= 1, 'no request was rejected as busy');
    assert.equal(busy.length + lines.length, outcomes.length, JSON.stringify(outcomes.filter((o) => o.code && o.code !== 'busy')));
    assert.ok(lines.length >= 32, `only ${lines.length} of 40 requests got a line`);
  });

  test('killed worker rejects pending calls and recovers', { timeout: 90_000 }, async () => {
    const result = await session.page.evaluate(async (heard) => {
      const reference = await window.outcome(window.dialogue.say({ heard, seed: 41 }));
      const before = window.dialogue.stats();

      // Kill the worker once the first request streams, so all three are in flight.
      let streaming;
      const firstToken = new Promise((resolve) => { streaming = resolve; });
      const pending = [41, 42, 43].map((seed) =>
        window.outcome(window.dialogue.say({ heard, seed, maxNewTokens: 256, onToken: () => streaming() })),
      );
      await firstToken;
      const inFlight = window.dialogue.stats().pending;
      const killedAt = performance.now();
      window.dialogue.terminateWorker();
      const outcomes = await Promise.all(pending);
      const rejectedAfterMs = performance.now() - killedAt;

      const recovered = await window.outcome(window.dialogue.say({ heard, seed: 41 }));
      return { reference, before, inFlight, outcomes, rejectedAfterMs, recovered, stats: window.dialogue.stats() };
    }, HEARD);

    assert.equal(result.inFlight, 3, 'requests in flight when the worker was killed');
    for (const outcome of result.outcomes) {
      assert.equal(outcome.code, 'worker_crashed', JSON.stringify(outcome).slice(0, 200));
    }
    assert.ok(result.rejectedAfterMs <= 1000, `pending calls rejected after ${result.rejectedAfterMs.toFixed(0)} ms`);
    assert.deepEqual(result.recovered, result.reference);
    assert.equal(result.stats.crashes, result.before.crashes + 1);
    assert.equal(result.stats.workersStarted, result.before.workersStarted + 1);
    assert.equal(result.stats.workerAlive, true);
  });

  test('no long task on the page while lines stream', { timeout: 60_000 }, async (t) => {
    const result = await session.page.evaluate(async (heard) => {
      const longTasks = [];
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) longTasks.push(entry.duration);
      });
      observer.observe({ type: 'longtask' });
      let deltas = 0;
      for (let seed = 0; seed < 20; seed += 1) {
        await window.dialogue.say({ heard, seed, onToken: () => { deltas += 1; } });
      }
      // Long-task entries are delivered after the task; give them a turn.
      await new Promise((resolve) => setTimeout(resolve, 100));
      observer.disconnect();
      return { longTasks, deltas };
    }, HEARD);

    t.diagnostic(`${result.deltas} deltas over 20 lines; long tasks on the page: ${JSON.stringify(result.longTasks)}`);
    assert.ok(result.deltas > 20, `only ${result.deltas} deltas`);
    assert.deepEqual(result.longTasks, [], 'the page had tasks over 50 ms while banter generated');
  });

  test('wasm memory stays flat over many requests', { timeout: 180_000 }, async (t) => {
    const run = (count, firstSeed) =>
      session.page.evaluate(async ({ heard, count, firstSeed }) => {
        for (let i = 0; i < count; i += 1) {
          const seed = firstSeed + i;
          if (i % 3 === 2) {
            // Every third request is cancelled at its first streamed piece.
            const controller = new AbortController();
            await window.outcome(
              window.dialogue.say({ heard, seed, signal: controller.signal, onToken: () => controller.abort() }),
            );
          } else {
            await window.outcome(window.dialogue.say({ heard, seed }));
          }
        }
      }, { heard: HEARD, count, firstSeed });
    const workerMemory = async () => {
      const workers = session.page.workers();
      assert.equal(workers.length, 1, `expected one worker, found ${workers.length}`);
      return workers[0].evaluate(() => globalThis.banterWasmMemory.buffer.byteLength);
    };

    await run(MEMORY_WARM_UP, 1000);
    const warm = await workerMemory();
    await run(MEMORY_REQUESTS, 2000);
    const afterRequests = await workerMemory();

    const summary = `worker wasm memory: ${warm} bytes after ${MEMORY_WARM_UP} warm-up requests, ${afterRequests} bytes after ${MEMORY_REQUESTS} more (every third cancelled)`;
    t.diagnostic(summary);
    console.log(summary);
    assert.equal(afterRequests, warm, summary);
  });

  test('no errors on the page', () => {
    const unexpected = session.consoleErrors.filter((entry) => !/the worker stopped/.test(entry.text));
    assert.deepEqual(unexpected, []);
    assert.deepEqual(session.pageErrors, []);
    assert.deepEqual(session.blocked, []);
  });
});
