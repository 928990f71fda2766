/**
 * The Real-ESRGAN second-order degradation (BasicSR `RealESRNetModel.feed_data`), one image at a
 * time, every choice drawn from one Rng. Draw order, which fixes what a seed gives:
 *
 *  1. kernel 1 (`randomKernel`, stage-1 ranges), kernel 2 (stage-2 ranges), the final sinc
 *     (`randomFinalSinc`), as BasicSR's dataset draws all three before the pipeline runs;
 *  2. (unsharp masking, when on, draws nothing)
 *  3. stage 1: blur? (u < blurProb; always with prob 1), resize type (up/down/keep), its scale when
 *     not keep, resize mode (area/bilinear/bicubic, uniform), the noise draws (`randomNoise`:
 *     Gaussian or Poisson, gray, level, then two words seeding the noise field's child Rng, so the
 *     draws after it do not depend on the image size), JPEG quality (integer, uniform);
 *  4. stage 2: blur? (u < 0.8), resize type, scale, mode, noise draws;
 *  5. final order (u < 0.5: resize -> sinc -> JPEG, else JPEG -> resize -> sinc), then the resize
 *     mode and the JPEG quality in the order they are applied.
 *
 * The clamp before each JPEG is jpegCompress's own (it rounds and clamps to 8 bits).
 *
 * Resizing follows torch.nn.functional.interpolate as BasicSR calls it (resize.ts).
 */
import type { Rng } from '../../api/rng.ts';
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { applyPlan, convolve, type KernelPlan } from './convolve.ts';
import { jpegCompress } from './jpeg.ts';
import { randomFinalSinc, randomKernel, type Kernel } from './kernels.ts';
import { randomNoise } from './noise.ts';
import type { DegradeConfig, StageConfig } from './presets.ts';
import { RESIZE_MODES, resizeTorch, type ResizeMode } from './resize.ts';

export { RESIZE_MODES, resizeTorch, type ResizeMode };
const RESIZE_TYPES = ['up', 'down', 'keep'] as const;

export interface DegradeResult {
  image: ImageTensor;
  /** Everything drawn, JSON-serialisable. */
  params: Record<string, unknown>;
}

/** Milliseconds spent per operation, summed over calls (the bench's breakdown). */
export type StageTimings = Record<string, number>;

/**
 * Degrades one image (n = 1) to (floor(h / scale), floor(w / scale)), or back to (h, w) when
 * `cfg.resizeBack`. The result is on the 8-bit grid unless resized back. `onStep` runs after each
 * of the four stages; what it throws (an interrupt) ends the degradation there. With `timings`,
 * the time of each operation is added to its entry (kernels, blur, resize, noise, jpeg, sinc, round).
 */
export async function degradeImage(
  input: ImageTensor,
  rng: Rng,
  cfg: DegradeConfig,
  scale: number,
  onStep: (step: number, total: number) => void = () => {},
  timings?: StageTimings,
): Promise<DegradeResult> {
  let t0 = timings ? performance.now() : 0;
  const lap = (label: string): void => {
    if (!timings) return;
    const now = performance.now();
    timings[label] = (timings[label] ?? 0) + (now - t0);
    t0 = now;
  };
  if (input.n !== 1) throw new RangeError(`degradeImage takes one image, got a batch of ${input.n}`);
  const outH = Math.floor(input.h / scale);
  const outW = Math.floor(input.w / scale);
  if (outH < 1 || outW < 1) throw new RangeError(`a ${input.w}x${input.h} image is too small for scale ${scale}`);
  const total = 4;
  const kernel1 = randomKernel(rng, cfg.stage1.blur);
  const kernel2 = randomKernel(rng, cfg.stage2.blur);
  const sinc = randomFinalSinc(rng, cfg.finalSincProb);
  lap('kernels');
  const params: Record<string, unknown> = { scale, input: [input.w, input.h] };

  let img = cfg.usm ? usmSharp(input) : input;
  params.usm = cfg.usm;

  // Stage 1: resized by a scale factor, the source coordinate using 1 / factor.
  const s1: Record<string, unknown> = {};
  img = blurStep(img, rng, cfg.stage1, kernel1, s1);
  lap('blur 1');
  {
    const { type, factor, mode } = drawResize(rng, cfg.stage1);
    const h = Math.max(1, Math.floor(img.h * factor));
    const w = Math.max(1, Math.floor(img.w * factor));
    img = resizeTorch(img, w, h, mode, 1 / factor, 1 / factor);
    s1.resize = { type, scale: factor, mode, size: [w, h] };
  }
  lap('resize 1');
  img = noiseStep(img, rng, cfg.stage1, s1);
  lap('noise 1');
  {
    const quality = rng.int(cfg.stage1.jpegRange[0], cfg.stage1.jpegRange[1]);
    img = await jpegCompress(img, quality);
    s1.jpeg = { quality };
  }
  lap('jpeg 1');
  params.stage1 = s1;
  onStep(1, total);

  // Stage 2: resized to a size relative to the final one.
  const s2: Record<string, unknown> = {};
  img = blurStep(img, rng, cfg.stage2, kernel2, s2);
  lap('blur 2');
  {
    const { type, factor, mode } = drawResize(rng, cfg.stage2);
    const h = Math.max(1, Math.trunc((input.h / scale) * factor));
    const w = Math.max(1, Math.trunc((input.w / scale) * factor));
    img = resizeTorch(img, w, h, mode);
    s2.resize = { type, scale: factor, mode, size: [w, h] };
  }
  lap('resize 2');
  img = noiseStep(img, rng, cfg.stage2, s2);
  lap('noise 2');
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
    lap('final resize');
    if (sinc) img = convolve(img, sinc);
    lap('final sinc');
    const quality = drawQuality();
    img = await jpegCompress(img, quality);
    lap('jpeg 2');
    Object.assign(fin, { resizeMode: mode, jpeg: { quality } });
  } else {
    const quality = drawQuality();
    img = await jpegCompress(img, quality);
    lap('jpeg 2');
    const mode = drawMode();
    img = resizeTorch(img, outW, outH, mode);
    lap('final resize');
    if (sinc) img = convolve(img, sinc);
    lap('final sinc');
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
  lap('round');
  onStep(4, total);
  return { image: img, params };
}

