/**
 * Additive noise of the Real-ESRGAN degradation (BasicSR `degradations.py`, torch versions, clip=True,
 * rounds=False): Gaussian noise with sigma in 0..255 units, and Poisson noise on the 8-bit-rounded image
 * with 2^ceil(log2(unique values)) levels. Colour noise is independent per channel; gray noise is one
 * field for all channels. Outputs are clamped to 0..1, as BasicSR's clip=True does.
 */
import type { Rng } from '../../api/rng.ts';
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { Arena, runInverseCdf } from './simd.ts';

export interface NoiseConfig {
  gaussianProb: number;
  sigma: [number, number];
  poissonScale: [number, number];
  grayProb: number;
}

/** Noise values per chunk: drawn into a buffer that stays in cache, then added to the image. */
const CHUNK = 16384;

/**
 * Adds N(0, (sigma/255)^2) noise and clamps. The field comes from a child of `rng` (ziggurat
 * normals), so `rng` moves on by two draws whatever the image size: colour noise runs channel
 * after channel, gray noise is one plane for all channels.
 */
export function addGaussianNoise(image: ImageTensor, rng: Rng, sigma: number, gray: boolean): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const item = c * plane;
  const field = rng.child();
  // The field is drawn a chunk at a time into a small buffer that stays in cache and added from
  // there: one pass over the image instead of a field array written and read again.
  const chunk = new Float32Array(CHUNK);
  for (let b = 0; b < n; b++) {
    const src = image.data.subarray(b * item, (b + 1) * item);
    const dst = out.data.subarray(b * item, (b + 1) * item);
    const count = gray ? plane : item;
    for (let i0 = 0; i0 < count; i0 += CHUNK) {
      const len = Math.min(CHUNK, count - i0);
      const values = field.fillNormalZiggurat(len === CHUNK ? chunk : chunk.subarray(0, len), sigma / 255);
      addClamped(dst, src, values, i0, len, gray ? c : 1, plane);
    }
  }
  return out;
}

/**
 * dst[o + i0 + k] = clamp01(src[o + i0 + k] + values[k]) for k < len, at o = 0 only (colour noise,
 * whose values run through all channels) or at o = 0, plane, 2 * plane, ... for each of `channels`
 * channels (gray noise: one value for every channel of a pixel).
 */
function addClamped(dst: Float32Array, src: Float32Array, values: Float32Array, i0: number, len: number, channels: number, plane: number): void {
  for (let ch = 0; ch < channels; ch++) {
    const at = ch * plane + i0;
    for (let k = 0; k < len; k++) {
      const v = src[at + k]! + values[k]!;
      dst[at + k] = v > 0 ? (v < 1 ? v : 1) : 0;
    }
  }
}

// ---- Poisson sampling by inverse CDF: the 8-bit image gives at most 256 distinct means, so each
// mean's CDF is tabulated once (out to mean + 12 sd + 20, past which the mass is below 1e-30) and a
// draw is one 32-bit word, a guide-table look-up and a short linear search (in WebAssembly,
// simd.ts `runInverseCdf`). Same distribution as numpy's sampler, not the same stream.

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

/** Guide entries per table, by the draw's top 8 bits: guide[j] is the smallest k with cdf[k] > j / GUIDE. */
const GUIDE = 256;

/**
 * The inverse-CDF tables of the 256 means (v / 255) * vals of one level count, flat: table v's
 * CDF is cdf[start[v] .. start[v + 1]) times 2^32 (a 32-bit draw w then stops at the first entry
 * above w, compared exactly), its last entry raised to 2^33 so that every search stops there (the
 * mass past it is below 1e-30), and guide[v * GUIDE + j] is an absolute index into cdf.
 */
interface PoissonTables {
  /** The level count the tables are for. */
  vals: number;
  cdf: Float64Array;
  start: Int32Array;
  guide: Int32Array;
}

function buildTables(vals: number): PoissonTables {
  const cdfs = Array.from({ length: 256 }, (_, v) => poissonCdf((v / 255) * vals));
  const start = new Int32Array(257);
  for (let v = 0; v < 256; v++) start[v + 1] = start[v]! + cdfs[v]!.length;
  const cdf = new Float64Array(start[256]!);
  const guide = new Int32Array(256 * GUIDE);
  for (let v = 0; v < 256; v++) {
    const c = cdfs[v]!;
    const at = start[v]!;
    for (let k = 0; k < c.length; k++) cdf[at + k] = c[k]! * 2 ** 32;
    cdf[at + c.length - 1] = 2 ** 33;
    let k = at;
    for (let j = 0; j < GUIDE; j++) {
      while (cdf[k]! <= j * 2 ** 24) k++;
      guide[v * GUIDE + j] = k;
    }
  }
  return { vals, cdf, start, guide };
}

