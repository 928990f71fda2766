/**
 * A tap-list correlation in WebAssembly SIMD (f32x4), assembled here from its opcodes so that the
 * project stays TypeScript with no build step and no binary blob. Plain JS loops run a 21x21
 * kernel at about 1.7 ns per tap and pixel (0.45 ns with generated straight-line code); this runs
 * 32 outputs per tap in eight 128-bit accumulators, about 10x faster than the best JS.
 *
 *   taps(src, dst, n, offs, wts, count, accumulate):
 *     for o in 0, 32, 64, ... < n:  dst[o + i] (+)= sum_t wts[t] * src[o + i + offs[t]]   (i < 32)
 *
 * Every argument is a byte address or byte count into the module's own memory (offs holds byte
 * offsets), so one function does horizontal passes (offsets 0, 4, 8, ...), vertical passes
 * (multiples of the row stride) and direct 2-D kernels (any offsets). It writes whole blocks of 32
 * floats: callers leave room after dst and readable memory after src (see `BLOCK`).
 * Summation is in float32, tap by tap in the order given, so results are the same on every run.
 *
 * The module has two more functions for the degradation's other hot loops: `transpose` (4x4
 * blocks of lane shuffles, for the resize's horizontal pass) and `inverseCdf` (the Poisson noise
 * sampler's table search, scalar but free of JS's checks around each table load).
 */

/** Outputs per block; buffers need this much slack after their end. */
export const BLOCK = 32;
const ACCS = BLOCK / 4;
/** Readable memory after the last region: a direct 2-D pass reads up to a kernel row (+ a block) past its source. */
const GUARD_BYTES = 1 << 16;

