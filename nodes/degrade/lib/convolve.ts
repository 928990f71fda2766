/**
 * 2-D correlation with reflect padding (OpenCV BORDER_REFLECT_101 / torch 'reflect', the edge
 * pixel not repeated), as cv2.filter2D and BasicSR's filter2D do.
 *
 * Every kernel is first planned (`planKernel`): zero border rings are trimmed (Real-ESRGAN pads
 * every kernel to 21x21), then the kernel becomes either a short sum of separable terms (a column
 * pass and a row pass each: isotropic and axis-aligned Gaussians are rank 1; rotated, generalized
 * and plateau kernels and sincs need a few terms, from an SVD) or a list of 2-D taps, whichever
 * needs fewer multiply-adds. Negligible taps and SVD terms are dropped under one error budget:
 * the L1 norm of (kernel - what is applied) stays at most `ERROR_BUDGET`, so for inputs in 0..1 no
 * output moves by more than that (an 8-bit step is 3.9e-3). The passes run in WebAssembly SIMD
 * (simd.ts) over a reflect-padded plane.
 */
import { createImage, type ImageTensor } from '../../api/tensor.ts';
import type { Kernel } from './kernels.ts';
import { Arena, runPairs, runTaps } from './simd.ts';

/** Bound on the L1 norm of (kernel - applied kernel): the most any 0..1 output can move. */
export const ERROR_BUDGET = 2e-6;

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

/** Singular values and vectors of a square matrix (one-sided Jacobi), largest first. */
export function svd(a: Float64Array, n: number): { sigma: number[]; u: Float64Array[]; v: Float64Array[] } {
  const U = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  let frob = 0;
  for (const x of a) frob += x * x;
  // Columns pairs whose inner product is this small are orthogonal enough: singular values under
  // 1e-12 of the matrix norm are far below any error budget, and chasing them costs many sweeps.
  const negligible = 1e-24 * frob;
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
        if (Math.abs(ga) <= 1e-15 * Math.sqrt(al * be) || Math.abs(ga) <= negligible) continue;
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

/** A 1-D kernel as (index, weight) pairs, negligible taps left out. */
export interface Taps1D {
  index: number[];
  weight: number[];
}

/** One separable term: the column (vertical) taps times the row (horizontal) taps. */
export interface SeparableTerm {
  col: Taps1D;
  row: Taps1D;
}

export type KernelPlan =
  | { kind: 'separable'; size: number; terms: SeparableTerm[]; error: number }
  | { kind: 'direct'; size: number; taps: { row: number; col: number; weight: number }[]; error: number };

const l1 = (v: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += Math.abs(v[i]!);
  return s;
};

/** Keeps the taps of `v` whose dropping would exceed `budget` once scaled by `other` (the L1 of the paired factor). */
function keepTaps(v: Float64Array, budget: number, other: number): Taps1D {
  const order = Array.from(v.keys()).sort((a, b) => Math.abs(v[a]!) - Math.abs(v[b]!));
  const keep = new Uint8Array(v.length);
  let dropped = 0;
  for (const i of order) {
    dropped += Math.abs(v[i]!) * other;
    if (dropped > budget) keep[i] = 1;
  }
  const index: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < v.length; i++) if (keep[i]) index.push(i), weight.push(v[i]!);
  return { index, weight };
}

/** The direct 2-D taps: the smallest dropped while their L1 stays under `budget`. */
function directPlan(data: Float32Array, size: number, budget: number): KernelPlan & { kind: 'direct' } {
  const order = Array.from(data.keys()).sort((a, b) => Math.abs(data[a]!) - Math.abs(data[b]!));
  const keep = new Uint8Array(data.length);
  let dropped = 0;
  let error = 0;
  for (const i of order) {
    dropped += Math.abs(data[i]!);
    if (dropped > budget) keep[i] = 1;
    else error = dropped;
  }
  const taps: { row: number; col: number; weight: number }[] = [];
  for (let i = 0; i < data.length; i++) if (keep[i]) taps.push({ row: Math.floor(i / size), col: i % size, weight: data[i]! });
  return { kind: 'direct', size, taps, error };
}

/**
 * The factors of a kernel that is one outer product within half the budget (isotropic and
 * axis-aligned Gaussians, the most common draws: 45 % of kernels are isotropic), in svd's form,
 * else null. Such a kernel is (row sums) x (column sums) / total, so this costs two passes instead
 * of a Jacobi SVD (about 1 ms for 21x21).
 */
