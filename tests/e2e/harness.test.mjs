// Checks of the recording session itself: if these fail, the other tests'
// checks of requests prove nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EVAL_WORKER_PATH, PROBE_PATH, openSession } from './browser.mjs';
import { loadHeaderRules } from './headers.mjs';

// Time a CSP report may take to reach the session's report-uri.
const REPORT_TIMEOUT_MS = 10_000;

describe('session', () => {
  let session;

  before(async () => {
    session = await openSession();
    await session.gotoBlank();
  });

  after(async () => {
    await session?.close();
  });

  test('records requests of workers', { timeout: 30_000 }, async () => {
    const probeUrl = session.url(PROBE_PATH).href;

    // The worker comes from a blob: URL, which is not routed, so the only
    // routed request it can cause is its own fetch of the probe file.
    const body = await session.page.evaluate(async (url) => {
      const source = 'onmessage = async (event) => postMessage(await (await fetch(event.data)).text());';
      const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
      const reply = new Promise((resolve, reject) => {
        worker.onmessage = (event) => resolve(event.data);
        worker.onerror = (event) => reject(new Error(`worker failed: ${event.message}`));
      });
      worker.postMessage(url);
      try {
        return await reply;
      } finally {
        worker.terminate();
      }
    }, probeUrl);

    assert.equal(body, 'probe');
    const probeRequests = session.requests.filter((request) => request.url === probeUrl);
    assert.equal(probeRequests.length, 1, `expected one routed request of ${probeUrl}`);
    assert.ok(session.workers.length >= 1, 'the session saw no worker start');
  });

  test('blocks off-origin requests', { timeout: 30_000 }, async () => {
    // Another port of 127.0.0.1 is another origin. The route aborts the request
    // before Chromium opens a connection.
    const offOrigin = 'http://127.0.0.1:9/e2e-off-origin';
    assert.notEqual(new URL(offOrigin).origin, session.site.origin, 'pick another port for the off-origin check');

    const outcome = await session.page.evaluate(async (url) => {
      try {
        await fetch(url);
        return 'fetched';
      } catch (err) {
        return `rejected: ${err.name}`;
      }
    }, offOrigin);

    assert.equal(outcome, 'rejected: TypeError');
    assert.deepEqual(session.blocked.map((request) => request.url), [offOrigin]);
  });
});

describe('session with the site headers', () => {
  let session;

  before(async () => {
    session = await openSession({ headerRules: await loadHeaderRules() });
    await session.gotoBlank();
  });

  after(async () => {
    await session?.close();
  });

  test('records page CSP violations', { timeout: 30_000 }, async () => {
    // An inline <style> element breaks style-src 'self'.
    await session.page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body { color: red; }';
      document.head.append(style);
    });

    await session.page.waitForTimeout(200);
    const directives = session.cspViolations.map((violation) => violation.directive);
    assert.ok(directives.includes('style-src-elem'), `violations: ${JSON.stringify(session.cspViolations)}`);
  });

  test('records worker CSP violations', { timeout: 30_000 }, async () => {
    const workerUrl = session.url(EVAL_WORKER_PATH).href;
    // The worker stays alive until the end of the test: terminating it could
    // drop its report before it is sent.
    const outcome = await session.page.evaluate((url) => new Promise((resolve, reject) => {
      const worker = new Worker(url, { type: 'module' });
      window.evalWorker = worker;
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(`worker failed: ${event.message}`));
    }), workerUrl);
    assert.equal(outcome, 'EvalError', 'eval() ran in the worker despite the CSP');

    const fromWorker = (report) => report['document-uri'] === workerUrl || report['source-file'] === workerUrl;
    const deadline = Date.now() + REPORT_TIMEOUT_MS;
    while (!session.cspReports.some(fromWorker) && Date.now() < deadline) {
      await session.page.waitForTimeout(100);
    }
    await session.page.evaluate(() => window.evalWorker.terminate());
    assert.ok(
      session.cspReports.some(fromWorker),
      `no CSP report from ${workerUrl}; reports: ${JSON.stringify(session.cspReports)}`,
    );
  });
});
