// The golden lines of worker/tests/golden_lines.json, generated on native ONNX
// Runtime, must come out the same through the host, the worker and
// onnxruntime-web in Chromium.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';

import { openSession } from './browser.mjs';

const GOLDEN = new URL('../../worker/tests/golden_lines.json', import.meta.url);

describe('golden lines', () => {
  let session;
  let golden;

  before(async () => {
    golden = JSON.parse(await readFile(GOLDEN, 'utf8'));
    session = await openSession();
    await session.gotoBlank();
  });

  after(async () => {
    await session?.close();
  });

  test('bundle is the golden one', async () => {
    const response = await fetch(session.url('model/manifest.json'));
    const manifest = await response.json();
    const graph = manifest.files.find((file) => file.role === 'graph');
    assert.equal(
      graph.sha256,
      golden.graph_sha256,
      'the served model.onnx is not the one the golden lines were made with; see worker/tests/golden_lines.rs',
    );
  });

  test('Chromium lines equal native lines', { timeout: 120_000 }, async () => {
    const lines = await session.page.evaluate(async (cases) => {
      const host = await import(new URL('pkg/banter_host.js', document.baseURI).href);
      await host.default();
      const dialogue = await host.Dialogue.start({});
      const lines = [];
      for (const { heard, seed } of cases) {
        const line = await dialogue.say({ heard, seed: BigInt(seed) });
        lines.push({ tokenIds: Array.from(line.tokenIds), text: line.text, stopReason: line.stopReason });
      }
      dialogue.close();
      return lines;
    }, golden.cases.map(({ heard, seed }) => ({ heard, seed })));

    assert.equal(lines.length, 50);
    golden.cases.forEach((expected, index) => {
      const context = `heard ${JSON.stringify(expected.heard)}, seed ${expected.seed}`;
      assert.deepEqual(lines[index].tokenIds, expected.token_ids, context);
      assert.equal(lines[index].text, expected.text, context);
      assert.equal(lines[index].stopReason, expected.stop_reason, context);
    });
  });
});