const leb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
};
const sleb = (v: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items: number[][]): number[] => [...leb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [...leb(s.length), ...Buffer.from(s, 'utf8')];

// Opcodes (WebAssembly core 2.0 + fixed-width SIMD).
const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  get: 0x20,
  set: 0x21,
  i32Load: 0x28,
  f32Load: 0x2a,
  f64Load: 0x2b,
  i32Load8U: 0x2d,
  i32Store: 0x36,
  f64Lt: 0x63,
  i32Sub: 0x6b,
  i32Or: 0x72,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  f64ConvertI32U: 0xb8,
  f64ConvertI32S: 0xb7,
  f64Add: 0xa0,
  f64Mul: 0xa2,
  f32DemoteF64: 0xb6,
  f32Store: 0x38,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Mul: 0x6c,
  empty: 0x40,
};
const simd = (code: number, ...imm: number[]): number[] => [0xfd, ...leb(code), ...imm];
const memarg = (align: number, offset: number): number[] => [...leb(align), ...leb(offset)];
const v128Load = (offset: number) => simd(0, ...memarg(0, offset));
const v128Store = (offset: number) => simd(11, ...memarg(0, offset));
const v128Zero = () => simd(12, ...new Array<number>(16).fill(0));
/** i8x16.shuffle of two vectors by 32-bit lanes (0..3 from the first, 4..7 from the second). */
const shuffle32 = (...lanes: number[]) => simd(13, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
const f32x4Splat = () => simd(19);
const f32x4Add = () => simd(228);
const f32x4Mul = () => simd(230);

/**
 * The body of `taps`, or with `paired` of `pairs`, whose taps come in pairs of equal weight:
 * dst[o] (+)= sum_t wts[t] * (src[o + offs[t]] + src[o + offsB[t]]). Point-symmetric kernels
 * (every Gaussian-family kernel and sinc: k(-x) = k(x) to the bit) save a multiply per pair.
 */
function tapsFunction(paired: boolean): number[] {
  // params: 0 src, 1 dst, 2 n (bytes), 3 offs, 4 wts, 5 count (bytes), 6 accumulate, 7 offsB
  const [SRC, DST, N, OFFS, WTS, COUNT, ACC, OFFSB] = [0, 1, 2, 3, 4, 5, 6, 7];
  // locals: 8 o, 9 t, 10 p, 11 q (i32); 12 w, 13.. accumulators (v128)
  const [O, T, P, Q, W] = [8, 9, 10, 11, 12];
  const acc = (k: number) => 13 + k;
  const code: number[] = [];
  const emit = (...b: number[]) => code.push(...b);
  emit(op.block, op.empty, op.loop, op.empty);
  // if (o >= n) break
  emit(op.get, O, op.get, N, op.i32GeU, op.brIf, 1);
  // accumulators start from dst (accumulate) or zero
  emit(op.get, ACC, op.if, op.empty);
  for (let k = 0; k < ACCS; k++) emit(op.get, DST, op.get, O, op.i32Add, ...v128Load(16 * k), op.set, acc(k));
  emit(op.else);
  for (let k = 0; k < ACCS; k++) emit(...v128Zero(), op.set, acc(k));
  emit(op.end);
  emit(op.i32Const, 0, op.set, T);
  emit(op.block, op.empty, op.loop, op.empty);
  emit(op.get, T, op.get, COUNT, op.i32GeU, op.brIf, 1);
  // p = src + o + offs[t] (q likewise from offsB); w = splat(wts[t])
  emit(op.get, SRC, op.get, O, op.i32Add, op.get, OFFS, op.get, T, op.i32Add, op.i32Load, ...memarg(2, 0), op.i32Add, op.set, P);
  if (paired) emit(op.get, SRC, op.get, O, op.i32Add, op.get, OFFSB, op.get, T, op.i32Add, op.i32Load, ...memarg(2, 0), op.i32Add, op.set, Q);
  emit(op.get, WTS, op.get, T, op.i32Add, op.f32Load, ...memarg(2, 0), ...f32x4Splat(), op.set, W);
  for (let k = 0; k < ACCS; k++) {
    emit(op.get, acc(k), op.get, W, op.get, P, ...v128Load(16 * k));
    if (paired) emit(op.get, Q, ...v128Load(16 * k), ...f32x4Add());
    emit(...f32x4Mul(), ...f32x4Add(), op.set, acc(k));
  }
  emit(op.get, T, op.i32Const, ...sleb(4), op.i32Add, op.set, T, op.br, 0, op.end, op.end);
  for (let k = 0; k < ACCS; k++) emit(op.get, DST, op.get, O, op.i32Add, op.get, acc(k), ...v128Store(16 * k));
  emit(op.get, O, op.i32Const, ...sleb(BLOCK * 4), op.i32Add, op.set, O, op.br, 0, op.end, op.end, op.end);
  const locals = vec([
    [...leb(4), I32],
    [...leb(1 + ACCS), V128],
  ]);
  const body = [...locals, ...code];
  return [...leb(body.length), ...body];
}

/**
 * The body of `transpose`: dst (w4 x h4, row stride ds bytes) = the transpose of src (h4 x w4, row
 * stride ss bytes), both sides multiples of 4, in 4x4 blocks (four loads, eight lane shuffles, four
 * stores). Same signature as `taps` (8 i32 params, the last two unused), so one type serves both.
 */
function transposeFunction(): number[] {
  // params: 0 src, 1 dst, 2 h4, 3 w4, 4 ss (bytes), 5 ds (bytes); locals: 8 y, 9 x, 10 p, 11 q (i32), 12..15 rows, 16..19 pairs (v128)
  const [SRC, DST, H4, W4, SS, DS] = [0, 1, 2, 3, 4, 5];
  const [Y, X, P, Q] = [8, 9, 10, 11];
  const [A, B, C, D, T0, T1, T2, T3] = [12, 13, 14, 15, 16, 17, 18, 19];
  const code: number[] = [];
  const emit = (...b: number[]) => code.push(...b);
  // address + k * stride
  const at = (base: number, stride: number, k: number) => (k === 0 ? [op.get, base] : [op.get, base, op.get, stride, op.i32Const, ...sleb(k), op.i32Mul, op.i32Add]);
  emit(op.block, op.empty, op.loop, op.empty);
  emit(op.get, Y, op.get, H4, op.i32GeU, op.brIf, 1);
  emit(op.i32Const, 0, op.set, X);
  emit(op.block, op.empty, op.loop, op.empty);
  emit(op.get, X, op.get, W4, op.i32GeU, op.brIf, 1);
  // p = src + y * ss + 4x; q = dst + x * ds + 4y
  emit(op.get, SRC, op.get, Y, op.get, SS, op.i32Mul, op.i32Add, op.get, X, op.i32Const, 4, op.i32Mul, op.i32Add, op.set, P);
  emit(op.get, DST, op.get, X, op.get, DS, op.i32Mul, op.i32Add, op.get, Y, op.i32Const, 4, op.i32Mul, op.i32Add, op.set, Q);
  [A, B, C, D].forEach((v, k) => emit(...at(P, SS, k), ...v128Load(0), op.set, v));
  // (a0 b0 a1 b1), (a2 b2 a3 b3), (c0 d0 c1 d1), (c2 d2 c3 d3)
  emit(op.get, A, op.get, B, ...shuffle32(0, 4, 1, 5), op.set, T0);
  emit(op.get, A, op.get, B, ...shuffle32(2, 6, 3, 7), op.set, T1);
  emit(op.get, C, op.get, D, ...shuffle32(0, 4, 1, 5), op.set, T2);
  emit(op.get, C, op.get, D, ...shuffle32(2, 6, 3, 7), op.set, T3);
  // columns 0..3 of the block: (a0 b0 c0 d0), (a1 b1 c1 d1), (a2 ..), (a3 ..)
  emit(...at(Q, DS, 0), op.get, T0, op.get, T2, ...shuffle32(0, 1, 4, 5), ...v128Store(0));
  emit(...at(Q, DS, 1), op.get, T0, op.get, T2, ...shuffle32(2, 3, 6, 7), ...v128Store(0));
  emit(...at(Q, DS, 2), op.get, T1, op.get, T3, ...shuffle32(0, 1, 4, 5), ...v128Store(0));
  emit(...at(Q, DS, 3), op.get, T1, op.get, T3, ...shuffle32(2, 3, 6, 7), ...v128Store(0));
  emit(op.get, X, op.i32Const, 4, op.i32Add, op.set, X, op.br, 0, op.end, op.end);
  emit(op.get, Y, op.i32Const, 4, op.i32Add, op.set, Y, op.br, 0, op.end, op.end, op.end);
  const locals = vec([
    [...leb(4), I32],
    [...leb(8), V128],
  ]);
  const body = [...locals, ...code];
  return [...leb(body.length), ...body];
}

/**
 * The body of `inverseCdf`: for i < n, with v = q[i], k = the smallest index with cdf[k] > words[i]
 * / 2^32 searched from guide[v * 256 + (words[i] >>> 24)], and out[i] = f32((k - start[v]) *
 * affine[256] + affine[v]) (float64 arithmetic, one rounding). `cdf` is Float64 scaled by 2^32 (so
 * the word is compared as it is, exactly), with a last entry per table above 2^32 so that every
 * search stops in its table. A scalar loop, without the bounds and type checks JS puts around
 * each of its five table loads.
 */
function inverseCdfFunction(): number[] {
  // params: 0 q (u8), 1 words (u32), 2 out (f32), 3 n, 4 guide (i32), 5 cdf (f64), 6 start (i32), 7 affine (f64); locals: 8 i, 9 v, 10 w, 11 k
  const [QV, WORDS, OUT, N, GUIDE, CDF, START, AFFINE] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, V, W, K] = [8, 9, 10, 11];
  const code: number[] = [];
  const emit = (...b: number[]) => code.push(...b);
  emit(op.block, op.empty, op.loop, op.empty);
  emit(op.get, I, op.get, N, op.i32GeU, op.brIf, 1);
  emit(op.get, QV, op.get, I, op.i32Add, op.i32Load8U, ...memarg(0, 0), op.set, V);
  emit(op.get, WORDS, op.get, I, op.i32Const, 2, op.i32Shl, op.i32Add, op.i32Load, ...memarg(2, 0), op.set, W);
  // k = guide[(v << 8) | (w >>> 24)]
  emit(op.get, GUIDE, op.get, V, op.i32Const, 8, op.i32Shl, op.get, W, op.i32Const, 24, op.i32ShrU, op.i32Or, op.i32Const, 2, op.i32Shl, op.i32Add);
  emit(op.i32Load, ...memarg(2, 0), op.set, K);
  // while (!(w < cdf[k])) k++
  emit(op.block, op.empty, op.loop, op.empty);
  emit(op.get, W, op.f64ConvertI32U, op.get, CDF, op.get, K, op.i32Const, 3, op.i32Shl, op.i32Add, op.f64Load, ...memarg(3, 0), op.f64Lt, op.brIf, 1);
  emit(op.get, K, op.i32Const, 1, op.i32Add, op.set, K, op.br, 0, op.end, op.end);
  // out[i] = f32((k - start[v]) * affine[256] + affine[v])
  emit(op.get, OUT, op.get, I, op.i32Const, 2, op.i32Shl, op.i32Add);
  emit(op.get, K, op.get, START, op.get, V, op.i32Const, 2, op.i32Shl, op.i32Add, op.i32Load, ...memarg(2, 0), op.i32Sub, op.f64ConvertI32S);
  emit(op.get, AFFINE, op.f64Load, ...memarg(3, 256 * 8), op.f64Mul);
  emit(op.get, AFFINE, op.get, V, op.i32Const, 3, op.i32Shl, op.i32Add, op.f64Load, ...memarg(3, 0), op.f64Add, op.f32DemoteF64);
  emit(op.f32Store, ...memarg(2, 0));
  emit(op.get, I, op.i32Const, 1, op.i32Add, op.set, I, op.br, 0, op.end, op.end, op.end);
  const locals = vec([[...leb(4), I32]]);
  const body = [...locals, ...code];
  return [...leb(body.length), ...body];
}

