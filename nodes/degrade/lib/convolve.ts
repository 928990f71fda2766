/**
 * 2-D correlation with reflect padding (OpenCV BORDER_REFLECT_101 / torch 'reflect', the edge
 * pixel not repeated), as cv2.filter2D and BasicSR's filter2D do. Zero border rings of the kernel
 * (Real-ESRGAN pads every kernel to 21x21) are trimmed first, which changes nothing in the result;
 * rank-1 kernels (isotropic or axis-aligned Gaussians) take two 1-D passes, low-rank ones a few such
 * pairs, and large full-rank ones an overlap-save FFT (fft-conv.ts).
 */
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import { fftCorrelate, fftPlan } from './fft-conv.ts';
import type { Kernel } from './kernels.ts';

/** Reflect-101 index into 0..n-1 for any integer i. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/** Removes all-zero outer rings so that the kernel stays centred. */
export function trimKernel(data: Float32Array, size: number): { data: Float32Array; size: number } {
  let trim = 0;
  const ringZero = (t: number): boolean => {
    const lo = t;
    const hi = size - 1 - t;
    for (let k = lo; k <= hi; k++) {
      if (data[lo * size + k] !== 0 || data[hi * size + k] !== 0 || data[k * size + lo] !== 0 || data[k * size + hi] !== 0) return false;
    }
    return true;
  };
  while (size - 2 * trim > 1 && ringZero(trim)) trim++;
  if (trim === 0) return { data, size };
  const s = size - 2 * trim;
  const out = new Float32Array(s * s);
  for (let r = 0; r < s; r++) out.set(data.subarray((r + trim) * size + trim, (r + trim) * size + trim + s), r * s);
  return { data: out, size: s };
}

/** Factors a kernel as column x row when it is rank 1 (to float precision), else null. */
export function separate(data: Float32Array, size: number): { col: Float32Array; row: Float32Array } | null {
  let p = 0;
  let best = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!);
    if (a > best) {
      best = a;
      p = i;
    }
  }
  if (best === 0) return null;
  const pr = Math.floor(p / size);
  const pc = p % size;
  const pivot = data[p]!;
  const col = new Float64Array(size);
  const row = new Float64Array(size);
  for (let k = 0; k < size; k++) {
    col[k] = data[k * size + pc]!;
    row[k] = data[pr * size + k]! / pivot;
  }
  const tol = best * 1e-6;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) if (Math.abs(col[r]! * row[c]! - data[r * size + c]!) > tol) return null;
  }
  return { col: Float32Array.from(col), row: Float32Array.from(row) };
}

/** Singular values and vectors of a square matrix (one-sided Jacobi), largest first. */
export function svd(a: Float64Array, n: number): { sigma: number[]; u: Float64Array[]; v: Float64Array[] } {
  const U = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let al = 0;
        let be = 0;
        let ga = 0;
        for (let i = 0; i < n; i++) {
          const x = U[i * n + p]!;
          const y = U[i * n + q]!;
          al += x * x;
          be += y * y;
          ga += x * y;
        }
        if (Math.abs(ga) <= 1e-15 * Math.sqrt(al * be)) continue;
        rotated = true;
        const z = (be - al) / (2 * ga);
        const t = (z >= 0 ? 1 : -1) / (Math.abs(z) + Math.sqrt(1 + z * z));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < n; i++) {
          const x = U[i * n + p]!;
          const y = U[i * n + q]!;
          U[i * n + p] = c * x - s * y;
          U[i * n + q] = s * x + c * y;
          const vx = V[i * n + p]!;
          const vy = V[i * n + q]!;
          V[i * n + p] = c * vx - s * vy;
          V[i * n + q] = s * vx + c * vy;
        }
      }
    }
    if (!rotated) break;
  }
  const cols = Array.from({ length: n }, (_, j) => {
    let norm = 0;
    for (let i = 0; i < n; i++) norm += U[i * n + j]! ** 2;
    norm = Math.sqrt(norm);
    const u = new Float64Array(n);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      u[i] = norm > 0 ? U[i * n + j]! / norm : 0;
      v[i] = V[i * n + j]!;
    }
    return { s: norm, u, v };
  }).sort((x, y) => y.s - x.s);
  return { sigma: cols.map((c) => c.s), u: cols.map((c) => c.u), v: cols.map((c) => c.v) };
}

