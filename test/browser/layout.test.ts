import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import { buildWorkflow, hook, queueAndWait, runState } from './compare-workflows.ts';

/**
 * Layout, measured in a 1600 x 1000 window: boxes that must not overlap do not, and what must be
 * on screen is inside the window (or the canvas) — no pixel comparisons.
 */

interface Rect { x: number; y: number; width: number; height: number }
const W = 1600;
const H = 1000;

const overlap = (a: Rect, b: Rect): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const inside = (a: Rect, b: Rect, slack = 0.5): boolean =>
  a.x >= b.x - slack && a.y >= b.y - slack && a.x + a.width <= b.x + b.width + slack && a.y + a.height <= b.y + b.height + slack;

const nodeIds = (page: Page): Promise<string[]> => hook(page, 'return s.workflow().nodes.map((n) => String(n.id));');
const nodeBoxes = async (page: Page): Promise<Record<string, Rect>> =>
  hook(page, 'return Object.fromEntries(s.workflow().nodes.map((n) => [String(n.id), s.graph.nodeBox(String(n.id))]));');
const canvasBox = async (page: Page): Promise<Rect> => (await page.getByTestId('graph-canvas').boundingBox())!;
/** Lets litegraph draw what changed (node sizes settle when drawn). */
const frames = (page: Page): Promise<unknown> => page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))');

function overlapping(boxes: Record<string, Rect>): string[] {
  const ids = Object.keys(boxes);
  const pairs: string[] = [];
  for (let i = 0; i < ids.length; i++) for (let j = i + 1; j < ids.length; j++) if (overlap(boxes[ids[i]!]!, boxes[ids[j]!]!)) pairs.push(`${ids[i]}/${ids[j]}`);
  return pairs;
}

async function openTemplate(page: Page, name: string): Promise<void> {
  await page.getByTestId('workflow-menu-button').click();
  await page.getByTestId('menu-open').click();
  await page.locator(`[data-testid="template-entry"][data-name="${name}"]`).click();
  const dialog = page.getByTestId('unsaved-dialog');
  await dialog.waitFor({ timeout: 1000 }).then(() => page.getByTestId('unsaved-discard').click(), () => {});
}

