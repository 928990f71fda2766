import type { LGraph, LGraphCanvas, Point } from '@comfyorg/litegraph';
import type { NodeImages } from './node-images.ts';

export interface PointerTracking {
  /** The pointer in graph coordinates while it is over the canvas, else null. */
  graphPointer(): Point | null;
  stop(): void;
}

/**
 * Pointer bookkeeping the view needs besides litegraph's: whether the pointer is over the canvas
 * (where a paste lands), clicks on images drawn in nodes, and "something may have changed" after
 * any press or key release, including those in litegraph's menus and dialogs.
 */
export function trackPointer(
  el: HTMLCanvasElement,
  canvas: LGraphCanvas,
  graph: LGraph,
  images: NodeImages,
  onImageClick: (nodeId: string, url: string) => void,
  maybeEdited: () => void,
): PointerTracking {
  let inside = false;
  let press: { x: number; y: number; nodeId: string; url: string } | null = null;

  const enter = (): void => {
    inside = true;
  };
  const leave = (): void => {
    inside = false;
  };
  const down = (e: PointerEvent): void => {
    inside = true;
    press = null;
    if (e.button !== 0 || e.shiftKey || e.ctrlKey || e.metaKey || e.altKey) return;
    const p = canvas.convertEventToCanvasOffset(e);
    const x = p[0] ?? 0;
    const y = p[1] ?? 0;
    const node = graph.getNodeOnPos(x, y, canvas.visible_nodes);
    if (!node) return;
    const url = images.hit(node, x - node.pos[0], y - node.pos[1]);
    if (url) press = { x: e.clientX, y: e.clientY, nodeId: String(node.id), url };
  };
  /** Over a Compare node's pair, the A/B split follows the pointer (not while dragging). */
  const move = (e: PointerEvent): void => {
    if (e.buttons !== 0) return;
    const p = canvas.convertEventToCanvasOffset(e);
    const x = p[0] ?? 0;
    const y = p[1] ?? 0;
    const node = graph.getNodeOnPos(x, y, canvas.visible_nodes);
    if (node && images.hover(node, x - node.pos[0], y - node.pos[1])) canvas.setDirty(true, false);
  };
  const up = (e: PointerEvent): void => {
    const p = press;
    press = null;
    if (p && Math.hypot(e.clientX - p.x, e.clientY - p.y) < 5) onImageClick(p.nodeId, p.url);
  };
  el.addEventListener('pointerenter', enter);
  el.addEventListener('pointerleave', leave);
  el.addEventListener('pointerdown', down, true);
  el.addEventListener('pointerup', up, true);
  el.addEventListener('pointermove', move);
  document.addEventListener('pointerup', maybeEdited, true);
  document.addEventListener('keyup', maybeEdited, true);
  return {
    graphPointer: () => (inside ? [canvas.graph_mouse[0], canvas.graph_mouse[1]] : null),
    stop: () => {
      el.removeEventListener('pointerenter', enter);
      el.removeEventListener('pointerleave', leave);
      el.removeEventListener('pointerdown', down, true);
      el.removeEventListener('pointerup', up, true);
      el.removeEventListener('pointermove', move);
      document.removeEventListener('pointerup', maybeEdited, true);
      document.removeEventListener('keyup', maybeEdited, true);
    },
  };
}
