import sharp from 'sharp';
import type { Branch, BranchCoord } from '../api/branch.ts';
import { defineNode } from '../api/define.ts';
import { InputError } from '../api/errors.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { combo, int } from '../api/widgets.ts';
import { hwcUint8ToImage, imageToHwcUint8 } from '../image/codec.ts';
import { compose, fontsAvailable, gridLayout, labelSvg, NO_FONT_HINT, type FontProbe, type GridLayout, type Placed } from './lib/render.ts';

export interface GridOptions {
  maxCell: number;
  gap: number;
  fontSize: number;
  background: 'white' | 'dark';
  /** False on a machine without fonts: the label boxes are left empty (default true). */
  drawLabels?: boolean;
}

interface Cell {
  image: ImageTensor;
  index: number;
  col: number;
  row: number;
}

/** An axis' name: the widget's name, with its node's title when both axes share a name. */
function axisName(c: BranchCoord, clash: boolean): string {
  return clash ? `${c.title}.${c.widget}` : c.widget;
}

/**
 * Places the branches: column by x value, row by y value, with their labels. Branches without
 * coordinates (plain links) are laid out in a row, one cell per image of their batches.
 */
export function gridCells(branches: Array<Branch<ImageTensor>>): {
  cells: Cell[];
  cols: number;
  rows: number;
  colLabels: string[][];
  rowLabels: string[][];
  xTitle?: string;
  yTitle?: string;
} {
  const swept = branches.some((b) => b.coords.length > 0);
  if (!swept) {
    const cells = branches.flatMap((b) => Array.from({ length: b.value.n }, (_, index) => ({ image: b.value, index })));
    return { cells: cells.map((c, i) => ({ ...c, col: i, row: 0 })), cols: cells.length, rows: 1, colLabels: [], rowLabels: [] };
  }
  const xs = new Map<number, BranchCoord>();
  const ys = new Map<number, BranchCoord>();
  const cells: Cell[] = branches.map((b) => {
    const x = b.coords.find((c) => c.axis === 0);
    const y = b.coords.find((c) => c.axis === 1);
    if (x) xs.set(x.index, x);
    if (y) ys.set(y.index, y);
    return { image: b.value, index: 0, col: x?.index ?? 0, row: y?.index ?? 0 };
  });
  const cols = Math.max(...xs.keys()) + 1;
  const rows = ys.size > 0 ? Math.max(...ys.keys()) + 1 : 1;
  const anyX = [...xs.values()][0]!;
  const anyY = [...ys.values()][0];
  const clash = anyY !== undefined && anyY.widget === anyX.widget;
  // Each column and row is labelled by its value; the axis' name is said once, by the layout.
  const label = (m: Map<number, BranchCoord>, n: number): string[][] => Array.from({ length: n }, (_, i) => [m.has(i) ? String(m.get(i)!.value) : '']);
  return {
    cells,
    cols,
    rows,
    colLabels: label(xs, cols),
    rowLabels: ys.size > 0 ? label(ys, rows) : [],
    xTitle: axisName(anyX, clash),
    ...(anyY ? { yTitle: axisName(anyY, clash) } : {}),
  };
}

/** Assembles the branch images into one labelled grid image. */
export async function buildGrid(branches: Array<Branch<ImageTensor>>, opts: GridOptions, maxPixels = Infinity): Promise<{ image: ImageTensor; layout: GridLayout }> {
  if (branches.length === 0) throw new InputError('images', 'no images to lay out');
  const { cells, cols, rows, colLabels, rowLabels, xTitle, yTitle } = gridCells(branches);
  // Every image fits a max_cell square (never enlarged); the cell is the largest of them.
  const fitted = cells.map((c) => {
    const s = opts.maxCell > 0 ? Math.min(1, opts.maxCell / Math.max(c.image.w, c.image.h)) : 1;
    return { ...c, w: Math.max(1, Math.round(c.image.w * s)), h: Math.max(1, Math.round(c.image.h * s)) };
  });
  const cellW = Math.max(...fitted.map((f) => f.w));
  const cellH = Math.max(...fitted.map((f) => f.h));
  const layout = gridLayout({ cols, rows, cellW, cellH, gap: opts.gap, fontSize: opts.fontSize, colLabels, rowLabels, xTitle, yTitle });
  if (layout.width * layout.height > maxPixels) {
    throw new InputError('images', `the grid would be ${layout.width}x${layout.height}, over the ${maxPixels}-pixel limit: lower max_cell`, 'TOO_LARGE');
  }
  const placed: Placed[] = [];
  for (const f of fitted) {
    if (f.image.c !== 3) throw new InputError('images', `expects 3 colour channels, got ${f.image.c}`);
    let rgb = imageToHwcUint8(f.image, f.index);
    if (f.w !== f.image.w || f.h !== f.image.h) {
      rgb = await sharp(rgb, { raw: { width: f.image.w, height: f.image.h, channels: 3 } }).resize(f.w, f.h, { kernel: 'lanczos3' }).raw().toBuffer();
    }
    const cell = layout.cells[f.row * cols + f.col]!;
    placed.push({ rgb, width: f.w, height: f.h, left: cell.x + Math.floor((cellW - f.w) / 2), top: cell.y + Math.floor((cellH - f.h) / 2) });
  }
  const [bg, fg] = opts.background === 'dark' ? ['#1e1f22', '#e8eaed'] : ['#ffffff', '#16181b'];
  const svg = opts.drawLabels === false ? '' : labelSvg([...layout.titles, ...layout.colLabels, ...layout.rowLabels], opts.fontSize, fg);
  const rgb = await compose(layout.width, layout.height, bg, placed, svg);
  return { image: hwcUint8ToImage(rgb, layout.width, layout.height, 3), layout };
}

export const NO_FONT_GRID_WARNING = `${NO_FONT_HINT} — the grid is drawn without labels`;

/** The Grid node; `probe` says whether text can be drawn (tests pass a fake one). */
export function makeGridNode(probe: FontProbe = fontsAvailable) {
  return defineNode({
    id: 'ImageGrid',
    displayName: 'Grid (XY plot)',
    category: 'compare',
    description:
      'Lays out the branches of a sweep as a grid, a column per x value and a row per y value, labelled with the values, each axis named once. Feed it to Save Image.',
    inputs: { images: { type: 'IMAGE', gather: true, description: 'Every branch of a sweep (or a batch: one cell per image).' } },
    widgets: {
      max_cell: int({ default: 512, min: 0, max: 4096, step: 8, description: 'Images are shrunk to fit this square; 0 keeps their size.' }),
      gap: int({ default: 8, min: 0, max: 256 }),
      font_size: int({ default: 20, min: 6, max: 128 }),
      background: combo({ options: ['white', 'dark'], default: 'white' }),
    },
    outputs: { image: 'IMAGE' },
    async execute({ images, max_cell, gap, font_size, background }, ctx) {
      const opts = { maxCell: max_cell, gap, fontSize: font_size, background: background as GridOptions['background'] };
      const labelled = gridCells(images).colLabels.length > 0;
      const drawLabels = !labelled || (await probe());
      if (!drawLabels) ctx.warn(NO_FONT_GRID_WARNING);
      const { image } = await buildGrid(images, { ...opts, drawLabels }, ctx.env.limits.maxPixels);
      return { image };
    },
  });
}

export default makeGridNode();