export interface SeparableTerm {
  col: Float32Array;
  row: Float32Array;
}

/**
 * Sum of rank-1 terms equal to the kernel to float precision (the entrywise error summed over the
 * kernel stays under 1e-7), or null when that needs so many terms that the direct 2-D loop is cheaper
 * (measured: one term costs about as much as 4*size taps of the direct loop).
 */
export function separableTerms(data: Float32Array, size: number): SeparableTerm[] | null {
  const one = separate(data, size);
  if (one) return [one];
  const { sigma, u, v } = svd(Float64Array.from(data), size);
  let rank = size;
  let tail = 0;
  while (rank > 0 && tail + sigma[rank - 1]! <= 1e-7 / size) tail += sigma[--rank]!;
  // A term costs about 4*size of the direct loop's size^2 (two passes, each slower per tap).
  if (4 * rank >= size) return null;
  const terms: SeparableTerm[] = [];
  for (let t = 0; t < rank; t++) {
    const col = new Float32Array(size);
    const row = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      col[i] = sigma[t]! * u[t]![i]!;
      row[i] = v[t]![i]!;
    }
    terms.push({ col, row });
  }
  return terms;
}

export type ConvolvePath = 'auto' | 'separable' | 'direct' | 'fft';

/**
 * Correlates every channel of every batch item with the kernel; reflect-101 padding; same size out.
 * 'auto' takes rank-1 / low-rank separable passes where they are exact to float precision, else the
 * cheaper of the direct 2-D loop and overlap-save FFT; the other paths force one (tests compare them;
 * 'separable' falls back to auto when the kernel is not low-rank).
 */
