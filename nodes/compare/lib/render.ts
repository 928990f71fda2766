/**
 * Labelled grids and tables drawn with sharp: images composited on a canvas, text as an SVG
 * overlay that librsvg renders (anti-aliased, any font fontconfig finds; DejaVu Sans is asked for
 * first, then any sans-serif).
 */
import sharp, { type OverlayOptions } from 'sharp';
import type { TableData } from '../../api/file-ref.ts';
import { formatCell } from './table.ts';

export const FONT_FAMILY = "'DejaVu Sans', 'Liberation Sans', Arial, sans-serif";
export const MONO_FAMILY = "'DejaVu Sans Mono', 'Liberation Mono', monospace";

/** Width of a text in DejaVu Sans, generously estimated (its average advance is about 0.55 em). */
export function textWidth(text: string, fontSize: number, mono = false): number {
  return Math.ceil(text.length * fontSize * (mono ? 0.61 : 0.6));
}

/** The warning the Grid and Metrics nodes give when fontconfig finds no font at all. */
export const NO_FONT_HINT = 'no font could be found to draw the labels: install one (Debian/Ubuntu: apt-get install fonts-dejavu-core)';

/** Width in pixels of the inked part of a text rendered alone (0 when nothing is inked). */
async function inkWidth(text: string, family: string): Promise<number> {
  const w = 64;
  const h = 40;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><text x="8" y="30" font-family="${family}" font-size="24" fill="#000">${escapeXml(text)}</text></svg>`;
  const data = await sharp(Buffer.from(svg)).ensureAlpha().extractChannel(3).raw().toBuffer();
  let min = w;
  let max = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[y * w + x]! > 64) {
        min = Math.min(min, x);
        max = Math.max(max, x);
      }
    }
  }
  return max < 0 ? 0 : max - min + 1;
}

/**
 * Whether librsvg can draw text with `family`: renders "W" and "i" and checks that some pixels are
 * inked and that the two differ in width. Without any font fontconfig finds, pango draws either
 * nothing or the same empty "missing glyph" box for every character, so both checks catch it.
 */
export async function probeFonts(family: string = FONT_FAMILY): Promise<boolean> {
  const [wide, narrow] = await Promise.all([inkWidth('W', family), inkWidth('i', family)]);
  return wide > 0 && wide > narrow * 1.5;
}

/** Something that says whether text can be drawn; injectable so tests can simulate a font-less machine. */
export type FontProbe = () => Promise<boolean>;

let fontsProbed: Promise<boolean> | undefined;

/** probeFonts, run once per process; a failing probe counts as fonts present (nothing to warn about). */
export const fontsAvailable: FontProbe = () => (fontsProbed ??= probeFonts().catch(() => true));

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A label box with its lines of text, centred in the box. */
export interface LabelBox extends Rect {
  lines: string[];
  /** Drawn bold (an axis' name); a box of several lines has its first line bold anyway. */
  bold?: boolean;
}

export interface GridSpec {
  cols: number;
  rows: number;
  cellW: number;
  cellH: number;
  gap: number;
  fontSize: number;
  /** One per column (widget name, value), or empty for no header row. */
  colLabels: string[][];
  /** One per row, or empty for no label column. */
  rowLabels: string[][];
  /** The x axis' name, once over all the columns (above their labels). */
  xTitle?: string;
  /** The y axis' name, once over the row labels (in the top-left corner). */
  yTitle?: string;
}

export interface GridLayout {
  width: number;
  height: number;
  /** Row-major: cell (col, row) is cells[row * cols + col]. */
  cells: Rect[];
  colLabels: LabelBox[];
  rowLabels: LabelBox[];
  /** The axes' names: the x axis' over all the columns, the y axis' in the top-left corner. */
  titles: LabelBox[];
}

export const lineHeight = (fontSize: number): number => Math.round(fontSize * 1.3);

/**
 * Where everything goes: a header row of column labels above the cells, a column of row labels
 * left of them, `gap` pixels around and between every cell. Pure, so it is tested on its own.
 */
export function gridLayout(s: GridSpec): GridLayout {
  const pad = Math.round(s.fontSize * 0.6);
  const lines = (labels: string[][]): number => Math.max(0, ...labels.map((l) => l.length));
  const lh = lineHeight(s.fontSize);
  const xTitle = s.colLabels.length > 0 && s.xTitle ? s.xTitle : null;
  const yTitle = s.rowLabels.length > 0 && s.yTitle ? s.yTitle : null;
  // The x axis' name takes a line of its own above the column labels.
  const titleH = xTitle ? lh : 0;
  const headerH = s.colLabels.length > 0 ? titleH + lines(s.colLabels) * lh + 2 * pad : 0;
  const labelW = s.rowLabels.length > 0 ? Math.max(...[...s.rowLabels.flat(), ...(yTitle ? [yTitle] : [])].map((t) => Math.ceil(textWidth(t, s.fontSize) * (t === yTitle ? 1.15 : 1)))) + 2 * pad : 0; // bold is wider
  const left = labelW + s.gap;
  const top = headerH + s.gap;
  const cells: Rect[] = [];
  for (let r = 0; r < s.rows; r++) {
    for (let c = 0; c < s.cols; c++) cells.push({ x: left + c * (s.cellW + s.gap), y: top + r * (s.cellH + s.gap), w: s.cellW, h: s.cellH });
  }
  // Below the x axis' name (and half the padding), each column's label.
  const colTop = xTitle ? pad + titleH : 0;
  const colLabels = s.colLabels.map((l, c) => ({ x: left + c * (s.cellW + s.gap), y: colTop, w: s.cellW, h: headerH - colTop, lines: l }));
  const rowLabels = s.rowLabels.map((l, r) => ({ x: 0, y: top + r * (s.cellH + s.gap), w: labelW, h: s.cellH, lines: l }));
  const titles: LabelBox[] = [];
  if (xTitle) titles.push({ x: left, y: pad, w: s.cols * (s.cellW + s.gap) - s.gap, h: titleH, lines: [xTitle], bold: true });
  if (yTitle) titles.push({ x: 0, y: colTop, w: labelW, h: headerH - colTop, lines: [yTitle], bold: true });
  return {
    width: left + s.cols * (s.cellW + s.gap),
    height: top + s.rows * (s.cellH + s.gap),
    cells,
    colLabels,
    rowLabels,
    titles,
  };
}

/** SVG text elements for label boxes, each line centred horizontally, the block centred vertically. */
export function labelSvg(boxes: LabelBox[], fontSize: number, colour: string): string {
  const lh = lineHeight(fontSize);
  const texts = boxes.flatMap((b) => {
    const top = b.y + (b.h - b.lines.length * lh) / 2;
    return b.lines.map((line, i) => {
      const bold = b.bold || (i === 0 && b.lines.length > 1) ? ' font-weight="bold"' : '';
      // Baseline at about 0.8 of the line box for DejaVu's ascent.
      return `<text x="${b.x + b.w / 2}" y="${(top + i * lh + lh * 0.8).toFixed(1)}" text-anchor="middle"${bold}>${escapeXml(line)}</text>`;
    });
  });
  return `<g font-family="${FONT_FAMILY}" font-size="${fontSize}" fill="${colour}">${texts.join('')}</g>`;
}

export interface Placed {
  /** Interleaved 8-bit RGB. */
  rgb: Buffer;
  width: number;
  height: number;
  left: number;
  top: number;
}

/** Composites images and an SVG overlay onto a canvas; returns interleaved 8-bit RGB. */
export async function compose(width: number, height: number, background: string, images: Placed[], svgBody: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svgBody}</svg>`;
  const layers: OverlayOptions[] = images.map((p) => ({ input: p.rgb, raw: { width: p.width, height: p.height, channels: 3 }, left: p.left, top: p.top }));
  layers.push({ input: Buffer.from(svg), left: 0, top: 0 });
  return sharp({ create: { width, height, channels: 3, background } })
    .composite(layers)
    .removeAlpha()
    .raw()
    .toBuffer();
}

