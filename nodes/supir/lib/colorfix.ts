/**
 * SUPIR's colour correction (SUPIR/utils/colorfix.py, from StableSR): the restored image keeps its
 * own detail but takes its colours from a reference (the stage-1 image).
 *
 * - Wavelet: a 5-level à-trous decomposition with the 3×3 binomial kernel, dilation and replicate
 *   padding r = 1, 2, 4, 8, 16; out = high frequencies of the content + low band of the reference.
 * - AdaIN: per-channel mean and std (unbiased variance + 1e-5) of the content replaced by the
 *   reference's.
 *
 * Planes are float32 NCHW. The blur is separable ([1,2,1]/4 along each axis, replicate padding
 * clamps each axis on its own), so it is done as two 3-tap passes with float64 sums: the result
 * differs from torch's 9-tap fp32 conv by rounding only (~1e-7).
 */

/** NCHW float32 planes; `data.length` = n·c·h·w. */
export interface Planes {
  data: Float32Array;
  n: number;
  c: number;
  h: number;
  w: number;
}

export const WAVELET_LEVELS = 5;

/** One plane blurred along x then y, with taps at ±r clamped to the edge (F.pad 'replicate'). */
function blurPlane(src: Float32Array, off: number, h: number, w: number, r: number, out: Float32Array, tmp: Float64Array): void {
  for (let y = 0; y < h; y++) {
    const row = off + y * w;
    for (let x = 0; x < w; x++) {
      const l = src[row + Math.max(0, x - r)]!;
      const c = src[row + x]!;
      const rt = src[row + Math.min(w - 1, x + r)]!;
      tmp[y * w + x] = 0.25 * l + 0.5 * c + 0.25 * rt;
    }
  }
  for (let y = 0; y < h; y++) {
    const up = Math.max(0, y - r) * w;
    const mid = y * w;
    const down = Math.min(h - 1, y + r) * w;
    for (let x = 0; x < w; x++) out[off + mid + x] = 0.25 * tmp[up + x]! + 0.5 * tmp[mid + x]! + 0.25 * tmp[down + x]!;
  }
}

/** `wavelet_blur(image, radius)`: every plane of the batch. */
export function waveletBlur(image: Planes, radius: number): Planes {
  const { n, c, h, w } = image;
  const out = new Float32Array(image.data.length);
  const tmp = new Float64Array(h * w);
  for (let p = 0; p < n * c; p++) blurPlane(image.data, p * h * w, h, w, radius, out, tmp);
  return { ...image, data: out };
}

/** `wavelet_decomposition(image, levels)`: the summed high bands and the last low band. */
export function waveletDecomposition(image: Planes, levels = WAVELET_LEVELS): { high: Planes; low: Planes } {
  const high = new Float32Array(image.data.length);
  let current = image;
  for (let i = 0; i < levels; i++) {
    const low = waveletBlur(current, 2 ** i);
    // high_freq += (image - low_freq), each op rounded to float32 as torch does.
    for (let k = 0; k < high.length; k++) high[k] = Math.fround(high[k]! + Math.fround(current.data[k]! - low.data[k]!));
    current = low;
  }
  return { high: { ...image, data: high }, low: current };
}

/** `wavelet_reconstruction(content, style)`: content's detail on the style's colours. */
export function waveletReconstruction(content: Planes, style: Planes): Planes {
  checkSame(content, style);
  const { high } = waveletDecomposition(content);
  const { low } = waveletDecomposition(style);
  const data = new Float32Array(high.data.length);
  for (let k = 0; k < data.length; k++) data[k] = high.data[k]! + low.data[k]!;
  return { ...content, data };
}

/** Per-plane mean and sqrt(unbiased variance + eps), torch's calc_mean_std (float64 sums). */
function meanStd(image: Planes, eps = 1e-5): Array<[number, number]> {
  const size = image.h * image.w;
  const stats: Array<[number, number]> = [];
  for (let p = 0; p < image.n * image.c; p++) {
    const plane = image.data.subarray(p * size, (p + 1) * size);
    let sum = 0;
    for (const v of plane) sum += v;
    const mean = sum / size;
    let sq = 0;
    for (const v of plane) sq += (v - mean) ** 2;
    stats.push([mean, Math.sqrt(sq / Math.max(1, size - 1) + eps)]);
  }
  return stats;
}

/** `adaptive_instance_normalization(content, style)`. */
export function adaptiveInstanceNormalization(content: Planes, style: Planes): Planes {
  checkSame(content, style);
  const cs = meanStd(content);
  const ss = meanStd(style);
  const size = content.h * content.w;
  const data = new Float32Array(content.data.length);
  for (let p = 0; p < cs.length; p++) {
    const [cm, csd] = cs[p]!;
    const [sm, ssd] = ss[p]!;
    for (let k = p * size; k < (p + 1) * size; k++) data[k] = ((content.data[k]! - cm) / csd) * ssd + sm;
  }
  return { ...content, data };
}

export type ColourFixMethod = 'Wavelet' | 'AdaIN' | 'None';

export function colourFix(content: Planes, reference: Planes, method: ColourFixMethod): Planes {
  if (method === 'Wavelet') return waveletReconstruction(content, reference);
  if (method === 'AdaIN') return adaptiveInstanceNormalization(content, reference);
  return content;
}

/**
 * The PIL entry points `wavelet_color_fix(target, source)` / `adain_color_fix`, on uint8 HWC
 * pixels: ToTensor (÷255 in float32), the fix, clamp to 0..1, then ToPILImage's `mul(255).byte()`,
 * which truncates rather than rounds.
 */
export function pilColourFix(target: ArrayLike<number>, source: ArrayLike<number>, h: number, w: number, c: number, method: 'Wavelet' | 'AdaIN'): Uint8Array {
  const toPlanes = (hwc: ArrayLike<number>): Planes => {
    const data = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) data[ch * h * w + y * w + x] = hwc[(y * w + x) * c + ch]! / 255;
    return { data, n: 1, c, h, w };
  };
  const fixed = colourFix(toPlanes(target), toPlanes(source), method);
  const out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        const v = Math.min(1, Math.max(0, fixed.data[ch * h * w + y * w + x]!));
        out[(y * w + x) * c + ch] = Math.trunc(Math.fround(v * 255));
      }
    }
  }
  return out;
}

function checkSame(a: Planes, b: Planes): void {
  if (a.n !== b.n || a.c !== b.c || a.h !== b.h || a.w !== b.w) {
    throw new RangeError(`colour fix needs equal shapes, got ${a.n}x${a.c}x${a.h}x${a.w} and ${b.n}x${b.c}x${b.h}x${b.w}`);
  }
}