export function convolve(image: ImageTensor, kernel: Kernel, opts: { path?: ConvolvePath } = {}): ImageTensor {
  const path = opts.path ?? 'auto';
  if (kernel.data.length !== kernel.size * kernel.size || kernel.size % 2 === 0) {
    throw new RangeError(`kernel must be odd and square, got size ${kernel.size} with ${kernel.data.length} values`);
  }
  const k = trimKernel(kernel.data, kernel.size);
  const terms = path === 'auto' || path === 'separable' ? separableTerms(k.data, k.size) : null;
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const planes = n * c;
  const plane = h * w;
  const r = (k.size - 1) / 2;
  if (r === 0) {
    const wt = k.data[0]!;
    for (let i = 0; i < out.data.length; i++) out.data[i] = image.data[i]! * wt;
    return out;
  }
  const ks = k.size;
  const pw = w + 2 * r;
  const ph = h + 2 * r;
  // Reflect lookups for the padded border, shared by every row and plane.
  const colIdx = new Int32Array(pw);
  for (let x = 0; x < pw; x++) colIdx[x] = reflectIndex(x - r, w);
  const rowIdx = new Int32Array(ph);
  for (let y = 0; y < ph; y++) rowIdx[y] = reflectIndex(y - r, h);
  if (terms) {
    // Per term: horizontal pass over the h source rows, reflect rows into ph x w, vertical pass.
    const tmp = new Float32Array(ph * w);
    const line = new Float32Array(pw);
    const acc = new Float32Array(w);
    for (let p = 0; p < planes; p++) {
      const src = image.data.subarray(p * plane, (p + 1) * plane);
      const dst = out.data.subarray(p * plane, (p + 1) * plane);
      for (let t = 0; t < terms.length; t++) {
        const { row, col } = terms[t]!;
        for (let y = 0; y < h; y++) {
          const base = y * w;
          for (let x = 0; x < pw; x++) line[x] = src[base + colIdx[x]!]!;
          const o = (y + r) * w;
          const w0 = row[0]!;
          scale(acc, 0, line, 0, w0, w);
          for (let j = 1; j < ks; j++) axpy(acc, 0, line, j, row[j]!, w);
          tmp.set(acc, o);
        }
        for (let y = 0; y < ph; y++) {
          const sy = rowIdx[y]!;
          if (sy !== y - r) tmp.copyWithin(y * w, (sy + r) * w, (sy + r + 1) * w);
        }
        for (let y = 0; y < h; y++) {
          const o = y * w;
          if (t === 0) acc.fill(0);
          else for (let x = 0; x < w; x++) acc[x] = dst[o + x]!;
          for (let i = 0; i < ks; i++) axpy(acc, 0, tmp, (y + i) * w, col[i]!, w);
          dst.set(acc, o);
        }
      }
    }
    return out;
  }
  const keep = significantTaps(k.data);
  let taps = 0;
  for (const v of keep) taps += v;
  if (path === 'fft' || (path !== 'direct' && taps > fftPlan(ks, h, w).costPerPixel)) {
    fftCorrelate(image.data, out.data, planes, h, w, k.data, ks, reflectIndex);
    return out;
  }
  // Direct 2-D: pad the plane once, then accumulate one kernel tap at a time along contiguous rows.
  const padded = new Float32Array(ph * pw);
  const tapOff: number[] = [];
  const tapWt: number[] = [];
  for (let i = 0; i < ks; i++) {
    for (let j = 0; j < ks; j++) {
      if (keep[i * ks + j]) {
        tapOff.push(i * pw + j);
        tapWt.push(k.data[i * ks + j]!);
      }
    }
  }
  const acc = new Float32Array(w);
  for (let p = 0; p < planes; p++) {
    const src = image.data.subarray(p * plane, (p + 1) * plane);
    const dst = out.data.subarray(p * plane, (p + 1) * plane);
    for (let y = 0; y < ph; y++) {
      const sBase = rowIdx[y]! * w;
      const pBase = y * pw;
      for (let x = 0; x < pw; x++) padded[pBase + x] = src[sBase + colIdx[x]!]!;
    }
    for (let y = 0; y < h; y++) {
      acc.fill(0);
      const rowBase = y * pw;
      for (let t = 0; t < tapOff.length; t++) {
        axpy(acc, 0, padded, rowBase + tapOff[t]!, tapWt[t]!, w);
      }
      dst.set(acc, y * w);
    }
  }
  return out;
}

/**
 * Which taps the direct loop needs: the smallest taps are skipped while their summed magnitude stays
 * under 1e-7 of the kernel's, so an output in 0..1 moves by under 1e-7 (float32 rounding is 6e-8),
 * and long Gaussian tails cost nothing.
 */
export function significantTaps(data: Float32Array): Uint8Array {
  const keep = new Uint8Array(data.length);
  const order = Array.from(data.keys()).sort((a, b) => Math.abs(data[a]!) - Math.abs(data[b]!));
  let total = 0;
  for (const v of data) total += Math.abs(v);
  let dropped = 0;
  for (const i of order) {
    dropped += Math.abs(data[i]!);
    if (dropped > 1e-7 * total) keep[i] = 1;
  }
  return keep;
}

/** dst[d..d+len) += wt * src[s..s+len) */
function axpy(dst: Float32Array, d: number, src: Float32Array, s: number, wt: number, len: number): void {
  for (let x = 0; x < len; x++) dst[d + x]! += wt * src[s + x]!;
}

/** dst[d..d+len) = wt * src[s..s+len) */
function scale(dst: Float32Array, d: number, src: Float32Array, s: number, wt: number, len: number): void {
  for (let x = 0; x < len; x++) dst[d + x] = wt * src[s + x]!;
}
