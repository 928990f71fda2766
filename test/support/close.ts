/**
 * The one way tests compare numeric arrays. A NaN or ±Infinity on either side, anywhere, fails the
 * comparison: a float comparison such as `d <= max` is false for NaN, so a helper that keeps a
 * running maximum with it lets a later finite element hide an earlier NaN.
 */

export interface Closeness {
  /** max |got − want|; Infinity when any value is not finite. */
  maxAbs: number;
  /** max of |got − want| − rtol·|want|: passes when ≤ atol; Infinity when any value is not finite. */
  worst: number;
  /** Index of the first value that is NaN or ±Infinity on either side, or −1. */
  firstNonFinite: number;
  ok: boolean;
}

/** |got − want| ≤ atol + rtol·|want| everywhere, every value finite. */
export function closeness(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): Closeness {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs expected ${want.length}`);
  let maxAbs = 0;
  let worst = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!Number.isFinite(g) || !Number.isFinite(w)) return { maxAbs: Infinity, worst: Infinity, firstNonFinite: i, ok: false };
    const d = Math.abs(g - w);
    if (d > maxAbs) maxAbs = d;
    const excess = d - rtol * Math.abs(w);
    if (excess > worst) worst = excess;
  }
  return { maxAbs, worst, firstNonFinite: -1, ok: worst <= atol };
}

/** max |a − b| over all elements; Infinity when any value is not finite. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return closeness(a, b, 0, 0).maxAbs;
}

/** A readable failure message for a Closeness. */
export function describeCloseness(c: Closeness, got: ArrayLike<number>, want: ArrayLike<number>): string {
  if (c.firstNonFinite >= 0) return `value ${c.firstNonFinite} is not finite (got ${got[c.firstNonFinite]}, want ${want[c.firstNonFinite]})`;
  return `max |diff| ${c.maxAbs}, worst excess over rtol·|want| ${c.worst}`;
}
