/**
 * Blur kernels of the Real-ESRGAN degradation (BasicSR `degradations.py`): bivariate Gaussian,
 * generalized Gaussian, plateau and circular low-pass (sinc), and the random draws that pick them.
 * Kernels are correlation kernels, row-major, summing to 1; the grid is -k//2+1 .. k//2.
 */
import type { Rng } from '../../api/rng.ts';

export type KernelKind = 'iso' | 'aniso' | 'generalized_iso' | 'generalized_aniso' | 'plateau_iso' | 'plateau_aniso' | 'sinc';

export interface Kernel {
  size: number;
  /** size*size row-major, sums to 1. */
  data: Float32Array;
  kind: KernelKind;
  params: Record<string, number>;
}

export interface BlurConfig {
  kernelList: KernelKind[];
  kernelProb: number[];
  sigmaX: [number, number];
  sigmaY: [number, number];
  rotation: [number, number];
  betaGaussian: [number, number];
  betaPlateau: [number, number];
  sincProb: number;
  /** Odd kernel sizes to draw from, inclusive (Real-ESRGAN: 7..21); absent means 7..21. */
  sizeRange?: [number, number];
}

/** Every random kernel is zero-padded to this size, as Real-ESRGAN does. */
export const PAD_SIZE = 21;
const KERNEL_SIZES = [7, 9, 11, 13, 15, 17, 19, 21];

/** The odd sizes in [lo, hi] (both clamped to 1..PAD_SIZE); 7..21 when no range is given. */
export function kernelSizes(range?: [number, number]): number[] {
  if (!range) return KERNEL_SIZES;
  const lo = Math.max(1, Math.ceil(range[0]));
  const hi = Math.min(PAD_SIZE, Math.floor(range[1]));
  const sizes: number[] = [];
  for (let k = lo % 2 === 1 ? lo : lo + 1; k <= hi; k += 2) sizes.push(k);
  if (sizes.length === 0) throw new RangeError(`no odd kernel size in [${range[0]}, ${range[1]}] (sizes are 1..${PAD_SIZE})`);
  return sizes;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size % 2 === 0) throw new RangeError(`kernel size must be a positive odd integer, got ${size}`);
}

/** q = x^T Sigma^-1 x on the grid, Sigma = R(theta) diag(sx^2, sy^2) R(theta)^T. */
function quadForm(size: number, sigmaX: number, sigmaY: number, theta: number): Float64Array {
  checkSize(size);
  if (!(sigmaX > 0) || !(sigmaY > 0)) throw new RangeError(`kernel sigmas must be positive, got ${sigmaX}, ${sigmaY}`);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const l1 = sigmaX * sigmaX;
  const l2 = sigmaY * sigmaY;
  // Sigma = [[c^2 l1 + s^2 l2, c s (l1 - l2)], [c s (l1 - l2), s^2 l1 + c^2 l2]]
  const a = c * c * l1 + s * s * l2;
  const b = c * s * (l1 - l2);
  const d = s * s * l1 + c * c * l2;
  const det = a * d - b * b;
  const ia = d / det;
  const ib = -b / det;
  const id = a / det;
  const half = Math.floor(size / 2);
  const q = new Float64Array(size * size);
  // BasicSR mesh_grid: xx varies along columns, yy along rows; grid point (x, y).
  for (let r = 0; r < size; r++) {
    const y = r - half;
    for (let col = 0; col < size; col++) {
      const x = col - half;
      q[r * size + col] = ia * x * x + 2 * ib * x * y + id * y * y;
    }
  }
  return q;
}

function normalise(values: Float64Array, size: number, kind: KernelKind, params: Record<string, number>): Kernel {
  let sum = 0;
  for (const v of values) sum += v;
  const data = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = values[i]! / sum;
  return { size, data, kind, params };
}

const isIso = (sx: number, sy: number, theta: number): boolean => sx === sy && theta === 0;