export function kernelRecord(k: Kernel): Record<string, unknown> {
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

/**
 * One resize draw: up / down / keep by the (unnormalised) probabilities, the factor U(1, hi) up or
 * U(lo, 1) down, and the mode uniformly from area, bilinear, bicubic.
 */
export function drawResize(
  rng: Rng,
  stage: Pick<StageConfig, 'resizeProb' | 'resizeRange'>,
): { type: (typeof RESIZE_TYPES)[number]; factor: number; mode: ResizeMode } {
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

/** Clamps and rounds to the 8-bit grid ((v * 255 + 0.5) | 0 is Math.round for float32 v, and faster). */
const FROM8 = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export function round8(img: ImageTensor): ImageTensor {
  const out = new Float32Array(img.data.length);
  const src = img.data;
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    out[i] = v > 0 ? (v < 1 ? FROM8[(v * 255 + 0.5) | 0]! : 1) : 0;
  }
  return { ...img, data: out };
}

/** cv2.getGaussianKernel(51, 0): sigma = 0.3 * ((51 - 1) / 2 - 1) + 0.8 = 8. */
function gaussian1d(size: number): number[] {
  const sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8;
  const k: number[] = [];
  let total = 0;
  for (let i = 0; i < size; i++) {
    const x = i - (size - 1) / 2;
    k.push(Math.exp(-(x * x) / (2 * sigma * sigma)));
    total += k[i]!;
  }
  return k.map((v) => Math.fround(v / total));
}

/** The 51x51 Gaussian as the outer product of its 1-D taps (exact: it is separable). */
const USM_PLAN: KernelPlan = (() => {
  const taps = gaussian1d(51);
  const index = taps.map((_, i) => i);
  return { kind: 'separable', size: 51, terms: [{ col: { index, weight: taps }, row: { index, weight: taps } }], error: 0 };
})();

/** BasicSR USMSharp (radius 50 -> 51 taps, sigma 8), weight 0.5, threshold 10. */
export function usmSharp(img: ImageTensor, weight = 0.5, threshold = 10): ImageTensor {
  const blurred = applyPlan(img, USM_PLAN);
  const n = img.data.length;
  const mask = createImage(img.n, img.c, img.h, img.w);
  const residual = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    residual[i] = img.data[i]! - blurred.data[i]!;
    mask.data[i] = Math.abs(residual[i]!) * 255 > threshold ? 1 : 0;
  }
  const soft = applyPlan(mask, USM_PLAN);
  const out = createImage(img.n, img.c, img.h, img.w);
  for (let i = 0; i < n; i++) {
    const v = img.data[i]!;
    const sharp = Math.min(1, Math.max(0, v + weight * residual[i]!));
    const m = soft.data[i]!;
    out.data[i] = m * sharp + (1 - m) * v;
  }
  return out;
}
