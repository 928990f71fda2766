/** Where images go inside a node: pure geometry, in node-local units. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The largest rect of the given aspect (width / height) in `box`: centred, or at its top. */
export function fitContain(aspect: number, box: Rect, align: 'center' | 'top' = 'center'): Rect {
  if (!(aspect > 0) || box.w <= 0 || box.h <= 0) return { ...box, w: Math.max(0, box.w), h: Math.max(0, box.h) };
  let w = box.w;
  let h = w / aspect;
  if (h > box.h) {
    h = box.h;
    w = h * aspect;
  }
  return { x: box.x + (box.w - w) / 2, y: align === 'top' ? box.y : box.y + (box.h - h) / 2, w, h };
}

/** Columns and rows for `count` images: as square a grid as possible. */
export function gridShape(count: number): { cols: number; rows: number } {
  const cols = Math.max(1, Math.ceil(Math.sqrt(count)));
  return { cols, rows: Math.max(1, Math.ceil(count / cols)) };
}

/** One cell per image, row by row, `gap` apart. */
export function gridCells(count: number, area: Rect, gap = 4): Rect[] {
  if (count <= 0) return [];
  const { cols, rows } = gridShape(count);
  const w = (area.w - gap * (cols - 1)) / cols;
  const h = (area.h - gap * (rows - 1)) / rows;
  return Array.from({ length: count }, (_, i) => ({
    x: area.x + (i % cols) * (w + gap),
    y: area.y + Math.floor(i / cols) * (h + gap),
    w,
    h,
  }));
}

/**
 * Each image fitted (aspect kept) in its grid cell; an unknown aspect fills the cell. A single
 * image sits at the top of the area, under the widgets.
 */
export function imageRects(aspects: ReadonlyArray<number | null>, area: Rect, gap = 4): Rect[] {
  const align = aspects.length === 1 ? 'top' : 'center';
  return gridCells(aspects.length, area, gap).map((cell, i) => {
    const a = aspects[i];
    return a ? fitContain(a, cell, align) : cell;
  });
}

/**
 * The height the image area wants at this width: the grid's rows at the widest image's aspect,
 * within [min, max].
 */
export function wantedImageHeight(aspects: ReadonlyArray<number | null>, width: number, min: number, max: number, gap = 4): number {
  if (!aspects.length || width <= 0) return 0;
  const { cols, rows } = gridShape(aspects.length);
  const known = aspects.filter((a): a is number => typeof a === 'number' && a > 0);
  const aspect = known.length ? Math.min(...known) : 1;
  const cellW = (width - gap * (cols - 1)) / cols;
  const height = rows * (cellW / aspect) + gap * (rows - 1);
  return Math.round(Math.min(max, Math.max(min, height)));
}

export function inRect(x: number, y: number, r: Rect): boolean {
  return x >= r.x && y >= r.y && x <= r.x + r.w && y <= r.y + r.h;
}
