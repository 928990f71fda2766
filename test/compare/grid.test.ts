import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { Branch, BranchCoord } from '../../nodes/api/branch.ts';
import { branchLabel } from '../../nodes/api/branch.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import ImageGrid, { buildGrid, makeGridNode, NO_FONT_GRID_WARNING } from '../../nodes/compare/grid.ts';
import { fontsAvailable, gridLayout, lineHeight, probeFonts, textWidth, toCsv } from '../../nodes/compare/lib/render.ts';
import ImageMetrics, { makeMetricsNode, metricsTable, NO_FONT_TABLE_WARNING } from '../../nodes/compare/metrics.ts';
import { imageToHwcUint8 } from '../../nodes/image/codec.ts';
import { fakeContext, runNode, tempEnv } from '../support/fake-context.ts';
import { at, imageFrom, random8 } from '../support/images.ts';

const SHOTS = path.resolve(import.meta.dirname, '../../test-output/screenshots');

const solid = (w: number, h: number, rgb: [number, number, number]): ImageTensor => imageFrom(1, 3, h, w, (_n, c) => rgb[c]! / 255);

/** Branches as a 3 (x: cfg) by 2 (y: steps) sweep delivers them: x fastest. */
function sweep3x2(w = 64, h = 48): Array<Branch<ImageTensor>> {
  const out: Array<Branch<ImageTensor>> = [];
  for (let yi = 0; yi < 2; yi++) {
    for (let xi = 0; xi < 3; xi++) {
      const coords: BranchCoord[] = [
        { axis: 0, node: '5', title: 'Sample', widget: 'cfg', value: [2, 4.5, 7][xi]!, index: xi },
        { axis: 1, node: '5', title: 'Sample', widget: 'steps', value: [10, 20][yi]!, index: yi },
      ];
      // A colour that encodes the cell, so that placement can be read back from the pixels.
      out.push({ value: solid(w, h, [40 + 80 * xi, 60 + 120 * yi, 200]), coords, label: branchLabel(coords) });
    }
  }
  return out;
}

/** Pixels darker than the background (text ink) inside a rectangle of an HWC RGB image. */
function ink(rgb: Buffer, width: number, r: { x: number; y: number; w: number; h: number }): number {
  let n = 0;
  for (let y = r.y; y < r.y + r.h; y++) for (let x = r.x; x < r.x + r.w; x++) if (rgb[(y * width + x) * 3]! < 128) n++;
  return n;
}

