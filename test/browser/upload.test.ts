import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileChooser, Page } from 'playwright-core';
import { openEditor, type EditorSession } from './harness.ts';
import { gradient } from '../server/helpers.ts';

/**
 * Images into the editor as a person puts them there: the Load Image button's file picker, files
 * dropped on a node or on the canvas, an image pasted from the clipboard, several files at once,
 * uploads the server refuses, and the image lists of every open tab. Real files, a real server,
 * real chromium; the events are the browser's own (DragEvent, ClipboardEvent with a DataTransfer
 * holding File objects), dispatched where the pointer would be.
 */

type Box = { x: number; y: number; width: number; height: number };
interface WorkflowNode {
  id: number;
  type: string;
  pos: [number, number];
  widgets_values: Record<string, unknown>;
}

const hook = <T>(page: Page, body: string, arg?: unknown): Promise<T> =>
  page.evaluate(({ body, arg }) => new Function('s', 'arg', body)((globalThis as unknown as { __studio: unknown }).__studio, arg), { body, arg }) as Promise<T>;

const nodes = (page: Page): Promise<WorkflowNode[]> => hook(page, 'return s.workflow().nodes;');
const imageOf = async (page: Page, id: string): Promise<unknown> => (await nodes(page)).find((n) => String(n.id) === id)?.widgets_values.image;
const footer = (page: Page, id: string): Promise<string | null> => hook(page, 'return s.graph.imageFooter(arg);', id);
const nodeBox = (page: Page, id: string): Promise<Box | null> => hook(page, 'return s.graph.nodeBox(arg);', id);
const toasts = (page: Page): Promise<string[]> => page.getByTestId('toast').allTextContents();

const RESIZE_BASIC = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../workflows/resize-basic.json'), 'utf8'));

