/**
 * The memory estimate on the Load SUPIR Model node: with a tiny pack converted into the models
 * folder, the shipped SUPIR workflow's Load SUPIR Model node draws the server's estimate for
 * 1024x1024 under its widgets (inside the node, below the provider row), asks again when the pack
 * changes, and says how to make a pack that does not exist.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { convertToPack } from '../../server/models/pack/convert.ts';
import { TINY_COMPILE_OPTIONS, writeTinyCheckpoints } from '../../server/models/pack/tiny.ts';
import { GOLDEN_DIR } from '../support/golden.ts';
import { openEditor, SHOTS_DIR, type EditorSession } from './harness.ts';

/** Runs `body` in the page with the test hook as `s`. */
const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

interface Shown {
  text: string;
  lines: string[];
  box: { x: number; y: number; width: number; height: number };
}
/** The answer comes over HTTP and is drawn on the next frame: seconds on a loaded machine. */
const POLL = { timeout: 20_000, interval: 100 };
const shown = (page: Page, id: string): Promise<Shown | null> => hook(page, 'return s.graph.packEstimate(arg);', id);
const shownText = async (page: Page, id: string): Promise<string | undefined> => (await shown(page, id))?.text;

const PACK = 'supir-tiny';
/** The shipped SUPIR workflow, its Load SUPIR Model node set to the tiny pack (as a user picks theirs). */
const WORKFLOW = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../workflows/supir-restore.json'), 'utf8')) as {
  nodes: Array<{ id: number; type: string; widgets_values: Record<string, unknown> }>;
};
const loaderNode = WORKFLOW.nodes.find((n) => n.type === 'LoadSupirModel')!;
loaderNode.widgets_values.pack = PACK;
const LOADER = String(loaderNode.id);

/** The node's rectangle on the page (body only, title excluded), from the workflow and the view. */
async function nodeBox(page: Page, id: string): Promise<{ left: number; top: number; right: number; bottom: number }> {
  const wf = await hook<{ nodes: Array<{ id: number; pos: [number, number]; size: [number, number] }>; extra: { ds: { scale: number; offset: [number, number] } } }>(page, 'return s.workflow();');
  const node = wf.nodes.find((n) => String(n.id) === id)!;
  const { scale, offset } = wf.extra.ds;
  const canvas = (await page.getByTestId('graph-canvas').boundingBox())!;
  const at = (x: number, y: number): [number, number] => [canvas.x + (x + offset[0]) * scale, canvas.y + (y + offset[1]) * scale];
  const [left, top] = at(node.pos[0], node.pos[1]);
  const [right, bottom] = at(node.pos[0] + node.size[0], node.pos[1] + node.size[1]);
  return { left, top, right, bottom };
}

