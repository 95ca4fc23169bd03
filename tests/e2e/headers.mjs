// Reads the Cloudflare Pages `_headers` file of the site (www/_headers) so the
// tests can send its headers from any static server.
//
// Supported syntax, a subset of what Cloudflare Pages documents: `#` comment
// lines, a rule starting with an unindented path pattern, and indented
// `Name: value` lines below it. In a pattern, `*` matches any characters and a
// `:name` segment matches one path segment. Rules for absolute URLs are skipped.

import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Path of the `_headers` file the site is assembled from. */
export const HEADERS_FILE = join(REPO_ROOT, 'www', '_headers');

/** Reads and parses `HEADERS_FILE`. */
export async function loadHeaderRules() {
  return parseHeaderRules(await readFile(HEADERS_FILE, 'utf8'));
}

/**
 * Parses the text of a `_headers` file into `[{ pattern, matcher, headers }]`,
 * where headers is a list of [name, value]. Throws on a header line outside a
 * rule or without a colon, naming the line.
 */
export function parseHeaderRules(text) {
  const rules = [];
  let current = null;

  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trim().startsWith('#')) {
      return;
    }

    if (!/^\s/.test(line)) {
      const pattern = line.trim();
      current = pattern.startsWith('/') ? { pattern, matcher: patternToRegExp(pattern), headers: [] } : { skipped: true };
      if (!current.skipped) {
        rules.push(current);
      }
      return;
    }

    if (current === null) {
      throw new Error(`_headers line ${i + 1} is a header outside a rule: ${JSON.stringify(line)}`);
    }
    const colon = line.indexOf(':');
    if (colon < 0) {
      throw new Error(`_headers line ${i + 1} has no colon: ${JSON.stringify(line)}. Expected "  Name: value".`);
    }
    if (!current.skipped) {
      current.headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
  });
  return rules;
}

/**
 * Returns the headers that `rules` give the site-relative `path` (starting with
 * '/'), as an object keyed by lower-case name. Values that several matching rules
 * set for one name are joined with ', ', as Cloudflare Pages does.
 */
export function headersFor(rules, path) {
  const headers = {};
  for (const rule of rules) {
    if (!rule.matcher.test(path)) {
      continue;
    }
    for (const [name, value] of rule.headers) {
      const key = name.toLowerCase();
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    }
  }
  return headers;
}

function patternToRegExp(pattern) {
  const source = pattern
    .split(/(\*|:[A-Za-z_]\w*)/)
    .map((part) => {
      if (part === '*') {
        return '.*';
      }
      if (part.startsWith(':')) {
        return '[^/]+';
      }
      return part.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${source}$`);
}