function assemble(): Uint8Array {
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec(new Array(8).fill([I32])), ...vec([])]])),
    ...section(3, vec([[0], [0], [0], [0]])),
    ...section(5, vec([[0x00, ...leb(1)]])),
    ...section(7, vec([[...name('taps'), 0x00, 0], [...name('pairs'), 0x00, 1], [...name('transpose'), 0x00, 2], [...name('inverseCdf'), 0x00, 3], [...name('memory'), 0x02, 0]])),
    ...section(10, vec([tapsFunction(false), tapsFunction(true), transposeFunction(), inverseCdfFunction()])),
  ];
  return Uint8Array.from(bytes);
}

// The project's type libraries (ES2023 + @types/node) carry no WebAssembly API; the little used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

type TapsFn = (src: number, dst: number, n: number, offs: number, wts: number, count: number, accumulate: number, offsB: number) => void;

interface Exports {
  taps: TapsFn;
  pairs: TapsFn;
  transpose: TapsFn;
  inverseCdf: TapsFn;
  memory: WasmMemory;
}

let instance: Exports | undefined;

function wasm(): Exports {
  if (!instance) {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
    instance = { taps: exports.taps as TapsFn, pairs: exports.pairs as TapsFn, transpose: exports.transpose as TapsFn, inverseCdf: exports.inverseCdf as TapsFn, memory: exports.memory as WasmMemory };
  }
  return instance;
}

