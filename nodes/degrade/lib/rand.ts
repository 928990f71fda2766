/**
 * Bulk random numbers for noise fields. The node's Rng (xoshiro128**, nodes/api/rng.ts) is the
 * only source of randomness: a Stream is seeded from four of its 32-bit draws and then runs the
 * same xoshiro128** algorithm with its state in local variables, so a 512x512x3 field costs
 * a few ms instead of the ~40 ms of method calls and Box-Muller's log/sin/cos per pair.
 * Same seed, same numbers, on every machine (integer arithmetic, and Math.exp/log only in the
 * table set-up and the rare ziggurat tail, whose results V8 computes with its own fdlibm port).
 */
import type { Rng } from '../../api/rng.ts';

// Ziggurat tables (Marsaglia & Tsang 2000, 128 layers), with a 25-bit signed magnitude taken
// from bits 7..31 and the layer from bits 0..6, so that the two are independent.
const LAYERS = 128;
const M = 2 ** 24;
const KN = new Int32Array(LAYERS);
const WN = new Float64Array(LAYERS);
const FN = new Float64Array(LAYERS);
const R = 3.442619855899;
(() => {
  const vn = 9.91256303526217e-3;
  let dn = R;
  let tn = dn;
  const q = vn / Math.exp(-0.5 * dn * dn);
  KN[0] = Math.floor((dn / q) * M);
  KN[1] = 0;
  WN[0] = q / M;
  WN[LAYERS - 1] = dn / M;
  FN[0] = 1;
  FN[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(vn / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = Math.floor((dn / tn) * M);
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M;
  }
})();

const TWO_NEG_32 = 2 ** -32;

export class Stream {
  /** xoshiro128** state; a typed array keeps the words unboxed int32. */
  private readonly s = new Int32Array(4);

  /** Seeds from four 32-bit draws of `rng`. */
  constructor(rng: Rng) {
    for (let i = 0; i < 4; i++) this.s[i] = rng.nextUint32();
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** Next xoshiro128** output as a signed 32-bit integer. */
  int32(): number {
    const s = this.s;
    const s1 = s[1]!;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s1;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }

  /** Uniform in [0, 1) with 32 bits. */
  uniform(): number {
    return (this.int32() >>> 0) * TWO_NEG_32;
  }

  /** Uniform in (0, 1]. */
  private uniformPos(): number {
    return ((this.int32() >>> 0) + 1) * TWO_NEG_32;
  }

  /** A standard normal (ziggurat). */
  normal(): number {
    for (;;) {
      const u = this.int32();
      const i = u & 127;
      const j = u >> 7;
      if (abs32(j) < KN[i]!) return j * WN[i]!;
      if (i === 0) {
        // the tail beyond R (Marsaglia's exponential method)
        let x: number;
        let y: number;
        do {
          x = -Math.log(this.uniformPos()) / R;
          y = -Math.log(this.uniformPos());
        } while (y + y < x * x);
        return j > 0 ? R + x : -R - x;
      }
      const x = j * WN[i]!;
      if (FN[i]! + this.uniform() * (FN[i - 1]! - FN[i]!) < Math.exp(-0.5 * x * x)) return x;
    }
  }

  /** out[k] = scale * N(0, 1), in order; the common ziggurat case inlined with the state in locals. */
  fillNormal(out: Float32Array, scale: number): Float32Array {
    const s = this.s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    for (let k = 0; k < out.length; k++) {
      const u = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      const i = u & 127;
      const j = u >> 7;
      if (abs32(j) < KN[i]!) {
        out[k] = scale * (j * WN[i]!);
        continue;
      }
      // Rare (about 1 %): finish this draw through normal(), continuing the same stream.
      s[0] = s0;
      s[1] = s1;
      s[2] = s2;
      s[3] = s3;
      out[k] = scale * this.slowNormal(u);
      s0 = s[0]!;
      s1 = s[1]!;
      s2 = s[2]!;
      s3 = s[3]!;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
  }

  /** out[k] = uniform in [0, 1) with 32 bits, in order (the same numbers as calling uniform()). */
  fillUniform(out: Float64Array): Float64Array {
    const s = this.s;
    let s0 = s[0]!;
    let s1 = s[1]!;
    let s2 = s[2]!;
    let s3 = s[3]!;
    for (let k = 0; k < out.length; k++) {
      const u = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      out[k] = (u >>> 0) * TWO_NEG_32;
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
  }

  /** The rest of normal() after its first draw `u` was rejected by the fast test. */
  private slowNormal(u: number): number {
    for (;;) {
      const i = u & 127;
      const j = u >> 7;
      if (abs32(j) < KN[i]!) return j * WN[i]!;
      if (i === 0) {
        let x: number;
        let y: number;
        do {
          x = -Math.log(this.uniformPos()) / R;
          y = -Math.log(this.uniformPos());
        } while (y + y < x * x);
        return j > 0 ? R + x : -R - x;
      }
      const x = j * WN[i]!;
      if (FN[i]! + this.uniform() * (FN[i - 1]! - FN[i]!) < Math.exp(-0.5 * x * x)) return x;
      u = this.int32();
    }
  }
}

/** |j| without a branch: j's sign is a coin flip, and a mispredicted branch per draw doubles the cost. */
function abs32(j: number): number {
  const m = j >> 31;
  return (j ^ m) - m;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