function outerFactors(data: Float32Array, size: number, budget: number): ReturnType<typeof svd> | null {
  const rows = new Float64Array(size);
  const cols = new Float64Array(size);
  let total = 0;
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const x = data[r * size + c]!;
      rows[r]! += x;
      cols[c]! += x;
      total += x;
    }
  }
  if (!(Math.abs(total) > 0)) return null;
  let error = 0;
  for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) error += Math.abs(data[r * size + c]! - (rows[r]! * cols[c]!) / total);
  if (error > budget / 2) return null;
  // sigma * u v^T with unit vectors, as svd returns them (the later terms are zero)
  let nu = 0;
  let nv = 0;
  for (let i = 0; i < size; i++) {
    nu += rows[i]! * rows[i]!;
    nv += cols[i]! * cols[i]!;
  }
  nu = Math.sqrt(nu);
  nv = Math.sqrt(nv);
  const u = rows.map((x) => x / nu);
  const v = cols.map((x) => x / nv);
  const zero = new Float64Array(size);
  return { sigma: [(nu * nv) / total, ...new Array<number>(size - 1).fill(0)], u: [u, ...new Array<Float64Array>(size - 1).fill(zero)], v: [v, ...new Array<Float64Array>(size - 1).fill(zero)] };
}

/**
 * The separable form: the fewest SVD terms whose truncation error (L1 of the rest) is under half
 * the budget, each term's column and row then thinned with the other half; null when nothing
 * below full rank fits. `error` is the L1 norm of (kernel - applied kernel), computed, not bounded.
 */
function separablePlan(data: Float32Array, size: number, budget: number): (KernelPlan & { kind: 'separable' }) | null {
  const rankOne = outerFactors(data, size, budget);
  const { sigma, u, v } = rankOne ?? svd(Float64Array.from(data), size);
  const approx = new Float64Array(size * size);
  const residual = (): number => {
    let e = 0;
    for (let i = 0; i < approx.length; i++) e += Math.abs(data[i]! - approx[i]!);
    return e;
  };
  let rank = 0;
  while (rank < size && residual() > budget / 2) {
    const s = sigma[rank]!;
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) approx[r * size + c]! += s * u[rank]![r]! * v[rank]![c]!;
    rank++;
  }
  if (rank === 0 || rank >= size) return null;
  const share = (budget - residual()) / (2 * rank);
  const terms: SeparableTerm[] = [];
  approx.fill(0);
  for (let t = 0; t < rank; t++) {
    const colV = u[t]!.map((x) => x * sigma[t]!);
    const rowV = v[t]!;
    const col = keepTaps(colV, share, l1(rowV));
    const row = keepTaps(rowV, share, l1(colV));
    // float32 weights, as the SIMD passes use them
    col.weight = col.weight.map(Math.fround);
    row.weight = row.weight.map(Math.fround);
    for (let a = 0; a < col.index.length; a++) {
      for (let b = 0; b < row.index.length; b++) approx[col.index[a]! * size + row.index[b]!]! += col.weight[a]! * row.weight[b]!;
    }
    terms.push({ col, row });
  }
  return { kind: 'separable', size, terms, error: residual() };
}

/**
 * How `convolve` applies a kernel: separable terms or direct taps, whichever costs fewer
 * multiply-adds per pixel (a separable term costs its row taps plus its column taps), each within
 * `budget`; `path` forces one (tests compare them).
 */
export function planKernel(data: Float32Array, size: number, path: ConvolvePath = 'auto', budget = ERROR_BUDGET): KernelPlan {
  const k = trimKernel(data, size);
  const direct = directPlan(k.data, k.size, budget);
  if (path === 'direct') return direct;
  const sep = separablePlan(k.data, k.size, budget);
  if (!sep) return direct;
  if (path === 'separable') return sep;
  let sepCost = 0;
  for (const t of sep.terms) sepCost += t.col.index.length + t.row.index.length;
  return sepCost < direct.taps.length ? sep : direct;
}

export type ConvolvePath = 'auto' | 'separable' | 'direct';

/**
 * Correlates every channel of every batch item with the kernel; reflect-101 padding; same size out.
 * 'auto' takes the cheaper of the separable and direct plans; 'separable' falls back to direct
 * when the kernel is full rank.
 */
export function convolve(image: ImageTensor, kernel: Kernel, opts: { path?: ConvolvePath } = {}): ImageTensor {
  if (kernel.data.length !== kernel.size * kernel.size || kernel.size % 2 === 0) {
    throw new RangeError(`kernel must be odd and square, got size ${kernel.size} with ${kernel.data.length} values`);
  }
  return applyPlan(image, planKernel(kernel.data, kernel.size, opts.path ?? 'auto'));
}

/** A tap list in the arena: pairs of equal weight (mirror images) and single taps. */
interface Pass {
  pairs: { offs: number; offsB: number; wts: number; count: number } | null;
  singles: { offs: number; wts: number; count: number } | null;
}

/**
 * Splits taps (byte offsets, weights, and each tap's mirror key) into pairs whose weights are equal
 * to the bit, and the rest; allocates both in the arena and returns a writer for after `reserve`.
 */
