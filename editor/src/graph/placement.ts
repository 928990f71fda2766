/** Where new nodes go so that they cover none already there: pure geometry, in graph units. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function overlaps(a: Box, b: Box, gap = 0): boolean {
  return a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
}

/**
 * The free spot for a `w` x `h` box nearest to `at` (its top-left), right of and below it: `at`
 * itself when it covers nothing there, else a corner made by the edges of the boxes in the way,
 * `gap` from each. Right of every box at `at`'s height is always free, so there is always an answer.
 */
export function nearestFree(w: number, h: number, at: readonly [number, number], taken: readonly Box[], gap = 30): Box {
  // Where it was asked for, if it covers nothing there (the gap is for the spots chosen here).
  const asked = { x: at[0], y: at[1], w, h };
  if (!taken.some((t) => overlaps(asked, t))) return asked;
  const xs = [at[0], ...taken.map((t) => t.x + t.w + gap)].filter((x) => x >= at[0]);
  const ys = [at[1], ...taken.map((t) => t.y + t.h + gap)].filter((y) => y >= at[1]);
  let best: Box | null = null;
  let bestDistance = Infinity;
  for (const x of xs) {
    for (const y of ys) {
      const distance = (x - at[0]) ** 2 + (y - at[1]) ** 2;
      if (distance >= bestDistance) continue;
      const box = { x, y, w, h };
      if (taken.some((t) => overlaps(box, t, gap))) continue;
      best = box;
      bestDistance = distance;
    }
  }
  return best ?? { x: Math.max(at[0], ...taken.map((t) => t.x + t.w + gap)), y: at[1], w, h };
}

/**
 * Boxes of the given sizes laid out left to right from `at`: the first at the free spot nearest
 * to `at`, each next one at the free spot nearest to the right of the one before, on its row.
 * None overlaps another or any of `occupied` (`gap` apart).
 */
export function placeInRow(sizes: ReadonlyArray<readonly [number, number]>, at: readonly [number, number], occupied: readonly Box[], gap = 30): Box[] {
  const taken = [...occupied];
  const placed: Box[] = [];
  let next: [number, number] = [at[0], at[1]];
  for (const [w, h] of sizes) {
    const box = nearestFree(w, h, next, taken, gap);
    taken.push(box);
    placed.push(box);
    next = [box.x + w + gap, placed[0]!.y];
  }
  return placed;
}

/**
 * The free spot for a `w` x `h` box nearest to `at` (its top-left) in any direction: `at` itself
 * when it covers nothing, else a spot beside the edges of the boxes in the way (left, right, above
 * or below them), `gap` from each; inside `within` (the visible part of the graph) when one fits
 * there. For a node added at the middle of the view: it stays near there, on screen.
 */
export function nearestFreeAround(w: number, h: number, at: readonly [number, number], taken: readonly Box[], within?: Box, gap = 30): Box {
  const asked = { x: at[0], y: at[1], w, h };
  if (!taken.some((t) => overlaps(asked, t))) return asked;
  const xs = [at[0], ...taken.flatMap((t) => [t.x + t.w + gap, t.x - w - gap])];
  const ys = [at[1], ...taken.flatMap((t) => [t.y + t.h + gap, t.y - h - gap])];
  const fits = (b: Box): boolean => !within || (b.x >= within.x && b.y >= within.y && b.x + b.w <= within.x + within.w && b.y + b.h <= within.y + within.h);
  let best: Box | null = null;
  let bestDistance = Infinity;
  for (const x of xs) {
    for (const y of ys) {
      const box = { x, y, w, h };
      // Off-screen spots count only when no on-screen one is free: they come after any of those.
      const distance = (x - at[0]) ** 2 + (y - at[1]) ** 2 + (fits(box) ? 0 : 1e12);
      if (distance >= bestDistance) continue;
      if (taken.some((t) => overlaps(box, t, gap))) continue;
      best = box;
      bestDistance = distance;
    }
  }
  return best ?? nearestFree(w, h, at, taken, gap);
}
