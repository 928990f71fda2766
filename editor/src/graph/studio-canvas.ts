import { LGraphCanvas, type LGraph, type LGraphNode } from '@comfyorg/litegraph';

type SearchOptions = Parameters<LGraphCanvas['showSearchBox']>[1];
import { isAppShortcut } from './app-keys.ts';

/**
 * Litegraph's canvas with three changes: a hook that draws over each node after litegraph has drawn
 * it (the run overlay), a search box (double-click) kept inside the window, and no keyboard
 * shortcuts of its own for edits. Delete, copy, paste, undo
 * and group are the app's (GraphView methods bound by the shell), so litegraph must not handle
 * them too: its Ctrl+V would paste a second time.
 */
export class StudioCanvas extends LGraphCanvas {
  afterDrawNode: ((node: LGraphNode, ctx: CanvasRenderingContext2D) => void) | null = null;

  constructor(canvas: HTMLCanvasElement, graph: LGraph) {
    // No render loop yet: the subclass fields are set only after super() returns.
    super(canvas, graph, { skip_render: true });
    // Titles and widgets still drawn at 45 %: a large template fitted to the view stays readable.
    this.low_quality_zoom_threshold = 0.45;
  }

  override drawNode(node: LGraphNode, ctx: CanvasRenderingContext2D): void {
    super.drawNode(node, ctx);
    this.afterDrawNode?.(node, ctx);
  }

  override processKey(e: KeyboardEvent): void {
    if (e.type === 'keydown' && isAppShortcut(e)) return;
    super.processKey(e);
  }

  /** Litegraph puts the box at the pointer, cut off near the window's right and bottom edges. */
  override showSearchBox(event: MouseEvent, options?: SearchOptions): HTMLDivElement {
    const dialog = super.showSearchBox(event, options);
    keepInWindow(dialog);
    return dialog;
  }
}

/** Moves a box (its list growing as one types) so that all of it stays inside the window. */
export function keepInWindow(box: HTMLElement, margin = 8): void {
  // Litegraph shortens the list to nearly nothing near the canvas' bottom; moving the box up is better.
  const helper = box.querySelector<HTMLElement>('.helper');
  if (helper) helper.style.maxHeight = `${Math.max(120, Math.min(320, window.innerHeight - 140))}px`;
  const place = (): void => {
    if (!box.isConnected) return observer.disconnect();
    const r = box.getBoundingClientRect();
    const left = parseFloat(box.style.left) || 0;
    const top = parseFloat(box.style.top) || 0;
    const dx = r.right > window.innerWidth - margin ? window.innerWidth - margin - r.right : r.left < margin ? margin - r.left : 0;
    const dy = r.bottom > window.innerHeight - margin ? window.innerHeight - margin - r.bottom : r.top < margin ? margin - r.top : 0;
    if (dx) box.style.left = `${left + dx}px`;
    if (dy) box.style.top = `${top + dy}px`;
  };
  const observer = new ResizeObserver(place);
  observer.observe(box);
  place();
}
