import { describe, expect, it } from 'vitest';
import { floatBitsFromHalfBits, fromFloat16, halfBitsFromFloatBits, toFloat16 } from '../../server/runtime/fp16.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number): number => ((f32[0] = x), u32[0]!);
const half = (x: number): number => halfBitsFromFloatBits(bitsOf(x));
const back = (h: number): number => fromFloat16(Uint16Array.of(h))[0]!;

/** Every finite float16 value in order, decoded independently of the code under test. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
}

/** Nearest float16 by search over all positive values, ties to the even mantissa. */
function referenceHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (halfValue(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  const below = lo;
  if (halfValue(below) === a || below === 0x7bff) return sign | below;
  const dBelow = a - halfValue(below);
  const dAbove = halfValue(below + 1) - a;
  const pick = dBelow < dAbove ? below : dAbove < dBelow ? below + 1 : below % 2 === 0 ? below : below + 1;
  return sign | pick;
}

describe('fp16 conversion', () => {
  it('round-trips every float16 value exactly (NaN stays NaN)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const floats = fromFloat16(all);
    const again = toFloat16(floats);
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const v = floats[h]!;
      const ok = Number.isNaN(halfValue(h))
        ? Number.isNaN(v) && (again[h]! & 0x7c00) === 0x7c00 && (again[h]! & 0x3ff) !== 0
        : Object.is(v, halfValue(h)) && again[h] === h;
      if (!ok) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds to nearest, ties to even, at the edges of the format', () => {
    expect(half(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even (1)
    expect(half(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: even is 1+2^-9
    expect(half(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(half(65504)).toBe(0x7bff); // largest finite
    expect(half(65519.99)).toBe(0x7bff);
    expect(half(65520)).toBe(0x7c00); // rounds to infinity
    expect(half(1e10)).toBe(0x7c00);
    expect(half(-Infinity)).toBe(0xfc00);
    expect(half(NaN) & 0x7fff).toBe(0x7e00);
    expect(half(-0)).toBe(0x8000);
    expect(half(2 ** -14)).toBe(0x0400); // smallest normal
    expect(half(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(half(2 ** -25)).toBe(0x0000); // tie with zero: even
    expect(half(1.5 * 2 ** -25)).toBe(0x0001);
    expect(half(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units: even
    expect(half(2 ** -14 - 2 ** -25)).toBe(0x0400); // subnormal rounding carries into the normals
    expect(half(1e-45)).toBe(0x0000); // float32 subnormal
    expect(back(0x0001)).toBe(2 ** -24);
    expect(back(0x03ff)).toBe(1023 * 2 ** -24);
    expect(back(0xfbff)).toBe(-65504);
    expect(floatBitsFromHalfBits(0x7c00)).toBe(0x7f800000);
  });

  it('matches an exhaustive-search reference on random float32 values of every magnitude', () => {
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32);
    const values = Float32Array.from({ length: 20000 }, () => (rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 46 - 28) * (1 + rand()));
    const got = toFloat16(values);
    const wrong = [...values].filter((v, i) => got[i] !== referenceHalf(v));
    expect(wrong).toEqual([]);
  });
});
