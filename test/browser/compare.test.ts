import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { buildWorkflow, queueAndWait, runState } from './compare-workflows.ts';
import { openEditor, type EditorSession } from './harness.ts';

/** Runs `body` in the page with the test hook as `s`. */
const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

const view = (file: string): string => `/api/view?${new URLSearchParams({ folder: 'inputs', file })}`;

/** Screen x of the B layer's visible left edge: its clip (image px) times the on-screen scale. */
async function bEdge(page: Page): Promise<number> {
  // Source text: this file is type-checked without the DOM library, the page runs it.
  return page.evaluate(`(() => {
    const img = document.querySelectorAll('[data-testid="image-viewer"] img.layer')[1];
    const clip = Number(/inset\\(0(?:px)? 0(?:px)? 0(?:px)? ([\\d.]+)px\\)/.exec(img.style.clipPath)[1]);
    const rect = img.getBoundingClientRect();
    return rect.left + clip * (rect.width / img.naturalWidth);
  })()`);
}

async function sliderCentre(page: Page): Promise<number> {
  const box = (await page.getByTestId('compare-slider').boundingBox())!;
  return box.x + box.width / 2;
}

describe('comparing two images', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
    // The sample photo (A) and a blurred copy (B), as a restoration and its input would be.
    const inputs = s.server.dirs.folders.inputs;
    await sharp(path.join(inputs, 'chelsea.png')).blur(4).toFile(path.join(inputs, 'chelsea-blur.png'));
    await hook(page, 's.viewer.compare({ url: arg[0], label: "clean" }, { url: arg[1], label: "blurred" });', [view('chelsea.png'), view('chelsea-blur.png')]);
    await page.getByTestId('compare-slider').waitFor();
    await page.waitForFunction(`[...document.querySelectorAll('img.layer')].every((i) => i.complete && i.naturalWidth > 0)`);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('splits A and B where the slider is, by keys and by dragging', async () => {
    const slider = page.getByTestId('compare-slider');
    expect(await slider.getAttribute('aria-valuenow')).toBe('50');
    // B is clipped exactly at the line: the split follows the slider on screen.
    expect(Math.abs((await bEdge(page)) - (await sliderCentre(page)))).toBeLessThan(1.5);
    await slider.focus();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    expect(await slider.getAttribute('aria-valuenow')).toBe('60');
    const stage = (await page.locator('.stage').boundingBox())!;
    const box = (await slider.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, stage.y + stage.height / 2);
    await page.mouse.down();
    await page.mouse.move(stage.x + stage.width * 0.25, stage.y + stage.height / 2, { steps: 6 });
    await page.mouse.up();
    expect(Number(await slider.getAttribute('aria-valuenow'))).toBeGreaterThanOrEqual(24);
    expect(Number(await slider.getAttribute('aria-valuenow'))).toBeLessThanOrEqual(26);
    expect(Math.abs((await bEdge(page)) - (await sliderCentre(page)))).toBeLessThan(1.5);
    // Zooming keeps the split on the line (the clip is recomputed in image pixels).
    await page.mouse.move(stage.x + stage.width * 0.6, stage.y + stage.height * 0.4);
    await page.mouse.wheel(0, -400);
    await page.waitForTimeout(100);
    expect(Math.abs((await bEdge(page)) - (await sliderCentre(page)))).toBeLessThan(1.5);
    await page.getByTestId('viewer-close').waitFor();
    await s.shot('compare-slider');
  });

  it('shows A and B side by side, zooming and panning both together', async () => {
    await page.getByTestId('compare-layout-side').click();
    const panes = page.getByTestId('compare-pane');
    await expect.poll(() => panes.count()).toBe(2);
    await page.waitForFunction(`[...document.querySelectorAll('[data-testid="compare-pane"] img')].every((i) => i.complete && i.naturalWidth > 0)`);
    const rel = (): Promise<Array<{ x: number; y: number; w: number }>> =>
      page.evaluate(`[...document.querySelectorAll('[data-testid="compare-pane"]')].map((pane) => {
        const p = pane.getBoundingClientRect();
        const r = pane.querySelector('img').getBoundingClientRect();
        return { x: r.left - p.left, y: r.top - p.top, w: r.width };
      })`);
    const before = await rel();
    const left = (await panes.nth(0).boundingBox())!;
    await page.mouse.move(left.x + left.width * 0.3, left.y + left.height * 0.5);
    await page.mouse.wheel(0, -600);
    await page.mouse.down();
    await page.mouse.move(left.x + left.width * 0.3 + 40, left.y + left.height * 0.5 + 25, { steps: 4 });
    await page.mouse.up();
    await page.waitForTimeout(100);
    const after = await rel();
    // Zoomed in (wider on screen) and the two panes show the same region at the same scale.
    expect(after[0]!.w).toBeGreaterThan(before[0]!.w * 1.5);
    expect(Math.abs(after[0]!.x - after[1]!.x)).toBeLessThan(0.5);
    expect(Math.abs(after[0]!.y - after[1]!.y)).toBeLessThan(0.5);
    expect(Math.abs(after[0]!.w - after[1]!.w)).toBeLessThan(0.5);
    expect(await page.getByTestId('compare-slider').count()).toBe(0);
    await s.shot('compare-side-by-side');
    await page.getByTestId('compare-layout-slider').click();
    await page.getByTestId('compare-slider').waitFor();
  });

  it('shows a Compare Images node as an A/B slider and opens exactly its pair in one click', async () => {
    await page.getByTestId('viewer-close').click();
    // The photo (A) against a copy shrunk to a tenth and blown back up with nearest (B).
    const wf = buildWorkflow('Compare node', [
      { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40], size: [240, 240] },
      { id: 2, type: 'ImageResize', title: 'Tenth', widgets: { mode: 'scale', scale: 0.1, method: 'area' }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [300, 40], size: [240, 180] },
      {
        id: 3,
        type: 'ImageResize',
        title: 'Back up',
        widgets: { mode: 'size', width: 451, height: 300, method: 'nearest' },
        inputs: [['image', 2, 0, 'IMAGE']],
        outputs: [['image', 'IMAGE']],
        pos: [300, 260],
        size: [240, 180],
      },
      {
        id: 4,
        type: 'CompareImages',
        title: 'Compare',
        widgets: { label_a: 'photo', label_b: 'pixelated' },
        inputs: [['image_a', 1, 0, 'IMAGE'], ['image_b', 3, 0, 'IMAGE']],
        pos: [580, 40],
        size: [420, 200],
      },
    ]);
    await hook(page, 's.graph.load(arg);', wf);
    await queueAndWait(page);
    const state = await runState(page, '4');
    expect(state.status).toBe('done');
    expect(state.compare).toMatchObject({ labelA: 'photo', labelB: 'pixelated' });
    expect(state.images).toEqual([state.compare!.a, state.compare!.b]);
    // Both are drawn as one picture with the split in the middle.
    await expect.poll(() => hook(page, "return s.graph.pairSplit('4');")).toBe(0.5);
    const box = (await hook<{ x: number; y: number; width: number; height: number } | null>(page, "return s.graph.imageBox('4');"))!;
    expect(box.width / box.height).toBeCloseTo(451 / 300, 1);
    await s.shot('compare-node');
    // The split follows the pointer across the picture.
    await page.mouse.move(box.x + box.width * 0.25, box.y + box.height / 2, { steps: 3 });
    await expect.poll(async () => Number(await hook(page, "return s.graph.pairSplit('4');"))).toBeCloseTo(0.25, 1);
    await page.waitForTimeout(100);
    await s.shot('compare-node-hover');

    // One click opens the viewer in compare mode with exactly A and B of the node.
    await page.mouse.click(box.x + box.width * 0.25, box.y + box.height / 2);
    const viewer = page.getByTestId('image-viewer');
    await viewer.waitFor();
    expect(await viewer.getAttribute('data-mode')).toBe('compare');
    expect(await page.getByTestId('slot-a').textContent()).toContain('photo');
    expect(await page.getByTestId('slot-b').textContent()).toContain('pixelated');
    await page.getByTestId('compare-layout-slider').click();
    await page.getByTestId('compare-slider').waitFor();
    const layers = await page.evaluate(`[...document.querySelectorAll('[data-testid="image-viewer"] img.layer')].map((i) => i.getAttribute('src'))`);
    expect(layers).toEqual([state.compare!.a, state.compare!.b]);
    await page.waitForFunction(`[...document.querySelectorAll('img.layer')].every((i) => i.complete && i.naturalWidth > 0)`);
    await page.waitForTimeout(200); // past the viewer's fade-in
    await s.shot('compare-node-viewer');
    await page.getByTestId('viewer-close').click();

    // The run's history entry offers the same pair.
    await page.getByTestId('queue-toggle').click();
    await page.getByTestId('history-pair').first().waitFor();
    await page.getByTestId('history-compare').first().click();
    await viewer.waitFor();
    expect(await viewer.getAttribute('data-mode')).toBe('compare');
    const fromHistory = await page.evaluate(`[...document.querySelectorAll('[data-testid="image-viewer"] img.layer')].map((i) => i.getAttribute('src'))`);
    expect(fromHistory).toEqual([state.compare!.a, state.compare!.b]);
    await page.getByTestId('viewer-close').click();
    await page.getByTestId('queue-toggle').click();
  });

  it('logged no errors in the browser console', () => {
    expect(s.errors).toEqual([]);
    expect(fs.existsSync(path.join(s.server.dirs.folders.inputs, 'chelsea-blur.png'))).toBe(true);
  });
});
