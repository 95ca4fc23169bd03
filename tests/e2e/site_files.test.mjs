// The assembled site directory: it has the files the page loads, and every
// file fits the 25 MiB per-file limit of Cloudflare Pages.

import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAX_FILE_BYTES = 25 * 1024 * 1024;

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const ENTRY_POINTS = [
  'index.html',
  'main.js',
  'vendor/three/three.module.js',
  'vendor/three/three.core.js',
  'pkg/banter_host.js',
  'model/manifest.json',
  '_headers',
];

// Returns the site directory from `BANTER_SITE_DIR` (relative to the working
// directory) or else target/site of this repository.
function siteDir() {
  const configured = process.env.BANTER_SITE_DIR;
  return configured ? resolve(configured) : join(REPO_ROOT, 'target', 'site');
}

async function listFiles(dir) {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    throw new Error(`failed to read the site directory ${dir} (${err.code}). Run cargo xtask site or set BANTER_SITE_DIR.`);
  }
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath ?? entry.path, entry.name));
}

test('site has the entry points', async () => {
  const dir = siteDir();
  const files = new Set((await listFiles(dir)).map((file) => relative(dir, file)));
  for (const entry of ENTRY_POINTS) {
    assert.ok(files.has(entry), `${entry} is missing from ${dir}`);
  }
});

test('site files are at most 25 MiB', async () => {
  const dir = siteDir();
  const files = await listFiles(dir);
  assert.ok(files.length > 0, `${dir} contains no files`);

  const oversized = [];
  for (const file of files) {
    const { size } = await stat(file);
    if (size > MAX_FILE_BYTES) {
      oversized.push(`${relative(dir, file)}: ${size} bytes`);
    }
  }
  assert.deepEqual(oversized, [], `files over ${MAX_FILE_BYTES} bytes`);
});