describe('grid layout', () => {
  it('puts a header row above the cells and a label column left of them', () => {
    const font = 20;
    const layout = gridLayout({ cols: 3, rows: 2, cellW: 100, cellH: 80, gap: 8, fontSize: font, colLabels: [['cfg', '2'], ['cfg', '4.5'], ['cfg', '7']], rowLabels: [['steps', '10'], ['steps', '20']] });
    const pad = Math.round(font * 0.6);
    const headerH = 2 * lineHeight(font) + 2 * pad;
    const labelW = textWidth('steps', font) + 2 * pad;
    expect(layout.width).toBe(labelW + 8 + 3 * (100 + 8));
    expect(layout.height).toBe(headerH + 8 + 2 * (80 + 8));
    expect(layout.cells).toHaveLength(6);
    // Row-major cells, a gap apart.
    expect(layout.cells[0]).toEqual({ x: labelW + 8, y: headerH + 8, w: 100, h: 80 });
    expect(layout.cells[5]).toEqual({ x: labelW + 8 + 2 * 108, y: headerH + 8 + 88, w: 100, h: 80 });
    // Column labels span their column above the first row; row labels span their row at the left.
    layout.colLabels.forEach((l, c) => expect(l).toMatchObject({ x: layout.cells[c]!.x, y: 0, w: 100, h: headerH }));
    layout.rowLabels.forEach((l, r) => expect(l).toMatchObject({ x: 0, y: layout.cells[r * 3]!.y, w: labelW, h: 80 }));
  });

  it('names each axis once, over its labels, and labels each column and row by its value', () => {
    const font = 16;
    const layout = gridLayout({
      cols: 3, rows: 2, cellW: 90, cellH: 60, gap: 6, fontSize: font,
      colLabels: [['2'], ['4.5'], ['7']], rowLabels: [['10'], ['20']], xTitle: 'cfg_scale', yTitle: 'control_scale',
    });
    const [x, y] = layout.titles;
    // The x axis' name spans all the columns, above their labels.
    expect(x).toMatchObject({ x: layout.cells[0]!.x, w: layout.cells[2]!.x + 90 - layout.cells[0]!.x, lines: ['cfg_scale'], bold: true });
    for (const l of layout.colLabels) expect(l.y).toBeGreaterThanOrEqual(x!.y + x!.h);
    // The y axis' name sits in the corner, left of the column labels and above the row labels, as wide as they are.
    expect(y).toMatchObject({ x: 0, lines: ['control_scale'], w: layout.rowLabels[0]!.w });
    expect(y!.x + y!.w).toBeLessThanOrEqual(layout.cells[0]!.x);
    for (const l of layout.rowLabels) expect(l.y).toBeGreaterThanOrEqual(y!.y + y!.h);
    // No two label boxes overlap, none overlaps a cell, each is inside the image, and its text fits it.
    const boxes = [...layout.titles, ...layout.colLabels, ...layout.rowLabels];
    const overlap = (a: { x: number; y: number; w: number; h: number }, b: typeof a): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) expect(overlap(boxes[i]!, boxes[j]!), `${boxes[i]!.lines} / ${boxes[j]!.lines}`).toBe(false);
      for (const cell of layout.cells) expect(overlap(boxes[i]!, cell)).toBe(false);
      const b = boxes[i]!;
      expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= layout.width && b.y + b.h <= layout.height).toBe(true);
      for (const line of b.lines) expect(textWidth(line, font) * (b.bold ? 1.15 : 1)).toBeLessThanOrEqual(b.w);
      expect(b.lines.length * lineHeight(font)).toBeLessThanOrEqual(b.h);
    }
  });

  it('has no header or label column without labels', () => {
    const layout = gridLayout({ cols: 2, rows: 1, cellW: 10, cellH: 10, gap: 4, fontSize: 20, colLabels: [], rowLabels: [] });
    expect([layout.width, layout.height]).toEqual([4 + 2 * 14, 4 + 14]);
  });
});

describe('Grid node', () => {
  it('places each branch at its x and y value and draws the labels in the margins', async () => {
    const { image, layout } = await buildGrid(sweep3x2(), { maxCell: 512, gap: 8, fontSize: 20, background: 'white' });
    expect([image.w, image.h]).toEqual([layout.width, layout.height]);
    expect(layout.cells[0]).toMatchObject({ w: 64, h: 48 });
    for (let yi = 0; yi < 2; yi++) {
      for (let xi = 0; xi < 3; xi++) {
        const cell = layout.cells[yi * 3 + xi]!;
        const cx = cell.x + 32;
        const cy = cell.y + 24;
        expect([0, 1, 2].map((c) => Math.round(at(image, 0, c, cy, cx) * 255))).toEqual([40 + 80 * xi, 60 + 120 * yi, 200]);
      }
    }
    const rgb = imageToHwcUint8(image);
    fs.mkdirSync(SHOTS, { recursive: true });
    await sharp(rgb, { raw: { width: image.w, height: image.h, channels: 3 } }).png().toFile(path.join(SHOTS, 'compare-grid.png'));
    // Text inks every label box: each axis' name once, each column and row its value.
    for (const box of [...layout.titles, ...layout.colLabels, ...layout.rowLabels]) expect(ink(rgb, image.w, box), JSON.stringify(box)).toBeGreaterThan(20);
    expect(layout.titles.map((t) => t.lines)).toEqual([['cfg'], ['steps']]);
    expect(layout.colLabels.map((l) => l.lines)).toEqual([['2'], ['4.5'], ['7']]);
    expect(layout.rowLabels.map((l) => l.lines)).toEqual([['10'], ['20']]);
    // Wider values make longer text: the 4.5 label has more ink than the 2 label.
    expect(ink(rgb, image.w, layout.colLabels[1]!)).toBeGreaterThan(ink(rgb, image.w, layout.colLabels[0]!));
  });

  it('shrinks images to max_cell and lays a plain batch out in a row without labels', async () => {
    const { layout } = await buildGrid(sweep3x2(200, 100), { maxCell: 50, gap: 8, fontSize: 12, background: 'dark' });
    expect(layout.cells[0]).toMatchObject({ w: 50, h: 25 });
    const batch = imageFrom(3, 3, 10, 20, (n) => n / 2);
    const plain = await buildGrid([{ value: batch, coords: [], label: '' }], { maxCell: 0, gap: 2, fontSize: 12, background: 'white' });
    expect([plain.image.w, plain.image.h]).toEqual([2 + 3 * 22, 2 + 12]);
    expect(at(plain.image, 0, 0, 2 + 5, 2 + 2 * 22 + 10)).toBeCloseTo(1, 6);
  });
});

