/**
 * The Real-ESRGAN second-order degradation (BasicSR `RealESRNetModel.feed_data`), one image at a
 * time, every choice drawn from one Rng. Draw order, which fixes what a seed gives:
 *
 *  1. kernel 1 (`randomKernel`, stage-1 ranges), kernel 2 (stage-2 ranges), the final sinc
 *     (`randomFinalSinc`), as BasicSR's dataset draws all three before the pipeline runs;
 *  2. (unsharp masking, when on, draws nothing)
 *  3. stage 1: blur? (u < blurProb; always with prob 1), resize type (up/down/keep), its scale when
 *     not keep, resize mode (area/bilinear/bicubic, uniform), the noise draws (`randomNoise`:
 *     Gaussian or Poisson, gray, level, the noise field), JPEG quality (integer, uniform);
 *  4. stage 2: blur? (u < 0.8), resize type, scale, mode, noise draws;
 *  5. final order (u < 0.5: resize -> sinc -> JPEG, else JPEG -> resize -> sinc), then the resize
 *     mode and the JPEG quality in the order they are applied.
 *
 * The clamp before each JPEG is jpegCompress's own (it rounds and clamps to 8 bits).
 *
 * Resizing follows torch.nn.functional.interpolate as BasicSR calls it (align_corners = false, no
 * antialias, bicubic A = -0.75, area = adaptive average pooling), not ../../image/resize.ts, which
 * widens its filters when shrinking: that antialiasing would change the LQ statistics.
 */
import type { Rng } from '../../api/rng.ts';
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { convolve } from './convolve.ts';
import { jpegCompress } from './jpeg.ts';
import { randomFinalSinc, randomKernel, type Kernel } from './kernels.ts';
import { randomNoise } from './noise.ts';
import type { DegradeConfig, StageConfig } from './presets.ts';

export type ResizeMode = 'area' | 'bilinear' | 'bicubic';
export const RESIZE_MODES: readonly ResizeMode[] = ['area', 'bilinear', 'bicubic'];
const RESIZE_TYPES = ['up', 'down', 'keep'] as const;

export interface DegradeResult {
  image: ImageTensor;
  /** Everything drawn, JSON-serialisable. */
  params: Record<string, unknown>;
}

/**
 * Degrades one image (n = 1) to (floor(h / scale), floor(w / scale)), or back to (h, w) when
 * `cfg.resizeBack`. The result is on the 8-bit grid unless resized back.
 */
export async function degradeImage(
  input: ImageTensor,
  rng: Rng,
  cfg: DegradeConfig,
  scale: number,
  onStep: (step: number, total: number) => void = () => {},
): Promise<DegradeResult> {
  if (input.n !== 1) throw new RangeError(`degradeImage takes one image, got a batch of ${input.n}`);
  const outH = Math.floor(input.h / scale);
  const outW = Math.floor(input.w / scale);
  if (outH < 1 || outW < 1) throw new RangeError(`a ${input.w}x${input.h} image is too small for scale ${scale}`);
  const total = 4;
  const kernel1 = randomKernel(rng, cfg.stage1.blur);
  const kernel2 = randomKernel(rng, cfg.stage2.blur);
  const sinc = randomFinalSinc(rng, cfg.finalSincProb);
  const params: Record<string, unknown> = { scale, input: [input.w, input.h] };

  let img = cfg.usm ? usmSharp(input) : input;
  params.usm = cfg.usm;

  // Stage 1: resized by a scale factor, the source coordinate using 1 / factor.
  const s1: Record<string, unknown> = {};
  img = blurStep(img, rng, cfg.stage1, kernel1, s1);
  {
    const { type, factor, mode } = drawResize(rng, cfg.stage1);
    const h = Math.max(1, Math.floor(img.h * factor));
    const w = Math.max(1, Math.floor(img.w * factor));
    img = resizeTorch(img, w, h, mode, 1 / factor, 1 / factor);
    s1.resize = { type, scale: factor, mode, size: [w, h] };
  }
  img = noiseStep(img, rng, cfg.stage1, s1);
  {
    const quality = rng.int(cfg.stage1.jpegRange[0], cfg.stage1.jpegRange[1]);
    img = await jpegCompress(img, quality);
    s1.jpeg = { quality };
  }
  params.stage1 = s1;
  onStep(1, total);

  // Stage 2: resized to a size relative to the final one.
  const s2: Record<string, unknown> = {};
  img = blurStep(img, rng, cfg.stage2, kernel2, s2);
  {
    const { type, factor, mode } = drawResize(rng, cfg.stage2);
    const h = Math.max(1, Math.trunc((input.h / scale) * factor));
    const w = Math.max(1, Math.trunc((input.w / scale) * factor));
    img = resizeTorch(img, w, h, mode);
    s2.resize = { type, scale: factor, mode, size: [w, h] };
  }
  img = noiseStep(img, rng, cfg.stage2, s2);
  params.stage2 = s2;
  onStep(2, total);

  // Final: resize to the LQ size, sinc and JPEG in one of two orders.
  const order = rng.uniform() < cfg.resizeFirstProb ? 'resize-sinc-jpeg' : 'jpeg-resize-sinc';
  const fin: Record<string, unknown> = { order, sinc: sinc ? kernelRecord(sinc) : null };
  const drawMode = (): ResizeMode => RESIZE_MODES[Math.min(2, Math.floor(rng.uniform() * 3))]!;
  const drawQuality = (): number => rng.int(cfg.stage2.jpegRange[0], cfg.stage2.jpegRange[1]);
  if (order === 'resize-sinc-jpeg') {
    const mode = drawMode();
    img = resizeTorch(img, outW, outH, mode);
    if (sinc) img = convolve(img, sinc);
    const quality = drawQuality();
    img = await jpegCompress(img, quality);
    Object.assign(fin, { resizeMode: mode, jpeg: { quality } });
  } else {
    const quality = drawQuality();
    img = await jpegCompress(img, quality);
    const mode = drawMode();
    img = resizeTorch(img, outW, outH, mode);
    if (sinc) img = convolve(img, sinc);
    Object.assign(fin, { resizeMode: mode, jpeg: { quality } });
  }
  params.final = fin;
  onStep(3, total);

  img = round8(img);
  if (cfg.resizeBack) {
    img = clamp(resizeTorch(img, input.w, input.h, 'bicubic'));
    params.resizeBack = { mode: 'bicubic', size: [input.w, input.h] };
  }
  params.output = [img.w, img.h];
  onStep(4, total);
  return { image: img, params };
}