/** A gradient image of the given size and format, written to a fresh folder. */
async function imageFile(dir: string, name: string, width: number, height: number): Promise<string> {
  const img = gradient(width, height, (name.length * 40) % 256);
  const ext = path.extname(name).toLowerCase();
  const bytes = ext === '.jpg' ? await img.jpeg().toBuffer() : ext === '.webp' ? await img.webp().toBuffer() : await img.png().toBuffer();
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Files as the page makes them: a DataTransfer holding File objects (page-side source text). */
const MAKE_TRANSFER = `const dt = new DataTransfer();
  for (const f of arg.files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));`;

/** Dispatches dragenter, dragover and drop at a page point, as a drag from the desktop makes them, with the files in a DataTransfer. */
async function dropFiles(page: Page, point: { x: number; y: number }, files: string[], opts: { drop?: boolean } = {}): Promise<void> {
  const payload = files.map((f) => ({ name: path.basename(f), type: mimeOf(f), b64: fs.readFileSync(f).toString('base64') }));
  await hook(
    page,
    `${MAKE_TRANSFER}
     const target = document.elementFromPoint(arg.point.x, arg.point.y) ?? document.body;
     const kinds = arg.drop ? ['dragenter', 'dragover', 'drop'] : ['dragenter', 'dragover'];
     for (const kind of kinds) {
       target.dispatchEvent(new DragEvent(kind, { dataTransfer: dt, bubbles: true, cancelable: true, clientX: arg.point.x, clientY: arg.point.y }));
     }`,
    { point, files: payload, drop: opts.drop ?? true },
  );
}

/** A paste of files, as the browser dispatches it for Ctrl+V of a copied image. */
async function pasteFiles(page: Page, files: string[]): Promise<void> {
  const payload = files.map((f) => ({ name: 'image.png', type: mimeOf(f), b64: fs.readFileSync(f).toString('base64') }));
  await hook(
    page,
    `${MAKE_TRANSFER}
     (document.activeElement ?? document.body).dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));`,
    { files: payload },
  );
}

function mimeOf(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return { '.png': 'image/png', '.jpg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif', '.json': 'application/json' }[ext] ?? 'application/octet-stream';
}

/** The entries of a combo's menu, opened by a click on the widget as a person would. */
async function comboEntries(page: Page, id: string, widget: string): Promise<string[]> {
  const [x, y] = (await hook<[number, number]>(page, 'return s.graph.widgetPosition(arg[0], arg[1]);', [id, widget]))!;
  await page.mouse.click(x, y);
  const menu = page.locator('.litecontextmenu').last();
  await menu.waitFor();
  const entries = await menu.locator('.litemenu-entry').allTextContents();
  await page.keyboard.press('Escape');
  await hook(page, "document.querySelectorAll('.litecontextmenu').forEach((m) => m.remove());");
  return entries;
}

/** The middle of the canvas below every node: empty graph space to drop on. */
async function emptySpot(page: Page): Promise<{ x: number; y: number }> {
  const canvas = (await page.getByTestId('graph-canvas').boundingBox())!;
  const ids = (await nodes(page)).map((n) => String(n.id));
  let bottom = canvas.y;
  for (const id of ids) {
    const b = await nodeBox(page, id);
    if (b) bottom = Math.max(bottom, b.y + b.height);
  }
  const y = bottom + 40;
  expect(y).toBeLessThan(canvas.y + canvas.height - 200);
  return { x: canvas.x + 80, y };
}

/** Uploads and decodes take their time on a busy machine: waits are generous, what is awaited is exact. */
const LONG = { timeout: 20_000 };

const overlap = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe('images into the editor', () => {
  let s: EditorSession;
  let page: Page;
  let dir: string;

  const choosers: FileChooser[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-upload-'));
    // Small limits, so that refusals need no huge files: 6 MB a file, 4 Mpx an image.
    s = await openEditor({ limits: { maxUploadBytes: 6 * 1024 * 1024, maxPixels: 4_000_000 } });
    page = s.page;
    // Listening from the start: playwright intercepts file pickers only once it listens, and
    // turning that on races with a click made right after waitForEvent('filechooser').
    page.on('filechooser', (chooser) => choosers.push(chooser));
  });

  /** Clicks a node's "choose file to upload" button and picks `files` in the file picker it opens. */
  const uploadByButton = async (nodeId: string, files: string[]): Promise<void> => {
    const [x, y] = (await hook<[number, number]>(page, 'return s.graph.widgetPosition(arg, "choose file to upload");', nodeId))!;
    const before = choosers.length;
    await page.mouse.click(x, y);
    await expect.poll(() => choosers.length, LONG).toBe(before + 1);
    await choosers.at(-1)!.setFiles(files);
  };
  afterAll(async () => {
    await s?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const loadResizeBasic = async (): Promise<void> => {
    await hook(page, 's.graph.load(arg);', RESIZE_BASIC);
    await page.waitForTimeout(100);
  };

  it('uploads by the Load Image button, shows the size under the image, and lists the file on every Load Image', async () => {
    await loadResizeBasic();
    const second = await hook<string>(page, "return s.graph.addNode('LoadImage', [40, 520]);");
    const photo = await imageFile(dir, 'holiday photo.jpg', 300, 200);
    expect(await comboEntries(page, second, 'image')).not.toContain('holiday photo.jpg');

    await uploadByButton('1', [photo]);

    await expect.poll(() => imageOf(page, '1'), LONG).toBe('holiday photo.jpg');
    expect(fs.readFileSync(path.join(s.server.dirs.folders.inputs, 'holiday photo.jpg')).equals(fs.readFileSync(photo))).toBe(true);
    await expect.poll(() => footer(page, '1'), LONG).toBe('300 x 200');
    // The other Load Image node offers the new file at once, without a reload.
    expect(await comboEntries(page, second, 'image')).toContain('holiday photo.jpg');
    await page.waitForTimeout(200);
    await s.shot('upload-01-button');
  });

  it('replaces a node’s image when a JPEG is dropped on it, and adds a Load Image node where a plain PNG is dropped on the canvas', async () => {
    await loadResizeBasic();
    const jpeg = await imageFile(dir, 'dropped.jpg', 320, 240);
    const box = (await nodeBox(page, '1'))!;
    const onNode = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    // The drag first: the banner names the node the image goes into.
    await dropFiles(page, onNode, [jpeg], { drop: false });
    await expect.poll(() => page.getByTestId('drop-zone').textContent(), LONG).toMatch(/replace the image of Load Image/);
    await s.shot('upload-02-drag-over-node');
    await dropFiles(page, onNode, [jpeg]);
    await expect.poll(() => imageOf(page, '1'), LONG).toBe('dropped.jpg');
    await expect.poll(() => footer(page, '1'), LONG).toBe('320 x 240');
    expect(await nodes(page)).toHaveLength(3);

    const plain = await imageFile(dir, 'plain.png', 200, 150);
    const spot = await emptySpot(page);
    const at = (await hook<[number, number]>(page, 'return s.graph.graphPoint(arg.x, arg.y);', spot))!;
    await dropFiles(page, spot, [plain]);
    await expect.poll(async () => (await nodes(page)).length, LONG).toBe(4);
    const added = (await nodes(page)).at(-1)!;
    expect(added.type).toBe('LoadImage');
    expect(added.widgets_values.image).toBe('plain.png');
    // Where it was dropped: its top-left at the drop point.
    expect(Math.abs(added.pos[0] - at[0])).toBeLessThan(2);
    expect(Math.abs(added.pos[1] - at[1])).toBeLessThan(2);
    await expect.poll(() => footer(page, String(added.id)), LONG).toBe('200 x 150');
    expect(await toasts(page)).toEqual([]);
    await page.waitForTimeout(200);
    await s.shot('upload-03-dropped');
  });

  it('gives each of several dropped files a Load Image node, none covering another', async () => {
    await loadResizeBasic();
    const files = [await imageFile(dir, 'tall.png', 200, 300), await imageFile(dir, 'wide.jpg', 320, 180), await imageFile(dir, 'square.webp', 256, 256)];
    // Dropped over Resize (not a Load Image): the row starts there and moves past what is in its way.
    const resize = (await nodeBox(page, '2'))!;
    await dropFiles(page, { x: resize.x + 20, y: resize.y + 40 }, files);
    await expect.poll(async () => (await nodes(page)).length, LONG).toBe(6);
    const added = (await nodes(page)).slice(3);
    expect(added.map((n) => n.widgets_values.image)).toEqual(['tall.png', 'wide.jpg', 'square.webp']);
    // Once every image shows (each node grown to it, which happens as it is drawn), no two nodes overlap.
    for (const n of added) {
      await hook(page, 's.graph.focusNode(arg);', String(n.id));
      await expect.poll(() => footer(page, String(n.id)), LONG).toMatch(/^\d+ x \d+$/);
    }
    expect(await Promise.all(added.map((n) => footer(page, String(n.id))))).toEqual(['200 x 300', '320 x 180', '256 x 256']);
    const ids = (await nodes(page)).map((n) => String(n.id));
    const boxes = await Promise.all(ids.map((id) => nodeBox(page, id)));
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) expect(overlap(boxes[i]!, boxes[j]!), `node ${ids[i]} overlaps node ${ids[j]}`).toBe(false);
    }
    await hook(page, 's.graph.focusNode(arg);', String(added[1]!.id));
    await page.waitForTimeout(200);
    await s.shot('upload-04-several');
  });

  it('pastes an image from the clipboard as a Load Image node or into the selected one, and still pastes copied nodes', async () => {
    await loadResizeBasic();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.server.url });
    // An image on the system clipboard, as "Copy image" in a browser or a screenshot tool leaves it.
    const shot = await imageFile(dir, 'clip.png', 160, 120);
    await hook(
      page,
      `const blob = new Blob([Uint8Array.from(atob(arg), (c) => c.charCodeAt(0))], { type: 'image/png' });
       return navigator.clipboard.write([new ClipboardItem({ 'image/png': blob })]);`,
      fs.readFileSync(shot).toString('base64'),
    );

    // Nothing selected, the pointer over empty canvas: Ctrl+V makes a Load Image node there.
    const spot = await emptySpot(page);
    await page.mouse.click(spot.x, spot.y);
    await page.keyboard.press('Control+v');
    await expect.poll(async () => (await nodes(page)).length, LONG).toBe(4);
    const pasted = (await nodes(page)).at(-1)!;
    expect(pasted.type).toBe('LoadImage');
    expect(pasted.widgets_values.image).toMatch(/^pasted-\d{8}-\d{6}\.png$/);
    const pointerAt = (await hook<[number, number]>(page, 'return s.graph.graphPoint(arg.x, arg.y);', spot))!;
    expect(pasted.pos).toEqual([Math.round(pointerAt[0]), Math.round(pointerAt[1])]);
    await expect.poll(() => footer(page, String(pasted.id)), LONG).toBe('160 x 120');
    expect(fs.readFileSync(path.join(s.server.dirs.folders.inputs, String(pasted.widgets_values.image))).length).toBeGreaterThan(0);

    // Copied nodes replace the image on the clipboard: a click selects Resize, Ctrl+C, then Ctrl+V pastes one Resize.
    const resize = (await nodeBox(page, '2'))!;
    await page.mouse.click(resize.x + resize.width / 2, resize.y + 8);
    await page.keyboard.press('Control+c');
    await page.mouse.move(spot.x + 420, spot.y);
    await page.keyboard.press('Control+v');
    await expect.poll(async () => (await nodes(page)).map((n) => n.type), LONG).toEqual(['LoadImage', 'ImageResize', 'SaveImage', 'LoadImage', 'ImageResize']);
    await page.waitForTimeout(300);
    expect(await nodes(page)).toHaveLength(5); // once, not twice

    // With Load Image selected, a pasted image replaces its image (a paste event carrying a file).
    const load = (await nodeBox(page, '1'))!;
    await page.mouse.click(load.x + load.width / 2, load.y + 8);
    const second = await imageFile(dir, 'clip2.png', 90, 60);
    await pasteFiles(page, [second]);
    await expect.poll(() => imageOf(page, '1'), LONG).toMatch(/^pasted-\d{8}-\d{6}( \(\d+\))?\.png$/);
    await expect.poll(() => footer(page, '1'), LONG).toBe('90 x 60');
    expect(await nodes(page)).toHaveLength(5);
    await page.waitForTimeout(200);
    await s.shot('upload-05-pasted');
  });

  it('shows the progress of a large upload', async () => {
    await loadResizeBasic();
    // A 1000x1000 photo of noise: about 3 MB that PNG cannot shrink. At 1 MB/s it takes about 3 s.
    const noise = Buffer.alloc(1000 * 1000 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    const big = path.join(dir, 'large noise.png');
    fs.writeFileSync(big, await sharp(noise, { raw: { width: 1000, height: 1000, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer());
    expect(fs.statSync(big).size).toBeGreaterThan(2_500_000);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 });
    try {
      // Every percentage the progress line shows, as the page renders it.
      await hook(
        page,
        `const seen = (window.seenPercent = []);
         new MutationObserver(() => {
           const el = document.querySelector('[data-testid="upload-progress"]');
           if (el) seen.push(Number(el.getAttribute('data-percent')));
         }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-percent'] });`,
      );
      const seen = (): Promise<number[]> => hook(page, 'return window.seenPercent;');
      await uploadByButton('1', [big]);
      await page.getByTestId('upload-progress').waitFor();
      await expect.poll(async () => (await seen()).some((p) => p >= 20 && p <= 80), LONG).toBe(true);
      await s.shot('upload-06-progress');
      await expect.poll(() => imageOf(page, '1'), LONG).toBe('large noise.png');
      await page.getByTestId('upload-progress').waitFor({ state: 'detached' });
      // Rising through values on the way, never past 100.
      const values = await seen();
      expect(values.filter((p) => p > 0 && p < 100).length).toBeGreaterThan(2);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(Math.max(...values)).toBeLessThanOrEqual(100);
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await cdp.detach();
    }
  });

  it('says, naming the file, why an upload is refused: too many pixels, not an image, too large', async () => {
    await loadResizeBasic();
    await hook(page, 'document.querySelectorAll(\'[data-testid="toast"] button\').forEach((b) => b.click());');
    const before = fs.readdirSync(s.server.dirs.folders.inputs).sort();
    const huge = await sharp({ create: { width: 2100, height: 2100, channels: 3, background: '#808080' } }).png().toBuffer();
    const hugeFile = path.join(dir, 'poster.png');
    fs.writeFileSync(hugeFile, huge);
    const svg = path.join(dir, 'drawing.png');
    fs.writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const gif = path.join(dir, 'anim.gif');
    fs.writeFileSync(gif, Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
    const heavy = path.join(dir, 'heavy.tif');
    fs.writeFileSync(heavy, Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00]), Buffer.alloc(7 * 1024 * 1024)]));

    const spot = await emptySpot(page);
    await dropFiles(page, spot, [hugeFile, svg, gif, heavy]);
    await expect.poll(() => toasts(page), LONG).toHaveLength(4);
    const messages = await toasts(page);
    // The server's own words for what it refused, each naming the file.
    expect(messages).toContainEqual(expect.stringMatching(/Cannot load poster\.png: uploaded file "poster\.png" is 2100x2100 \(4410000 pixels\), over the limit of 4000000 pixels/));
    expect(messages).toContainEqual(expect.stringMatching(/Cannot load drawing\.png: uploaded file "drawing\.png" holds SVG/));
    // What the server would refuse by its name or size is said before sending it.
    expect(messages).toContainEqual(expect.stringMatching(/Cannot load anim\.gif: it is a GIF image; Load Image takes PNG, JPEG, WebP or TIFF images/));
    expect(messages).toContainEqual(expect.stringMatching(/Cannot load heavy\.tif: it is 7\.0 MiB, larger than this server accepts for an upload \(at most 6\.0 MiB\)/));
    expect(fs.readdirSync(s.server.dirs.folders.inputs).sort()).toEqual(before);
    expect(await nodes(page)).toHaveLength(3);
    await page.waitForTimeout(300); // the toasts' entrance animation
    await s.shot('upload-07-refused');
    await hook(page, 'document.querySelectorAll(\'[data-testid="toast"] button\').forEach((b) => b.click());');
  });

  it('refreshes the image list in another tab, and after an upload through the API when the window gets the focus', async () => {
    await loadResizeBasic();
    // A second tab of the same browser profile, opened from the first.
    const [other] = await Promise.all([page.waitForEvent('popup'), hook(page, "window.open(arg, '_blank');", s.server.url)]);
    try {
      await other.setViewportSize({ width: 1280, height: 800 });
      await other.waitForFunction('window.__studio?.ready === true', null, { timeout: 20_000 });
      await hook(other, 's.graph.load(arg);', RESIZE_BASIC);
      expect(await comboEntries(other, '1', 'image')).not.toContain('from tab one.png');

      const file = await imageFile(dir, 'from tab one.png', 64, 64);
      const spot = await emptySpot(page);
      await dropFiles(page, spot, [file]);
      await expect.poll(async () => (await nodes(page)).length, LONG).toBe(4);
      await expect.poll(() => comboEntries(other, '1', 'image'), LONG).toContain('from tab one.png');

      // An upload from a script: the list has it once the window has the focus again.
      const bytes = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#336699' } }).png().toBuffer();
      const res = await fetch(`${s.server.url}/api/upload?filename=${encodeURIComponent('from script.png')}`, { method: 'POST', body: bytes });
      expect(res.status).toBe(200);
      await hook(page, "window.dispatchEvent(new Event('focus'));");
      await expect.poll(() => comboEntries(page, '1', 'image'), LONG).toContain('from script.png');
    } finally {
      await other.close();
    }
  });

  it('logged no errors in the browser console', () => {
    // Refused uploads are answered with 400 and 413, which chromium logs as failed resource loads.
    const real = s.errors.filter((e) => !/Failed to load resource: the server responded with a status of (400|413)/.test(e));
    expect(real).toEqual([]);
  });
});
