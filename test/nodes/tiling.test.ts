import { describe, expect, it } from 'vitest';
import type { TilePlan } from '../../nodes/api/sockets.ts';
import { createImage, type ImageTensor } from '../../nodes/api/tensor.ts';
import { autoTileSize, blendWeights, extractTiles, mergeTiles, planTiles } from '../../nodes/api/tiling.ts';
import { at, imageFrom } from '../support/images.ts';

const CASES: Array<[number, number, number, number]> = [
  // width, height, tile, overlap
  [100, 70, 32, 8],
  [600, 400, 160, 32],
  [50, 40, 64, 16], // smaller than a tile: one tile
  [64, 64, 64, 8], // exactly one tile
  [65, 130, 64, 8],
  [300, 200, 96, 60], // overlap over half a tile: three tiles share some pixels
  [517, 211, 128, 0],
];

/** Nearest-neighbour upscaling by an integer factor: the fake "x2 model". */
function nearest(image: ImageTensor, s: number): ImageTensor {
  return imageFrom(image.n, image.c, image.h * s, image.w * s, (n, c, y, x) => at(image, n, c, Math.floor(y / s), Math.floor(x / s)));
}

function tiled(image: ImageTensor, plan: TilePlan, scale: number, fn: (t: ImageTensor) => ImageTensor): ImageTensor {
  return mergeTiles(fn(extractTiles(image, plan)), plan, scale);
}

function maxDiff(a: ImageTensor, b: ImageTensor, where: (n: number, c: number, y: number, x: number) => boolean = () => true): number {
  expect([a.n, a.c, a.h, a.w]).toEqual([b.n, b.c, b.h, b.w]);
  let max = 0;
  for (let n = 0; n < a.n; n++)
    for (let c = 0; c < a.c; c++)
      for (let y = 0; y < a.h; y++)
        for (let x = 0; x < a.w; x++) if (where(n, c, y, x)) max = Math.max(max, Math.abs(at(a, n, c, y, x) - at(b, n, c, y, x)));
  return max;
}

const testImage = (n: number, w: number, h: number): ImageTensor =>
  imageFrom(n, 3, h, w, (b, c, y, x) => 0.5 + 0.5 * Math.sin(x * 0.37 + y * 0.11 * (c + 1) + b) * Math.cos(y * 0.23 - x * 0.05));

describe('planTiles', () => {
  it.each(CASES)('%ix%i, tile %i, overlap %i: equal tiles, flush edges, overlap kept, every pixel covered', (w, h, tile, overlap) => {
    const plan = planTiles(w, h, { tile, overlap });
    expect(plan).toMatchObject({ width: w, height: h, tileSize: tile, overlap });
    const cover = new Uint8Array(w * h);
    for (const t of plan.tiles) {
      expect([t.w, t.h]).toEqual([Math.min(tile, w), Math.min(tile, h)]);
      expect(t.x >= 0 && t.y >= 0 && t.x + t.w <= w && t.y + t.h <= h).toBe(true);
      for (let y = t.y; y < t.y + t.h; y++) for (let x = t.x; x < t.x + t.w; x++) cover[y * w + x] = 1;
    }
    expect(cover.every((v) => v === 1)).toBe(true);
    for (const [axis, size, len] of [['x', 'w', w], ['y', 'h', h]] as const) {
      const starts = [...new Set(plan.tiles.map((t) => t[axis]))].sort((a, b) => a - b);
      const span = plan.tiles[0]![size];
      expect(starts[0]).toBe(0);
      expect(starts.at(-1)! + span).toBe(len);
      for (let i = 1; i < starts.length; i++) expect(starts[i - 1]! + span - starts[i]!).toBeGreaterThanOrEqual(overlap);
      // The fewest tiles that keep the overlap: one fewer could not.
      if (starts.length > 1) expect((starts.length - 2) * (span - overlap) + span).toBeLessThan(len);
    }
  });

  it('puts an image smaller than a tile in one tile', () => {
    expect(planTiles(30, 20, { tile: 512, overlap: 64 }).tiles).toEqual([{ x: 0, y: 0, w: 30, h: 20 }]);
  });

  it('refuses overlaps that leave no progress and non-integer sizes', () => {
    expect(() => planTiles(100, 100, { tile: 32, overlap: 32 })).toThrow(/overlap/);
    expect(() => planTiles(100, 100, { tile: 32, overlap: -1 })).toThrow(/overlap/);
    expect(() => planTiles(100.5, 100, { tile: 32, overlap: 4 })).toThrow(/width/);
    expect(() => planTiles(100, 100, { tile: 0, overlap: 0 })).toThrow(/tile/);
  });
});

