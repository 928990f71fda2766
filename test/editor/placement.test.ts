import { describe, expect, it } from 'vitest';
import { nearestFree, overlaps, placeInRow, type Box } from '../../editor/src/graph/placement.ts';

/** Where dropped and pasted images' Load Image nodes go (editor/src/graph/placement.ts). */

const noOverlaps = (boxes: Box[]): void => {
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) expect(overlaps(boxes[i]!, boxes[j]!), `${i} and ${j}`).toBe(false);
  }
};

describe('placement of new nodes', () => {
  it('keeps the asked spot when it covers nothing, even close to a node', () => {
    const taken: Box[] = [{ x: 0, y: 0, w: 100, h: 100 }];
    expect(nearestFree(50, 50, [105, 0], taken)).toEqual({ x: 105, y: 0, w: 50, h: 50 });
  });

  it('moves a box that would cover a node to the nearest free corner, right of or below the spot, a gap away', () => {
    const taken: Box[] = [{ x: 0, y: 0, w: 300, h: 100 }];
    // Below the node is 80 away, right of it 290: below wins.
    expect(nearestFree(100, 100, [10, 50], taken, 30)).toEqual({ x: 10, y: 130, w: 100, h: 100 });
    // A tall node: right of it is nearer.
    const tall: Box[] = [{ x: 0, y: 0, w: 100, h: 900 }];
    expect(nearestFree(100, 100, [10, 50], tall, 30)).toEqual({ x: 130, y: 50, w: 100, h: 100 });
  });

  it('finds a spot among many nodes that covers none of them', () => {
    const taken: Box[] = [];
    for (let i = 0; i < 6; i++) for (let j = 0; j < 4; j++) taken.push({ x: i * 150, y: j * 120, w: 140, h: 110 });
    const box = nearestFree(200, 200, [100, 100], taken, 20);
    expect(box.x).toBeGreaterThanOrEqual(100);
    expect(box.y).toBeGreaterThanOrEqual(100);
    noOverlaps([...taken, box]);
    for (const t of taken) expect(overlaps(box, t, 20)).toBe(false);
  });

  it('lays a row out from the spot, past what is in its way, none covering another', () => {
    const occupied: Box[] = [
      { x: 400, y: 0, w: 200, h: 400 },
      { x: 0, y: 500, w: 900, h: 100 },
    ];
    const sizes = [[200, 300], [250, 200], [180, 420]] as const;
    const row = placeInRow(sizes, [0, 0], occupied, 30);
    expect(row[0]).toEqual({ x: 0, y: 0, w: 200, h: 300 });
    expect(row.map((b) => [b.w, b.h])).toEqual(sizes.map(([w, h]) => [w, h]));
    noOverlaps([...occupied, ...row]);
    // Left to right.
    expect(row[1]!.x).toBeGreaterThan(row[0]!.x);
    expect(row[2]!.x).toBeGreaterThan(row[1]!.x);
  });
});
