/**
 * Seeded random weights in the official key layout, for the full-size benches (bench/full-size.ts,
 * bench/gpu.ts): never all in memory. Each tensor is a pure function of (seed, key, dims), drawn
 * only when a writer asks for it (onnx/export.ts streams lazy initializers one at a time, the
 * safetensors writer takes a callback per tensor) and dropped after.
 *
 * Values: a standard normal quantised to 65536 levels (the quantiles at (i + 0.5) / 65536, so
 * tails to ±4.3σ), indexed by 16 random bits, times a per-key scale: N(0, 1/fan_in) for matrices
 * and convolutions (activations keep their size through the network, as with trained weights),
 * 1 ± 0.1 for norm gains, 0.05 for biases, 0.02 for embeddings. A table lookup per value keeps the
 * 4.8 billion parameters of SUPIR + SDXL to a few ns each; the float16 draw is exactly the float32
 * one rounded, so a float16 checkpoint and float32 lazy weights of one seed hold the same model.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Rng, seedFromString } from '../nodes/api/rng.ts';
import { isSupirKey } from '../server/models/checkpoint/merge.ts';
import { writeSafetensors, type TensorToWrite } from '../server/models/checkpoint/safetensors-writer.ts';
import { officialCheckpointKeys, TINY, TINY_BIGG, TINY_CLIP_L, type SupirLayout } from '../server/models/supir/official-layout.ts';
import { weightsFromMap, type Weights, type WeightTensor } from '../server/models/onnx/layers.ts';
import type { LazyWeight } from '../server/models/onnx/builder.ts';
import { halfBitsFromFloatBits } from '../server/runtime/fp16.ts';

const LEVELS = 65536;
const RANDOM_WEIGHTS_VERSION = 'v1';

/** Acklam's inverse normal CDF (relative error < 1.2e-9): ample for a 16-bit table. */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo || p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(p < lo ? p : 1 - p));
    const x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
    return p < lo ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

let table: Float64Array | undefined;
function normalTable(): Float64Array {
  if (!table) {
    table = new Float64Array(LEVELS);
    for (let i = 0; i < LEVELS; i++) table[i] = normalQuantile((i + 0.5) / LEVELS);
  }
  return table;
}

/** mean + std · N(0, 1) for a parameter, from its key and shape (see the file's comment). */
export function randomSpec(key: string, dims: readonly number[]): { mean: number; std: number } {
  if (key.endsWith('logit_scale')) return { mean: Math.log(1 / 0.07), std: 0 };
  if (/embedding/.test(key)) return { mean: 0, std: 0.02 };
  if (key.endsWith('text_projection')) return { mean: 0, std: 1 / Math.sqrt(dims[0]!) };
  if (dims.length >= 2) return { mean: 0, std: 1 / Math.sqrt(dims.slice(1).reduce((a, b) => a * b, 1)) };
  // 1-D: GroupNorm/LayerNorm gains (sgm names some norms by position: in_layers.0, out_layers.0, out.0).
  const norm = /norm|ln_|\.(in_layers|out_layers)\.0\.|\.out\.0\./.test(key);
  return norm && key.endsWith('.weight') ? { mean: 1, std: 0.1 } : { mean: 0, std: 0.05 };
}

/** The 16-bit table indices of one tensor: two per random word. */
function indices(seed: number, key: string, count: number): Uint16Array {
  const words = new Uint32Array(Math.ceil(count / 2));
  new Rng(seedFromString(`${RANDOM_WEIGHTS_VERSION}:${seed}:${key}`)).fillUint32(words);
  return new Uint16Array(words.buffer, 0, count);
}

const elements = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The float32 values of parameter `key` of the model drawn with `seed`. */
export function randomTensor(seed: number, key: string, dims: readonly number[]): Float32Array {
  const { mean, std } = randomSpec(key, dims);
  const t = new Float32Array(LEVELS);
  const normal = normalTable();
  for (let i = 0; i < LEVELS; i++) t[i] = mean + std * normal[i]!;
  const idx = indices(seed, key, elements(dims));
  const out = new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = t[idx[i]!]!;
  return out;
}