/**
 * Tables by level count (a power of two up to 256), built when first needed and kept: building
 * them costs a few ms of Math.exp, more than sampling a whole image.
 */
const TABLES = new Map<number, PoissonTables>();

function tablesFor(vals: number): PoissonTables {
  let t = TABLES.get(vals);
  if (!t) TABLES.set(vals, (t = buildTables(vals)));
  return t;
}

/** One Poisson draw with mean `lam` (a one-off table; the noise functions use the shared ones). */
export function samplePoisson(rng: Rng, lam: number): number {
  const cdf = poissonCdf(lam);
  cdf[cdf.length - 1] = 2;
  const u = rng.uniform();
  let k = 0;
  while (cdf[k]! <= u) k++;
  return k;
}

/**
 * Levels used for one 8-bit-rounded plane set: 2^ceil(log2(#unique values)). The scan stops at
 * the 129th distinct value: from there on the answer is 256 whatever follows.
 */
function levels(q: Uint8Array): number {
  const seen = new Uint8Array(256);
  let unique = 0;
  for (let i = 0; i < q.length && unique <= 128; i++) {
    const v = q[i]!;
    unique += 1 - seen[v]!;
    seen[v] = 1;
  }
  return Math.pow(2, Math.ceil(Math.log2(Math.max(unique, 1))));
}

/** Rounds to 8 bits; (v * 255 + 0.5) | 0 equals Math.round(v * 255) for float32 v (the product is exact) and is faster. */
function quantise(src: Float32Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    dst[i] = v > 0 ? (v >= 1 ? 255 : (v * 255 + 0.5) | 0) : 0;
  }
}

/** v / 255 for the 8-bit values. */
const QUANT = Float64Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * Poisson noise of strength `scale` (BasicSR add_poisson_noise_pt), per batch item; the draws
 * come from a child of `rng` (two draws of it, whatever the image size), one 32-bit word per value.
 */
export function addPoissonNoise(image: ImageTensor, rng: Rng, scale: number, gray: boolean): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const plane = h * w;
  const item = c * plane;
  const count = gray ? plane : item;
  const draws = rng.child();
  const q = new Uint8Array(count);
  for (let b = 0; b < n; b++) {
    const src = image.data.subarray(b * item, (b + 1) * item);
    const dst = out.data.subarray(b * item, (b + 1) * item);
    if (gray && c >= 3) {
      const lum = new Float32Array(plane);
      for (let i = 0; i < plane; i++) lum[i] = 0.2989 * src[i]! + 0.587 * src[plane + i]! + 0.114 * src[2 * plane + i]!;
      quantise(lum, q);
    } else {
      quantise(gray ? src.subarray(0, plane) : src, q);
    }
    const tables = tablesFor(levels(q));
    // q and the tables in wasm memory for the search; words and noise values a chunk at a time.
    // noise = (k / vals - v / 255) * scale = k * affine[256] + affine[v]
    const arena = new Arena();
    const qId = arena.alloc(count, 1);
    const wordsId = arena.alloc(CHUNK);
    const noiseId = arena.alloc(CHUNK);
    const ids = { cdf: arena.alloc(tables.cdf.length, 8), guide: arena.alloc(tables.guide.length), start: arena.alloc(tables.start.length), affine: arena.alloc(257, 8) };
    arena.reserve();
    arena.u8(qId).set(q);
    arena.f64(ids.cdf).set(tables.cdf);
    arena.i32(ids.guide).set(tables.guide);
    arena.i32(ids.start).set(tables.start);
    const affine = arena.f64(ids.affine);
    for (let v = 0; v < 256; v++) affine[v] = -QUANT[v]! * scale;
    affine[256] = scale / tables.vals;
    const words = arena.i32(wordsId);
    const values = arena.f32(noiseId);
    for (let i0 = 0; i0 < count; i0 += CHUNK) {
      const len = Math.min(CHUNK, count - i0);
      draws.fillUint32(len === CHUNK ? words : words.subarray(0, len));
      runInverseCdf(arena, qId, i0, wordsId, noiseId, len, ids);
      // colour noise runs through all channels; gray noise is one value for every channel of a pixel
      addClamped(dst, src, values, i0, len, gray ? c : 1, plane);
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
