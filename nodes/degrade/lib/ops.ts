/**
 * The degradation operations as the nodes run them: one image (n = 1), one seed, plain-data
 * settings, a result image and a JSON record of what was drawn. They are what the worker runs
 * (worker.ts), and what tests call in-thread to check that the worker gives the same bytes.
 * Every random choice comes from `new Rng(seed)`, in the order each operation documents.
 */
import { Rng } from '../../api/rng.ts';
import type { ImageTensor } from '../../api/tensor.ts';
import { convolve } from './convolve.ts';
import { jpegCompress } from './jpeg.ts';
import { randomFinalSinc, randomKernel, type BlurConfig, type KernelKind } from './kernels.ts';
import { randomNoise, type NoiseConfig } from './noise.ts';
import { degradeImage, drawResize, kernelRecord, usmSharp } from './pipeline.ts';
import type { DegradeConfig } from './presets.ts';
import { resizeTorch, type ResizeMode } from './resize.ts';

export interface OpArgs {
  /** The whole second-order pipeline (lib/pipeline.ts). */
  degrade: { cfg: DegradeConfig; scale: number };
  /** A random kernel (`kind` 'random' draws it as Real-ESRGAN does; a kind forces that kind). */
  blur: { blur: BlurConfig; kind: 'random' | KernelKind };
  /** A resize by a random factor (the stage-1 convention: size floor(h * f), source step 1 / f). */
  resize: { resizeProb: [number, number, number]; resizeRange: [number, number]; mode: 'random' | ResizeMode };
  noise: NoiseConfig;
  /** JPEG with a quality drawn uniformly from the integers in the range. */
  jpeg: { quality: [number, number] };
  /** The final sinc filter: applied with probability `prob`. */
  sinc: { prob: number; sizeRange: [number, number]; omega: [number, number] };
  /** Unsharp masking (51x51 Gaussian, sigma 8); draws nothing. */
  usm: { weight: number; threshold: number };
}

export type OpName = keyof OpArgs;

export interface OpResult {
  image: ImageTensor;
  /** Everything drawn, JSON-serialisable. */
  params: Record<string, unknown>;
}

type Step = (step: number, total: number) => void;

const OPS: { [K in OpName]: (image: ImageTensor, rng: Rng, args: OpArgs[K], onStep: Step) => Promise<OpResult> } = {
  degrade: (image, rng, { cfg, scale }, onStep) => degradeImage(image, rng, cfg, scale, onStep),

  // Draws: the kernel (randomKernel's order).
  async blur(image, rng, { blur, kind }) {
    const cfg: BlurConfig =
      kind === 'random'
        ? blur
        : kind === 'sinc'
          ? { ...blur, sincProb: 1 }
          : { ...blur, sincProb: 0, kernelList: [kind], kernelProb: [1] };
    const kernel = randomKernel(rng, cfg);
    return { image: convolve(image, kernel), params: { kernel: kernelRecord(kernel) } };
  },

  // Draws: up/down/keep, the factor (unless keep), the mode (drawn even when fixed, so that a
  // fixed mode does not change the other draws of a seed).
  async resize(image, rng, { resizeProb, resizeRange, mode }) {
    const drawn = drawResize(rng, { resizeProb, resizeRange });
    const m = mode === 'random' ? drawn.mode : mode;
    const h = Math.max(1, Math.floor(image.h * drawn.factor));
    const w = Math.max(1, Math.floor(image.w * drawn.factor));
    const out = resizeTorch(image, w, h, m, 1 / drawn.factor, 1 / drawn.factor);
    return { image: out, params: { type: drawn.type, scale: drawn.factor, mode: m, size: [w, h] } };
  },

  // Draws: Gaussian or Poisson, the level, gray, the field (randomNoise's order).
  async noise(image, rng, cfg) {
    const { image: out, drawn } = randomNoise(image, rng, cfg);
    return { image: out, params: drawn };
  },

  // Draws: the quality.
  async jpeg(image, rng, { quality }) {
    const q = rng.int(quality[0], quality[1]);
    return { image: await jpegCompress(image, q), params: { quality: q } };
  },

  // Draws: apply?, then the size and omega_c when applied.
  async sinc(image, rng, { prob, sizeRange, omega }) {
    const kernel = randomFinalSinc(rng, prob, sizeRange, omega);
    return { image: kernel ? convolve(image, kernel) : image, params: { sinc: kernel ? kernelRecord(kernel) : null } };
  },

  async usm(image, _rng, { weight, threshold }) {
    return { image: usmSharp(image, weight, threshold), params: { weight, threshold } };
  },
};

/** Runs one operation on one image with a fresh Rng(seed). */
export function runOp<K extends OpName>(name: K, image: ImageTensor, seed: number, args: OpArgs[K], onStep: Step = () => {}): Promise<OpResult> {
  if (image.n !== 1) throw new RangeError(`${name} takes one image at a time, got a batch of ${image.n}`);
  const op = OPS[name] as (image: ImageTensor, rng: Rng, args: OpArgs[K], onStep: Step) => Promise<OpResult>;
  return op(image, new Rng(seed), args, onStep);
}