export function gaussianKernel(size: number, sigmaX: number, sigmaY: number, theta: number): Kernel {
  const q = quadForm(size, sigmaX, sigmaY, theta);
  for (let i = 0; i < q.length; i++) q[i] = Math.exp(-0.5 * q[i]!);
  return normalise(q, size, isIso(sigmaX, sigmaY, theta) ? 'iso' : 'aniso', { size, sigmaX, sigmaY, theta });
}

export function generalizedGaussianKernel(size: number, sigmaX: number, sigmaY: number, theta: number, beta: number): Kernel {
  if (!(beta > 0)) throw new RangeError(`beta must be positive, got ${beta}`);
  const q = quadForm(size, sigmaX, sigmaY, theta);
  for (let i = 0; i < q.length; i++) q[i] = Math.exp(-0.5 * Math.pow(q[i]!, beta));
  const kind = isIso(sigmaX, sigmaY, theta) ? 'generalized_iso' : 'generalized_aniso';
  return normalise(q, size, kind, { size, sigmaX, sigmaY, theta, beta });
}

export function plateauKernel(size: number, sigmaX: number, sigmaY: number, theta: number, beta: number): Kernel {
  if (!(beta > 0)) throw new RangeError(`beta must be positive, got ${beta}`);
  const q = quadForm(size, sigmaX, sigmaY, theta);
  for (let i = 0; i < q.length; i++) q[i] = 1 / (Math.pow(q[i]!, beta) + 1);
  const kind = isIso(sigmaX, sigmaY, theta) ? 'plateau_iso' : 'plateau_aniso';
  return normalise(q, size, kind, { size, sigmaX, sigmaY, theta, beta });
}

/** Bessel function of the first kind, order 1 (Numerical Recipes rational approximations, ~1e-8). */
export function besselJ1(x: number): number {
  const ax = Math.abs(x);
  if (ax < 8) {
    const y = x * x;
    const n1 = x * (72362614232.0 + y * (-7895059235.0 + y * (242396853.1 + y * (-2972611.439 + y * (15704.4826 + y * -30.16036606)))));
    const d1 = 144725228442.0 + y * (2300535178.0 + y * (18583304.74 + y * (99447.43394 + y * (376.9991397 + y))));
    return n1 / d1;
  }
  const z = 8 / ax;
  const y = z * z;
  const xx = ax - 2.356194491;
  const p = 1 + y * (0.183105e-2 + y * (-0.3516396496e-4 + y * (0.2457520174e-5 + y * -0.240337019e-6)));
  const q = 0.04687499995 + y * (-0.2002690873e-3 + y * (0.8449199096e-5 + y * (-0.88228987e-6 + y * 0.105787412e-6)));
  const ans = Math.sqrt(0.636619772 / ax) * (Math.cos(xx) * p - z * Math.sin(xx) * q);
  return x < 0 ? -ans : ans;
}

/** Circular low-pass (2-D sinc) kernel, optionally zero-padded to `padTo`. */
export function sincKernel(size: number, omegaC: number, padTo = 0): Kernel {
  checkSize(size);
  if (!(omegaC > 0)) throw new RangeError(`omega_c must be positive, got ${omegaC}`);
  const centre = (size - 1) / 2;
  const v = new Float64Array(size * size);
  for (let r = 0; r < size; r++) {
    for (let col = 0; col < size; col++) {
      const dist = Math.hypot(r - centre, col - centre);
      v[r * size + col] = dist === 0 ? (omegaC * omegaC) / (4 * Math.PI) : (omegaC * besselJ1(omegaC * dist)) / (2 * Math.PI * dist);
    }
  }
  const k = normalise(v, size, 'sinc', { size, omegaC });
  return padTo > size ? padKernel(k, padTo) : k;
}