function kernelRecord(k: Kernel): Record<string, unknown> {
  return { kind: k.kind, size: k.size, ...k.params };
}

function blurStep(img: ImageTensor, rng: Rng, stage: StageConfig, kernel: Kernel, rec: Record<string, unknown>): ImageTensor {
  const apply = rng.uniform() < stage.blurProb;
  rec.blur = apply ? kernelRecord(kernel) : null;
  return apply ? convolve(img, kernel) : img;
}

function noiseStep(img: ImageTensor, rng: Rng, stage: StageConfig, rec: Record<string, unknown>): ImageTensor {
  const { image, drawn } = randomNoise(img, rng, stage.noise);
  rec.noise = drawn;
  return image; // randomNoise clamps to 0..1 (BasicSR clip=True)
}

function drawResize(rng: Rng, stage: StageConfig): { type: (typeof RESIZE_TYPES)[number]; factor: number; mode: ResizeMode } {
  const u = rng.uniform();
  const [pUp, pDown] = stage.resizeProb;
  const total = stage.resizeProb[0] + stage.resizeProb[1] + stage.resizeProb[2];
  const type = u * total < pUp ? 'up' : u * total < pUp + pDown ? 'down' : 'keep';
  const [lo, hi] = stage.resizeRange;
  const factor = type === 'up' ? 1 + rng.uniform() * (hi - 1) : type === 'down' ? lo + rng.uniform() * (1 - lo) : 1;
  const mode = RESIZE_MODES[Math.min(2, Math.floor(rng.uniform() * 3))]!;
  return { type, factor, mode };
}

/** Clamps to 0..1 in a new image (NaN becomes 0). */
export function clamp(img: ImageTensor): ImageTensor {
  const out = new Float32Array(img.data.length);
  const src = img.data;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    out[i] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
  return { ...img, data: out };
}

/** Clamps and rounds to the 8-bit grid. */
export function round8(img: ImageTensor): ImageTensor {
  const out = new Float32Array(img.data.length);
  const src = img.data;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    out[i] = v > 0 ? (v < 1 ? Math.round(v * 255) / 255 : 1) : 0;
  }
  return { ...img, data: out };
}

interface Taps {
  start: Int32Array;
  index: Int32Array;
  weight: Float32Array;
}

/**
 * torch.nn.functional.interpolate on one axis. `srcPerDst` is the coordinate scale (1 / factor
 * when torch is given a scale factor, src / dst when given a size).
 */