describe('layout of the editor', () => {
  let s: EditorSession;
  let page: Page;
  const notFound: string[] = [];

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
    page.on('response', (r) => {
      if (r.status() >= 400) notFound.push(`${r.status()} ${r.url()}`);
    });
    await page.setViewportSize({ width: W, height: H });
    await frames(page);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('opens every template fitted to the view: all its nodes inside the canvas', async () => {
    await page.getByTestId('workflow-menu-button').click();
    await page.getByTestId('menu-open').click();
    const names = await page.locator('[data-testid="template-entry"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')!));
    await page.keyboard.press('Escape');
    expect(names.length).toBeGreaterThan(3);
    for (const name of names) {
      await openTemplate(page, name);
      await expect.poll(() => hook(page, 'return s.workflow().name ?? null;').catch(() => null), { timeout: 5000 }).toBeTruthy();
      await frames(page);
      const canvas = await canvasBox(page);
      const boxes = await nodeBoxes(page);
      const outside = Object.entries(boxes).filter(([, b]) => !inside(b, canvas)).map(([id, b]) => `${name} #${id} ${JSON.stringify(b)}`);
      expect(outside).toEqual([]);
      if (name === 'compare-samplers') await s.shot('layout-template-fitted');
    }
  });

  it('opens every template with no node over another, also once its Load Image shows a tall photo', async () => {
    // A portrait photo (2:3), as a phone takes one: Load Image must not grow down over its neighbours.
    await sharp({ create: { width: 400, height: 600, channels: 3, background: '#7a9' } }).png().toFile(path.join(s.server.dirs.folders.inputs, 'portrait.png'));
    await page.evaluate(`window.dispatchEvent(new Event('focus'))`); // the editor reads the image lists again
    await page.getByTestId('workflow-menu-button').click();
    await page.getByTestId('menu-open').click();
    const names = await page.locator('[data-testid="template-entry"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-name')!));
    await page.keyboard.press('Escape');
    const found: string[] = [];
    for (const name of names) {
      await openTemplate(page, name);
      await expect.poll(() => hook(page, 'return s.workflow().name ?? null;').catch(() => null), { timeout: 5000 }).toBeTruthy();
      const loads = (await hook<Array<{ id: number; type: string }>>(page, 'return s.workflow().nodes;')).filter((n) => n.type === 'LoadImage').map((n) => String(n.id));
      // Each photo drawn (its size written under it), and the node sized for it.
      for (const id of loads) {
        await expect.poll(async () => {
          await hook(page, "s.graph.setWidget(arg, 'image', 'portrait.png');", id);
          return hook(page, 'return s.graph.imageFooter(arg);', id);
        }, { timeout: 5000 }).toBe('400 x 600');
      }
      await frames(page);
      await frames(page);
      found.push(...overlapping(await nodeBoxes(page)).map((p) => `${name}: ${p}`));
      if (name === 'compare-samplers') await s.shot('layout-template-photo-loaded');
    }
    expect(found).toEqual([]);
  });

  it('adds a node clicked in the library near the view centre, on no other node', async () => {
    await openTemplate(page, 'resize-basic');
    await expect.poll(async () => (await nodeIds(page)).length).toBe(3);
    // A node right in the middle of the view, where a new node would go.
    await hook(page, "s.graph.addNode('ImageResize');");
    for (let i = 0; i < 3; i++) {
      const before = new Set(await nodeIds(page));
      await page.getByTestId('library-search').fill('resize');
      await page.locator('[data-testid="library-item"][data-type="ImageResize"]').click();
      await page.getByTestId('library-search').fill('');
      const added = (await nodeIds(page)).filter((id) => !before.has(id));
      expect(added).toHaveLength(1);
    }
    await frames(page);
    const canvas = await canvasBox(page);
    const boxes = await nodeBoxes(page);
    expect(overlapping(boxes)).toEqual([]);
    const ids = await nodeIds(page);
    for (const id of ids.slice(-4)) expect(inside(boxes[id]!, canvas), `node #${id} ${JSON.stringify(boxes[id])} inside the canvas ${JSON.stringify(canvas)}`).toBe(true);
    await s.shot('layout-library-added');
  });

  it('keeps the double-click search box inside the window at the canvas corner', async () => {
    await hook(page, 's.graph.load(arg); ', buildWorkflow('one node', [{ id: 1, type: 'LoadImage', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [0, 0] }], { scale: 1, offset: [100, 100] }));
    await frames(page);
    const canvas = await canvasBox(page);
    const window = { x: 0, y: 0, width: W, height: H };
    for (const [x, y] of [[canvas.x + canvas.width - 12, canvas.y + canvas.height - 12], [canvas.x + canvas.width - 12, canvas.y + 200]] as const) {
      await page.mouse.dblclick(x, y);
      const box = page.locator('.litesearchbox');
      await box.waitFor();
      await page.keyboard.type('image');
      await expect.poll(() => box.locator('.lite-search-item').count()).toBeGreaterThan(2);
      await frames(page);
      const r = (await box.boundingBox())!;
      expect(inside(r, window), `search box ${JSON.stringify(r)} inside the window`).toBe(true);
      if (y > canvas.y + canvas.height / 2) await s.shot('layout-search-box-corner');
      const list = (await box.locator('.helper').boundingBox())!;
      const input = (await box.locator('input').first().boundingBox())!;
      expect(list.height).toBeGreaterThan(60);
      expect(list.y).toBeGreaterThanOrEqual(input.y + input.height - 0.5); // the list under the input, not squeezed beside it
      expect(list.width).toBeGreaterThan(250);
      // No name cut off or wrapped: each item one line, nothing hidden.
      const items = await box.locator('.lite-search-item').evaluateAll((els) => els.map((e) => ({ text: e.textContent, sw: e.scrollWidth, cw: e.clientWidth, h: e.clientHeight })));
      for (const item of items) expect(item.sw, item.text ?? '').toBeLessThanOrEqual(item.cw);
      expect(Math.max(...items.map((i) => i.h))).toBeLessThan(40);
      await page.keyboard.press('Escape');
      await box.waitFor({ state: 'detached' });
    }
  });

  it('labels no two toolbar buttons alike (one "Queue": the run button)', async () => {
    const labels = (await page.locator('header button:visible').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').replace(/\d+/g, '').trim()).filter(Boolean);
    expect(labels.length).toBeGreaterThan(2);
    expect(new Set(labels).size, labels.join(' | ')).toBe(labels.length);
    expect(labels.filter((l) => /^queue$/i.test(l))).toHaveLength(1);
  });

  it('is never wider than the window, with the queue panel closed or open', async () => {
    // Source text: the page's DOM types are not this file's. Every element wider than the window,
    // or holding content that is (a container that could be scrolled sideways, by a focus or a
    // search in the page), is listed for the message when one is.
    const widths = (): Promise<{ doc: number; body: number; inner: number; wide: string[] }> =>
      page.evaluate(`({
        doc: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        inner: window.innerWidth,
        wide: [...document.querySelectorAll('body *')]
          .filter((e) => (e.getBoundingClientRect().right > window.innerWidth + 0.5 && getComputedStyle(e).visibility !== 'hidden') || e.scrollWidth > window.innerWidth)
          .map((e) => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ' right ' + Math.round(e.getBoundingClientRect().right) + ' scrollWidth ' + e.scrollWidth)
          .slice(0, 8),
      })`);
    for (const open of [false, true]) {
      if (open) {
        await page.getByTestId('queue-toggle').click();
        await expect.poll(async () => { const b = (await page.getByTestId('queue-panel').boundingBox())!; return Math.round(b.x + b.width); }).toBe(W);
      }
      const w = await widths();
      expect(w.doc, w.wide.join(', ')).toBeLessThanOrEqual(w.inner);
      expect(w.body, w.wide.join(', ')).toBeLessThanOrEqual(w.inner);
      expect(w.wide).toEqual([]);
    }
    await page.getByTestId('queue-toggle').click();
  });

  it('has 100 % and Fit in the viewer, and zooms 1.1x per wheel notch', async () => {
    const view = (file: string): string => `/api/view?${new URLSearchParams({ folder: 'inputs', file })}`;
    const zoom = async (): Promise<number> => Number((await page.getByTestId('viewer-zoom').textContent())!.replace('%', ''));
    await hook(page, 's.viewer.open({ url: arg, label: "chelsea.png" });', view('chelsea.png'));
    const stage = page.getByTestId('viewer-stage');
    await stage.locator('img').first().waitFor();
    await expect.poll(zoom).not.toBe(100); // fitted: a 451 x 300 photo is enlarged to fill the stage
    const fitted = await zoom();
    const stageBox = (await stage.boundingBox())!;
    const imageBox = async (): Promise<Rect> => (await stage.locator('.content').boundingBox())!;
    expect(inside(await imageBox(), stageBox, 1)).toBe(true);

    await page.getByTestId('viewer-actual').click();
    expect(await zoom()).toBe(100);
    expect((await imageBox()).width).toBeCloseTo(451, 0);

    // 8 notches of a mouse wheel (100 px each), then 8 of a wheel that counts lines: 1.1^8 each time.
    const cx = stageBox.x + stageBox.width / 2;
    const cy = stageBox.y + stageBox.height / 2;
    await page.mouse.move(cx, cy);
    for (let i = 0; i < 8; i++) await page.mouse.wheel(0, -100);
    await expect.poll(zoom).toBe(Math.round(100 * 1.1 ** 8));
    await page.getByTestId('viewer-actual').click();
    const wheel = (events: Array<{ deltaY: number; deltaMode?: number }>): Promise<unknown> =>
      page.evaluate(`(() => {
        const el = document.querySelector('[data-testid="viewer-stage"]');
        for (const e of ${JSON.stringify(events)}) el.dispatchEvent(new WheelEvent('wheel', { ...e, clientX: ${cx}, clientY: ${cy}, bubbles: true, cancelable: true }));
      })()`);
    await wheel(Array.from({ length: 8 }, () => ({ deltaY: -3, deltaMode: 1 })));
    expect(await zoom()).toBe(Math.round(100 * 1.1 ** 8));
    // One huge event (a fast flick) counts 5 notches at most; out again notch by notch.
    await wheel([{ deltaY: -5000 }, ...Array.from({ length: 13 }, () => ({ deltaY: 100 }))]);
    expect(await zoom()).toBe(100);

    await page.getByTestId('viewer-fit').click();
    expect(await zoom()).toBe(fitted);
    expect(inside(await imageBox(), stageBox, 1)).toBe(true);
    await s.shot('layout-viewer-fit');

    // The header's controls: all on screen, none over another, also comparing two long labels in a narrow window.
    await hook(page, 's.viewer.compare({ url: arg[0], label: arg[1] }, { url: arg[0], label: arg[1] + " (B)" });', [view('chelsea.png'), 'a long caption: method=bicubic, scale=0.25, cfg=7.5, control=0.9']);
    for (const width of [W, 1000]) {
      await page.setViewportSize({ width, height: H });
      await frames(page);
      const controls = await page.locator('[data-testid="image-viewer"] header button, [data-testid="image-viewer"] header .zoom').evaluateAll((els) =>
        els.map((e) => { const r = e.getBoundingClientRect(); return { text: (e.textContent ?? '').trim() || e.getAttribute('aria-label'), x: r.x, y: r.y, width: r.width, height: r.height, sw: e.scrollWidth, cw: e.clientWidth }; }),
      );
      const screen = { x: 0, y: 0, width, height: H };
      for (const c of controls) expect(inside(c, screen), `${c.text} on screen at ${width}px`).toBe(true);
      for (let i = 0; i < controls.length; i++) for (let j = i + 1; j < controls.length; j++) expect(overlap(controls[i]!, controls[j]!), `${controls[i]!.text} / ${controls[j]!.text}`).toBe(false);
      for (const c of controls.filter((c) => /100%|Fit|Compare/.test(c.text ?? ''))) expect(c.sw, `${c.text} not cut off`).toBeLessThanOrEqual(c.cw);
      // The image refits to the narrower stage.
      const box = (await page.getByTestId('viewer-stage').boundingBox())!;
      expect(inside((await page.getByTestId('viewer-stage').locator('.content').boundingBox())!, box, 1)).toBe(true);
    }
    await s.shot('layout-viewer-compare-narrow');
    await page.setViewportSize({ width: W, height: H });
    await page.getByTestId('viewer-close').click();
  });

  it('names the sides of a Compare Images node with empty labels "A" and "B", not "A · A"', async () => {
    const wf = buildWorkflow('compare unlabelled', [
      { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40], size: [240, 240] },
      { id: 2, type: 'ImageResize', title: 'Tenth', widgets: { mode: 'scale', scale: 0.1, method: 'area' }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [300, 40], size: [240, 180] },
      { id: 4, type: 'CompareImages', title: 'Compare', widgets: { label_a: '', label_b: '' }, inputs: [['image_a', 1, 0, 'IMAGE'], ['image_b', 2, 0, 'IMAGE']], pos: [580, 40], size: [420, 200] },
    ], { scale: 1, offset: [0, 0] });
    await hook(page, 's.graph.load(arg);', wf);
    await queueAndWait(page);
    expect((await runState(page, '4')).status).toBe('done');
    await expect.poll(() => hook(page, "return s.graph.pairCaptions('4');")).toEqual(['A', 'B']);
    await s.shot('layout-compare-unlabelled');
    const box = (await hook<Rect>(page, "return s.graph.imageBox('4');"))!;
    await page.mouse.click(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.getByTestId('image-viewer').waitFor();
    await page.getByTestId('compare-layout-slider').click();
    expect(await page.getByTestId('compare-corner-a').textContent()).toBe('A · Compare');
    expect(await page.getByTestId('compare-corner-b').textContent()).toBe('B · Compare');
    expect(await page.getByTestId('slot-a').textContent()).not.toMatch(/A\s*·\s*A|·\s*A$/);
    await page.getByTestId('viewer-close').click();
  });

  it('names a running sweep branch by its node and values in the queue panel, not "#2:1"', async () => {
    const wf = buildWorkflow('sweep names', [
      { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40], size: [240, 240] },
      { id: 2, type: 'ImageResize', title: 'Shrink', widgets: { mode: 'scale', scale: 0.1, method: 'nearest' }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [300, 40], size: [240, 180] },
      { id: 3, type: 'PreviewImage', title: 'Preview', inputs: [['image', 2, 0, 'IMAGE']], pos: [580, 40], size: [360, 200] },
      { id: 4, type: 'Sweep', title: 'Sweep', widgets: { target: '2', x_widget: 'method', x_values: 'nearest, bicubic', y_target: '', y_widget: 'scale', y_values: '0.1, 0.2' }, pos: [20, 330], size: [260, 250] },
    ]);
    await hook(page, 's.graph.load(arg);', wf);
    await page.getByTestId('queue-toggle').click();
    // Every text the running card shows while the sweep runs, as it changes.
    await page.evaluate(`(() => {
      globalThis.__running = [];
      const seen = () => { const el = document.querySelector('[data-testid="running-entry"] .muted'); if (el) globalThis.__running.push(el.textContent); };
      new MutationObserver(seen).observe(document.querySelector('[data-testid="queue-panel"]'), { subtree: true, childList: true, characterData: true });
    })()`);
    await queueAndWait(page);
    const texts = (await page.evaluate('globalThis.__running')) as string[];
    const shown = [...new Set(texts)];
    expect(shown.filter((t) => /#\d+:\d+/.test(t))).toEqual([]);
    expect(shown).toEqual(expect.arrayContaining([expect.stringMatching(/^(Shrink|Preview) · method=(nearest|bicubic), scale=0\.[12]$/)]));
    await page.getByTestId('queue-toggle').click();
  });

  it('logged no errors in the browser console', () => {
    // With no SUPIR pack, the SUPIR templates' memory estimate is answered 404 (and drawn as such).
    const unexpected = notFound.filter((u) => !/^404 .*\/api\/supir\/estimate\?/.test(u));
    expect(unexpected).toEqual([]);
    expect(s.errors.filter((e) => !(notFound.length && /status of 404/.test(e)))).toEqual([]);
  });
});
