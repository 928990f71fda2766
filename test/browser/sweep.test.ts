import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import { buildWorkflow, hook, queueAndWait, runState, type NodeSpec } from './compare-workflows.ts';

/**
 * A sweep runs copies of nodes with ids `<node>:<branch>` that the canvas does not have: these
 * tests run small sweeps in the editor and check that everything the copies do shows on the
 * node they copy.
 */

/** Photo → Shrink → Preview: the chain both the sweep and the picker graphs start from. */
const photoShrinkPreview: NodeSpec[] = [
  { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40], size: [240, 240] },
  {
    id: 2,
    type: 'ImageResize',
    title: 'Shrink',
    widgets: { mode: 'scale', scale: 0.1, method: 'nearest' },
    inputs: [['image', 1, 0, 'IMAGE']],
    outputs: [['image', 'IMAGE']],
    pos: [300, 40],
    size: [240, 180],
  },
  { id: 3, type: 'PreviewImage', title: 'Preview', inputs: [['image', 2, 0, 'IMAGE']], pos: [580, 40], size: [360, 200] },
];

/** Photo → Shrink (swept: method x scale) → Preview (copied per branch) and Grid → Save. */
const sweepWorkflow = buildWorkflow('Sweep in the editor', [
  ...photoShrinkPreview,
  { id: 4, type: 'ImageGrid', title: 'Grid', inputs: [['images', 2, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [300, 300], size: [240, 200] },
  { id: 5, type: 'SaveImage', title: 'Save grid', widgets: { filename_prefix: 'sweep-grid' }, inputs: [['image', 4, 0, 'IMAGE']], pos: [580, 420], size: [360, 260] },
  {
    id: 6,
    type: 'Sweep',
    title: 'Sweep',
    widgets: { target: '2', x_widget: 'method', x_values: 'nearest, bicubic', y_target: '', y_widget: 'scale', y_values: '0.1, 0.2' },
    pos: [20, 330],
    size: [260, 250],
  },
]);

/** Photo → Crop (swept over x; the second x is outside the photo) → Preview. */
const failingWorkflow = buildWorkflow(
  'Sweep with a failing branch',
  [
    { id: 1, type: 'LoadImage', title: 'Photo', widgets: { image: 'chelsea.png' }, outputs: [['image', 'IMAGE']], pos: [20, 40] },
    { id: 2, type: 'ImageCrop', title: 'Crop', widgets: { x: 0, y: 0, width: 64, height: 64 }, inputs: [['image', 1, 0, 'IMAGE']], outputs: [['image', 'IMAGE']], pos: [320, 40] },
    { id: 3, type: 'PreviewImage', title: 'Preview', inputs: [['image', 2, 0, 'IMAGE']], pos: [620, 40] },
    { id: 4, type: 'Sweep', title: 'Sweep', widgets: { target: 'Crop', x_widget: 'x', x_values: '0, 1000' }, pos: [20, 320] },
  ],
  // Far from the nodes: the failing node is off screen until the error panel brings it in.
  { scale: 1, offset: [-3000, -3000] },
);

/** Photo → Shrink → Preview, and a Sweep left empty for the pickers to fill. */
const pickerWorkflow = buildWorkflow('Sweep pickers', [
  ...photoShrinkPreview,
  { id: 4, type: 'Sweep', title: 'Sweep', widgets: {}, pos: [20, 330], size: [300, 250] },
]);

/** Records every overlay update the app makes, by the id it names. */
async function recordOverlay(page: Page): Promise<void> {
  await hook(page, `
    const g = s.graph;
    const set = g.setRunState;
    globalThis.__overlay = [];
    g.setRunState = (id, patch) => { globalThis.__overlay.push([id, JSON.parse(JSON.stringify(patch))]); set(id, patch); };`);
}
const overlayLog = (page: Page): Promise<Array<[string, { status?: string; progress?: number | null; branches?: { settled: number; total: number } | null }]>> =>
  hook(page, 'return globalThis.__overlay;');

describe('a sweep in the editor', () => {
  let s: EditorSession;
  let page: Page;

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('shows every branch on the swept node and its copies: progress, done, images with their values', async () => {
    await hook(page, 's.graph.load(arg);', sweepWorkflow);
    await recordOverlay(page);
    await queueAndWait(page);
    const events = await hook<Array<{ type: string; node_id?: string }>>(page, 'return s.events;');
    // The engine did run copies (this is what the editor has to map back)...
    expect(events.filter((e) => e.type === 'node_done' && e.node_id?.startsWith('3:')).map((e) => e.node_id).sort()).toEqual(['3:0', '3:1', '3:2', '3:3']);
    // ...but the canvas was only ever told about its own nodes.
    const log = await overlayLog(page);
    expect(log.filter(([id]) => id.includes(':'))).toEqual([]);
    // The swept node ran as one: running with its branch count, part-way progress, then done.
    const shrink = log.filter(([id]) => id === '2').map(([, p]) => p);
    expect(shrink.some((p) => p.status === 'running' && p.branches?.total === 4)).toBe(true);
    expect(shrink.some((p) => p.status === 'running' && typeof p.progress === 'number' && p.progress > 0 && p.progress < 1)).toBe(true);

    const preview = await runState(page, '3');
    expect(preview.status).toBe('done');
    expect(preview.branches).toEqual({ settled: 4, total: 4 });
    expect(preview.labels).toEqual(['method=nearest, scale=0.1', 'method=bicubic, scale=0.1', 'method=nearest, scale=0.2', 'method=bicubic, scale=0.2']);
    // Each image is its branch's: 0.1 and 0.2 of the 451-pixel-wide photo.
    const widths = await hook<number[]>(
      page,
      'return Promise.all(arg.map((u) => new Promise((ok, no) => { const i = new Image(); i.onload = () => ok(i.naturalWidth); i.onerror = no; i.src = u; })));',
      preview.images,
    );
    expect(widths).toEqual([45, 45, 90, 90]);
    expect((await runState(page, '2')).status).toBe('done');
    expect((await runState(page, '5')).images).toHaveLength(1);
    expect((await runState(page, '3:0')).status).toBe('idle');

    await page.waitForTimeout(400); // the node images decode before the picture is taken
    await s.shot('sweep-branches-on-node');

    // Clicking one branch's image opens it captioned with its values.
    const box = await hook<{ x: number; y: number; width: number; height: number }>(page, "return s.graph.imageBox('3', 2);");
    expect(box).not.toBeNull();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 3);
    await page.getByTestId('image-viewer').waitFor();
    expect(await page.getByTestId('image-viewer').textContent()).toContain('method=nearest, scale=0.2');
    await page.getByTestId('viewer-close').click();
  });

  it('runs nothing again and marks the branches cached', async () => {
    await queueAndWait(page);
    const preview = await runState(page, '3');
    expect(preview.status).toBe('cached');
    expect(preview.images).toHaveLength(4);
    expect((await runState(page, '2')).status).toBe('cached');
  });

  it('captions branches with the values the prompt ran with, not what the canvas shows now', async () => {
    // The canvas' Sweep now lists other values than the prompt below will run with...
    await hook(page, 's.graph.load(arg);', sweepWorkflow);
    await hook(page, "s.graph.setWidget('6', 'x_values', 'bilinear, area'); s.graph.setWidget('6', 'y_values', '0.15');");
    // ...and the prompt comes from elsewhere (another tab, a script): the workflow as first built.
    const other = sweepWorkflow;
    const id = await hook<string>(
      page,
      `return fetch('/api/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: arg, client_id: 'another-tab' }) })
        .then((r) => r.json()).then((b) => b.prompt_id);`,
      other,
    );
    await page.waitForFunction((pid) => (globalThis as unknown as { __studio: { events: Array<{ type: string; prompt_id?: string }> } }).__studio.events.some((e) => e.type === 'prompt_done' && e.prompt_id === pid), id);
    const preview = await runState(page, '3');
    // It ran in the first test: every branch comes from the cache, announced with its branch.
    expect(preview.status).toBe('cached');
    // The values the server ran, from its events; the canvas would have said bilinear / area / 0.15.
    expect(preview.labels).toEqual(['method=nearest, scale=0.1', 'method=bicubic, scale=0.1', 'method=nearest, scale=0.2', 'method=bicubic, scale=0.2']);
    const events = await hook<Array<{ type: string; prompt_id?: string; node_id?: string; branch?: { of: string; index: number; label: string } }>>(page, 'return s.events;');
    expect(events.find((e) => e.prompt_id === id && e.type === 'node_done' && e.node_id === '3:2')?.branch).toEqual({ of: '3', index: 2, label: 'method=nearest, scale=0.2' });

    // Queued from this canvas, then the Sweep edited while it runs: the captions stay the queued values.
    await hook(page, "s.graph.setWidget('6', 'x_values', 'nearest, area'); s.graph.setWidget('6', 'y_values', '0.11');");
    await page.getByTestId('queue-button').click();
    await hook(page, "s.graph.setWidget('6', 'x_values', 'bicubic'); s.graph.setWidget('6', 'y_values', '0.3');");
    await page.waitForFunction(() => {
      const s = (globalThis as unknown as { __studio: { lastPromptId: string | null; events: Array<{ type: string; prompt_id?: string }> } }).__studio;
      return s.lastPromptId !== null && s.events.some((e) => e.type === 'prompt_done' && e.prompt_id === s.lastPromptId);
    });
    expect((await runState(page, '3')).labels).toEqual(['method=nearest, scale=0.11', 'method=area, scale=0.11']);
  });

  it('marks the swept node when one branch fails, and the error panel shows that node', async () => {
    await hook(page, 's.graph.load(arg);', failingWorkflow);
    const before = await hook<[number, number]>(page, "return s.graph.slotPosition('2', 'input', 0);");
    await queueAndWait(page);
    const crop = await runState(page, '2');
    expect(crop.status).toBe('error');
    expect(crop.error).toMatch(/outside the image/);
    await page.getByTestId('error-panel').waitFor();
    const button = page.getByTestId('error-node');
    expect(await button.getAttribute('data-node-id')).toBe('2:1');
    await button.click();
    // Centred on node 2: its input dot (its left edge) is now just left of the canvas centre.
    const after = await hook<[number, number]>(page, "return s.graph.slotPosition('2', 'input', 0);");
    const canvas = (await page.getByTestId('graph-canvas').boundingBox())!;
    expect(after).not.toEqual(before);
    expect(after[0]).toBeLessThan(canvas.x + canvas.width / 2);
    expect(after[0]).toBeGreaterThan(canvas.x + canvas.width / 2 - 400);
    expect(Math.abs(after[1] - (canvas.y + canvas.height / 2))).toBeLessThan(200);
    await page.waitForTimeout(200);
    await s.shot('sweep-branch-error');
  });

  it('picks the target node and its widget from menus on the Sweep widgets, then runs the branches', async () => {
    await hook(page, 's.graph.load(arg);', pickerWorkflow);
    const menu = page.locator('.litecontextmenu');
    const clickWidget = async (name: string): Promise<void> => {
      const at = await hook<[number, number] | null>(page, 'return s.graph.widgetPosition(arg[0], arg[1]);', ['4', name]);
      expect(at).not.toBeNull();
      // Litegraph finds the node under the pointer among the nodes it last drew: let it draw the loaded graph.
      await page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))');
      await page.mouse.click(at![0], at![1]);
      await menu.first().waitFor();
    };
    const entries = (): Promise<string[]> => menu.locator('.litemenu-entry:not(.separator)').allTextContents();

    // target: the other nodes as "Title (#id)" (not the Sweep itself), stored as the id.
    await clickWidget('target');
    expect(await entries()).toEqual(['Photo (#1)', 'Shrink (#2)', 'Preview (#3)', 'Type a value…']);
    await page.waitForTimeout(100);
    await s.shot('sweep-picker');
    await menu.locator('.litemenu-entry', { hasText: 'Shrink' }).click();
    await menu.first().waitFor({ state: 'detached' });
    await expect.poll(() => hook(page, "return s.workflow().nodes.find((n) => n.id === 4).widgets_values.target;")).toBe('2');

    // x_widget: the widgets of Shrink; picking a combo fills the empty x_values with its options.
    await clickWidget('x_widget');
    expect(await entries()).toEqual(['mode', 'scale', 'width', 'height', 'method', 'Type a value…']);
    await menu.locator('.litemenu-entry', { hasText: /^method$/ }).click();
    await menu.first().waitFor({ state: 'detached' });
    const values = await hook<Record<string, unknown>>(page, 'return s.workflow().nodes.find((n) => n.id === 4).widgets_values;');
    expect(values.target).toBe('2');
    expect(values.x_widget).toBe('method');
    expect(values.x_values).toBe('lanczos\nbicubic\narea\nnearest\nbilinear');

    // y_widget follows y_target, else target: offers "None" and Shrink's widgets.
    await clickWidget('y_widget');
    expect(await entries()).toEqual(['mode', 'scale', 'width', 'height', 'method', 'None (x only)', 'Type a value…']);
    await menu.locator('.litemenu-entry', { hasText: 'None (x only)' }).click();
    await menu.first().waitFor({ state: 'detached' });
    expect(await hook(page, "return s.workflow().nodes.find((n) => n.id === 4).widgets_values.y_widget;")).toBe('');

    await queueAndWait(page);
    const preview = await runState(page, '3');
    expect(preview.status).toBe('done');
    expect(preview.branches).toEqual({ settled: 5, total: 5 });
    expect(preview.labels).toEqual(['method=lanczos', 'method=bicubic', 'method=area', 'method=nearest', 'method=bilinear']);
  });

  it('logged no errors in the browser console', () => {
    expect(s.errors).toEqual([]);
  });
});