describe('font probe', () => {
  const { env, cleanup } = tempEnv();
  afterAll(cleanup);
  const gridArgs = { images: sweep3x2(), max_cell: 512, gap: 8, font_size: 20, background: 'white' };

  it('finds a font here, once per process', async () => {
    expect(await probeFonts()).toBe(true);
    expect(fontsAvailable()).toBe(fontsAvailable());
    expect(await fontsAvailable()).toBe(true);
    const ctx = fakeContext(env);
    await runNode(ImageGrid, gridArgs, ctx);
    expect(ctx.warnings).toEqual([]);
  });

  it('finds none when fontconfig knows no fonts (a real font-less child process)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-nofont-'));
    try {
      const conf = path.join(dir, 'empty-fonts.conf');
      fs.writeFileSync(conf, '<?xml version="1.0"?>\n<fontconfig></fontconfig>\n');
      const script = path.join(dir, 'probe.mts');
      const url = (p: string): string => pathToFileURL(path.resolve(import.meta.dirname, p)).href;
      fs.writeFileSync(
        script,
        [
          `import { probeFonts } from '${url('../../nodes/compare/lib/render.ts')}';`,
          `import ImageGrid from '${url('../../nodes/compare/grid.ts')}';`,
          `import { fakeContext, runNode, tempEnv } from '${url('../support/fake-context.ts')}';`,
          `import { imageFrom } from '${url('../support/images.ts')}';`,
          `const { env, cleanup } = tempEnv();`,
          `const ctx = fakeContext(env);`,
          `const coords = [{ axis: 0, node: '5', title: 'Sample', widget: 'cfg', value: 2, index: 0 }];`,
          `const out = await runNode(ImageGrid, { images: [{ value: imageFrom(1, 3, 16, 16, () => 0.5), coords, label: 'cfg=2' }], max_cell: 512, gap: 8, font_size: 20, background: 'white' }, ctx);`,
          `cleanup();`,
          `console.log(JSON.stringify({ fonts: await probeFonts(), warnings: ctx.warnings, w: out.image.w, h: out.image.h }));`,
        ].join('\n'),
      );
      const tsx = path.resolve(import.meta.dirname, '../../node_modules/.bin/tsx');
      const { stdout } = await promisify(execFile)(tsx, [script], { env: { ...process.env, FONTCONFIG_FILE: conf } });
      const result = JSON.parse(stdout.trim().split('\n').pop()!) as { fonts: boolean; warnings: string[]; w: number; h: number };
      expect(result.fonts).toBe(false);
      expect(result.warnings).toEqual([NO_FONT_GRID_WARNING]);
      expect(result.w).toBeGreaterThan(16);
      expect(result.h).toBeGreaterThan(16);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('without a font the Grid warns once per run and still draws the grid, with empty label boxes', async () => {
    let probes = 0;
    const grid = makeGridNode(async () => (probes++, false));
    const { image: expected, layout } = await buildGrid(sweep3x2(), { maxCell: 512, gap: 8, fontSize: 20, background: 'white' });
    for (let run = 0; run < 2; run++) {
      const ctx = fakeContext(env);
      const out = await runNode(grid, gridArgs, ctx);
      expect(ctx.warnings).toEqual([NO_FONT_GRID_WARNING]);
      expect(NO_FONT_GRID_WARNING).toBe('no font could be found to draw the labels: install one (Debian/Ubuntu: apt-get install fonts-dejavu-core) — the grid is drawn without labels');
      const image = out.image as ImageTensor;
      expect([image.w, image.h]).toEqual([expected.w, expected.h]);
      const rgb = imageToHwcUint8(image);
      for (const box of [...layout.colLabels, ...layout.rowLabels]) expect(ink(rgb, image.w, box)).toBe(0);
      expect(at(image, 0, 2, layout.cells[0]!.y + 24, layout.cells[0]!.x + 32)).toBeCloseTo(200 / 255, 6);
    }
    expect(probes).toBe(2);
    // A plain batch has no labels to miss: no warning.
    const ctx = fakeContext(env);
    await runNode(grid, { ...gridArgs, images: [{ value: solid(8, 8, [0, 0, 0]), coords: [], label: '' }] }, ctx);
    expect(ctx.warnings).toEqual([]);
  });

  it('without a font the Metrics node warns and still writes the table image', async () => {
    const ctx = fakeContext(env);
    const ref = random8(1, 3, 24, 24, 5);
    const out = await runNode(makeMetricsNode(async () => false), { images: [{ value: random8(1, 3, 24, 24, 6), coords: [], label: '' }], reference: ref, channel: 'RGB', crop_border: 2 }, ctx);
    expect(ctx.warnings).toEqual([NO_FONT_TABLE_WARNING]);
    expect(ctx.files).toHaveLength(1);
    const meta = await sharp(path.join(env.dirs.root, 'temp', ctx.files[0]!.filename)).metadata();
    expect([meta.width, meta.height]).toEqual([ctx.files[0]!.width, ctx.files[0]!.height]);
    expect(JSON.parse(out.table as string).rows).toHaveLength(2);
  });
});

