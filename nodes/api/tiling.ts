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
  const { c } = image;
  const out = createImage(image.n * plan.tiles.length, c, first.h, first.w);
  let o = 0;
  for (let n = 0; n < image.n; n++) {
    for (const t of plan.tiles) {
      for (let ch = 0; ch < c; ch++) {
        const plane = (n * c + ch) * image.h * image.w;
        for (let y = 0; y < t.h; y++) {
          const src = plane + (t.y + y) * image.w + t.x;
          out.data.set(image.data.subarray(src, src + t.w), o);
          o += t.w;
        }
      }
    }
  }
  return out;
}

/**
 * Blends processed tiles (item-major, as extractTiles gives them, each `scale` times the tile's
 * size) into n images of the plan's size times `scale`: weighted sum, then division by the summed
 * weights, which keeps the result exact where float rounding leaves the weights a hair off 1.
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
  const W = plan.width * scale;
  const H = plan.height * scale;
  const out = createImage(n, c, H, W);
  // Weights are built per column and per row and multiplied on the fly: a full weight map per tile
  // would cost as much memory as the output again.
  const grid = gridWeights(plan, scale);
  const weightSum = new Float32Array(W * H);
  for (const t of plan.tiles) addWeighted(weightSum, W, t, scale, grid, null, 0);
  for (let item = 0; item < n; item++) {
    plan.tiles.forEach((t, i) => {
      for (let ch = 0; ch < c; ch++) {
        const src = ((item * count + i) * c + ch) * tiles.h * tiles.w;
        const dst = out.data.subarray((item * c + ch) * H * W, (item * c + ch + 1) * H * W);
        addWeighted(dst, W, t, scale, grid, tiles.data, src);
      }
    });
  }
  for (let p = 0; p < out.data.length; p++) out.data[p]! /= weightSum[p % (W * H)]!;
  return out;
}

/** dst[tile area] += weight * src tile (or += weight alone when src is null). */
function addWeighted(
  dst: Float32Array,
  W: number,
  t: TileRect,
  scale: number,
  grid: ReturnType<typeof gridWeights>,
  src: Float32Array | null,
  offset: number,
): void {
  const wx = grid.xs.get(t.x)!;
  const wy = grid.ys.get(t.y)!;
  for (let y = 0; y < wy.length; y++) {
    const row = (t.y * scale + y) * W + t.x * scale;
    const at = offset + y * wx.length;
    for (let x = 0; x < wx.length; x++) {
      const w = wy[y]! * wx[x]!;
      dst[row + x]! += src ? w * src[at + x]! : w;
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