/**
 * A bump allocator over the module's memory for one operation: `alloc` hands out 16-byte aligned
 * regions (with BLOCK floats of slack), `f32` / `i32` / `f64` / `u8` give views that stay valid
 * until the next `reserve` (growing memory detaches old views).
 */
export class Arena {
  private top = 0;
  private readonly regions: Array<{ at: number; bytes: number }> = [];

  /** Returns a region id for `length` elements of `elementBytes` (4: f32 / i32); views come from `f32` / `i32` / `f64` / `u8` after `reserve`. */
  alloc(length: number, elementBytes = 4): number {
    const at = this.top;
    const bytes = length * elementBytes;
    this.top += Math.ceil((bytes + BLOCK * 4) / 16) * 16;
    this.regions.push({ at, bytes });
    return this.regions.length - 1;
  }

  /** Grows the memory to hold every region allocated so far, plus a guard for reads past the last. */
  reserve(): void {
    const { memory } = wasm();
    const need = this.top + GUARD_BYTES - memory.buffer.byteLength;
    if (need > 0) memory.grow(Math.ceil(need / 65536));
  }

  addr(id: number): number {
    return this.regions[id]!.at;
  }

  f32(id: number): Float32Array {
    const r = this.regions[id]!;
    return new Float32Array(wasm().memory.buffer, r.at, r.bytes >> 2);
  }

