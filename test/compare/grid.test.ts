import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { Branch, BranchCoord } from '../../nodes/api/branch.ts';
import { branchLabel } from '../../nodes/api/branch.ts';
import type { ImageTensor } from '../../nodes/api/tensor.ts';
import { buildGrid } from '../../nodes/compare/grid.ts';
import { gridLayout, lineHeight, textWidth, toCsv } from '../../nodes/compare/lib/render.ts';
import ImageMetrics, { metricsTable } from '../../nodes/compare/metrics.ts';
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
    // Text inks every label box, and the top-left corner (no label there) stays blank.
    for (const box of [...layout.colLabels, ...layout.rowLabels]) expect(ink(rgb, image.w, box), JSON.stringify(box)).toBeGreaterThan(20);
    expect(ink(rgb, image.w, { x: 0, y: 0, w: layout.rowLabels[0]!.w, h: layout.colLabels[0]!.h })).toBe(0);
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
