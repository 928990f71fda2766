/**
 * The screen a person meets when the server needs its access token (auth: 'token', as on a
 * non-loopback address) and the browser has none: opening the editor's address without the token
 * shows what to do and a field for it; pasting the token opens the editor. An editor whose token
 * stops working (cookie cleared, token renewed) shows the same screen on its next API call.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StudioServer } from '../../server/app.ts';
import { SHOTS_DIR } from './harness.ts';

const MESSAGE = "Open the address printed in the server's console (it ends in ?token=…)";

describe('the access-token screen', () => {
  let server: StudioServer;
  let browser: Browser;
  let dataRoot: string;

  beforeAll(async () => {
    if (!fs.existsSync(path.resolve(import.meta.dirname, '../../editor/dist/index.html'))) {
      throw new Error('the editor is not built: run `npm run build` (npm test does it first)');
    }
    dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-token-'));
    server = await startServer({ port: 0, dataRoot, auth: 'token' });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    fs.mkdirSync(SHOTS_DIR, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dataRoot) fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  const newPage = async (): Promise<Page> => {
    // page.waitForFunction evals its predicate in the page, which the editor's CSP refuses;
    // test/security/csp.test.ts runs the editor under the policy.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    page.setDefaultTimeout(10_000);
    return page;
  };

  it('opening the address without the token shows what to do; pasting the token opens the editor', async () => {
    const page = await newPage();
    try {
      const refused = await page.goto(server.url);
      expect(refused?.status()).toBe(401);
      const card = page.getByTestId('token-page');
      await card.waitFor();
      expect(await page.getByRole('heading').textContent()).toBe('This server needs its access token');
      expect((await card.textContent())!.replace(/\s+/g, ' ')).toContain(MESSAGE);
      // Nothing of the editor is served to a visitor without the token.
      expect(await page.content()).not.toContain('<script');
      await page.screenshot({ path: path.join(SHOTS_DIR, 'token-required.png') });

      // A wrong token says so and sets nothing.
      await page.getByLabel('Access token').fill('not-the-token-at-all');
      await page.getByRole('button', { name: 'Open the editor' }).click();
      await page.getByRole('alert').waitFor();
      expect(await page.getByRole('alert').textContent()).toContain("not this server's token");
      expect(await page.context().cookies()).toEqual([]);
      await page.screenshot({ path: path.join(SHOTS_DIR, 'token-wrong.png') });

      await page.getByLabel('Access token').fill(server.token!);
      await page.getByRole('button', { name: 'Open the editor' }).click();
      await page.waitForFunction('window.__studio?.ready === true', null, { timeout: 20_000 });
      // The token went through the address once and is gone from it.
      expect(page.url()).toBe(`${server.url}/`);
      expect(await page.getByTestId('graph-canvas').isVisible()).toBe(true);
      expect(await page.getByTestId('token-screen').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('an open editor whose token stops working shows the screen, and the token brings it back', async () => {
    const page = await newPage();
    try {
      await page.goto(server.openUrl);
      await page.waitForFunction('window.__studio?.ready === true', null, { timeout: 20_000 });
      expect(await page.getByTestId('token-screen').count()).toBe(0);
      // The cookie is gone (as when the token is renewed): the next API call is refused.
      await page.context().clearCookies();
      await page.getByTestId('queue-button').click();
      const screen = page.getByTestId('token-screen');
      await screen.waitFor();
      expect((await screen.textContent())!.replace(/\s+/g, ' ')).toContain(MESSAGE);
      // The field has the focus, and the button waits for a token.
      expect(await page.evaluate('document.activeElement?.getAttribute("data-testid")')).toBe('token-field');
      expect(await page.getByTestId('token-submit').isDisabled()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS_DIR, 'token-screen-in-editor.png') });

      await page.getByTestId('token-field').fill(` ${server.token!} `.trim());
      await page.getByTestId('token-submit').click();
      await page.waitForURL(`${server.url}/`);
      await page.waitForFunction('window.__studio?.ready === true', null, { timeout: 20_000 });
      expect(await page.getByTestId('token-screen').count()).toBe(0);
      expect((await page.context().cookies()).map((c) => c.name)).toEqual([`supir_token_${server.port}`]);
      // The API works again: a queued prompt is accepted.
      const status = (await page.evaluate(`fetch('/api/queue').then((r) => r.status)`)) as number;
      expect(status).toBe(200);
    } finally {
      await page.close();
    }
  });
});
