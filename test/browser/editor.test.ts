import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { readPngTextChunks } from '../../nodes/image/png-text.ts';
import { openEditor, type EditorSession } from './harness.ts';

/** Runs `fn` in the page with the test hook; `fn` is source text so the page's types stay there. */
const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

const nodeIds = (page: Page): Promise<string[]> => hook(page, 'return s.workflow().nodes.map((n) => String(n.id));');
const runState = (page: Page, id: string): Promise<{ status: string; images: string[]; error: string | null }> =>
  hook(page, 'return s.graph.runState(arg);', id);

async function addFromLibrary(page: Page, type: string, at: { x: number; y: number }): Promise<string> {
  const before = new Set(await nodeIds(page));
  await page.getByTestId('library-search').fill(type === 'ImageResize' ? 'resize' : type === 'SaveImage' ? 'save' : 'load image');
  await page.locator(`[data-testid="library-item"][data-type="${type}"]`).dragTo(page.getByTestId('graph-canvas'), { targetPosition: at });
  await page.getByTestId('library-search').fill('');
  const added = (await nodeIds(page)).filter((id) => !before.has(id));
  expect(added).toHaveLength(1);
  return added[0]!;
}

async function connect(page: Page, from: string, to: string): Promise<void> {
  const a = await hook<[number, number]>(page, "return s.graph.slotPosition(arg[0], 'output', 0);", [from]);
  const b = await hook<[number, number]>(page, "return s.graph.slotPosition(arg[0], 'input', 0);", [to]);
  await page.mouse.move(a[0], a[1]);
  await page.mouse.down();
  await page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, { steps: 5 });
  await page.mouse.move(b[0], b[1], { steps: 5 });
  await page.mouse.up();
}

async function queueAndWait(page: Page, timeout = 20_000): Promise<string> {
  const previous = await hook<string | null>(page, 'return s.lastPromptId;');
  await page.getByTestId('queue-button').click();
  await page.waitForFunction((prev) => {
    const s = (globalThis as unknown as { __studio: { lastPromptId: string | null; events: Array<{ type: string; prompt_id?: string }> } }).__studio;
    return s.lastPromptId !== prev && s.events.some((e) => e.type === 'prompt_done' && e.prompt_id === s.lastPromptId);
  }, previous, { timeout });
  return (await hook<string>(page, 'return s.lastPromptId;'))!;
}