describe('blendWeights', () => {
  it.each(CASES.flatMap((c) => [[...c, 1], [...c, 2]]))('%ix%i tile %i overlap %i at scale %i: weights sum to 1 everywhere', (w, h, tile, overlap, scale) => {
    const plan = planTiles(w, h, { tile, overlap });
    const W = w * scale;
    const sum = new Float64Array(W * h * scale);
    plan.tiles.forEach((t, i) => {
      const weights = blendWeights(plan, i, scale);
      expect(weights.length).toBe(t.w * scale * t.h * scale);
      for (let y = 0; y < t.h * scale; y++)
        for (let x = 0; x < t.w * scale; x++) sum[(t.y * scale + y) * W + t.x * scale + x]! += weights[y * t.w * scale + x]!;
    });
    let worst = 0;
    for (const s of sum) worst = Math.max(worst, Math.abs(s - 1));
    expect(worst).toBeLessThanOrEqual(1e-6);
  });

  it('is 1 away from overlaps and at the image border, and ramps smoothly across an overlap', () => {
    const plan = planTiles(200, 64, { tile: 128, overlap: 56 }); // two columns, overlapping on x 72..127
    const left = blendWeights(plan, 0);
    const right = blendWeights(plan, 1);
    const row = (wts: Float32Array, y: number): number[] => [...wts.subarray(y * 128, (y + 1) * 128)];
    for (const y of [0, 30, 63]) {
      const l = row(left, y);
      expect(l.slice(0, 72).every((v) => v === 1)).toBe(true);
      const ramp = l.slice(72);
      for (let i = 1; i < ramp.length; i++) expect(ramp[i]!).toBeLessThan(ramp[i - 1]!);
      // Smooth: no step bigger than a raised cosine over 56 pixels can make.
      for (let i = 1; i < ramp.length; i++) expect(ramp[i - 1]! - ramp[i]!).toBeLessThan(Math.PI / 2 / 56 + 1e-6);
      expect(ramp[0]).toBeGreaterThan(0.99);
      expect(ramp.at(-1)).toBeLessThan(0.01);
      expect(row(right, y).slice(56).every((v) => v === 1)).toBe(true);
    }
    expect(() => blendWeights(plan, 5)).toThrow(/tile 5/);
  });
});

