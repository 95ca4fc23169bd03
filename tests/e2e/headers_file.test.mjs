// www/_headers: the rules Cloudflare Pages applies to the site's responses.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { headersFor, loadHeaderRules, parseHeaderRules } from './headers.mjs';

const PATHS = ['/', '/index.html', '/main.js', '/pkg/worker.js', '/pkg/banter_worker_bg.wasm', '/model/model.onnx', '/ort/ort.wasm.min.mjs'];

function directives(policy) {
  return new Map(policy.split(';').map((part) => {
    const [name, ...sources] = part.trim().split(/\s+/);
    return [name, sources];
  }));
}

test('every path gets the CSP', async () => {
  const rules = await loadHeaderRules();
  for (const path of PATHS) {
    const policy = headersFor(rules, path)['content-security-policy'];
    assert.ok(policy, `${path} has no Content-Security-Policy`);

    const parsed = directives(policy);
    assert.deepEqual(parsed.get('default-src'), ["'none'"], `${path}: ${policy}`);
    assert.deepEqual(parsed.get('script-src'), ["'self'", "'wasm-unsafe-eval'"], `${path}: ${policy}`);
    assert.deepEqual(parsed.get('worker-src'), ["'self'"], `${path}: ${policy}`);
    assert.deepEqual(parsed.get('connect-src'), ["'self'"], `${path}: ${policy}`);
    assert.doesNotMatch(policy, /unsafe-inline|'unsafe-eval'|\*|https?:/, `${path}: ${policy}`);
  }
});

test('fixed names are not cached as immutable', async () => {
  const rules = await loadHeaderRules();
  for (const path of PATHS) {
    assert.equal(headersFor(rules, path)['cache-control'], 'no-cache', path);
  }
});

test('parser matches splats and placeholders', () => {
  const rules = parseHeaderRules('# comment\n/assets/*\n  Cache-Control: immutable\n/users/:id\n  X-Id: yes\n/*\n  X-All: 1\n');
  assert.deepEqual(headersFor(rules, '/assets/a/b.js'), { 'cache-control': 'immutable', 'x-all': '1' });
  assert.deepEqual(headersFor(rules, '/users/42'), { 'x-id': 'yes', 'x-all': '1' });
  assert.deepEqual(headersFor(rules, '/users/42/more'), { 'x-all': '1' });
});

test('parser rejects a header outside a rule', () => {
  assert.throws(() => parseHeaderRules('  X-Stray: 1\n'), /line 1 is a header outside a rule/);
});
