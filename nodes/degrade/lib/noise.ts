/**
 * Additive noise of the Real-ESRGAN degradation (BasicSR `degradations.py`, torch versions, clip=True,
 * rounds=False): Gaussian noise with sigma in 0..255 units, and Poisson noise on the 8-bit-rounded image
 * with 2^ceil(log2(unique values)) levels. Colour noise is independent per channel; gray noise is one
 * field for all channels. Outputs are clamped to 0..1, as BasicSR's clip=True does.
 */
import type { Rng } from '../../api/rng.ts';
import { createImage, type ImageTensor } from '../../api/tensor.ts';

export interface NoiseConfig {
  gaussianProb: number;
  sigma: [number, number];
  poissonScale: [number, number];
  grayProb: number;
}

const clamp01 = (v: number): number => (v > 0 ? (v < 1 ? v : 1) : 0);

export function addGaussianNoise(image: ImageTensor, rng: Rng, sigma: number, gray: boolean): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const s = sigma / 255;
  const field = new Float32Array(plane);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      if (!gray || ch === 0) for (let i = 0; i < plane; i++) field[i] = rng.normal() * s;
      const base = (b * c + ch) * plane;
      for (let i = 0; i < plane; i++) out.data[base + i] = clamp01(image.data[base + i]! + field[i]!);
    }
  }
  return out;
}

// ---- Poisson sampling by inverse CDF: the 8-bit image gives at most 256 distinct means, so each
// mean's CDF is tabulated once (out to mean + 12 sd + 20, past which the mass is below 1e-30) and a
// draw is one uniform and a binary search. Same distribution as numpy's sampler, not the same stream.

const LOG_FACT = (() => {
  const t = new Float64Array(1025);
  for (let i = 1; i < t.length; i++) t[i] = t[i - 1]! + Math.log(i);
  return t;
})();

function logFactorial(k: number): number {
  if (k < LOG_FACT.length) return LOG_FACT[k]!;
  const x = k + 1; // Stirling series for lgamma(x)
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) - 1 / (360 * x * x * x);
}

/** Cumulative probabilities of Poisson(lam) for k = 0..kMax. */
export function poissonCdf(lam: number): Float64Array {
  if (lam <= 0) return Float64Array.of(1);
  const kMax = Math.ceil(lam + 12 * Math.sqrt(lam) + 20);
  const cdf = new Float64Array(kMax + 1);
  const logLam = Math.log(lam);
  let acc = 0;
  for (let k = 0; k <= kMax; k++) {
    acc += Math.exp(-lam + k * logLam - logFactorial(k));
    cdf[k] = acc;
  }
  return cdf;
}

/** A CDF with a guide table: guide[j] is the smallest k with cdf[k] > j / guide.length. */
export interface PoissonTable {
  cdf: Float64Array;
  guide: Int32Array;
}

export function poissonTable(lam: number): PoissonTable {
  const cdf = poissonCdf(lam);
  const guide = new Int32Array(cdf.length);
  let k = 0;
  for (let j = 0; j < guide.length; j++) {
    const u = j / guide.length;
    while (k < cdf.length - 1 && cdf[k]! <= u) k++;
    guide[j] = k;
  }
  return { cdf, guide };
}

/** Smallest k with cdf[k] > u (the last k when rounding leaves u above the table). */
function searchCdf(t: PoissonTable, u: number): number {
  const { cdf, guide } = t;
  let k = guide[Math.floor(u * guide.length)]!;
  const last = cdf.length - 1;
  while (k < last && cdf[k]! <= u) k++;
  return k;
}

/** One Poisson draw with mean `lam`. */
export function samplePoisson(rng: Rng, lam: number): number {
  return searchCdf(poissonTable(lam), rng.uniform());
}

/** Levels used for one 8-bit-rounded plane set: 2^ceil(log2(#unique values)). */
function levels(q: Uint8Array): number {
  const seen = new Uint8Array(256);
  let unique = 0;
  for (let i = 0; i < q.length; i++) {
    if (seen[q[i]!] === 0) {
      seen[q[i]!] = 1;
      unique++;
    }
  }
  return Math.pow(2, Math.ceil(Math.log2(Math.max(unique, 1))));
}

function quantise(src: Float32Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    dst[i] = v > 0 ? (v >= 1 ? 255 : Math.round(v * 255)) : 0;
  }
}

/** Poisson noise of strength `scale` (BasicSR add_poisson_noise_pt), per batch item. */
export function addPoissonNoise(image: ImageTensor, rng: Rng, scale: number, gray: boolean): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const item = c * plane;
  const tables = new Map<number, (PoissonTable | undefined)[]>();
  const noise = new Float32Array(gray ? plane : item);
  const q = new Uint8Array(noise.length);
  for (let b = 0; b < n; b++) {
    const src = image.data.subarray(b * item, (b + 1) * item);
    if (gray && c >= 3) {
      const lum = new Float32Array(plane);
      for (let i = 0; i < plane; i++) lum[i] = 0.2989 * src[i]! + 0.587 * src[plane + i]! + 0.114 * src[2 * plane + i]!;
      quantise(lum, q);
    } else {
      quantise(gray ? src.subarray(0, plane) : src, q);
    }
    const vals = levels(q);
    let cdfs = tables.get(vals);
    if (!cdfs) tables.set(vals, (cdfs = new Array<PoissonTable | undefined>(256)));
    for (let i = 0; i < q.length; i++) {
      const qi = q[i]!;
      const cdf = cdfs[qi] ?? (cdfs[qi] = poissonTable((qi / 255) * vals));
      noise[i] = (searchCdf(cdf, rng.uniform()) / vals - qi / 255) * scale;
    }
    const dst = out.data.subarray(b * item, (b + 1) * item);
    for (let ch = 0; ch < c; ch++) {
      const off = ch * plane;
      const nOff = gray ? 0 : off;
      for (let i = 0; i < plane; i++) dst[off + i] = clamp01(src[off + i]! + noise[nOff + i]!);
    }
  }
  return out;
}

const uniform = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng.uniform();

/**
 * One stage's noise, Real-ESRGAN order: Gaussian with probability `gaussianProb` (sigma ~ U(range)),
 * else Poisson (scale ~ U(range)); gray with probability `grayProb`, drawn after the strength.
 */
export function randomNoise(image: ImageTensor, rng: Rng, cfg: NoiseConfig): { image: ImageTensor; drawn: Record<string, unknown> } {
  if (rng.uniform() < cfg.gaussianProb) {
    const sigma = uniform(rng, cfg.sigma[0], cfg.sigma[1]);
    const gray = rng.uniform() < cfg.grayProb;
    return { image: addGaussianNoise(image, rng, sigma, gray), drawn: { type: 'gaussian', sigma, gray } };
  }
  const scale = uniform(rng, cfg.poissonScale[0], cfg.poissonScale[1]);
  const gray = rng.uniform() < cfg.grayProb;
  return { image: addPoissonNoise(image, rng, scale, gray), drawn: { type: 'poisson', scale, gray } };
}
