import { LiteGraph, type LGraphNode } from '@comfyorg/litegraph';
import type { ImageCache } from './image-cache.ts';
import { studioClassOf } from './node-classes.ts';
import { imageRects, inRect, wantedImageHeight, type Rect } from './image-layout.ts';
import { THEME } from './theme.ts';

const PAD = 8;
const MAX_SHOWN = 16;

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

  constructor(cache: ImageCache) {
    this.#cache = cache;
  }

  /** Draws `urls` (node-local coordinates; ctx is at the node's origin). */
  draw(node: LGraphNode, ctx: CanvasRenderingContext2D, urls: readonly string[]): void {
    const id = String(node.id);
    const shown = urls.slice(-MAX_SHOWN);
    if (!shown.length || node.flags.collapsed) {
      this.#hits.delete(id);
      if (!shown.length) this.#shrink(node);
      return;
    }
    const top = contentBottom(node) + 4;
    const width = node.size[0] - PAD * 2;
    const aspects = shown.map((u) => this.#cache.aspect(u));
    // Sized once the images' shapes are known, so a node does not jump twice.
    if (aspects.some((a) => a !== null)) this.#fit(node, top + wantedImageHeight(aspects, width, 96, 640) + PAD + 4);
    const area: Rect = { x: PAD, y: top, w: width, h: Math.max(0, node.size[1] - top - PAD - 4) };
    const rects = imageRects(aspects, area);
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
        hits.push({ rect, url });
      } else {
        placeholder(ctx, rect, this.#cache.failed(url) ? 'image unavailable' : 'loading…');
      }
    });
    ctx.restore();
    this.#hits.set(id, hits);
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
    this.#growth.clear();
    this.#hits.clear();
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
