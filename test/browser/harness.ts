import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type StudioServer } from '../../server/app.ts';
import type { ServerOptions } from '../../server/config.ts';
import type { NodeRegistry } from '../../server/engine/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Screenshots of each test run land here (kept by CI as artefacts of the run). */
export const SHOTS_DIR = path.join(ROOT, 'test-output', 'screenshots');

/** Flags that keep Debian's chromium off the network and quiet in a sandbox-less container. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface EditorSession {
  server: StudioServer;
  browser: Browser;
  page: Page;
  /** Console errors and page errors seen so far: a test fails when any appear. */
  errors: string[];
  shot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a server on a free port with its own data folder and opens the editor in chromium. */
export async function openEditor(options: ServerOptions = {}, registry?: NodeRegistry): Promise<EditorSession> {
  if (!fs.existsSync(path.join(ROOT, 'editor/dist/index.html'))) {
    throw new Error('the editor is not built: run `npm run build` (npm test does it first)');
  }
  const dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-browser-'));
  const server = await startServer({ port: 0, dataRoot, ...options }, registry);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    // playwright gives every launch a fresh, empty profile directory of its own.
    args: CHROMIUM_ARGS,
  });
  // page.waitForFunction evals its predicate in the page, which the editor's CSP refuses;
  // test/security/csp.test.ts runs the editor under the policy.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page: ${err.message}`));
  await page.goto(server.url);
  await page.waitForFunction('window.__studio?.ready === true', null, { timeout: 20_000 });
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  return {
    server,
    browser,
    page,
    errors,
    async shot(name) {
      const file = path.join(SHOTS_DIR, `${name}.png`);
      await page.screenshot({ path: file });
      return file;
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}
