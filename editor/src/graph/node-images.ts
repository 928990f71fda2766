import { LiteGraph, type LGraphNode } from '@comfyorg/litegraph';
import type { ComparePair } from './graph-view.ts';
import type { ImageCache } from './image-cache.ts';
import { studioClassOf } from './node-classes.ts';
import { imageRects, inRect, wantedImageHeight, type Rect } from './image-layout.ts';
import { THEME } from './theme.ts';
import { pairCaption } from './pair-caption.ts';

const PAD = 8;
const MAX_SHOWN = 16;
/** Room under a Load Image preview for its size. */
const FOOTER = 16;

interface Growth {
  from: [number, number];
  to: [number, number];
}

/**
 * Output and preview images drawn in a node's body, below its widgets. The node grows to show
 * them (aspect kept); the growth is not a user edit, so `baseSize` reports the size without it
 * and the saved workflow does not change because a run showed an image.
 */
export class NodeImages {
  readonly #cache: ImageCache;
  readonly #growth = new Map<string, Growth>();
  readonly #hits = new Map<string, Array<{ rect: Rect; url: string }>>();
  /** Where the A/B split of a node's pair is, 0..1 across the image (follows the pointer). */
  readonly #splits = new Map<string, number>();
  /** The rect of each node's pair, for the pointer. */
  readonly #pairs = new Map<string, Rect>();
  /** The captions last drawn on each node's pair (A's, B's). */
  readonly #captions = new Map<string, [string, string]>();
  /** What was written under each node's input image (its size). */
  readonly #footers = new Map<string, string>();

  constructor(cache: ImageCache) {
    this.#cache = cache;
  }

  /** Draws `urls` (node-local coordinates; ctx is at the node's origin), each with its caption. */
  draw(node: LGraphNode, ctx: CanvasRenderingContext2D, urls: readonly string[], labels: readonly string[] = []): void {
    const id = String(node.id);
    this.#pairs.delete(id);
    const from = Math.max(0, urls.length - MAX_SHOWN);
    const shown = urls.slice(from);
    if (!shown.length || node.flags.collapsed) {
      this.#hits.delete(id);
      this.#footers.delete(id);
      if (!shown.length) this.#shrink(node);
      return;
    }
    const top = contentBottom(node) + 4;
    const width = node.size[0] - PAD * 2;
    const aspects = shown.map((u) => this.#cache.aspect(u));
    // The picked input of a Load Image node says its size under it ("1411 x 1411").
    const footer = shown.length === 1 && shown[0] === inputPreviewUrl(node) ? FOOTER : 0;
    // Sized once the images' shapes are known, so a node does not jump twice.
    // A Load Image's photo is fitted inside a 3:2 box: a tall photo does not stretch the node
    // down over the node below it (the shipped templates leave room for a 3:2 photo).
    const sizedBy = footer ? aspects.map(inputBoxAspect) : aspects;
    if (aspects.some((a) => a !== null)) this.#fit(node, top + wantedImageHeight(sizedBy, width, 96, 640) + footer + PAD + 4);
    const area: Rect = { x: PAD, y: top, w: width, h: Math.max(0, node.size[1] - top - footer - PAD - 4) };
    const rects = imageRects(aspects, area);
    this.#footers.delete(id);
    const hits: Array<{ rect: Rect; url: string }> = [];
    ctx.save();
    shown.forEach((url, i) => {
      const rect = rects[i]!;
      const img = this.#cache.get(url);
      if (img) {
        ctx.imageSmoothingQuality = 'high';
        ctx.drawImage(img, rect.x, rect.y, rect.w, rect.h);
        ctx.strokeStyle = 'rgba(255, 255, 255, 0.08)';
        ctx.lineWidth = 1;
        ctx.strokeRect(rect.x + 0.5, rect.y + 0.5, rect.w - 1, rect.h - 1);
        const label = labels[from + i];
        if (label) caption(ctx, rect, label);
        if (footer) this.#drawFooter(id, ctx, rect, `${img.naturalWidth} x ${img.naturalHeight}`);
        hits.push({ rect, url });
      } else {
        placeholder(ctx, rect, this.#cache.failed(url) ? 'image unavailable' : 'loading…');
      }
    });
    ctx.restore();
    this.#hits.set(id, hits);
  }

  /**
   * Draws a pair as one picture: A left of the split, B right of it (B at A's size), with a line
   * at the split and each side's label in its corner.
   */
  drawPair(node: LGraphNode, ctx: CanvasRenderingContext2D, pair: ComparePair): void {
    const id = String(node.id);
    if (node.flags.collapsed) return;
    const top = contentBottom(node) + 4;
    const width = node.size[0] - PAD * 2;
    const aspect = this.#cache.aspect(pair.a);
    if (aspect !== null) this.#fit(node, top + wantedImageHeight([aspect], width, 96, 640) + PAD + 4);
    const area: Rect = { x: PAD, y: top, w: width, h: Math.max(0, node.size[1] - top - PAD - 4) };
    const rect = imageRects([aspect], area)[0]!;
    const a = this.#cache.get(pair.a);
    const b = this.#cache.get(pair.b);
    if (!a || !b) {
      const failed = this.#cache.failed(pair.a) || this.#cache.failed(pair.b);
      placeholder(ctx, rect, failed ? 'image unavailable' : 'loading…');
      this.#hits.delete(id);
      this.#pairs.delete(id);
      return;
    }
    const split = this.#splits.get(id) ?? 0.5;
    const x = rect.x + rect.w * split;
    ctx.save();
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(a, rect.x, rect.y, rect.w, rect.h);
    ctx.save();
    ctx.beginPath();
    ctx.rect(x, rect.y, rect.x + rect.w - x, rect.h);
    ctx.clip();
    ctx.drawImage(b, rect.x, rect.y, rect.w, rect.h);
    ctx.restore();
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, rect.y);
    ctx.lineTo(x, rect.y + rect.h);
    ctx.stroke();
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x, rect.y + rect.h / 2, 5, 0, Math.PI * 2);
    ctx.fill();
    const captions: [string, string] = [pairCaption('A', pair.labelA), pairCaption('B', pair.labelB)];
    chip(ctx, captions[0], rect.x + 4, rect.y + 4, 'left', Math.max(0, x - rect.x - 8));
    chip(ctx, captions[1], rect.x + rect.w - 4, rect.y + 4, 'right', Math.max(0, rect.x + rect.w - x - 8));
    this.#captions.set(id, captions);
    ctx.restore();
    this.#hits.set(id, [{ rect, url: pair.a }]);
    this.#pairs.set(id, rect);
  }