describe('Metrics node', () => {
  const { env, cleanup } = tempEnv();
  afterAll(cleanup);

  it('scores each branch against the reference, with the axis values as columns', () => {
    const ref = random8(1, 3, 32, 32, 3);
    const branches = sweep3x2(32, 32).slice(0, 2);
    branches[0]!.value = ref;
    const table = metricsTable(branches, ref, 'Y', 0);
    expect(table.columns).toEqual(['image', 'cfg', 'steps', 'psnr_db', 'ssim', 'ms_ssim', 'sharpness', 'noise_sigma']);
    expect(table.rows[0]!.slice(0, 6)).toEqual(['reference', null, null, null, null, null]);
    // The identical branch: infinite PSNR (null in JSON), SSIM 1.
    expect(table.rows[1]!.slice(0, 6)).toEqual(['#1', 2, 10, null, 1, 1]);
    expect(table.rows[2]![3]).toBeLessThan(15);
    // A flat image has no Laplacian response and no noise.
    expect(table.rows[2]!.slice(6)).toEqual([0, 0]);
    expect(() => metricsTable([{ value: random8(1, 3, 16, 16), coords: [], label: '' }], ref, 'Y', 0)).toThrow(/same size/);
  });

  it('shows the table on the node as an image that carries the numbers, and outputs JSON and CSV', async () => {
    const ctx = fakeContext(env);
    const ref = random8(1, 3, 24, 24, 5);
    const out = await runNode(ImageMetrics, { images: [{ value: random8(1, 3, 24, 24, 6), coords: [], label: '' }], reference: ref, channel: 'RGB', crop_border: 2 }, ctx);
    const table = JSON.parse(out.table as string) as { columns: string[]; rows: unknown[][] };
    expect(table.rows).toHaveLength(2);
    expect(ctx.files).toHaveLength(1);
    expect(ctx.files[0]!.table).toEqual(table);
    const file = path.join(env.dirs.root, 'temp', ctx.files[0]!.filename);
    const meta = await sharp(file).metadata();
    expect([meta.width, meta.height]).toEqual([ctx.files[0]!.width, ctx.files[0]!.height]);
    expect(out.csv).toBe(toCsv(table as never));
    expect((out.csv as string).split('\r\n')[0]).toBe('image,psnr_db,ssim,ms_ssim,sharpness,noise_sigma');
  });

  it('quotes CSV fields that hold commas', () => {
    expect(toCsv({ columns: ['image', 'v'], rows: [['cfg=2, steps=10', 1.5], ['x"y', null]] })).toBe('image,v\r\n"cfg=2, steps=10",1.5\r\n"x""y",\r\n');
  });
});
