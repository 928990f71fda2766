import { describe, expect, it } from 'vitest';
import { isAppShortcut } from '../../editor/src/graph/app-keys.ts';
import { fitContain, gridCells, gridShape, imageRects, inRect, wantedImageHeight } from '../../editor/src/graph/image-layout.ts';
import { wrapText } from '../../editor/src/graph/text-wrap.ts';

describe('image layout', () => {
  it('fits an image in a box keeping its aspect, centred', () => {
    expect(fitContain(2, { x: 0, y: 0, w: 100, h: 100 })).toEqual({ x: 0, y: 25, w: 100, h: 50 });
    expect(fitContain(0.5, { x: 10, y: 0, w: 100, h: 100 })).toEqual({ x: 35, y: 0, w: 50, h: 100 });
  });

  it('lays several images out in a near-square grid', () => {
    expect([1, 2, 3, 4, 5].map((n) => gridShape(n))).toEqual([
      { cols: 1, rows: 1 },
      { cols: 2, rows: 1 },
      { cols: 2, rows: 2 },
      { cols: 2, rows: 2 },
      { cols: 3, rows: 2 },
    ]);
    const cells = gridCells(3, { x: 0, y: 0, w: 104, h: 104 }, 4);
    expect(cells).toEqual([
      { x: 0, y: 0, w: 50, h: 50 },
      { x: 54, y: 0, w: 50, h: 50 },
      { x: 0, y: 54, w: 50, h: 50 },
    ]);
  });

  it('an image whose size is not known yet fills its cell', () => {
    const [a, b] = imageRects([null, 1], { x: 0, y: 0, w: 204, h: 100 }, 4);
    expect(a).toEqual({ x: 0, y: 0, w: 100, h: 100 });
    expect(b).toEqual({ x: 104, y: 0, w: 100, h: 100 });
  });

  it('wants the height of the grid at the node width, within limits', () => {
    expect(wantedImageHeight([2], 300, 50, 600)).toBe(150);
    expect(wantedImageHeight([0.25], 300, 50, 600)).toBe(600);
    expect(wantedImageHeight([], 300, 50, 600)).toBe(0);
    expect(wantedImageHeight([1, 1], 204, 10, 600)).toBe(100);
  });

  it('hit-tests rects', () => {
    expect(inRect(5, 5, { x: 0, y: 0, w: 10, h: 10 })).toBe(true);
    expect(inRect(11, 5, { x: 0, y: 0, w: 10, h: 10 })).toBe(false);
  });
});

describe('wrapText', () => {
  const measure = (s: string): number => s.length; // one unit per character

  it('wraps between words and keeps explicit newlines', () => {
    expect(wrapText('the quick brown fox', 10, measure)).toEqual(['the quick', 'brown fox']);
    expect(wrapText('one\ntwo three', 20, measure)).toEqual(['one', 'two three']);
  });

  it('breaks words longer than a line', () => {
    expect(wrapText('abcdefghijkl', 5, measure)).toEqual(['abcde', 'fghij', 'kl']);
  });

  it('cuts to maxLines with an ellipsis', () => {
    expect(wrapText('a b c d e f', 3, measure, 2)).toEqual(['a b', 'c …']);
  });
});

describe('keys the canvas leaves to the app', () => {
  const key = (k: string, mods: { ctrlKey?: boolean; metaKey?: boolean } = {}) => ({ key: k, ctrlKey: false, metaKey: false, ...mods });

  it('are Delete, Backspace and the Ctrl/Cmd edit shortcuts', () => {
    expect(isAppShortcut(key('Delete'))).toBe(true);
    expect(isAppShortcut(key('Backspace'))).toBe(true);
    for (const k of ['c', 'V', 'z', 'y', 'g', 'x']) expect(isAppShortcut(key(k, { ctrlKey: true }))).toBe(true);
    expect(isAppShortcut(key('v', { metaKey: true }))).toBe(true);
  });

  it('not plain letters, Ctrl+A or space (litegraph keeps select-all and space-drag)', () => {
    expect(isAppShortcut(key('c'))).toBe(false);
    expect(isAppShortcut(key('a', { ctrlKey: true }))).toBe(false);
    expect(isAppShortcut(key(' '))).toBe(false);
  });
});