function addPass(arena: Arena, offsets: number[], weights: number[], mirror: (i: number) => number): { pass: Pass; write: () => void } {
  const pa: number[] = [];
  const pb: number[] = [];
  const pw: number[] = [];
  const so: number[] = [];
  const sw: number[] = [];
  const used = new Uint8Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) {
    if (used[i]) continue;
    const j = mirror(i);
    if (j > i && j < offsets.length && !used[j] && Math.fround(weights[i]!) === Math.fround(weights[j]!)) {
      used[i] = used[j] = 1;
      pa.push(offsets[i]!);
      pb.push(offsets[j]!);
      pw.push(weights[i]!);
    } else {
      used[i] = 1;
      so.push(offsets[i]!);
      sw.push(weights[i]!);
    }
  }
  const pass: Pass = {
    pairs: pa.length ? { offs: arena.alloc(pa.length), offsB: arena.alloc(pb.length), wts: arena.alloc(pw.length), count: pa.length } : null,
    singles: so.length ? { offs: arena.alloc(so.length), wts: arena.alloc(sw.length), count: so.length } : null,
  };
  const write = (): void => {
    if (pass.pairs) {
      arena.i32(pass.pairs.offs).set(pa);
      arena.i32(pass.pairs.offsB).set(pb);
      arena.f32(pass.pairs.wts).set(pw);
    }
    if (pass.singles) {
      arena.i32(pass.singles.offs).set(so);
      arena.f32(pass.singles.wts).set(sw);
    }
  };
  return { pass, write };
}

function runPass(arena: Arena, pass: Pass, src: number, dst: number, n: number, accumulate: boolean): void {
  if (pass.pairs) runPairs(arena, src, dst, n, pass.pairs.offs, pass.pairs.offsB, pass.pairs.wts, pass.pairs.count, accumulate);
  if (pass.singles) runTaps(arena, src, dst, n, pass.singles.offs, pass.singles.wts, pass.singles.count, accumulate || pass.pairs !== null);
  if (!pass.pairs && !pass.singles) runTaps(arena, src, dst, n, 0, 0, 0, accumulate); // no taps: zeros (or dst unchanged)
}

/** Runs a plan over every plane: pad (reflect) into wasm memory, SIMD passes, copy the rows out. */
export function applyPlan(image: ImageTensor, plan: KernelPlan): ImageTensor {
  const { n, c, h, w } = image;
  const out = createImage(n, c, h, w);
  const r = (plan.size - 1) / 2;
  const pw = w + 2 * r;
  const ph = h + 2 * r;
  const plane = h * w;
  const arena = new Arena();
  const padded = arena.alloc(ph * pw);
  const result = arena.alloc(h * pw);
  // Passes: for a separable plan a row pass and a column pass per term, else one 2-D pass. Taps
  // mirrored through the centre with equal weights are paired (one multiply for two taps).
  const passes: Pass[] = [];
  const writers: Array<() => void> = [];
  const add = (offsets: number[], weights: number[], mirror: (i: number) => number) => {
    const { pass, write } = addPass(arena, offsets, weights, mirror);
    passes.push(pass);
    writers.push(write);
  };
  const last = plan.size - 1;
  if (plan.kind === 'separable') {
    for (const t of plan.terms) {
      for (const [taps, stride] of [[t.row, 4], [t.col, pw * 4]] as const) {
        const at = new Map(taps.index.map((k, i) => [k, i]));
        add(taps.index.map((k) => k * stride), taps.weight, (i) => at.get(last - taps.index[i]!) ?? -1);
      }
    }
  } else {
    const at = new Map(plan.taps.map((t, i) => [t.row * plan.size + t.col, i]));
    add(
      plan.taps.map((t) => (t.row * pw + t.col) * 4),
      plan.taps.map((t) => t.weight),
      (i) => at.get((last - plan.taps[i]!.row) * plan.size + (last - plan.taps[i]!.col)) ?? -1,
    );
  }
  const rowPass = plan.kind === 'separable' ? arena.alloc(ph * pw) : -1;
  arena.reserve();
  for (const write of writers) write();
  const pad = arena.f32(padded);
  const res = arena.f32(result);
  const colIdx = new Int32Array(2 * r);
  for (let x = 0; x < r; x++) {
    colIdx[x] = reflectIndex(x - r, w);
    colIdx[r + x] = reflectIndex(w + x, w);
  }
  for (let p = 0; p < n * c; p++) {
    const src = image.data.subarray(p * plane, (p + 1) * plane);
    for (let y = 0; y < ph; y++) {
      const base = reflectIndex(y - r, h) * w;
      const o = y * pw;
      pad.set(src.subarray(base, base + w), o + r);
      for (let x = 0; x < r; x++) {
        pad[o + x] = src[base + colIdx[x]!]!;
        pad[o + r + w + x] = src[base + colIdx[r + x]!]!;
      }
    }
    if (plan.kind === 'separable') {
      for (let t = 0; t < plan.terms.length; t++) {
        // Row pass over all padded rows (linear index: column x of row y is y * pw + x), then the
        // column pass down the rows, summing the terms.
        runPass(arena, passes[2 * t]!, padded, rowPass, ph * pw - 2 * r, false);
        runPass(arena, passes[2 * t + 1]!, rowPass, result, h * pw, t > 0);
      }
    } else {
      runPass(arena, passes[0]!, padded, result, h * pw, false);
    }
    const dst = out.data.subarray(p * plane, (p + 1) * plane);
    for (let y = 0; y < h; y++) dst.set(res.subarray(y * pw, y * pw + w), y * w);
  }
  return out;
}