/** A close-up of a node (title included), beside the whole-window screenshot. */
async function nodeShot(page: Page, id: string, name: string): Promise<void> {
  const b = await nodeBox(page, id);
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`), clip: { x: b.left - 12, y: b.top - 36, width: b.right - b.left + 24, height: b.bottom - b.top + 48 } });
}

/** Pixels in a page rectangle clearly lighter than the node's body: drawn text. */
async function inkPixels(page: Page, box: Shown['box']): Promise<number> {
  const png = await page.screenshot({ clip: { x: box.x, y: box.y, width: Math.max(1, box.width), height: Math.max(1, box.height) } });
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let ink = 0;
  for (let i = 0; i < info.width * info.height; i++) {
    const luma = 0.299 * data[i * 3]! + 0.587 * data[i * 3 + 1]! + 0.114 * data[i * 3 + 2]!;
    if (luma > 90) ink++; // the body is #23252c (luma ~37), the text #9aa0ac or #f0b95b
  }
  return ink;
}

describe('the memory estimate on Load SUPIR Model', () => {
  let s: EditorSession;
  let page: Page;
  let estimate: { text: string; precision: string };
  let dataRoot: string;

  beforeAll(async () => {
    // The pack is in the models folder before the server starts, as a user's would be.
    dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-browser-estimate-'));
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-browser-pack-src-'));
    await convertToPack({ ...(await writeTinyCheckpoints(GOLDEN_DIR, src, { fitText: true })), out: path.join(dataRoot, 'models', PACK), ...TINY_COMPILE_OPTIONS });
    fs.rmSync(src, { recursive: true, force: true });
    s = await openEditor({ dataRoot });
    page = s.page;
    estimate = (await (await fetch(`${s.server.url}/api/supir/estimate?pack=${PACK}`)).json()) as { text: string; precision: string };
    await hook(page, 's.graph.load(arg);', WORKFLOW);
  }, 180_000);
  afterAll(async () => {
    await s?.close();
    if (dataRoot) fs.rmSync(dataRoot, { recursive: true, force: true });
  });

  it('draws the estimate of the chosen pack at 1024x1024 under the widgets, inside the node', async () => {
    expect(estimate.text).toMatch(/^about \d+\.\d GB at 1024x1024 \(fp32; sampling \d+\.\d GB\); tiled VAE (on|off)$/);
    await expect.poll(() => shownText(page, LOADER), POLL).toBe(`memory: ${estimate.text}`);
    const line = (await shown(page, LOADER))!;
    // Wrapped between words, never cut: the lines are the whole text.
    expect(line.lines.length).toBeGreaterThanOrEqual(1);
    expect(line.lines.length).toBeLessThanOrEqual(2);
    expect(line.lines.join(' ')).toBe(line.text);
    // Below the provider widget (the last one), within the node's body.
    const scale = (await hook<{ extra: { ds: { scale: number } } }>(page, 'return s.workflow();')).extra.ds.scale;
    const provider = (await hook<[number, number]>(page, "return s.graph.widgetPosition(arg, 'provider');", LOADER))!;
    expect(line.box.y).toBeGreaterThanOrEqual(provider[1] + (22 / 2) * scale);
    const node = await nodeBox(page, LOADER);
    expect(line.box.x).toBeGreaterThan(node.left);
    expect(line.box.x + line.box.width).toBeLessThan(node.right);
    expect(line.box.y + line.box.height).toBeLessThanOrEqual(node.bottom);
    // It is on the canvas, not only in the hook: the box holds text pixels.
    expect(await inkPixels(page, line.box)).toBeGreaterThan(60);
    // Not a value of the node: the workflow keeps the catalogue's widgets only.
    const saved = await hook<{ nodes: Array<{ id: number; widgets_values: Record<string, unknown> }> }>(page, 'return s.workflow();');
    expect(saved.nodes.find((n) => String(n.id) === LOADER)!.widgets_values).toEqual(loaderNode.widgets_values);
    await s.shot('supir-estimate-workflow');
    await nodeShot(page, LOADER, 'supir-estimate-node');
  });

  it('asks again when the pack changes, and says how to make a pack that is not there', async () => {
    await hook(page, "s.graph.setWidget(arg, 'pack', 'SUPIR-v0Q');", LOADER);
    await expect.poll(() => shownText(page, LOADER), POLL).toBe('no pack "SUPIR-v0Q": convert one with supir-studio convert (see README)');
    const line = (await shown(page, LOADER))!;
    expect(line.lines.join(' ')).toBe(line.text);
    const node = await nodeBox(page, LOADER);
    expect(line.box.y + line.box.height).toBeLessThanOrEqual(node.bottom);
    expect(await inkPixels(page, line.box)).toBeGreaterThan(60);
    await nodeShot(page, LOADER, 'supir-estimate-missing-node');
    await hook(page, "s.graph.setWidget(arg[0], 'pack', arg[1]);", [LOADER, PACK]);
    await expect.poll(() => shownText(page, LOADER), POLL).toBe(`memory: ${estimate.text}`);
  });

  it('shows it on a newly added node, which is made tall enough for it', async () => {
    const id = await hook<string>(page, "return s.graph.addNode('LoadSupirModel', [400, 700]);");
    // A new node picks the default pack, which this data folder does not have.
    await expect.poll(() => shownText(page, id), POLL).toMatch(/^no pack "SUPIR-v0Q"/);
    await hook(page, "s.graph.setWidget(arg[0], 'pack', arg[1]);", [id, PACK]);
    await expect.poll(() => shownText(page, id), POLL).toBe(`memory: ${estimate.text}`);
    const line = (await shown(page, id))!;
    const node = await nodeBox(page, id);
    expect(line.box.y + line.box.height).toBeLessThanOrEqual(node.bottom);
    expect(line.box.x + line.box.width).toBeLessThan(node.right);
  });

  it('logged no errors in the browser console but the missing pack', () => {
    // The missing pack is answered with HTTP 404, which Chromium logs as a failed resource load.
    const real = s.errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e));
    expect(real).toEqual([]);
  });
});