  /**
   * The pointer moved over a node at a node-local point: over a pair, the split follows it.
   * Returns whether the node needs a redraw.
   */
  hover(node: LGraphNode, x: number, y: number): boolean {
    const id = String(node.id);
    const rect = this.#pairs.get(id);
    if (!rect || !inRect(x, y, rect) || rect.w <= 0) return false;
    const split = Math.min(1, Math.max(0, (x - rect.x) / rect.w));
    if (Math.abs(split - (this.#splits.get(id) ?? 0.5)) < 1e-3) return false;
    this.#splits.set(id, split);
    return true;
  }

  /** The captions last drawn on a node's A/B pair, or null. */
  captions(nodeId: string): [string, string] | null {
    return this.#pairs.has(nodeId) ? (this.#captions.get(nodeId) ?? null) : null;
  }

  /** The text last drawn under a node's input image (its size, "1411 x 1411"), or null. */
  footer(nodeId: string): string | null {
    return this.#footers.get(nodeId) ?? null;
  }

  #drawFooter(id: string, ctx: CanvasRenderingContext2D, rect: Rect, text: string): void {
    ctx.save();
    ctx.font = `11px ${THEME.font}`;
    ctx.fillStyle = THEME.muted;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, rect.x + rect.w / 2, rect.y + rect.h + FOOTER / 2 + 1);
    ctx.restore();
    this.#footers.set(id, text);
  }

  /** The rect (node-local) of the `index`th image last drawn in a node, or of its pair. */
  rect(nodeId: string, index: number): Rect | null {
    return this.#hits.get(nodeId)?.[index]?.rect ?? null;
  }

  /** The split of a node's pair (0..1), for tests. */
  split(nodeId: string): number | null {
    return this.#pairs.has(nodeId) ? (this.#splits.get(nodeId) ?? 0.5) : null;
  }

  /** The URL of the image under a node-local point, if any. */
  hit(node: LGraphNode, x: number, y: number): string | null {
    return this.#hits.get(String(node.id))?.find((h) => inRect(x, y, h.rect))?.url ?? null;
  }

  /** The node's size without the room added for images (unless the user resized it since). */
  baseSize(node: LGraphNode): [number, number] {
    const g = this.#growth.get(String(node.id));
    if (g && sameSize(node.size, g.to)) return [...g.from];
    return [node.size[0], node.size[1]];
  }

  forget(): void {
    this.#footers.clear();
    this.#growth.clear();
    this.#hits.clear();
    this.#pairs.clear();
    this.#splits.clear();
  }

  /** Makes the node `height` tall if its own (user's) size is shorter; never below that size. */
  #fit(node: LGraphNode, height: number): void {
    const id = String(node.id);
    let g = this.#growth.get(id);
    if (g && !sameSize(node.size, g.to)) {
      this.#growth.delete(id); // resized by hand: that size is the user's now
      g = undefined;
    }
    const base: [number, number] = g ? g.from : [node.size[0], node.size[1]];
    const target = Math.max(base[1], Math.round(height));
    if (Math.abs(node.size[1] - target) < 0.5) return;
    node.size[1] = target;
    if (target > base[1] + 0.5) this.#growth.set(id, { from: base, to: [node.size[0], target] });
    else this.#growth.delete(id);
    node.setDirtyCanvas(true, true);
  }

