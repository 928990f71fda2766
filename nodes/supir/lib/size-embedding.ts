/**
 * SDXL's size conditioning (sgm ConcatTimestepEmbedderND × 3) and the `vector` it ends up in.
 * Pure arithmetic, no weights: each integer s becomes timestep_embedding(s, outdim), every
 * step rounded to float32 as torch computes it. The rounding matters: arguments reach
 * s · f_0 = 1536 rad, where one float32 ulp of the argument is 1.2e-4 — doing it in float64
 * would drift from the official values by several times that.
 */
import { StudioError } from '../../api/errors.ts';

/** One batch row of SDXL's micro-conditioning, each pair as the official tensors hold it. */
export interface SizeCondition {
  /** original_size_as_tuple: [height, width]. */
  original: readonly [number, number];
  /** crop_coords_top_left: [top, left]. */
  crop: readonly [number, number];
  /** target_size_as_tuple: [height, width]. */
  target: readonly [number, number];
}

/** outdim of each ConcatTimestepEmbedderND in SUPIR_v0.yaml (the tiny golden model uses 16). */
export const SDXL_SIZE_OUTDIM = 256;

/**
 * What SUPIRModel.prepare_condition passes, whatever the image size: 1024², no crop, 1024².
 * The model was trained with these, so they are not the real image size on purpose.
 */
export const SUPIR_SIZE_CONDITION: SizeCondition = { original: [1024, 1024], crop: [0, 0], target: [1024, 1024] };

const f32 = Math.fround;

/** freqs = exp(−ln(max_period) · arange(half, float32) / half), operation by operation in float32. */
export function timestepFrequencies(dim: number, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const negLog = f32(-Math.log(maxPeriod));
  const freqs = new Float32Array(half);
  for (let k = 0; k < half; k++) freqs[k] = f32(Math.exp(f32(f32(negLog * k) / half)));
  return freqs;
}

/**
 * sgm's timestep_embedding for each value: [cos(s·f_0..f_{half−1}), sin(...)] and, for an odd
 * dim, a trailing zero. Values are cast to float32 first, as `.float()` does.
 */
export function timestepEmbedding(values: ArrayLike<number>, dim: number, maxPeriod = 10000): Float32Array {
  const freqs = timestepFrequencies(dim, maxPeriod);
  const half = freqs.length;
  const out = new Float32Array(values.length * dim);
  for (let i = 0; i < values.length; i++) {
    const s = f32(values[i]!);
    const row = i * dim;
    for (let k = 0; k < half; k++) {
      const arg = f32(s * freqs[k]!);
      out[row + k] = Math.cos(arg);
      out[row + half + k] = Math.sin(arg);
    }
  }
  return out;
}

function checkPair(name: string, pair: readonly number[]): void {
  if (pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new StudioError('BAD_INPUT', `size conditioning '${name}' must be two non-negative integers, got [${pair.join(', ')}]`);
  }
}

/**
 * The three embedders' outputs for each row, [N, 3 · 2 · outdim]: per key ConcatTimestepEmbedderND
 * flattens [N, 2] to 2N scalars and embeds each, so a row is emb(a) ‖ emb(b) per key, and the
 * keys follow the yaml's embedder order: original_size, crop_coords_top_left, target_size.
 */
export function sizeVector(rows: readonly SizeCondition[], outdim = SDXL_SIZE_OUTDIM): Float32Array {
  const values: number[] = [];
  for (const r of rows) {
    checkPair('original', r.original);
    checkPair('crop', r.crop);
    checkPair('target', r.target);
    values.push(...r.original, ...r.crop, ...r.target);
  }
  // Six scalars per row, embedded in row-major order: exactly the [N, 6·outdim] layout.
  return timestepEmbedding(values, outdim);
}

/**
 * SDXL's `vector` (the UNet's y / adm input): per row the bigG pooled text embedding, then the
 * size embeddings — [N, pooledDim + 6·outdim], 1280 + 1536 = 2816 for the real model and
 * 32 + 96 = 128 for the tiny golden one. `pooled` is [N, pooledDim], row-major.
 */
export function sdxlVector(pooled: Float32Array, pooledDim: number, rows: readonly SizeCondition[], outdim = SDXL_SIZE_OUTDIM): Float32Array {
  const n = rows.length;
  if (pooled.length !== n * pooledDim) {
    throw new StudioError('BAD_INPUT', `pooled text embedding has ${pooled.length} values, expected ${n} × ${pooledDim}`);
  }
  const sizes = sizeVector(rows, outdim);
  const sizeDim = 6 * outdim;
  const width = pooledDim + sizeDim;
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    out.set(pooled.subarray(i * pooledDim, (i + 1) * pooledDim), i * width);
    out.set(sizes.subarray(i * sizeDim, (i + 1) * sizeDim), i * width + pooledDim);
  }
  return out;
}
