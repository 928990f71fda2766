/** The comparison helper every numeric test uses: a NaN or Infinity anywhere must fail it. */
import { describe, expect, it } from 'vitest';
import { closeness, describeCloseness, maxAbsDiff } from './close.ts';

describe('closeness', () => {
  it('passes equal and near arrays and measures the largest difference', () => {
    const c = closeness([1, 2, 3], [1, 2.0005, 3], 1e-3, 0);
    expect(c.ok).toBe(true);
    expect(c.maxAbs).toBeCloseTo(5e-4, 12);
    expect(closeness([1, 2, 3], [1, 2.01, 3], 1e-3, 0).ok).toBe(false);
    // rtol scales with |want|
    expect(closeness([1000], [1000.5], 0, 1e-3).ok).toBe(true);
    expect(closeness([1000], [1002], 0, 1e-3).ok).toBe(false);
  });

  it.each([
    ['NaN first', [NaN, 1, 2], [0, 1, 2]],
    ['NaN last', [0, 1, NaN], [0, 1, 2]],
    ['NaN in the middle, large differences after it', [0, NaN, 2, 1e9], [0, 1, 2, 1e9]],
    ['Infinity', [Infinity, 1], [0, 1]],
    ['-Infinity', [0, -Infinity], [0, 1]],
    ['Infinity on both sides', [Infinity], [Infinity]],
    ['NaN in the reference', [0, 1], [0, NaN]],
  ])('fails on %s', (_what, got, want) => {
    const c = closeness(got, want, 1e30, 1e30);
    expect(c.ok).toBe(false);
    expect(c.worst).toBe(Infinity);
    expect(c.maxAbs).toBe(Infinity);
    expect(c.firstNonFinite).toBe(got.findIndex((v, i) => !Number.isFinite(v) || !Number.isFinite(want[i]!)));
    expect(describeCloseness(c, got, want)).toMatch(/not finite/);
    // A `worst ≤ atol` or `maxAbs < tol` assertion on the result fails too.
    expect(c.worst <= 1e30).toBe(false);
    expect(maxAbsDiff(got, want) < 1e30).toBe(false);
  });

  it('refuses arrays of different lengths', () => {
    expect(() => closeness([1, 2], [1], 1, 1)).toThrow(/length/);
  });
});
