// The show's page, as a visitor gets it, with the headers of www/_headers: the
// scene renders, the first generated line appears in a bubble and in the
// transcript, and nothing leaves the site's origin or breaks its CSP.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openSession, screenshotStats } from './browser.mjs';
import { loadHeaderRules } from './headers.mjs';

// Time from page load to the first generated line. Generous, because the model
// loads in a worker on a possibly busy machine.
const FIRST_LINE_TIMEOUT_MS = 60_000;

// Lowest frame rate accepted while a line is generated, in frames per second.
// Headless Chromium renders with SwiftShader on the CPU, so this is far below
// what a GPU reaches.
const MIN_FPS_DURING_GENERATION = 2;

// Time from the first line to a line shown in a bubble: one encounter at speed 1
// lasts 6 s, and encounters start every few seconds.
const BUBBLE_TIMEOUT_MS = 40_000;

const STOP_REASONS = ['sentence', 'end_of_text', 'max_tokens'];

describe('show page', () => {
  let session;
  let response;

  before(async () => {
    session = await openSession({ headerRules: await loadHeaderRules() });
    response = await session.goto('');
  });

  after(async () => {
    await session?.close();
  });

  test('page loads', async () => {
    assert.ok(response, 'navigation returned no response');
    assert.equal(response.status(), 200);
    assert.match(await session.page.title(), /banter/);
    assert.equal(await session.page.locator('canvas#stage').count(), 1);
  });

  test('scene renders to the canvas', { timeout: 30_000 }, async () => {
    await session.page.waitForFunction(() => window.banter?.frames >= 10, null, { timeout: 20_000 });

    const stats = await screenshotStats(session.page, session.page.locator('#stage'));
    assert.ok(stats.width > 0, `canvas is ${stats.width} px wide`);
    assert.ok(stats.height > 0, `canvas is ${stats.height} px high`);
    assert.ok(stats.distinctColors >= 16, `only ${stats.distinctColors} distinct colours on the canvas`);
    assert.ok(stats.dominantShare < 0.9, `${(stats.dominantShare * 100).toFixed(1)}% of pixels have one colour`);
  });

  test('first line appears', { timeout: FIRST_LINE_TIMEOUT_MS + 10_000 }, async () => {
    await session.page.waitForFunction(
      () => window.banter?.lines.length > 0 || window.banter?.error,
      null,
      { timeout: FIRST_LINE_TIMEOUT_MS },
    );

    const { error, lines } = await session.page.evaluate(() => ({
      error: window.banter.error,
      lines: window.banter.lines,
    }));
    assert.equal(error, null, `page shows an error: ${JSON.stringify(error)}`);

    const [line] = lines;
    assert.equal(typeof line.text, 'string');
    assert.notEqual(line.text.trim(), '', `generated text is blank: ${JSON.stringify(line)}`);
    assert.ok(STOP_REASONS.includes(line.stopReason), `unexpected stopReason ${JSON.stringify(line.stopReason)}`);
    assert.ok(line.tokenIds.length > 0, 'line has no token ids');
  });

  // The first line can arrive after its encounter ended (the simulation does not
  // wait for it), so the test waits for any generated line shown in a bubble.
  test('bubble shows a line', { timeout: BUBBLE_TIMEOUT_MS + 10_000 }, async () => {
    // The bubble's box is read in the same call, because the bubble closes when
    // its encounter ends.
    const handle = await session.page.waitForFunction(() => {
      for (const bubble of document.querySelectorAll('.bubble:not([hidden])')) {
        const text = bubble.querySelector('.text').textContent;
        const line = window.banter.lines.find((entry) => entry.speaker === bubble.dataset.speaker && entry.text.trim() === text);
        const placed = bubble.style.transform !== '' && bubble.style.visibility !== 'hidden';
        if (line && line.text.trim() !== '' && placed) {
          const { x, y, width, height } = bubble.getBoundingClientRect();
          return { speaker: line.speaker, text, box: { x, y, width, height } };
        }
      }
      return null;
    }, null, { timeout: BUBBLE_TIMEOUT_MS });
    const { box } = await handle.jsonValue();

    const viewport = session.page.viewportSize();
    assert.ok(box, 'bubble has no bounding box');
    const where = JSON.stringify(box);
    assert.ok(box.x >= 0, `bubble is off the left edge: ${where}`);
    assert.ok(box.x + box.width <= viewport.width, `bubble is off the right edge: ${where}`);
    assert.ok(box.y >= 0, `bubble is off the top edge: ${where}`);
    assert.ok(box.y + box.height <= viewport.height, `bubble is off the bottom edge: ${where}`);
  });

  test('frames advance during generation', async () => {
    const line = await session.page.evaluate(() => window.banter.lines[0]);
    const expected = Math.floor((line.elapsedMs / 1000) * MIN_FPS_DURING_GENERATION);
    assert.ok(
      line.framesDuring >= expected,
      `${line.framesDuring} frames rendered during ${line.elapsedMs.toFixed(0)} ms of generation, expected at least ${expected}`,
    );

    const before = await session.page.evaluate(() => window.banter.frames);
    await session.page.waitForTimeout(1000);
    const after = await session.page.evaluate(() => window.banter.frames);
    assert.ok(after - before >= MIN_FPS_DURING_GENERATION, `only ${after - before} frames in 1 s after the first line`);
  });

  test('transcript lists question and answer', async () => {
    const { entries, items } = await session.page.evaluate(() => ({
      entries: window.banter.transcript.map(({ kind, tick, speaker, text, status }) => ({ kind, tick, speaker, text, status })),
      items: Array.from(document.querySelectorAll('#transcript-list li'), (item) => item.textContent),
    }));
    const answer = entries.find((entry) => entry.kind === 'answer' && entry.status === 'done');
    const question = entries.find((entry) => entry.kind === 'question');

    assert.ok(question, `no question in the transcript: ${JSON.stringify(entries)}`);
    assert.ok(answer, `no finished answer in the transcript: ${JSON.stringify(entries)}`);
    assert.ok(question.tick < answer.tick, `question at tick ${question.tick}, answer at tick ${answer.tick}`);
    assert.ok(items.includes(`t${question.tick} ${question.speaker}: ${question.text}`), `items: ${JSON.stringify(items)}`);
    assert.ok(items.includes(`t${answer.tick} ${answer.speaker}: ${answer.text.trim()}`), `items: ${JSON.stringify(items)}`);
    assert.equal(await session.page.locator('#transcript-list').getAttribute('aria-live'), 'polite');
  });

  test('status names the model', async () => {
    const { model, status } = await session.page.evaluate(() => ({
      model: window.banter.model,
      status: document.getElementById('status').textContent,
    }));

    assert.equal(typeof model.name, 'string');
    assert.equal(typeof model.standin, 'boolean');
    assert.ok(status.includes(model.name), `status ${JSON.stringify(status)} does not name ${model.name}`);
    if (model.standin) {
      assert.ok(status.includes('stand-in weights'), `status ${JSON.stringify(status)} does not say stand-in weights`);
    } else {
      assert.ok(!status.includes('stand-in'), `status ${JSON.stringify(status)} claims stand-in weights`);
    }
  });

  test('HUD shows frame times', async () => {
    const text = await session.page.locator('#frame-times').textContent();
    assert.match(text, /\d+\.\d ms p50 · \d+\.\d ms p99/);
  });

  test('HUD shows throughput and queue', async () => {
    await session.page.waitForFunction(() => /tokens\/s/.test(document.getElementById('throughput').textContent));
    const text = await session.page.locator('#throughput').textContent();
    assert.match(text, /\d+\.\d tokens\/s \(last line\) · queue \d+/);
    assert.equal(await session.page.locator('#load-progress').isHidden(), true, 'loading bar still shown');
  });

  test('developer panel is hidden', async () => {
    assert.equal(await session.page.locator('#dev').isHidden(), true);
  });

  test('no CSP violation', () => {
    assert.deepEqual(session.cspViolations, []);
    assert.deepEqual(session.cspReports, []);
  });

  test('site headers are sent', () => {
    assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self' 'wasm-unsafe-eval'/);
    assert.equal(response.headers()['cache-control'], 'no-cache');
  });

  test('no console or page errors', () => {
    assert.deepEqual(session.consoleErrors, []);
    assert.deepEqual(session.pageErrors, []);
  });

  test('no request fails', () => {
    assert.deepEqual(session.httpErrors, []);
  });

  test('requests stay on the site', () => {
    assert.deepEqual(session.blocked, [], 'requests to other origins were made (and aborted)');

    const sitePath = session.site.pathname;
    for (const request of session.requests) {
      const url = new URL(request.url);
      assert.equal(url.origin, session.site.origin, `request to another origin: ${request.url}`);
      assert.ok(url.pathname.startsWith(sitePath), `request outside the site path ${sitePath}: ${request.url}`);
    }
  });

  test('worker loads the model manifest', () => {
    const manifest = session.url('model/manifest.json').href;
    assert.ok(session.workers.length >= 1, 'the page started no worker');
    assert.ok(
      session.requests.some((request) => request.url === manifest),
      `no request of ${manifest}; requests: ${session.requests.map((request) => request.url).join(', ')}`,
    );
  });
});
