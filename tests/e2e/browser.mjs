// Shared helpers of the end-to-end tests: the site under test, and a Chromium
// session that records every request, console error and page error.
//
// Chromium runs from a fresh profile with networking restricted to 127.0.0.1:
// every host name except 127.0.0.1 resolves to nothing, and any proxied
// traffic goes to a closed port. Without these flags Chromium starts DNS
// look-ups and background requests to hosts off this machine.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { headersFor } from './headers.mjs';

export const CHROMIUM_PATH = '/usr/bin/chromium';

// Time a navigation may take to reach its load event. Twice Playwright's default,
// because the show's page loads three.js, two wasm modules and the worker on a
// machine whose two cores may also be compiling.
const NAVIGATION_TIMEOUT_MS = 60_000;

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--proxy-server=http://127.0.0.1:9',
];

// Files that the session serves itself, by path relative to the site URL. They
// are on the site's origin and path, so relative URLs resolve as on the show's
// page. The blank page hosts the tests of the host API without the show's own
// dialogue competing for the worker, and the probe file checks that requests
// of workers are routed too.
export const BLANK_PAGE_PATH = '__e2e_blank__.html';
export const PROBE_PATH = '__e2e_probe__.txt';
// A module worker script that tries eval(), which the site's CSP forbids: the
// control for the recording of CSP violations inside workers.
export const EVAL_WORKER_PATH = '__e2e_eval_worker__.js';
// A module worker script that loads without error and never replies: the host's
// start timeout is the only way to notice it.
export const IDLE_WORKER_PATH = '__e2e_idle_worker__.js';
// Where the session's CSP sends violation reports (report-uri), so violations
// inside workers, which never reach the page's event listeners, are recorded too.
const CSP_REPORT_PATH = '__e2e_csp_report__';

const SERVED_BY_SESSION = new Map([
  [BLANK_PAGE_PATH, {
    contentType: 'text/html; charset=utf-8',
    body: '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>banter e2e</title>',
  }],
  [IDLE_WORKER_PATH, {
    contentType: 'text/javascript; charset=utf-8',
    body: '// Never registers with gloo-worker, so it never reports that it has loaded.\n',
  }],
  [PROBE_PATH, { contentType: 'text/plain; charset=utf-8', body: 'probe' }],
  [EVAL_WORKER_PATH, {
    contentType: 'text/javascript; charset=utf-8',
    body: "let outcome;\ntry { outcome = String(eval('1 + 1')); } catch (err) { outcome = err.name; }\npostMessage(outcome);\n",
  }],
]);

/**
 * Returns the URL of the site under test from `BANTER_SITE_URL`, with a
 * trailing slash. Throws with instructions when the variable is missing or
 * not an http(s) URL.
 */
export function siteUrl() {
  const raw = process.env.BANTER_SITE_URL;
  if (!raw) {
    throw new Error(
      'BANTER_SITE_URL is not set. Serve the assembled site (cargo xtask site) on 127.0.0.1, e.g. ' +
        '`python3 -m http.server --bind 127.0.0.1 8123 -d target/site`, ' +
        'then run BANTER_SITE_URL=http://127.0.0.1:8123/ node --test tests/e2e/',
    );
  }

  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`BANTER_SITE_URL is not a valid URL: ${JSON.stringify(raw)}. Expected e.g. http://127.0.0.1:8123/`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`BANTER_SITE_URL is not an http(s) URL: ${JSON.stringify(raw)}. Expected e.g. http://127.0.0.1:8123/`);
  }

  if (!url.pathname.endsWith('/')) {
    url.pathname += '/';
  }
  url.search = '';
  url.hash = '';
  return url;
}

/**
 * A Chromium instance with its own profile and one page. Records, for the page
 * and its workers:
 * - `requests`: every request, as { url, method, resourceType }. Playwright
 *   1.65 with Chromium reports a dedicated worker's requests as requests of the
 *   page's main frame, so they are listed but not marked as worker requests.
 * - `blocked`: the requests that were not on the site's origin, which are aborted
 * - `httpErrors`: responses with status 400 or above, as { url, status }
 * - `consoleErrors`: console messages of type error, as { text, url, worker }
 * - `pageErrors`: uncaught exceptions of the page, as { message, stack }
 * - `workers`: URLs of the workers the page started
 * - `cspViolations`: `securitypolicyviolation` events of the page's documents,
 *   as { directive, blockedURI, sourceFile }
 * - `cspReports`: CSP violation reports (from the page and its workers), as the
 *   parsed `csp-report` objects. Only with `headerRules`.
 *
 * With `headerRules` (from headers.mjs), every response from the site gets the
 * headers those rules give its path, with a report-uri added to the CSP. With
 * `mount`, the site appears under that extra path (e.g. 'show/'): requests
 * below it are fetched from the served site without the prefix, and requests
 * elsewhere on the origin pass unchanged, so the tests can see them.
 */
export class Session {
  constructor({ served, mount, headerRules, context, userDataDir }) {
    this.served = served;
    this.site = new URL(mount, served);
    this.headerRules = headerRules;
    this.context = context;
    this.userDataDir = userDataDir;
    this.cspReportUrl = new URL(CSP_REPORT_PATH, this.site).href;
    this.cspViolations = [];
    this.cspReports = [];
    this.requests = [];
    this.blocked = [];
    this.httpErrors = [];
    this.consoleErrors = [];
    this.pageErrors = [];
    this.workers = [];
    this.page = null;
  }

  /** Resolves `path` against the site URL. */
  url(path = '') {
    return new URL(path, this.site);
  }