/** The same values rounded to float16 (raw bits): what a float16 checkpoint of this model holds. */
export function randomTensorF16(seed: number, key: string, dims: readonly number[]): Uint16Array {
  const { mean, std } = randomSpec(key, dims);
  const bits = new Uint32Array(new Float32Array(1).buffer);
  const f = new Float32Array(bits.buffer);
  const t = new Uint16Array(LEVELS);
  const normal = normalTable();
  for (let i = 0; i < LEVELS; i++) {
    f[0] = mean + std * normal[i]!;
    t[i] = halfBitsFromFloatBits(bits[0]!);
  }
  const idx = indices(seed, key, elements(dims));
  const out = new Uint16Array(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = t[idx[i]!]!;
  return out;
}

/**
 * A lazy weight over `read`. Its dedup hash names (seed, key, dims) instead of hashing values:
 * two keys never draw the same values, so this identity dedups exactly as a content hash would,
 * without a read before the writer's.
 */
export function lazyTensor(identity: string, dims: readonly number[], read: () => Promise<Float32Array>): LazyWeight {
  return {
    lazy: true,
    dtype: 'float32',
    dims: [...dims],
    hash: createHash('sha256').update(`supir-random-weights/${RANDOM_WEIGHTS_VERSION}/${identity}/[${dims.join(',')}]`).digest('hex'),
    read,
  };
}

export interface LazyRandomWeights {
  weights: Weights<LazyWeight>;
  /** How many tensors have been drawn so far (each read draws anew). */
  reads(): number;
  /** The bytes of float32 values drawn so far. */
  bytesRead(): number;
}

/** Lazy float32 weights for every key of `keys`, drawn with `seed` when (and each time) they are read. */
export function lazyRandomWeights(keys: ReadonlyMap<string, readonly number[]>, seed: number): LazyRandomWeights {
  let reads = 0;
  let bytes = 0;
  const map = new Map<string, WeightTensor<LazyWeight>>();
  for (const [key, dims] of keys) {
    const data = lazyTensor(`${seed}/${key}`, dims, async () => {
      reads++;
      bytes += elements(dims) * 4;
      return randomTensor(seed, key, dims);
    });
    map.set(key, { data, dims: [...dims] });
  }
  return { weights: weightsFromMap(map, `random weights (seed ${seed})`), reads: () => reads, bytesRead: () => bytes };
}

/**
 * A tiny model of the full one's structure, for checking the full-size scripts in a minute: the
 * golden tiny UNet with a 128-wide context (two 64-wide text towers, so Text Encode → Sample
 * runs), the tiny text towers, and a tiny VAE that downsamples 8x like SDXL's.
 */
export const RANDOM_TINY: SupirLayout = {
  unet: { ...TINY, ctx: TINY_CLIP_L.width + TINY_BIGG.width },
  vae: { ch: 32, mult: [1, 1, 2, 2], nres: 1, z: 4 },
  clipL: TINY_CLIP_L,
  bigG: TINY_BIGG,
};

export interface RandomCheckpoints {
  supir: string;
  sdxl: string;
  /** Bytes of both files. */
  bytes: number;
}

/**
 * Writes the SUPIR + SDXL checkpoint pair of the model drawn with `seed`, as users hold the real
 * pair: the SUPIR file has the SUPIR-only keys (merge.ts isSupirKey), the SDXL file the rest. F16
 * like the published files (SDXL base and the pruned SUPIR fp16 ones); tensors are drawn one at a
 * time as the writer reaches them.
 */
export async function writeRandomCheckpoints(dir: string, layout: SupirLayout, seed: number, dtype: 'F16' | 'F32' = 'F16'): Promise<RandomCheckpoints> {
  fs.mkdirSync(dir, { recursive: true });
  const supir: TensorToWrite[] = [];
  const sdxl: TensorToWrite[] = [];
  for (const [key, dims] of officialCheckpointKeys(layout)) {
    const data = async (): Promise<Uint8Array> => {
      const t = dtype === 'F16' ? randomTensorF16(seed, key, dims) : randomTensor(seed, key, dims);
      return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
    };
    (isSupirKey(key) ? supir : sdxl).push({ name: key, dtype, shape: dims, data });
  }
  const files = { supir: path.join(dir, 'SUPIR-random.safetensors'), sdxl: path.join(dir, 'sdxl-random.safetensors') };
  await writeSafetensors(files.supir, supir, { format: 'pt' });
  await writeSafetensors(files.sdxl, sdxl, { format: 'pt' });
  return { ...files, bytes: fs.statSync(files.supir).size + fs.statSync(files.sdxl).size };
}