  #shrink(node: LGraphNode): void {
    const id = String(node.id);
    const g = this.#growth.get(id);
    if (!g) return;
    this.#growth.delete(id);
    if (sameSize(node.size, g.to)) {
      node.size[0] = g.from[0];
      node.size[1] = g.from[1];
      node.setDirtyCanvas(true, true);
    }
  }
}

const sameSize = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => Math.abs(a[0]! - b[0]!) < 0.5 && Math.abs(a[1]! - b[1]!) < 0.5;

/** How tall a Load Image node becomes once it shows a picked image of this aspect (width / height). */
export function inputNodeHeight(node: LGraphNode, aspect: number): number {
  const top = contentBottom(node) + 4;
  return Math.max(node.size[1], Math.round(top + wantedImageHeight([inputBoxAspect(aspect)], node.size[0] - PAD * 2, 96, 640) + FOOTER + PAD + 4));
}

/** The shape of the box a Load Image's photo is fitted in: the photo's, but never taller than 3:2. */
export function inputBoxAspect<T extends number | null>(aspect: T): T {
  return (aspect === null ? null : Math.max(aspect, 1.5)) as T;
}

/** Where the node's own content (slots and widgets) ends, node-local. */
export function contentBottom(node: LGraphNode): number {
  const rows = Math.max(node.inputs.filter((i) => !i.widget).length, node.outputs.length);
  let bottom = rows * LiteGraph.NODE_SLOT_HEIGHT + 2;
  for (const w of node.widgets ?? []) {
    if (!node.isWidgetVisible(w)) continue;
    bottom = Math.max(bottom, w.y + (w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT + 4));
  }
  return bottom;
}

/** A caption along the bottom of an image: white on a dark band, cut to the image's width. */
function caption(ctx: CanvasRenderingContext2D, rect: Rect, text: string): void {
  if (rect.h < 28 || rect.w < 36) return;
  const size = rect.w < 120 ? 10 : 11;
  ctx.save();
  ctx.font = `600 ${size}px ${THEME.font}`;
  const band = size + 8;
  ctx.fillStyle = 'rgba(10, 11, 14, 0.7)';
  ctx.fillRect(rect.x, rect.y + rect.h - band, rect.w, band);
  ctx.fillStyle = '#fff';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  // "method=nearest, scale=0.1" becomes "nearest · 0.1" where the whole does not fit.
  const short = ctx.measureText(text).width <= rect.w - 8 ? text : text.split(', ').map((p) => p.slice(p.indexOf('=') + 1)).join(' · ');
  ctx.fillText(fitText(ctx, short, rect.w - 8), rect.x + 4, rect.y + rect.h - band / 2);
  ctx.restore();
}

/** A label chip at (x, y): its left (or right) edge there, at most `max` wide. */
function chip(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, align: 'left' | 'right', max: number): void {
  ctx.font = `600 10px ${THEME.font}`;
  const shown = fitText(ctx, text, max - 8);
  if (!shown) return;
  const w = ctx.measureText(shown).width + 8;
  const left = align === 'left' ? x : x - w;
  ctx.fillStyle = 'rgba(10, 11, 14, 0.72)';
  ctx.beginPath();
  ctx.roundRect(left, y, w, 16, 4);
  ctx.fill();
  ctx.fillStyle = '#fff';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  ctx.fillText(shown, left + 4, y + 8.5);
}

/** `text`, cut with an ellipsis to fit `max` pixels ('' when not even that fits). */
function fitText(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  if (max <= 0) return '';
  if (ctx.measureText(text).width <= max) return text;
  for (let n = text.length - 1; n > 0; n--) {
    const cut = `${text.slice(0, n)}…`;
    if (ctx.measureText(cut).width <= max) return cut;
  }
  return '';
}

function placeholder(ctx: CanvasRenderingContext2D, rect: Rect, text: string): void {
  ctx.fillStyle = THEME.widgetBg;
  ctx.beginPath();
  ctx.roundRect(rect.x, rect.y, rect.w, rect.h, 4);
  ctx.fill();
  ctx.fillStyle = THEME.faint;
  ctx.font = `12px ${THEME.font}`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, rect.x + rect.w / 2, rect.y + rect.h / 2);
}

/** The picked input file of a node with an image-upload combo (Load Image), shown until a run has output. */
export function inputPreviewUrl(node: LGraphNode): string | null {
  const plan = studioClassOf(node)?.plans.find((p) => p.type === 'combo' && p.upload === 'image');
  if (!plan || node.inputs.some((i) => i.widget?.name === plan.name && i.link != null)) return null;
  const value = node.widgets?.find((w) => w.name === plan.name)?.value;
  if (typeof value !== 'string' || !value) return null;
  return `/api/view?${new URLSearchParams({ folder: 'inputs', file: value })}`;
}