describe('the editor in a browser', () => {
  let s: EditorSession;
  let page: Page;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    s = await openEditor();
    page = s.page;
  });
  afterAll(async () => {
    await s?.close();
  });

  it('opens on the default template and restores a photo with it', async () => {
    const types = await hook<string[]>(page, 'return s.workflow().nodes.map((n) => n.type);');
    expect(types).toEqual(['LoadImage', 'LoadUpscaleModel', 'UpscaleImage', 'LoadUpscaleModel', 'UpscaleImage', 'LoadUpscaleModel', 'UpscaleImage', 'SaveImage']);
    await expect.poll(() => page.getByTestId('ep-indicator').textContent()).toMatch(/CPU/i);
    await s.shot('00-default-template');
    // MAXIM denoises and deblurs a 128 px tile in seconds each on a CPU (converting each model
    // once, first): the sample photo shrunk to 128x96 is one tile.
    const small = path.join(s.server.dirs.folders.inputs, 'small.png');
    await sharp(path.resolve(import.meta.dirname, '../../assets/inputs/chelsea.png')).resize(128, 96).png().toFile(small);
    await hook(page, "s.graph.setWidget('1', 'image', 'small.png');");
    await queueAndWait(page, 180_000);
    await expect.poll(async () => (await runState(page, '8')).images.length).toBe(1);
    const [file] = fs.readdirSync(s.server.dirs.folders.outputs);
    expect(await sharp(path.join(s.server.dirs.folders.outputs, file!)).metadata()).toMatchObject({ width: 128 * 4, height: 96 * 4 });
    await page.waitForTimeout(300);
    await s.shot('00-default-restored');
  }, 240_000);

  it('builds a graph from the library, runs it, and re-runs only what changed', async () => {
    await page.getByTestId('workflow-menu-button').click();
    await page.getByTestId('menu-new').click();
    // The default template was changed (its smaller photo): New asks first; its work is not kept.
    await page.getByTestId('unsaved-dialog').waitFor();
    await page.getByTestId('unsaved-discard').click();
    await page.getByTestId('unsaved-dialog').waitFor({ state: 'detached' });
    expect(await nodeIds(page)).toEqual([]);

    ids.load = await addFromLibrary(page, 'LoadImage', { x: 130, y: 200 });
    ids.resize = await addFromLibrary(page, 'ImageResize', { x: 480, y: 200 });
    ids.save = await addFromLibrary(page, 'SaveImage', { x: 800, y: 200 });
    await connect(page, ids.load, ids.resize);
    await connect(page, ids.resize, ids.save);
    const links = await hook<unknown[]>(page, 'return s.workflow().links;');
    expect(links).toHaveLength(2);

    await hook(page, "s.graph.setWidget(arg.load, 'image', 'chelsea.png'); s.graph.setWidget(arg.resize, 'scale', 0.5);", ids);
    await s.shot('01-built');
    await queueAndWait(page);
    await expect.poll(async () => (await runState(page, ids.save!)).images.length).toBeGreaterThan(0);
    const first = await runState(page, ids.save!);
    expect(first.status).toBe('done');
    const bytes = await hook<number>(page, 'return fetch(arg).then((r) => r.arrayBuffer()).then((b) => b.byteLength);', first.images[0]);
    expect(bytes).toBeGreaterThan(1000);
    await page.waitForTimeout(300); // let the node image decode before the picture is taken
    await s.shot('02-first-run');

    await hook(page, "s.graph.setWidget(arg.resize, 'scale', 0.25);", ids);
    await queueAndWait(page);
    expect((await runState(page, ids.load!)).status).toBe('cached');
    expect((await runState(page, ids.resize!)).status).toBe('done');
    expect((await runState(page, ids.save!)).status).toBe('done');
    const outputs = fs.readdirSync(s.server.dirs.folders.outputs).filter((f) => f.startsWith('supir_')).sort();
    expect(outputs).toHaveLength(2);
    expect((await sharp(path.join(s.server.dirs.folders.outputs, outputs[1]!)).metadata()).width).toBe(Math.round(451 * 0.25));
    await page.waitForTimeout(300);
    await s.shot('03-rerun-cached');
  });

  it('shows outputs large and compares two of them', async () => {
    await page.getByTestId('queue-toggle').click();
    await expect.poll(() => page.getByTestId('history-entry').count()).toBe(3);
    await s.shot('04-queue-panel');
    await page.getByTestId('history-thumb').first().click();
    await page.getByTestId('image-viewer').waitFor();
    await page.getByTestId('compare-button').click();
    // A is the image shown; B is picked from the strip of outputs (the other run's image).
    const thumbs = page.getByTestId('viewer-thumb');
    await expect.poll(() => thumbs.count()).toBeGreaterThanOrEqual(2);
    await thumbs.nth(1).click();
    await page.getByTestId('compare-slider').waitFor();
    await page.waitForTimeout(200);
    await s.shot('05-compare');
    await page.keyboard.press('Escape');
    await page.getByTestId('image-viewer').waitFor({ state: 'detached' });
    await page.getByTestId('queue-toggle').click();
  });

  it('imports a workflow JSON and exports it unchanged', async () => {
    const wf = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../workflows/resize-basic.json'), 'utf8'));
    wf.name = 'Imported';
    wf.nodes[1].widgets_values.scale = 3;
    wf.nodes[1].pos = [420, 260];
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'supir-import-')), 'imported.json');
    fs.writeFileSync(file, JSON.stringify(wf));
    await page.getByTestId('import-file-input').setInputFiles(file);
    // The graph built above is unsaved work: opening a file asks first (test/browser/unsaved.test.ts).
    await page.getByTestId('unsaved-discard').click();
    await expect.poll(() => hook<number>(page, 'return s.workflow().nodes[1]?.widgets_values.scale;')).toBe(3);

    await page.getByTestId('workflow-menu-button').click();
    const download = page.waitForEvent('download');
    await page.getByTestId('menu-export').click();
    const exported = JSON.parse(fs.readFileSync((await (await download).path())!, 'utf8'));
    // Optional inputs the file does not list (Save Image's caption, ...) come back as unlinked slots.
    const linked = (n: { inputs: Array<{ link: number | null }> }): unknown => ({ ...n, inputs: n.inputs.filter((i) => i.link !== null) });
    expect(exported.nodes.map(linked)).toEqual(wf.nodes.map((n: Record<string, unknown>) => expect.objectContaining({ ...n, size: expect.any(Array) })));
    expect(exported.links).toEqual(wf.links);
    expect(exported.nodes.map((n: { widgets_values: unknown }) => n.widgets_values)).toEqual(wf.nodes.map((n: { widgets_values: unknown }) => n.widgets_values));
  });

  it('restores the graph from a PNG made by Save Image, dropped on the window', async () => {
    const [first] = fs.readdirSync(s.server.dirs.folders.outputs).sort();
    const png = fs.readFileSync(path.join(s.server.dirs.folders.outputs, first!));
    const embedded = JSON.parse(readPngTextChunks(png).workflow!);
    await hook(page, "s.graph.clear();");
    expect(await nodeIds(page)).toEqual([]);
    // A drop carrying the file, as the browser makes one when a PNG is dragged in from the desktop.
    await hook(
      page,
      `const bytes = Uint8Array.from(atob(arg), (c) => c.charCodeAt(0));
       const dt = new DataTransfer();
       dt.items.add(new File([bytes], 'output.png', { type: 'image/png' }));
       window.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));`,
      png.toString('base64'),
    );
    await expect.poll(() => nodeIds(page)).toEqual(embedded.nodes.map((n: { id: number }) => String(n.id)));
    const restored = await hook<{ nodes: Array<{ widgets_values: unknown }> }>(page, 'return s.workflow();');
    expect(restored.nodes.map((n) => n.widgets_values)).toEqual(embedded.nodes.map((n: { widgets_values: unknown }) => n.widgets_values));
  });

  it('marks the failing node of an invalid graph', async () => {
    const wf = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../workflows/resize-basic.json'), 'utf8'));
    wf.links = wf.links.slice(0, 1); // Save Image loses its input
    wf.nodes[2].inputs[0].link = null;
    wf.nodes[1].outputs[0].links = [];
    await hook(page, 's.graph.load(arg);', wf);
    await page.getByTestId('queue-button').click();
    await page.getByTestId('error-panel').waitFor();
    expect(await page.getByTestId('error-panel').textContent()).toMatch(/image/);
    await expect.poll(async () => (await runState(page, '3')).status).toBe('error');
    expect((await runState(page, '3')).error).toMatch(/not connected/);
    await s.shot('06-invalid-graph');
  });

  it('logged no errors in the browser console', () => {
    // A refused prompt is answered with HTTP 400, which Chromium logs as a failed resource load.
    const real = s.errors.filter((e) => !/Failed to load resource: the server responded with a status of 400/.test(e));
    expect(real).toEqual([]);
  });
});
