/**
 * The text of a Sweep node's value lists, read the same way by the engine (server/engine/sweep.ts,
 * which also checks each value against its widget) and by the editor (branch labels on the
 * swept node). Pure: no Node or DOM imports.
 */

/** A sweep may make at most this many branches (every branch runs its whole downstream chain). */
export const MAX_SWEEP_BRANCHES = 64;

/** The items of a list: comma-separated, or one per line when the text has line breaks (for texts with commas). */
export function splitSweepItems(text: string): string[] {
  return (text.includes('\n') ? text.split('\n') : text.split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** One numeric item: a number, or a range `start:stop[:step]` with the stop included. */
export function parseSweepNumbers(item: string): { values: number[] } | { error: string } {
  const parts = item.split(':').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length > 3 || parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n))) {
    return { error: `'${item}' is not a number or a range start:stop[:step]` };
  }
  if (parts.length === 1) return { values: nums };
  const [start, stop, step = 1] = nums as [number, number, number?];
  if (step <= 0) return { error: `range '${item}' needs a positive step` };
  if (stop < start) return { error: `range '${item}' ends before it starts` };
  const count = Math.floor((stop - start) / step + 1e-9) + 1;
  if (count > MAX_SWEEP_BRANCHES) return { error: `range '${item}' has ${count} values, more than ${MAX_SWEEP_BRANCHES}` };
  // Rounded so that 0.1 steps give 0.3, not 0.30000000000000004 (labels and cache keys stay clean).
  return { values: Array.from({ length: count }, (_, i) => Math.round((start + i * step) * 1e9) / 1e9) };
}
