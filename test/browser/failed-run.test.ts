import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import { buildWorkflow, hook, queueAndWait, runState } from './compare-workflows.ts';

/** A failed run in the queue panel: its whole message, a click that shows the node, and its mark when loaded back. */

const TITLE = 'Crop the photo to the region of interest before the comparison';
/** Photo → Crop at x = 5000 (outside the photo: the run fails) → Preview, far from the view. */
const failing = buildWorkflow(
  'A run that fails',
  [
    { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40] },
    { id: 2, type: 'ImageCrop', title: TITLE, widgets: { x: 5000, y: 0, width: 64, height: 64 }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [320, 40] },
    { id: 3, type: 'PreviewImage', title: 'Preview', inputs: [['image', 2, 0, 'IMAGE']], pos: [620, 40] },
  ],
  { scale: 1, offset: [-3000, -3000] },
);
const other = buildWorkflow('Another graph', [{ id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40] }]);

/** The canvas point of node 2's input dot (its left edge) and the canvas box. */
async function cropAt(page: Page): Promise<{ at: [number, number]; canvas: { x: number; y: number; width: number; height: number } }> {
  const at = await hook<[number, number]>(page, "return s.graph.slotPosition('2', 'input', 0);");
  return { at, canvas: (await page.getByTestId('graph-canvas').boundingBox())! };
}

function expectCentred({ at, canvas }: Awaited<ReturnType<typeof cropAt>>): void {
  expect(at[0]).toBeLessThan(canvas.x + canvas.width / 2);
  expect(at[0]).toBeGreaterThan(canvas.x + canvas.width / 2 - 400);
  expect(Math.abs(at[1] - (canvas.y + canvas.height / 2))).toBeLessThan(200);
}

describe('a failed run in the queue panel', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
    await page.setViewportSize({ width: 1600, height: 1000 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('shows the whole message, and a click on it shows the failing node and its error', async () => {
    await hook(page, 's.graph.load(arg);', failing);
    await queueAndWait(page);
    expect((await runState(page, '2')).status).toBe('error');
    await page.getByTestId('error-dismiss').click();
    await hook(page, "s.graph.resetRunState(); s.graph.load(arg);", failing); // the node is off screen again, unmarked

    await page.getByTestId('queue-toggle').click();
    // The drawer slides in: measure it where it stops, at the window's right edge.
    await expect.poll(async () => { const b = (await page.getByTestId('queue-panel').boundingBox())!; return Math.round(b.x + b.width); }).toBe(1600);
    const message = page.getByTestId('history-error').first();
    await message.waitFor();
    expect(await message.getAttribute('data-node-id')).toBe('2');
    const text = (await message.textContent())!.trim();
    expect(text).toContain(TITLE);
    expect(text).toMatch(/5000 is outside the image, which is \d+ pixels wide/);
    // Not cut off: nothing scrolls inside it, and it lies inside the panel.
    const fit = await message.evaluate((el) => ({ sw: el.scrollWidth, cw: el.clientWidth, sh: el.scrollHeight, ch: el.clientHeight }));
    expect(fit.sw).toBeLessThanOrEqual(fit.cw);
    expect(fit.sh).toBeLessThanOrEqual(fit.ch);
    const box = (await message.boundingBox())!;
    const panel = (await page.getByTestId('queue-panel').boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(panel.x);
    expect(box.x + box.width).toBeLessThanOrEqual(panel.x + panel.width);
    expect(box.height).toBeGreaterThan(20); // wrapped onto more than one line

    await message.click();
    await page.getByTestId('error-panel').waitFor();
    expect(await page.getByTestId('error-node').getAttribute('data-node-id')).toBe('2');
    expect(await page.getByTestId('error-panel').textContent()).toContain('5000 is outside the image');
    expectCentred(await cropAt(page));
    await page.waitForTimeout(250);
    await s.shot('failed-run-history-message');
  });

  it('marks the failing node with its error when the failed run is loaded from the history', async () => {
    if (await page.getByTestId('error-dismiss').isVisible()) await page.getByTestId('error-dismiss').click();
    await hook(page, 's.graph.load(arg);', other);
    expect(await hook<string[]>(page, 'return s.workflow().nodes.map((n) => String(n.id));')).toEqual(['1']);
    // In another graph the click cannot show the node: it says so instead of doing nothing.
    await page.getByTestId('history-error').first().click();
    await expect.poll(() => page.getByTestId('toast').allTextContents()).toContainEqual(expect.stringMatching(/not in this graph/));

    await page.getByTestId('load-workflow').first().click();
    const dialog = page.getByTestId('unsaved-dialog');
    if (await dialog.isVisible().catch(() => false)) await page.getByTestId('unsaved-discard').click();
    await expect.poll(async () => (await runState(page, '2')).status).toBe('error');
    expect((await runState(page, '2')).error).toMatch(/5000 is outside the image/);
    await page.getByTestId('error-panel').waitFor();
    expect(await page.getByTestId('error-node').getAttribute('data-node-id')).toBe('2');
    expectCentred(await cropAt(page));
    await page.waitForTimeout(250);
    await s.shot('failed-run-loaded-from-history');
  });

  it('logged no errors in the browser console', () => {
    expect(s.errors).toEqual([]);
  });
});
