/**
 * The token as a person meets it: the address printed at start-up opens the editor in a real
 * browser (chromium), the token leaves the address bar, and the editor's API calls and websocket
 * work through the cookie alone. Without the token, nothing of the editor is served.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../server/helpers.ts';
import { waitUntil } from './browser-wait.ts';

const EDITOR_BUILT = fs.existsSync(path.resolve(import.meta.dirname, '../../editor/dist/index.html'));

describe('the access token in the editor', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    // npm test builds the editor first; a missing build is an error here, as in test/browser.
    if (!EDITOR_BUILT) throw new Error('the editor is not built: run `npm run build` (npm test does it first)');
    server = await startTestServer({ auth: 'token' });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('serves nothing without it, and the printed address opens a working editor', async () => {
    const page = await browser.newPage();
    try {
      const refused = await page.goto(server.url);
      expect(refused?.status()).toBe(401);
      expect(await page.content()).not.toContain('<script');

      await page.goto(server.openUrl);
      // Polled from here: the editor's CSP refuses the eval that page.waitForFunction needs.
      await waitUntil(page, 'window.__studio?.ready === true', 20_000);
      // The toolbar's device chip drops its "offline" mark once the websocket is connected.
      await waitUntil(page, `document.querySelector('[data-testid="ep-indicator"]')?.classList.contains('offline') === false`, 10_000);
      // The token is gone from the address (and so from history and screenshots).
      expect(page.url()).toBe(`${server.url}/`);
      const cookies = await page.context().cookies();
      expect(cookies.find((c) => c.name === `supir_token_${server.port}`)).toMatchObject({ httpOnly: true, sameSite: 'Strict', value: server.token });
      // Page scripts cannot read the cookie, but their same-origin requests carry it.
      // Page code as text: the tests are type-checked without the DOM library.
      const seen = (await page.evaluate(`(async () => ({ cookie: document.cookie, queue: (await fetch('/api/queue')).status }))()`)) as { cookie: string; queue: number };
      expect(seen).toEqual({ cookie: '', queue: 200 });
    } finally {
      await page.close();
    }
  });
});