  /** Navigates the page to `path` of the site and returns the navigation response. */
  async goto(path = '', options = {}) {
    return this.page.goto(this.url(path).href, { timeout: NAVIGATION_TIMEOUT_MS, ...options });
  }

  /** Navigates to an empty page on the site's origin and path. */
  async gotoBlank() {
    return this.goto(BLANK_PAGE_PATH);
  }

  /** Closes Chromium and deletes its profile directory. */
  async close() {
    try {
      await this.context.close();
    } finally {
      await rm(this.userDataDir, { recursive: true, force: true });
    }
  }

  async routeRequest(route) {
    const request = route.request();
    const url = new URL(request.url());
    this.requests.push({
      url: url.href,
      method: request.method(),
      resourceType: request.resourceType(),
    });

    if (url.origin !== this.site.origin) {
      this.blocked.push({ url: url.href, resourceType: request.resourceType() });
      await route.abort('blockedbyclient');
      return;
    }

    if (url.href === this.cspReportUrl) {
      this.recordCspReport(request.postData());
      await route.fulfill({ status: 204 });
      return;
    }

    for (const [path, file] of SERVED_BY_SESSION) {
      if (url.href === this.url(path).href) {
        await route.fulfill({ status: 200, ...file, headers: this.extraHeaders(url) });
        return;
      }
    }

    const upstream = this.upstreamUrl(url);
    if (this.headerRules === null && upstream.href === url.href) {
      await route.continue();
      return;
    }

    const response = await route.fetch({ url: upstream.href });
    await route.fulfill({ response, headers: { ...response.headers(), ...this.extraHeaders(url) } });
  }

  // Maps a URL below the mounted site to the served site, and leaves others as they are.
  upstreamUrl(url) {
    if (!url.href.startsWith(this.site.href)) {
      return url;
    }
    return new URL(url.href.slice(this.site.href.length), this.served);
  }

  // Headers of `headerRules` for the URL's path relative to the site, with the
  // session's report-uri appended to a Content-Security-Policy.
  extraHeaders(url) {
    if (this.headerRules === null) {
      return {};
    }

    const path = url.pathname.startsWith(this.site.pathname)
      ? `/${url.pathname.slice(this.site.pathname.length)}`
      : url.pathname;
    const headers = headersFor(this.headerRules, path);
    if (headers['content-security-policy']) {
      headers['content-security-policy'] += `; report-uri ${this.cspReportUrl}`;
    }
    return headers;
  }

  recordCspReport(body) {
    try {
      this.cspReports.push(JSON.parse(body)['csp-report'] ?? JSON.parse(body));
    } catch {
      this.cspReports.push({ unparsed: body });
    }
  }

  watchPage(page) {
    page.on('console', (message) => {
      if (message.type() !== 'error') {
        return;
      }
      this.consoleErrors.push({
        text: message.text(),
        url: message.location().url,
        worker: message.worker()?.url() ?? null,
      });
    });
    page.on('pageerror', (error) => {
      this.pageErrors.push({ message: error.message, stack: error.stack });
    });
    page.on('worker', (worker) => {
      this.workers.push(worker.url());
    });
  }
}

/**
 * Launches Chromium on a fresh profile directory with `CHROMIUM_ARGS`, routes
 * every request through the session's recorder and returns the session.
 * `headerRules` and `mount` are described at `Session`.
 * Call `session.close()` when done, also after a failure.
 */
export async function openSession({ viewport = { width: 1280, height: 720 }, headerRules = null, mount = '' } = {}) {
  const served = siteUrl();
  const userDataDir = await mkdtemp(join(tmpdir(), 'banter-e2e-'));

  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      serviceWorkers: 'block',
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw new Error(`failed to launch Chromium from ${CHROMIUM_PATH}: ${err.message}. Check that Debian's chromium package is installed.`);
  }

  const session = new Session({ served, mount, headerRules, context, userDataDir });
  try {
    await context.route('**/*', (route) => session.routeRequest(route));
    await context.exposeBinding('__e2eCspViolation', (_source, violation) => {
      session.cspViolations.push(violation);
    });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        window.__e2eCspViolation({
          directive: event.effectiveDirective,
          blockedURI: event.blockedURI,
          sourceFile: event.sourceFile,
        });
      });
    });
    context.on('response', (response) => {
      if (response.status() >= 400) {
        session.httpErrors.push({ url: response.url(), status: response.status() });
      }
    });
    context.on('page', (page) => session.watchPage(page));

    session.page = context.pages()[0] ?? (await context.newPage());
    session.watchPage(session.page);
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}

/**
 * Takes a screenshot of the element matched by `locator` and returns colour
 * statistics of its pixels: { width, height, distinctColors, dominantShare },
 * where colours are quantised to 4 bits per channel and dominantShare is the
 * fraction of pixels that have the most frequent colour. The PNG is decoded by
 * the browser itself, from a data: URL, so it makes no request.
 */
export async function screenshotStats(page, locator) {
  const png = await locator.screenshot({ type: 'png' });
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();

    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);

    const counts = new Map();
    for (let i = 0; i < data.length; i += 4) {
      const key = ((data[i] >> 4) << 8) | ((data[i + 1] >> 4) << 4) | (data[i + 2] >> 4);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const pixels = data.length / 4;
    return {
      width: canvas.width,
      height: canvas.height,
      distinctColors: counts.size,
      dominantShare: Math.max(...counts.values()) / pixels,
    };
  }, png.toString('base64'));
}
