/**
 * The generic tiler: split an image into overlapping tiles, process each, and blend them back with
 * weights that ramp smoothly across every overlap. The ESRGAN upscaler uses it now; the VAE and the
 * sampler will use it with latents. Pure TypeScript (no Node imports) so that the editor can draw a
 * plan too.
 *
 * Tiles form a grid: every tile in a column shares its x span, every tile in a row its y span, all
 * tiles have the same size (the image's size along an axis shorter than a tile), edge tiles touch
 * the border and neighbours overlap by at least the requested amount. The weights are a partition
 * of unity per axis, so their product sums to 1 over the grid at every pixel.
 */
import type { TilePlan, TileRect } from './sockets.ts';
import { createImage, type ImageTensor } from './tensor.ts';

export interface TileOptions {
  /** Tile side in input pixels. */
  tile: number;
  /** Minimum overlap between neighbouring tiles, in input pixels. */
  overlap: number;
}

export function planTiles(width: number, height: number, { tile, overlap }: TileOptions): TilePlan {
  for (const [name, v] of [['width', width], ['height', height], ['tile', tile]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) {
    throw new RangeError(`overlap must be an integer in 0..${tile - 1} (tile ${tile}), got ${overlap}`);
  }
  const xs = axisStarts(width, tile, overlap);
  const ys = axisStarts(height, tile, overlap);
  const w = Math.min(tile, width);
  const h = Math.min(tile, height);
  const tiles: TileRect[] = [];
  for (const y of ys) for (const x of xs) tiles.push({ x, y, w, h });
  return { width, height, tileSize: tile, overlap, tiles };
}

/**
 * Tile starts along one axis: the fewest tiles whose overlap is at least `overlap`, spread evenly
 * (strides differ by at most one pixel) with the first at 0 and the last flush with the end.
 */
function axisStarts(length: number, tile: number, overlap: number): number[] {
  if (length <= tile) return [0];
  const count = Math.ceil((length - overlap) / (tile - overlap));
  const span = length - tile;
  return Array.from({ length: count }, (_, i) => Math.floor((i * span) / (count - 1)));
}

/** The distinct spans of the plan's tiles along one axis, in order. */
function axisSpans(plan: TilePlan, axis: 'x' | 'y'): Array<{ start: number; size: number }> {
  const size = axis === 'x' ? 'w' : 'h';
  const seen = new Map<number, number>();
  for (const t of plan.tiles) seen.set(t[axis], t[size]);
  return [...seen].sort((a, b) => a[0] - b[0]).map(([start, s]) => ({ start, size: s }));
}

/**
 * Weights of span `index` at output resolution (`scale` output pixels per input pixel): a
 * raised-cosine ramp over each overlap with a neighbour (1 at the image border), divided by the sum
 * of all spans' ramps so that the spans covering a pixel always add up to 1, even where more than
 * two overlap.
 */
function axisWeights(spans: Array<{ start: number; size: number }>, index: number, scale: number): Float32Array {
  const ramp = (k: number, p: number): number => {
    const s = spans[k]!;
    const prev = spans[k - 1];
    const next = spans[k + 1];
    let r = 1;
    // p is the output pixel's centre, in input units.
    if (prev && p < prev.start + prev.size) r *= rise((p - s.start) / (prev.start + prev.size - s.start));
    if (next && p > next.start) r *= rise((s.start + s.size - p) / (s.start + s.size - next.start));
    return r;
  };
  const own = spans[index]!;
  const out = new Float32Array(own.size * scale);
  for (let i = 0; i < out.length; i++) {
    const p = own.start + (i + 0.5) / scale;
    let sum = 0;
    for (let k = 0; k < spans.length; k++) {
      const s = spans[k]!;
      if (p > s.start && p < s.start + s.size) sum += ramp(k, p);
    }
    out[i] = ramp(index, p) / sum;
  }
  return out;
}

/** 0 -> 1 raised-cosine (sin^2) ramp for t in [0, 1]; its mirror image adds up to 1 with it. */
function rise(t: number): number {
  const s = Math.sin((Math.PI / 2) * Math.min(1, Math.max(0, t)));
  return s * s;
}

/** Per-axis weights of every column and row of the plan, at output resolution. */
function gridWeights(plan: TilePlan, scale: number): { xs: Map<number, Float32Array>; ys: Map<number, Float32Array> } {
  const forAxis = (axis: 'x' | 'y'): Map<number, Float32Array> => {
    const spans = axisSpans(plan, axis);
    return new Map(spans.map((s, i) => [s.start, axisWeights(spans, i, scale)]));
  };
  return { xs: forAxis('x'), ys: forAxis('y') };
}

/** Blend weights of one tile, (h * scale) x (w * scale) row-major, at output resolution. */
export function blendWeights(plan: TilePlan, tileIndex: number, scale = 1): Float32Array {
  checkScale(scale);
  const tile = plan.tiles[tileIndex];
  if (!tile) throw new RangeError(`tile ${tileIndex} is not in the plan (${plan.tiles.length} tiles)`);
  const grid = gridWeights(plan, scale);
  const wx = grid.xs.get(tile.x)!;
  const wy = grid.ys.get(tile.y)!;
  const out = new Float32Array(wx.length * wy.length);
  for (let y = 0; y < wy.length; y++) for (let x = 0; x < wx.length; x++) out[y * wx.length + x] = wy[y]! * wx[x]!;
  return out;
}

/** Cuts every item of the batch into the plan's tiles: item-major, n * tiles images. */
export function extractTiles(image: ImageTensor, plan: TilePlan): ImageTensor {
  checkPlanFits(image, plan);
  const first = plan.tiles[0]!;
  const out = createImage(image.n * plan.tiles.length, image.c, first.h, first.w);
  let o = 0;
  for (let n = 0; n < image.n; n++) for (const t of plan.tiles) o = copyTile(image, t, n, out.data, o);
  return out;
}

/** Copies tile `t` of batch item `item` (c x t.h x t.w) into `out` at `offset`; returns the offset after it. */
function copyTile(image: ImageTensor, t: TileRect, item: number, out: Float32Array, offset: number): number {
  let o = offset;
  for (let ch = 0; ch < image.c; ch++) {
    const plane = (item * image.c + ch) * image.h * image.w;
    for (let y = 0; y < t.h; y++) {
      const src = plane + (t.y + y) * image.w + t.x;
      out.set(image.data.subarray(src, src + t.w), o);
      o += t.w;
    }
  }
  return o;
}

/** One tile of one item of the batch, c x t.h x t.w: what extractTiles gives for that tile, alone. */
export function extractTile(image: ImageTensor, plan: TilePlan, index: number, item = 0): ImageTensor {
  checkPlanFits(image, plan);
  const t = plan.tiles[index];
  if (!t) throw new RangeError(`tile ${index} is not in the plan (${plan.tiles.length} tiles)`);
  if (!Number.isInteger(item) || item < 0 || item >= image.n) throw new RangeError(`item ${item} is not in the batch (${image.n})`);
  const out = createImage(1, image.c, t.h, t.w);
  copyTile(image, t, item, out.data, 0);
  return out;
}

/**
 * Blends processed tiles into an image as they arrive, so that a caller holds the output and
 * nothing else of its size, never every processed tile at once: add() each tile (`scale` times
 * the tile's size, c channels) into the target, then normalise() it. mergeTiles is this over a
 * batch. The summed weights that normalise() divides by are recomputed one output row at a time
 * (a full plane of them would cost 4 bytes per output pixel).
 */
export class TileBlender {
  readonly width: number;
  readonly height: number;
  readonly #grid: ReturnType<typeof gridWeights>;

  constructor(
    readonly plan: TilePlan,
    readonly scale: number,
    readonly channels: number,
  ) {
    checkScale(scale);
    this.width = plan.width * scale;
    this.height = plan.height * scale;
    // Weights are built per column and per row and multiplied on the fly: a full weight map per
    // tile would cost as much memory as the output again.
    this.#grid = gridWeights(plan, scale);
  }

  /** A zeroed target of the output's size (c x H x W), for add(). */
  target(): Float32Array {
    return new Float32Array(this.channels * this.width * this.height);
  }

  /** target += the tile's weights times `tile` (c planes of the scaled tile, from `offset`). */
  add(target: Float32Array, index: number, tile: Float32Array, offset = 0): void {
    const t = this.plan.tiles[index];
    if (!t) throw new RangeError(`tile ${index} is not in the plan (${this.plan.tiles.length} tiles)`);
    const plane = t.w * this.scale * t.h * this.scale;
    if (target.length !== this.channels * this.width * this.height || tile.length - offset < this.channels * plane) {
      throw new RangeError(`tile ${index}: expected ${this.channels}x${t.h * this.scale}x${t.w * this.scale} values into a ${this.channels}x${this.height}x${this.width} target`);
    }
    for (let ch = 0; ch < this.channels; ch++) {
      const dst = target.subarray(ch * this.width * this.height, (ch + 1) * this.width * this.height);
      addWeighted(dst, this.width, t, this.scale, this.#grid, tile, offset + ch * plane);
    }
  }

  /**
   * Divides by the summed weights, which keeps the result exact where float rounding leaves the
   * weights a hair off 1. Call once, after every tile was added. The sums are the float32 sums
   * of the tiles' weights in plan order, as a plane accumulated tile by tile would hold them,
   * built for one row at a time.
   */
  normalise(target: Float32Array): void {
    const { width: W, height: H, scale } = this;
    const plane = W * H;
    if (target.length !== this.channels * plane) throw new RangeError(`expected a ${this.channels}x${H}x${W} target, got ${target.length} values`);
    const sum = new Float32Array(W);
    for (let y = 0; y < H; y++) {
      sum.fill(0);
      for (const t of this.plan.tiles) {
        const ty = y - t.y * scale;
        if (ty < 0 || ty >= t.h * scale) continue;
        const wy = this.#grid.ys.get(t.y)![ty]!;
        const wx = this.#grid.xs.get(t.x)!;
        const x0 = t.x * scale;
        for (let x = 0; x < wx.length; x++) sum[x0 + x]! += wy * wx[x]!;
      }
      for (let ch = 0; ch < this.channels; ch++) {
        const row = ch * plane + y * W;
        for (let x = 0; x < W; x++) target[row + x]! /= sum[x]!;
      }
    }
  }
}

/**
 * Blends processed tiles (item-major, as extractTiles gives them, each `scale` times the tile's
 * size) into n images of the plan's size times `scale`: weighted sum, then division by the summed
 * weights (TileBlender, item by item).
 */
export function mergeTiles(tiles: ImageTensor, plan: TilePlan, scale = 1): ImageTensor {
  checkScale(scale);
  const count = plan.tiles.length;
  const first = plan.tiles[0]!;
  if (tiles.n % count !== 0 || tiles.h !== first.h * scale || tiles.w !== first.w * scale) {
    throw new RangeError(
      `expected a multiple of ${count} tiles of ${first.w * scale}x${first.h * scale} (scale ${scale}), got ${tiles.n} of ${tiles.w}x${tiles.h}`,
    );
  }
  const n = tiles.n / count;
  const { c } = tiles;
  const blender = new TileBlender(plan, scale, c);
  const out = createImage(n, c, blender.height, blender.width);
  const size = c * blender.height * blender.width;
  for (let item = 0; item < n; item++) {
    const target = out.data.subarray(item * size, (item + 1) * size);
    for (let i = 0; i < count; i++) blender.add(target, i, tiles.data, (item * count + i) * c * tiles.h * tiles.w);
    blender.normalise(target);
  }
  return out;
}

/** dst[tile area] += weight * src tile. */
function addWeighted(dst: Float32Array, W: number, t: TileRect, scale: number, grid: ReturnType<typeof gridWeights>, src: Float32Array, offset: number): void {
  const wx = grid.xs.get(t.x)!;
  const wy = grid.ys.get(t.y)!;
  for (let y = 0; y < wy.length; y++) {
    const row = (t.y * scale + y) * W + t.x * scale;
    const at = offset + y * wx.length;
    for (let x = 0; x < wx.length; x++) {
      const w = wy[y]! * wx[x]!;
      dst[row + x]! += w * src[at + x]!;
    }
  }
}

/**
 * The largest square tile, a multiple of `multiple` and at least 64, whose pixels times
 * `bytesPerPixel` fit in the budget; the smallest such tile when none fits (a model has to run on
 * something), and at most `max` when given.
 */
export function autoTileSize(opts: { bytesPerPixel: number; memoryBudgetBytes: number; multiple?: number; max?: number }): number {
  const multiple = opts.multiple ?? 8;
  if (!Number.isInteger(multiple) || multiple <= 0) throw new RangeError(`multiple must be a positive integer, got ${multiple}`);
  if (!(opts.bytesPerPixel > 0) || !(opts.memoryBudgetBytes > 0)) throw new RangeError('bytesPerPixel and memoryBudgetBytes must be positive');
  const smallest = Math.ceil(64 / multiple) * multiple;
  const side = Math.floor(Math.sqrt(opts.memoryBudgetBytes / opts.bytesPerPixel));
  let tile = Math.max(smallest, Math.floor(side / multiple) * multiple);
  if (opts.max !== undefined) tile = Math.max(smallest, Math.min(tile, Math.floor(opts.max / multiple) * multiple));
  return tile;
}

function checkScale(scale: number): void {
  if (!Number.isInteger(scale) || scale <= 0) throw new RangeError(`scale must be a positive integer, got ${scale}`);
}

function checkPlanFits(image: ImageTensor, plan: TilePlan): void {
  if (image.w !== plan.width || image.h !== plan.height) {
    throw new RangeError(`the plan is for ${plan.width}x${plan.height}, the image is ${image.w}x${image.h}`);
  }
}