function axisTaps(src: number, dst: number, mode: ResizeMode, srcPerDst: number): Taps {
  const start = new Int32Array(dst + 1);
  const index: number[] = [];
  const weight: number[] = [];
  const clampIdx = (i: number) => (i < 0 ? 0 : i > src - 1 ? src - 1 : i);
  for (let o = 0; o < dst; o++) {
    if (mode === 'area') {
      // adaptive_avg_pool: [floor(o * src / dst), ceil((o + 1) * src / dst))
      const a = Math.floor((o * src) / dst);
      const b = Math.ceil(((o + 1) * src) / dst);
      for (let j = a; j < b; j++) index.push(j), weight.push(1 / (b - a));
    } else if (mode === 'bilinear') {
      let real = srcPerDst * (o + 0.5) - 0.5;
      if (real < 0) real = 0;
      const i0 = Math.floor(real);
      const l1 = real - i0;
      const i1 = i0 < src - 1 ? i0 + 1 : i0;
      index.push(Math.min(i0, src - 1), i1), weight.push(1 - l1, l1);
    } else {
      const real = srcPerDst * (o + 0.5) - 0.5;
      const i0 = Math.floor(real);
      const t = real - i0;
      const A = -0.75;
      const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
      const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const ws = [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)];
      for (let k = 0; k < 4; k++) index.push(clampIdx(i0 - 1 + k)), weight.push(ws[k]!);
    }
    start[o + 1] = index.length;
  }
  return { start, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

/** Separable torch-style resize of one image; `sx`/`sy` override the coordinate scale. */
export function resizeTorch(img: ImageTensor, tw: number, th: number, mode: ResizeMode, sx?: number, sy?: number): ImageTensor {
  const { c, h, w, data } = img;
  if (tw === w && th === h && (mode === 'area' || (sx ?? 1) === 1)) return img;
  const xs = axisTaps(w, tw, mode, sx ?? w / tw);
  const ys = axisTaps(h, th, mode, sy ?? h / th);
  const out = createImage(1, c, th, tw);
  const rows = new Float32Array(h * tw);
  for (let ch = 0; ch < c; ch++) {
    const src = ch * h * w;
    const { start, index, weight } = xs;
    for (let y = 0; y < h; y++) {
      const line = data.subarray(src + y * w, src + (y + 1) * w);
      const rb = y * tw;
      let t = 0;
      for (let x = 0; x < tw; x++) {
        const end = start[x + 1]!;
        let sum = 0;
        for (; t < end; t++) sum += weight[t]! * line[index[t]!]!;
        rows[rb + x] = sum;
      }
    }
    const dst = ch * th * tw;
    const od = out.data;
    for (let y = 0; y < th; y++) {
      const ob = dst + y * tw;
      const t0 = ys.start[y]!;
      const n = ys.start[y + 1]! - t0;
      if (n === 4) {
        // bicubic: one pass over the four source rows
        const [w0, w1, w2, w3] = [ys.weight[t0]!, ys.weight[t0 + 1]!, ys.weight[t0 + 2]!, ys.weight[t0 + 3]!];
        const [r0, r1, r2, r3] = [ys.index[t0]! * tw, ys.index[t0 + 1]! * tw, ys.index[t0 + 2]! * tw, ys.index[t0 + 3]! * tw];
        for (let x = 0; x < tw; x++) od[ob + x] = w0 * rows[r0 + x]! + w1 * rows[r1 + x]! + w2 * rows[r2 + x]! + w3 * rows[r3 + x]!;
        continue;
      }
      for (let t = t0; t < t0 + n; t++) {
        const wgt = ys.weight[t]!;
        const rb = ys.index[t]! * tw;
        for (let x = 0; x < tw; x++) od[ob + x]! += wgt * rows[rb + x]!;
      }
    }
  }
  return out;
}

/** cv2.getGaussianKernel(51, 0): sigma = 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8. */
function gaussian1d(size: number): Float32Array {
  const sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8;
  const k = new Float32Array(size);
  let total = 0;
  for (let i = 0; i < size; i++) {
    const x = i - (size - 1) / 2;
    total += k[i] = Math.exp(-(x * x) / (2 * sigma * sigma));
  }
  for (let i = 0; i < size; i++) k[i]! /= total;
  return k;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/** Separable blur with reflect padding (the 51x51 Gaussian is the outer product of its 1-D taps). */
function blurSeparable(img: ImageTensor, k: Float32Array): ImageTensor {
  const { c, h, w, data } = img;
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(h * w);
  const out = createImage(1, c, h, w);
  const xi = Int32Array.from({ length: w + 2 * r }, (_, i) => reflect(i - r, w));
  const yi = Int32Array.from({ length: h + 2 * r }, (_, i) => reflect(i - r, h));
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let t = 0; t < k.length; t++) s += k[t]! * data[base + y * w + xi[x + t]!]!;
        tmp[y * w + x] = s;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let t = 0; t < k.length; t++) s += k[t]! * tmp[yi[y + t]! * w + x]!;
        out.data[base + y * w + x] = s;
      }
    }
  }
  return out;
}

/** BasicSR USMSharp (radius 50 -> 51 taps, sigma 8), weight 0.5, threshold 10. */
export function usmSharp(img: ImageTensor, weight = 0.5, threshold = 10): ImageTensor {
  const k = gaussian1d(51);
  const blurred = blurSeparable(img, k);
  const n = img.data.length;
  const mask = createImage(1, img.c, img.h, img.w);
  const residual = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    residual[i] = img.data[i]! - blurred.data[i]!;
    mask.data[i] = Math.abs(residual[i]!) * 255 > threshold ? 1 : 0;
  }
  const soft = blurSeparable(mask, k);
  const out = createImage(1, img.c, img.h, img.w);
  for (let i = 0; i < n; i++) {
    const v = img.data[i]!;
    const sharp = Math.min(1, Math.max(0, v + weight * residual[i]!));
    const m = soft.data[i]!;
    out.data[i] = m * sharp + (1 - m) * v;
  }
  return out;
}
