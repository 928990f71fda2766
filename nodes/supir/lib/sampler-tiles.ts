/**
 * Tiled sampling as TiledRestoreEDMSampler does it: fixed windows over the latent (origins 0,
 * stride, 2·stride, … plus one flush with the far edge) and Gaussian tile weights.
 *
 * The official sampler runs a whole step per tile and averages the stepped tiles. Every operation
 * of a step after the network (CFG, restoration guidance, the Euler and DPM++ updates) is affine
 * in D with coefficients that are the same for every tile, and the weights are normalised, so
 * averaging the tiles' D first and stepping once is the same computation. We therefore wrap the
 * batched denoiser: the samplers (and their churn noise, drawn once for the whole latent) do not
 * know about tiles. With one window covering the latent the normalised weight is exactly 1 and
 * the result equals the untiled one bit for bit.
 */
import { StudioError } from '../../api/errors.ts';
import type { BatchedDenoiser } from './sampler-guidance.ts';

/** A window in latent cells. */
export interface LatentWindow {
  y: number;
  x: number;
  h: number;
  w: number;
}

/**
 * _sliding_windows(h, w, tile, stride), row by row. Where the latent is smaller than the tile along
 * an axis (the official code then has no window) the window is the whole axis.
 */
export function latentWindows(height: number, width: number, tile: number, stride: number): LatentWindow[] {
  if (!(Number.isInteger(tile) && tile > 0 && Number.isInteger(stride) && stride > 0)) {
    throw new StudioError('BAD_INPUT', `tile ${tile} and stride ${stride} must be positive integers`);
  }
  const th = Math.min(tile, height);
  const tw = Math.min(tile, width);
  const ys = axisOrigins(height, th, stride);
  const xs = axisOrigins(width, tw, stride);
  return ys.flatMap((y) => xs.map((x) => ({ y, x, h: th, w: tw })));
}

function axisOrigins(length: number, tile: number, stride: number): number[] {
  const out: number[] = [];
  for (let o = 0; o <= length - tile; o += stride) out.push(o);
  if ((length - tile) % stride !== 0) out.push(length - tile);
  return out;
}

/**
 * gaussian_weights(w, h): N(0, 0.01) over the tile's normalised coordinate, the x midpoint
 * (w−1)/2 but the y midpoint h/2 (the official asymmetry, kept), as a row-major h×w map.
 */
export function gaussianTileWeights(height: number, width: number): Float64Array {
  const variance = 0.01;
  const norm = Math.sqrt(2 * Math.PI * variance);
  const axis = (size: number, mid: number): number[] =>
    Array.from({ length: size }, (_, i) => Math.exp((-(i - mid) * (i - mid)) / (size * size) / (2 * variance)) / norm);
  const xs = axis(width, (width - 1) / 2);
  const ys = axis(height, height / 2);
  const out = new Float64Array(height * width);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = ys[y]! * xs[x]!;
  return out;
}

/**
 * Each window's weight divided by the sum of the weights over every window covering the cell, as
 * float32 maps (window h×w each): the blend is then Σ D_tile·weight with no division per step.
 */
export function normalisedTileWeights(height: number, width: number, windows: readonly LatentWindow[]): Float32Array[] {
  const total = new Float64Array(height * width);
  const base = windows.map((win) => gaussianTileWeights(win.h, win.w));
  windows.forEach((win, j) => forCells(win, width, (cell, local) => (total[cell] = total[cell]! + base[j]![local]!)));
  return windows.map((win, j) => {
    const out = new Float32Array(win.h * win.w);
    forCells(win, width, (cell, local) => (out[local] = base[j]![local]! / total[cell]!));
    return out;
  });
}

function forCells(win: LatentWindow, width: number, f: (cell: number, local: number) => void): void {
  for (let y = 0; y < win.h; y++) for (let x = 0; x < win.w; x++) f((win.y + y) * width + win.x + x, y * win.w + x);
}

/**
 * A batched denoiser over the whole [2B, c, h, w] latent that runs `inner` once per window with
 * that window's conditioning (`tileCond(j)`: its control slice, its prompt) and blends the x0
 * predictions. Input and output buffers are reused across calls.
 */
export function tiledDenoiser<C, T>(inner: BatchedDenoiser<T>, shape: readonly [number, number, number, number], windows: readonly LatentWindow[], tileCond: (j: number) => T): BatchedDenoiser<C> {
  const [, channels, height, width] = shape;
  const weights = normalisedTileWeights(height, width, windows);
  const planes = 2 * shape[0] * channels;
  const first = windows[0];
  if (!first || windows.some((w) => w.h !== first.h || w.w !== first.w)) throw new StudioError('INTERNAL', 'tiled sampling needs equal windows');
  const tileIn = new Float32Array(planes * first.h * first.w);
  const out = new Float32Array(planes * height * width);
  return async (x, sigma, _cond, controlScale) => {
    out.fill(0);
    for (let j = 0; j < windows.length; j++) {
      const win = windows[j]!;
      copyWindow(x, tileIn, win, planes, height, width);
      const d = await inner(tileIn, sigma, tileCond(j), controlScale);
      accumulateWindow(d, out, weights[j]!, win, planes, height, width);
    }
    return out;
  };
}

/** Copies a window of every plane of a full latent into `tile`. */
export function copyWindow(full: Float32Array, tile: Float32Array, win: LatentWindow, planes: number, height: number, width: number): void {
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < win.h; y++) {
      const src = p * height * width + (win.y + y) * width + win.x;
      tile.set(full.subarray(src, src + win.w), (p * win.h + y) * win.w);
    }
  }
}

function accumulateWindow(tile: Float32Array, full: Float32Array, weight: Float32Array, win: LatentWindow, planes: number, height: number, width: number): void {
  if (tile.length !== planes * win.h * win.w) throw new StudioError('INTERNAL', `the denoiser returned ${tile.length} values for a ${win.h}x${win.w} tile`);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < win.h; y++) {
      const row = p * height * width + (win.y + y) * width + win.x;
      const t = (p * win.h + y) * win.w;
      const wr = y * win.w;
      for (let x = 0; x < win.w; x++) full[row + x] = full[row + x]! + tile[t + x]! * weight[wr + x]!;
    }
  }
}
