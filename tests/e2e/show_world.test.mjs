// The world seed fixes the show: two loads with the same seed give the same
// first lines, at different speeds and under a sub-path, and another seed gives
// other lines. The sub-path load also checks that the page and its worker keep
// every request below /show/ and break no CSP rule there.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openSession } from './browser.mjs';
import { loadHeaderRules } from './headers.mjs';

const LINES = 10;

// Budget of one load to reach LINES generated lines. At speed 8 the simulation
// needs about 25 s of its time (a few s of wall-clock time) for ten encounters of
// seed 7, and the worker about 1 s per line on a busy 2-core machine.
const LOAD_TIMEOUT_MS = 120_000;

// The fields of a line that the world seed must fix. Timing fields are left out.
function fixedFields(line) {
  const { tick, encounter, speaker, asker, heard, seed, text, tokenIds, stopReason } = line;
  return { tick, encounter, speaker, asker, heard, seed, text, tokenIds, stopReason };
}

// Loads the show at `query`, waits for LINES lines and returns them with the session.
async function loadShow({ query, mount = '' }) {
  const session = await openSession({ headerRules: await loadHeaderRules(), mount });
  try {
    await session.goto(query);
    await session.page.waitForFunction(
      (count) => window.banter?.lines.length >= count || window.banter?.error,
      LINES,
      { timeout: LOAD_TIMEOUT_MS },
    );
    const { error, lines, transcript } = await session.page.evaluate(() => ({
      error: window.banter.error,
      lines: window.banter.lines,
      transcript: window.banter.transcript.map(({ kind, tick, speaker, text }) => ({ kind, tick, speaker, text })),
    }));
    assert.equal(error, null, `page at ${query} shows an error: ${JSON.stringify(error)}`);
    return { session, lines: lines.slice(0, LINES).map(fixedFields), transcript };
  } catch (err) {
    await session.close();
    throw err;
  }
}

describe('world seed', { timeout: 3 * LOAD_TIMEOUT_MS + 30_000 }, () => {
  let first;
  let again;
  let other;

  before(async () => {
    first = await loadShow({ query: '?seed=7&speed=8' });
    again = await loadShow({ query: '?seed=7&speed=4', mount: 'show/' });
    other = await loadShow({ query: '?seed=8&speed=8' });
  });

  after(async () => {
    await first?.session.close();
    await again?.session.close();
    await other?.session.close();
  });

  test('same seed gives same lines', () => {
    assert.equal(first.lines.length, LINES);
    assert.deepEqual(again.lines, first.lines);
  });

  test('same seed gives same questions', () => {
    const questions = (transcript) => transcript.filter((entry) => entry.kind === 'question').slice(0, LINES);
    assert.deepEqual(questions(again.transcript), questions(first.transcript));
  });

  test('other seed gives other lines', () => {
    assert.equal(other.lines.length, LINES);
    assert.notDeepEqual(other.lines.map((line) => line.text), first.lines.map((line) => line.text));
    assert.notDeepEqual(other.lines.map((line) => line.tick), first.lines.map((line) => line.tick));
  });

  test('line seeds are safe integers', () => {
    for (const line of [...first.lines, ...other.lines]) {
      assert.ok(Number.isSafeInteger(line.seed), `seed ${line.seed} of the line at tick ${line.tick} is not a safe integer`);
      assert.ok(line.seed >= 0, `seed ${line.seed} of the line at tick ${line.tick} is negative`);
    }
  });

  test('sub-path requests stay below it', () => {
    const { session } = again;
    assert.equal(session.site.pathname.endsWith('/show/'), true, `site is ${session.site.href}`);
    assert.deepEqual(session.blocked, [], 'requests to other origins were made (and aborted)');
    assert.ok(session.requests.length > 0, 'no request recorded');
    for (const request of session.requests) {
      assert.ok(request.url.startsWith(session.site.href), `request outside ${session.site.href}: ${request.url}`);
    }
    assert.ok(session.workers.some((url) => url.startsWith(session.site.href)), `workers: ${session.workers.join(', ')}`);
  });

  test('no CSP violation or error', () => {
    for (const { session } of [first, again, other]) {
      assert.deepEqual(session.cspViolations, [], `violations at ${session.site.href}`);
      assert.deepEqual(session.cspReports, [], `reports at ${session.site.href}`);
      assert.deepEqual(session.consoleErrors, [], `console errors at ${session.site.href}`);
      assert.deepEqual(session.pageErrors, [], `page errors at ${session.site.href}`);
      assert.deepEqual(session.httpErrors, [], `HTTP errors at ${session.site.href}`);
    }
  });
});
