/**
 * Stop and progress inside a long node, in the editor: the ESRGAN-only template (esrgan-medium x4)
 * on a 1024 px photo with Upscale Image set to one tile. The node shows its percent and time left
 * while it runs, the toolbar too, and Stop ends the run after at most the model run in flight:
 * no further tile starts (counted from the node's progress events), and the wall time to the
 * `interrupted` event is within the 2 s plus one run's measured length on a busy machine.
 * Then the server memory chip, and the banner when the server goes away.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import type { EngineEvent } from '../../server/protocol/index.ts';

const PHOTO = path.resolve(import.meta.dirname, '../../../shared/testimages/astronaut.png');
const UPSCALE = '3';

const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

type ProgressEvent = Extract<EngineEvent, { type: 'progress' }>;

const progressOf = (page: Page, promptId: string): Promise<ProgressEvent[]> =>
  hook(page, `return s.events.filter((e) => e.type === 'progress' && e.prompt_id === arg[0] && e.node_id === arg[1]);`, [promptId, UPSCALE]);

describe('Stop and progress inside a long node', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
    const photo = await sharp(PHOTO).resize(1024, 1024).png().toBuffer();
    fs.writeFileSync(path.join(s.server.dirs.folders.inputs, 'astronaut-1024.png'), photo);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('shows the percent and time left on the node and in the toolbar, and Stop acts after at most the run in flight', async () => {
    // The editor opened on the default template (the MAXIM chain, unchanged: nothing to save).
    await page.getByTestId('workflow-menu-button').click();
    await page.getByTestId('menu-open').click();
    await page.locator('[data-testid="template-entry"][data-name="restore-esrgan"]').click();
    await page.waitForFunction(() => (globalThis as unknown as { __studio: { workflow(): { nodes: unknown[] } } }).__studio.workflow().nodes.length === 4);
    const types = await hook<string[]>(page, 'return s.workflow().nodes.map((n) => n.type);');
    expect(types).toEqual(['LoadImage', 'LoadUpscaleModel', 'UpscaleImage', 'SaveImage']);
    await hook(page, "s.graph.setWidget('1', 'image', 'astronaut-1024.png'); s.graph.setWidget('3', 'tile_size', 1024);");
    await page.getByTestId('queue-button').click();
    await page.waitForFunction(() => (globalThis as unknown as { __studio: { lastPromptId: string | null } }).__studio.lastPromptId !== null);
    const promptId = (await hook<string>(page, 'return s.lastPromptId;'))!;

    // The node's own percent and time left, as the overlay draws them: wait for the pace to be known.
    await page.waitForFunction(
      (id) => {
        const st = (globalThis as unknown as { __studio: { graph: { runState(id: string): { status: string; progress: number | null; eta?: number | null } } } }).__studio.graph.runState(id);
        return st.status === 'running' && st.progress !== null && st.progress > 0 && typeof st.eta === 'number';
      },
      UPSCALE,
      { timeout: 60_000 },
    );
    const running = await hook<{ progress: number; eta: number }>(page, 'return s.graph.runState(arg);', UPSCALE);
    expect(running.progress).toBeGreaterThan(0);
    expect(running.progress).toBeLessThan(1);
    expect(running.eta).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('overall-progress').textContent(), { timeout: 10_000 }).toMatch(/^\s*3\/4 · \d+% · (\d+ s|\d+ min \d\d s) left\s*$/);
    await s.shot('stop-01-upscale-running');

    // Let a few tiles go by, so that the pace of one run is measured, then Stop.
    await expect.poll(async () => (await progressOf(page, promptId)).length, { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    const before = await progressOf(page, promptId);
    const last = before.at(-1)!;
    expect(last.max).toBeGreaterThanOrEqual(16); // the one tile asked for runs in pieces
    const runMs = (last.eta_ms ?? 0) / Math.max(1, last.max - last.value);
    const t0 = Date.now();
    await page.getByTestId('interrupt-button').click();
    await page.waitForFunction(
      (id) => (globalThis as unknown as { __studio: { events: Array<{ type: string; prompt_id?: string }> } }).__studio.events.some((e) => e.type === 'interrupted' && e.prompt_id === id),
      promptId,
      { timeout: 30_000, polling: 20 },
    );
    const latency = Date.now() - t0;
    const after = await progressOf(page, promptId);
    console.log(`Stop took ${latency} ms; one run ≈ ${Math.round(runMs)} ms (${last.max} runs of the tile); progress ${last.value}/${last.max} at Stop, ${after.at(-1)!.value} at the end`);
    // At most the run in flight finished after Stop: no further tile started.
    expect(after.at(-1)!.value - last.value).toBeLessThanOrEqual(1);
    expect(after.at(-1)!.value).toBeLessThan(last.max);
    expect(latency).toBeLessThanOrEqual(Math.max(2000, runMs + 1500));
    const interrupted = await hook<{ type: string; node_id: string }>(page, "return s.events.find((e) => e.type === 'interrupted' && e.prompt_id === arg);", promptId);
    expect(interrupted.node_id).toBe(UPSCALE);
    await expect.poll(() => page.getByTestId('overall-progress').textContent()).toMatch(/Interrupted/);
    expect(await hook<{ status: string; progress: number | null }>(page, 'return s.graph.runState(arg);', UPSCALE)).toMatchObject({ status: 'idle', progress: null });
    await s.shot('stop-02-interrupted');
    expect(s.errors).toEqual([]);
  }, 180_000);

  it("shows the server's memory in the toolbar", async () => {
    const chip = page.getByTestId('memory-rss');
    await expect.poll(() => chip.textContent(), { timeout: 10_000 }).toMatch(/^\d+(\.\d)? (MiB|GiB)$/);
    const info = (await (await fetch(`${s.server.url}/api/system`)).json()) as { memory: { rss: number; runtime: { sessions: number } | null } };
    expect(info.memory.rss).toBeGreaterThan(0);
    expect(info.memory.runtime?.sessions).toBe(1);
    const box = (await page.getByTestId('memory-chip').boundingBox())!;
    const viewport = page.viewportSize()!;
    expect(box.x + box.width).toBeLessThanOrEqual(viewport.width);
  });

  it('says plainly when the server is gone, not only with a red chip', async () => {
    expect(await page.getByTestId('connection-banner').count()).toBe(0);
    await s.server.close();
    const banner = page.getByTestId('connection-banner');
    await banner.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await banner.textContent()).toMatch(/Server stopped — reconnecting…/);
    await s.shot('stop-03-server-gone');
  }, 30_000);
});