/** Zero-pads a kernel to `target` x `target` (centred). */
export function padKernel(kernel: Kernel, target: number): Kernel {
  checkSize(target);
  if (target <= kernel.size) return kernel;
  const off = (target - kernel.size) / 2;
  const data = new Float32Array(target * target);
  for (let r = 0; r < kernel.size; r++) data.set(kernel.data.subarray(r * kernel.size, (r + 1) * kernel.size), (r + off) * target + off);
  return { size: target, data, kind: kernel.kind, params: { ...kernel.params, size: kernel.size } };
}

const uniform = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng.uniform();

function drawBeta(rng: Rng, range: [number, number]): number {
  return rng.uniform() < 0.5 ? uniform(rng, range[0], 1) : uniform(rng, 1, range[1]);
}

function choose<T>(rng: Rng, items: readonly T[], probs?: readonly number[]): T {
  if (items.length === 0) throw new RangeError('nothing to choose from');
  if (!probs) return items[Math.min(items.length - 1, Math.floor(rng.uniform() * items.length))]!;
  let total = 0;
  for (let i = 0; i < items.length; i++) total += probs[i] ?? 0;
  let u = rng.uniform() * total;
  for (let i = 0; i < items.length; i++) {
    u -= probs[i] ?? 0;
    if (u < 0) return items[i]!;
  }
  return items[items.length - 1]!;
}

/**
 * One stage's blur kernel: size from {7..21}; with probability `sincProb` a sinc kernel
 * (omega_c ~ U(pi/3, pi) below size 13, else U(pi/5, pi)), otherwise BasicSR's random_mixed_kernels.
 * Zero-padded to 21x21; `params.size` keeps the drawn size.
 */
export function randomKernel(rng: Rng, cfg: BlurConfig): Kernel {
  const size = choose(rng, kernelSizes(cfg.sizeRange));
  if (rng.uniform() < cfg.sincProb) {
    const omegaC = size < 13 ? uniform(rng, Math.PI / 3, Math.PI) : uniform(rng, Math.PI / 5, Math.PI);
    return sincKernel(size, omegaC, PAD_SIZE);
  }
  const kind = choose(rng, cfg.kernelList, cfg.kernelProb);
  let kernel: Kernel;
  const iso = kind.endsWith('iso') && !kind.endsWith('aniso');
  const sx = uniform(rng, cfg.sigmaX[0], cfg.sigmaX[1]);
  const sy = iso ? sx : uniform(rng, cfg.sigmaY[0], cfg.sigmaY[1]);
  const theta = iso ? 0 : uniform(rng, cfg.rotation[0], cfg.rotation[1]);
  switch (kind) {
    case 'iso':
    case 'aniso':
      kernel = gaussianKernel(size, sx, sy, theta);
      break;
    case 'generalized_iso':
    case 'generalized_aniso':
      kernel = generalizedGaussianKernel(size, sx, sy, theta, drawBeta(rng, cfg.betaGaussian));
      break;
    case 'plateau_iso':
    case 'plateau_aniso':
      kernel = plateauKernel(size, sx, sy, theta, drawBeta(rng, cfg.betaPlateau));
      break;
    case 'sinc':
      kernel = sincKernel(size, size < 13 ? uniform(rng, Math.PI / 3, Math.PI) : uniform(rng, Math.PI / 5, Math.PI));
      break;
  }
  // Keep the drawn kind even where a draw happened to be axis-aligned.
  kernel.kind = kind;
  return padKernel(kernel, PAD_SIZE);
}

/**
 * The final sinc filter: with probability `prob` a sinc (size from `sizes`, default 7..21;
 * omega_c ~ U(omega), default U(pi/3, pi)) padded to 21, else null (pulse).
 */
export function randomFinalSinc(rng: Rng, prob: number, sizes?: [number, number], omega: [number, number] = [Math.PI / 3, Math.PI]): Kernel | null {
  if (!(rng.uniform() < prob)) return null;
  const size = choose(rng, kernelSizes(sizes));
  return sincKernel(size, uniform(rng, omega[0], omega[1]), PAD_SIZE);
}
