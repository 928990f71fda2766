import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import { buildWorkflow, hook, queueAndWait, runState } from './compare-workflows.ts';

/** Load Images (folder) → Resize → Save Image named after each source: a batch of 24 scans. */
const batchWorkflow = buildWorkflow(
  'Batch in the editor',
  [
    { id: 1, type: 'LoadImageFolder', title: 'Scans', widgets: { folder: 'scans', pattern: '*.png', sort: 'name', start: 0, limit: 0 }, outputs: [['image', 'IMAGE'], ['name', 'STRING']], pos: [20, 40], size: [260, 200] },
    { id: 2, type: 'ImageResize', title: 'Enlarge', widgets: { mode: 'size', width: 1280, height: 960, method: 'bicubic' }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [320, 40], size: [240, 200] },
    { id: 3, type: 'SaveImage', title: 'Save', widgets: { filename_prefix: 'batch/{name}', format: 'png', quality: 95 }, inputs: [['image', 2, 0, 'IMAGE']], pos: [600, 40], size: [520, 470] },
  ],
  { scale: 0.85, offset: [0, 0] },
);

/** Records every text the toolbar's overall progress shows, and its tooltip. */
async function recordProgress(page: Page): Promise<void> {
  await hook(page, `
    globalThis.__progress = [];
    const el = document.querySelector('[data-testid="overall-progress"]');
    const note = () => globalThis.__progress.push([el.querySelector('.label').textContent, el.getAttribute('title')]);
    new MutationObserver(note).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });`);
}

describe('a batch in the editor', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
    const dir = path.join(s.server.dirs.folders.inputs, 'scans');
    fs.mkdirSync(dir);
    for (let i = 1; i <= 24; i++) {
      // A small "scan": a diagonal gradient in its own colours.
      const w = 32;
      const h = 24;
      const px = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const t = (x + y) / (w + h);
        px.set([Math.round(255 * t), (i * 41) % 256, Math.round(255 * (1 - t) * (i / 24))], (y * w + x) * 3);
      }
      await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(dir, `scan_${String(i).padStart(2, '0')}.png`));
    }
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('shows the images done, the time left, and a grid of the results on Save', async () => {
    await hook(page, 's.graph.load(arg);', batchWorkflow);
    await recordProgress(page);
    await page.getByTestId('queue-button').click();
    // Part way: the toolbar counts images and says how long the rest will take.
    await page.waitForFunction(`/^([1-9]|1\\d)\\/24 images · .* left$/.test(document.querySelector('[data-testid="overall-progress"] .label')?.textContent ?? '')`, null, { timeout: 30_000 });
    await s.shot('batch-running');
    await page.waitForFunction(() => {
      const st = (globalThis as unknown as { __studio: { lastPromptId: string | null; events: Array<{ type: string; prompt_id?: string }> } }).__studio;
      return st.lastPromptId !== null && st.events.some((e) => e.type === 'prompt_done' && e.prompt_id === st.lastPromptId);
    }, null, { timeout: 60_000 });

    const seen = await hook<Array<[string, string]>>(page, 'return globalThis.__progress;');
    const labels = seen.map(([label]) => label);
    expect(labels.some((l) => /^\d+\/24 images · \d+ s left$/.test(l))).toBe(true);
    expect(seen.some(([, title]) => /^Images: \d+ done, 0 done before, 0 failed, of 24; running scan_\d\d\.png/.test(title))).toBe(true);
    expect(labels.at(-1)).toBe('Done');

    // Save shows every image's result, captioned with its source file.
    const save = await runState(page, '3');
    expect(save.status).toBe('done');
    expect(save.images).toHaveLength(24);
    expect(save.labels).toEqual(Array.from({ length: 24 }, (_, k) => `scan_${String(k + 1).padStart(2, '0')}.png`));
    expect(save.branches).toEqual({ settled: 24, total: 24, unit: 'images' });
    expect((await runState(page, '1')).branches).toEqual({ settled: 24, total: 24, unit: 'images' });
    expect(fs.readdirSync(path.join(s.server.dirs.folders.outputs, 'batch'))).toHaveLength(24);
    await page.waitForTimeout(500); // the node images decode before the picture is taken
    await s.shot('batch-results-grid');
    expect(s.errors).toEqual([]);
  }, 90_000);

  it('queued again, finds every image done and runs none', async () => {
    const id = await queueAndWait(page);
    const events = await hook<Array<{ type: string; prompt_id?: string; cached?: boolean; total?: number; resumed?: number }>>(page, 'return s.events;');
    const mine = events.filter((e) => e.prompt_id === id);
    expect(mine.filter((e) => e.type === 'node_start')).toEqual([]);
    expect(mine.find((e) => e.type === 'batch')).toMatchObject({ total: 24, resumed: 24 });
    const save = await runState(page, '3');
    expect(save.images).toHaveLength(24);
    expect(['done', 'cached']).toContain(save.status);
    expect(s.errors).toEqual([]);
  });
});