/** A table drawn as a PNG: header row, zebra rows, numbers right-aligned, in a monospace font. */
export async function renderTable(table: TableData, fontSize = 14, drawText = true): Promise<{ png: Buffer; width: number; height: number }> {
  const cells = [table.columns, ...table.rows.map((r) => r.map(formatCell))];
  const pad = Math.round(fontSize * 0.7);
  const widths = table.columns.map((_, c) => Math.max(...cells.map((row) => textWidth(String(row[c] ?? ''), fontSize, true))) + 2 * pad);
  const rowH = Math.round(fontSize * 1.8);
  const width = widths.reduce((s, w) => s + w, 0);
  const height = rowH * cells.length;
  const parts: string[] = [`<rect width="${width}" height="${height}" fill="#ffffff"/>`, `<rect width="${width}" height="${rowH}" fill="#2b3440"/>`];
  cells.forEach((row, r) => {
    if (r > 0 && r % 2 === 0) parts.push(`<rect y="${r * rowH}" width="${width}" height="${rowH}" fill="#eef2f6"/>`);
    let x = 0;
    row.forEach((cell, c) => {
      const numeric = r > 0 && typeof table.rows[r - 1]![c] === 'number';
      const tx = numeric ? x + widths[c]! - pad : x + pad;
      const fill = r === 0 ? '#ffffff' : '#1b1f24';
      // Without a font librsvg would draw a box per character: leave the cells empty instead.
      if (drawText) parts.push(
        `<text x="${tx}" y="${(r * rowH + rowH * 0.68).toFixed(1)}" fill="${fill}"${numeric ? ' text-anchor="end"' : ''}${r === 0 ? ' font-weight="bold"' : ''}>${escapeXml(String(cell ?? ''))}</text>`,
      );
      x += widths[c]!;
    });
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="${MONO_FAMILY}" font-size="${fontSize}">${parts.join('')}</g></svg>`;
  const png = await sharp(Buffer.from(svg)).removeAlpha().png().toBuffer();
  return { png, width, height };
}

export { formatCell, toCsv } from './table.ts';
