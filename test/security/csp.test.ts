/**
 * Content-Security-Policy where docs/api.md promises it: thumbnails are files (nothing in them may
 * run), and the editor (its page, its assets, its "not built" page) may run only its own scripts.
 * The editor must still work under its policy: checked in chromium, which also proves the policy
 * is enforced (an injected inline script does not run).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editorCsp } from '../../server/http/editor.ts';
import { pngBytes, startTestServer, type TestServer } from '../server/helpers.ts';
import { waitUntil } from './browser-wait.ts';

const EDITOR_DIST = path.resolve(import.meta.dirname, '../../editor/dist');

/** A policy as directive → sources. */
function parseCsp(header: string | null): Map<string, string[]> {
  expect(header, 'Content-Security-Policy header').toBeTruthy();
  return new Map(
    header!
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

function expectEditorPolicy(header: string | null, what: string): void {
  const csp = parseCsp(header);
  expect(csp.get('script-src'), what).toEqual(["'self'"]);
  expect(csp.get('default-src'), what).toEqual(["'self'"]);
  expect(csp.get('object-src'), what).toEqual(["'none'"]);
  expect(csp.get('base-uri'), what).toEqual(["'none'"]);
  expect(csp.get('frame-ancestors'), what).toEqual(["'none'"]);
  expect(csp.get('img-src'), what).toEqual(expect.arrayContaining(["'self'", 'blob:', 'data:']));
  expect(csp.get('connect-src')?.[0], what).toBe("'self'");
}

describe('Content-Security-Policy', () => {
  let server: TestServer;

  beforeAll(async () => {
    // npm test builds the editor first; a missing build is an error here, as in test/browser.
    if (!fs.existsSync(path.join(EDITOR_DIST, 'index.html'))) throw new Error('the editor is not built: run `npm run build` (npm test does it first)');
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('sandboxes thumbnails like the files they are made from', async () => {
    fs.writeFileSync(path.join(server.dirs.folders.outputs, 'photo.png'), await pngBytes(100, 80));
    for (const query of ['file=photo.png&thumb=32', 'file=photo.png']) {
      const res = await server.api(`/api/view?${query}`);
      expect(res.status, query).toBe(200);
      expect(res.headers.get('content-security-policy'), query).toBe("default-src 'none'; sandbox");
      expect(res.headers.get('x-content-type-options'), query).toBe('nosniff');
    }
  });

  it('gives the editor page and each of its assets a policy of its own scripts only', async () => {
    const page = await server.api('/');
    expect(page.status).toBe(200);
    expectEditorPolicy(page.headers.get('content-security-policy'), '/');
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script the policy would block
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const url of ['/index.html', ...assets]) {
      const res = await server.api(url);
      expect(res.status, url).toBe(200);
      expectEditorPolicy(res.headers.get('content-security-policy'), url);
    }
    // A missing file's 404 page allows nothing at all.
    const missing = await server.api('/no-such-file.js');
    expect(missing.status).toBe(404);
    expect(parseCsp(missing.headers.get('content-security-policy')).get('default-src')).toEqual(["'none'"]);
    // The websocket's address is spelled out for browsers that do not count ws: as 'self' ...
    expect(parseCsp(page.headers.get('content-security-policy')).get('connect-src')).toEqual(["'self'", `ws://127.0.0.1:${server.port}`, `wss://127.0.0.1:${server.port}`]);
    // ... but only from a Host header that is a plain host and port.
    for (const host of ['evil.example; script-src *', "a' 'unsafe-inline", 'x y']) {
      expect(parseCsp(editorCsp({ headers: { host } })).get('connect-src'), host).toEqual(["'self'"]);
    }
  });

  it('gives the "not built" page the same policy', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-no-editor-'));
    const bare = await startTestServer({ editorDir: empty });
    try {
      const res = await bare.api('/');
      expect(res.status).toBe(503);
      expectEditorPolicy(res.headers.get('content-security-policy'), 'not built');
    } finally {
      await bare.close();
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  describe('in a browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    });
    afterAll(() => browser?.close());

    it('runs the editor under its policy, and the policy blocks an injected inline script', async () => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(msg.text());
      });
      page.on('pageerror', (err) => errors.push(err.message));
      try {
        await page.addInitScript(`window.__violations = [];
          document.addEventListener('securitypolicyviolation', (e) => window.__violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI }));`);
        await page.goto(server.url);
        await waitUntil(page, 'window.__studio?.ready === true', 20_000);
        // The websocket connected (connect-src), as the toolbar's device chip shows.
        await waitUntil(page, `document.querySelector('[data-testid="ep-indicator"]')?.classList.contains('offline') === false`, 10_000);
        // Page code as text: the tests are type-checked without the DOM library.
        const seen = (await page.evaluate(`(async () => {
          const load = (src) => new Promise((resolve) => { const img = new Image(); img.onload = () => resolve(img.width); img.onerror = () => resolve('blocked'); img.src = src; });
          const png = await (await fetch('/api/view?file=photo.png&thumb=16')).blob();
          const blob = await load(URL.createObjectURL(png));
          const view = await load('/api/view?file=photo.png');
          const script = document.createElement('script');
          script.textContent = 'window.__injected = true';
          document.body.append(script);
          await new Promise((resolve) => setTimeout(resolve, 50));
          return { blob, view, injected: window.__injected === true, violations: window.__violations };
        })()`)) as { blob: number | string; view: number | string; injected: boolean; violations: Array<{ directive: string; blocked: string }> };
        expect(seen.blob).toBe(16);
        expect(seen.view).toBe(100);
        expect(seen.injected).toBe(false);
        // The injected script is the one inline violation; zod's probe for eval (it falls back
        // when eval is refused) is the only other one.
        expect(seen.violations.filter((v) => v.blocked !== 'eval')).toEqual([{ directive: 'script-src-elem', blocked: 'inline' }]);
        // The console names the blocked injection, and nothing else.
        expect(errors.filter((e) => !/^Executing inline script violates .*script-src 'self'/.test(e))).toEqual([]);
      } finally {
        await page.close();
      }
    });
  });
});