  i32(id: number): Int32Array {
    const r = this.regions[id]!;
    return new Int32Array(wasm().memory.buffer, r.at, r.bytes >> 2);
  }

  f64(id: number): Float64Array {
    const r = this.regions[id]!;
    return new Float64Array(wasm().memory.buffer, r.at, r.bytes >> 3);
  }

  u8(id: number): Uint8Array {
    const r = this.regions[id]!;
    return new Uint8Array(wasm().memory.buffer, r.at, r.bytes);
  }
}

/**
 * dst[o] (+)= sum_t wts[t] * src[o + offs[t]] for o < n (counts in floats; offs holds byte offsets).
 * Regions come from one Arena; `tap0` skips into the tap lists, `srcAt` and `dstAt` into src and
 * dst (all in elements), so one list can hold the taps of many rows. n is rounded up to whole
 * blocks: the writes past dst[dstAt + n] land in the arena's slack or in what a later call
 * overwrites (callers go in increasing order).
 */
export function runTaps(
  arena: Arena,
  src: number,
  dst: number,
  n: number,
  offs: number,
  wts: number,
  count: number,
  accumulate: boolean,
  tap0 = 0,
  srcAt = 0,
  dstAt = 0,
): void {
  wasm().taps(
    arena.addr(src) + srcAt * 4,
    arena.addr(dst) + dstAt * 4,
    Math.ceil(n / BLOCK) * BLOCK * 4,
    arena.addr(offs) + tap0 * 4,
    arena.addr(wts) + tap0 * 4,
    count * 4,
    accumulate ? 1 : 0,
    0,
  );
}

/** runTaps for paired taps: dst[o] (+)= sum_t wts[t] * (src[o + offs[t]] + src[o + offsB[t]]). */
export function runPairs(arena: Arena, src: number, dst: number, n: number, offs: number, offsB: number, wts: number, count: number, accumulate: boolean): void {
  wasm().pairs(arena.addr(src), arena.addr(dst), Math.ceil(n / BLOCK) * BLOCK * 4, arena.addr(offs), arena.addr(wts), count * 4, accumulate ? 1 : 0, arena.addr(offsB));
}

/**
 * dst (w x h, row stride dstStride) = the transpose of src (h x w, row stride srcStride), regions
 * of one Arena, strides in elements: the whole 4x4 blocks in SIMD, the last h % 4 rows and
 * w % 4 columns in JS.
 */
export function runTranspose(arena: Arena, src: number, dst: number, h: number, w: number, srcStride = w, dstStride = h): void {
  const h4 = h & ~3;
  const w4 = w & ~3;
  if (h4 > 0 && w4 > 0) wasm().transpose(arena.addr(src), arena.addr(dst), h4, w4, srcStride * 4, dstStride * 4, 0, 0);
  if (h4 === h && w4 === w) return;
  const s = arena.f32(src);
  const d = arena.f32(dst);
  for (let y = 0; y < h; y++) {
    for (let x = y < h4 ? w4 : 0; x < w; x++) d[x * dstStride + y] = s[y * srcStride + x]!;
  }
}

/**
 * Inverse-CDF sampling from 256 tables (regions of one Arena), for i < n: k = the index, within the
 * table of v = q[qAt + i], of the first cdf entry above words[i] / 2^32 (the search starts at the
 * guide), and out[i] = k * affine[256] + affine[v] as float32. `cdf` holds the tables' CDFs times
 * 2^32 (Float64; each table ends with an entry above 2^32), `guide` 256 absolute cdf indices per
 * table (by the word's top 8 bits), `start` each table's first index, `affine` 257 Float64s.
 */
export function runInverseCdf(
  arena: Arena,
  q: number,
  qAt: number,
  words: number,
  out: number,
  n: number,
  tables: { guide: number; cdf: number; start: number; affine: number },
): void {
  wasm().inverseCdf(arena.addr(q) + qAt, arena.addr(words), arena.addr(out), n, arena.addr(tables.guide), arena.addr(tables.cdf), arena.addr(tables.start), arena.addr(tables.affine));
}