describe('extractTiles + mergeTiles', () => {
  it.each(CASES)('%ix%i tile %i overlap %i: identity processing reproduces a batch of two', (w, h, tile, overlap) => {
    const image = testImage(2, w, h);
    const plan = planTiles(w, h, { tile, overlap });
    const tiles = extractTiles(image, plan);
    expect(tiles.n).toBe(2 * plan.tiles.length);
    expect(maxDiff(mergeTiles(tiles, plan), image)).toBeLessThanOrEqual(1e-6);
  });

  it('cuts tiles item-major with the right pixels', () => {
    const image = imageFrom(2, 2, 10, 12, (n, c, y, x) => n * 1000 + c * 100 + y * 12 + x);
    const plan = planTiles(12, 10, { tile: 8, overlap: 2 });
    const tiles = extractTiles(image, plan);
    const T = plan.tiles.length;
    plan.tiles.forEach((t, i) => {
      expect(at(tiles, T + i, 1, 3, 5)).toBe(at(image, 1, 1, t.y + 3, t.x + 5));
      expect(at(tiles, i, 0, 0, 0)).toBe(at(image, 0, 0, t.y, t.x));
    });
  });

  it.each(CASES)('%ix%i tile %i overlap %i: a fake x2 nearest-neighbour model matches the untiled result', (w, h, tile, overlap) => {
    const image = testImage(1, w, h);
    const plan = planTiles(w, h, { tile, overlap });
    expect(maxDiff(tiled(image, plan, 2, (t) => nearest(t, 2)), nearest(image, 2))).toBeLessThanOrEqual(1e-6);
  });

  it('leaves no seam along tile borders under linear processing', () => {
    const image = testImage(1, 333, 177);
    const plan = planTiles(333, 177, { tile: 80, overlap: 24 });
    const linear = (t: ImageTensor): ImageTensor => {
      const up = nearest(t, 2);
      return { ...up, data: up.data.map((v) => 3 * v - 0.25) };
    };
    const whole = linear(image);
    const merged = tiled(image, plan, 2, linear);
    // Output pixels on any tile's edge (where a seam would show).
    const edgeX = new Set(plan.tiles.flatMap((t) => [2 * t.x, 2 * t.x + 1, 2 * (t.x + t.w) - 2, 2 * (t.x + t.w) - 1]));
    const edgeY = new Set(plan.tiles.flatMap((t) => [2 * t.y, 2 * t.y + 1, 2 * (t.y + t.h) - 2, 2 * (t.y + t.h) - 1]));
    expect(maxDiff(merged, whole, (_n, _c, y, x) => edgeX.has(x) || edgeY.has(y))).toBeLessThanOrEqual(1e-6);
    expect(maxDiff(merged, whole)).toBeLessThanOrEqual(1e-6);
  });

  it('refuses tiles that do not match the plan', () => {
    const plan = planTiles(100, 100, { tile: 64, overlap: 8 });
    expect(() => mergeTiles(createImage(3, 3, 64, 64), plan)).toThrow(/multiple of 4 tiles/);
    expect(() => mergeTiles(createImage(4, 3, 64, 64), plan, 2)).toThrow(/128x128/);
    expect(() => extractTiles(createImage(1, 3, 99, 100), plan)).toThrow(/plan is for 100x100/);
  });
});

describe('autoTileSize', () => {
  it('picks the largest multiple that fits the budget, never below 64', () => {
    // 1 MiB at 16 bytes a pixel: 256x256 fits exactly.
    expect(autoTileSize({ bytesPerPixel: 16, memoryBudgetBytes: 1 << 20, multiple: 8 })).toBe(256);
    expect(autoTileSize({ bytesPerPixel: 16, memoryBudgetBytes: (1 << 20) - 1, multiple: 8 })).toBe(248);
    expect(autoTileSize({ bytesPerPixel: 16, memoryBudgetBytes: 1 << 20, multiple: 96 })).toBe(192);
    expect(autoTileSize({ bytesPerPixel: 1e6, memoryBudgetBytes: 1e6, multiple: 8 })).toBe(64);
    expect(autoTileSize({ bytesPerPixel: 1e6, memoryBudgetBytes: 1e6, multiple: 48 })).toBe(96);
    expect(autoTileSize({ bytesPerPixel: 4, memoryBudgetBytes: 1e12, multiple: 64, max: 1000 })).toBe(960);
    const t = autoTileSize({ bytesPerPixel: 3 * 4 * 50, memoryBudgetBytes: 2 ** 30, multiple: 8 });
    expect(t % 8).toBe(0);
    expect(t * t * 600).toBeLessThanOrEqual(2 ** 30);
    expect((t + 8) * (t + 8) * 600).toBeGreaterThan(2 ** 30);
  });
});
