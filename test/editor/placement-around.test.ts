import { describe, expect, it } from 'vitest';
import { nearestFreeAround, overlaps } from '../../editor/src/graph/placement.ts';
import { pairCaption } from '../../editor/src/graph/pair-caption.ts';

describe('a node added at the middle of the view', () => {
  const taken = [{ x: 0, y: 0, w: 200, h: 100 }];

  it('goes where it was asked when that is free', () => {
    expect(nearestFreeAround(100, 50, [300, 300], taken)).toEqual({ x: 300, y: 300, w: 100, h: 50 });
  });

  it('goes beside the node in the way, in whichever direction is nearest, even left or above', () => {
    // Asked for near the node's left edge: left of it is nearer than right of it.
    const left = nearestFreeAround(100, 50, [-60, 30], taken);
    expect(left.x + left.w).toBeLessThanOrEqual(0);
    const above = nearestFreeAround(100, 50, [40, -30], taken);
    expect(above.y + above.h).toBeLessThanOrEqual(0);
    for (const b of [left, above]) expect(overlaps(b, taken[0]!)).toBe(false);
  });

  it('prefers a spot inside the visible part of the graph', () => {
    const view = { x: -50, y: -200, w: 600, h: 330 };
    const box = nearestFreeAround(100, 50, [50, 30], taken, view);
    expect(overlaps(box, taken[0]!)).toBe(false);
    expect(box.x >= view.x && box.y >= view.y && box.x + box.w <= view.x + view.w && box.y + box.h <= view.y + view.h).toBe(true);
  });
});

describe('the captions of an A/B pair', () => {
  it('says "A" and "B" alone for sides without a label of their own, never "A · A"', () => {
    expect([pairCaption('A', ''), pairCaption('B', 'B'), pairCaption('A', undefined)]).toEqual(['A', 'B', 'A']);
    expect(pairCaption('A', 'photo')).toBe('A · photo');
  });
});
