/**
 * Seeded random numbers: xoshiro128** seeded by splitmix64, so the same seed gives the same
 * stream on every machine. Nodes take one from `ctx.rng()`, never from Math.random.
 *
 * The bulk fills (fillNormalZiggurat, fillUint32) run the same generator with its state in
 * local variables, a few ns per number instead of a method call per word (and, for normals,
 * Box-Muller's log/sin/cos per pair): noise fields of millions of values need them. Each bulk
 * loop writes the generator step out: a shared step would keep the state in memory, and drawing
 * the ziggurat's words through fillUint32 first measured 50 % slower.
 */
import { ZIG_FN, ZIG_KN, ZIG_R, ZIG_WN } from './ziggurat.ts';

const TWO_NEG_32 = 2 ** -32;

export class Rng {
  private s = new Uint32Array(4);
  private spare: number | undefined;
  /** The word that stopped the last zigguratRun. */
  private rejected = 0;

  constructor(seed: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(seed));
    const mask = (1n << 64n) - 1n;
    for (let i = 0; i < 2; i++) {
      x = (x + 0x9e3779b97f4a7c15n) & mask;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
      z ^= z >> 31n;
      this.s[2 * i] = Number(z & 0xffffffffn);
      this.s[2 * i + 1] = Number(z >> 32n);
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.uniform() * (max - min + 1));
  }

  /** Standard normal (Box-Muller, both values used in turn). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Standard normals from normal() (Box-Muller) in turn: the stream the SUPIR samplers are seeded with. */
  fillNormal(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }

  /**
   * A new generator seeded from two draws of this one (a 64-bit seed through splitmix64): a stage
   * that draws a size-dependent number of values from the child leaves this stream where it would
   * be for any image size.
   */
  child(): Rng {
    const hi = this.nextUint32();
    const lo = this.nextUint32();
    return new Rng((BigInt(hi) << 32n) | BigInt(lo));
  }

  /** out[k] = nextUint32() in turn (an Int32Array holds the same 32 bits, read as signed). */
  fillUint32<T extends Uint32Array | Int32Array>(out: T): T {
    const s = this.s;
    let s0 = s[0]! | 0;
    let s1 = s[1]! | 0;
    let s2 = s[2]! | 0;
    let s3 = s[3]! | 0;
    for (let k = 0; k < out.length; k++) {
      out[k] = Math.imul(rotl32(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl32(s3, 11);
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return out;
  }

  /**
   * out[k] = scale * N(0, 1) by the ziggurat (one 32-bit word per value in about 97 % of draws):
   * a different stream from normal() / fillNormal, and several times faster. The common case runs
   * in `zigguratRun` with the state in locals until a draw fails the fast test; that draw is
   * finished by `zigguratSlow`, continuing the same stream.
   */
  fillNormalZiggurat(out: Float32Array, scale = 1): Float32Array {
    let k = 0;
    while ((k = this.zigguratRun(out, k, scale)) < out.length) out[k++] = scale * this.zigguratSlow(this.rejected);
    return out;
  }

  /** Fills out[k..] while draws pass the fast test; returns the index of the first that did not (its word in `rejected`). */
  private zigguratRun(out: Float32Array, k: number, scale: number): number {
    const s = this.s;
    let s0 = s[0]! | 0;
    let s1 = s[1]! | 0;
    let s2 = s[2]! | 0;
    let s3 = s[3]! | 0;
    // The tables in locals: an imported binding is reloaded on every use in the loop.
    const kn = ZIG_KN;
    const wn = ZIG_WN;
    const n = out.length;
    for (; k < n; k++) {
      const u = Math.imul(rotl32(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl32(s3, 11);
      const i = u & 127;
      const j = u >> 7;
      // |j| without a branch: j's sign is a coin flip, and a mispredicted branch per draw doubles the cost.
      const m = j >> 31;
      if ((j ^ m) - m >= kn[i]!) {
        this.rejected = u;
        break;
      }
      out[k] = scale * (j * wn[i]!);
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return k;
  }

  /** The rest of a ziggurat draw whose word `u` failed the fast test: the wedge test, the tail, or a new word. */
  private zigguratSlow(u: number): number {
    for (;;) {
      const i = u & 127;
      const j = u >> 7;
      if (Math.abs(j) < ZIG_KN[i]!) return j * ZIG_WN[i]!;
      if (i === 0) {
        // the tail beyond R (Marsaglia's exponential method); uniforms in (0, 1] for the logs
        let x: number;
        let y: number;
        do {
          x = -Math.log((this.nextUint32() + 1) * TWO_NEG_32) / ZIG_R;
          y = -Math.log((this.nextUint32() + 1) * TWO_NEG_32);
        } while (y + y < x * x);
        return j > 0 ? ZIG_R + x : -ZIG_R - x;
      }
      const x = j * ZIG_WN[i]!;
      if (ZIG_FN[i]! + this.nextUint32() * TWO_NEG_32 * (ZIG_FN[i - 1]! - ZIG_FN[i]!) < Math.exp(-0.5 * x * x)) return x;
      u = this.nextUint32() | 0;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** rotl as a signed 32-bit value (the bulk fills keep their state as int32 locals). */
function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A 53-bit seed derived from text (a cache key), for nodes that draw without a seed widget. */
export function seedFromString(text: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
