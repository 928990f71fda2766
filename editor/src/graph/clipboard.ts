import { LGraphNode, type LGraphCanvas, type Point } from '@comfyorg/litegraph';
import { arrangeNode } from './workflow-io.ts';

const STORAGE_KEY = 'litegrapheditor_clipboard';
const OFFSET = 30;

/**
 * Copy and paste of the selection through litegraph's clipboard (kept in localStorage, so it
 * works between tabs): nodes keep their widget values and the links between copied nodes.
 * Pasting goes to the pointer when it is over the canvas, else next to the copied nodes,
 * stepping further with each paste.
 */
export class GraphClipboard {
  readonly #canvas: LGraphCanvas;
  #pastes = 0;

  constructor(canvas: LGraphCanvas) {
    this.#canvas = canvas;
  }

  copy(): boolean {
    if (!this.#canvas.selectedItems.size) return false;
    try {
      this.#canvas.copyToClipboard();
    } catch (err) {
      console.warn('copy failed', err);
      return false;
    }
    this.#pastes = 0;
    return true;
  }

  /** Pastes and returns the new nodes. */
  paste(pointer: Point | null): LGraphNode[] {
    const origin = clipboardOrigin();
    if (!origin) return [];
    let position: Point;
    if (pointer) {
      position = [pointer[0], pointer[1]];
    } else {
      this.#pastes += 1;
      position = [origin[0] + OFFSET * this.#pastes, origin[1] + OFFSET * this.#pastes];
    }
    try {
      const result = this.#canvas._pasteFromClipboard({ position });
      const nodes = (result?.created ?? []).filter((item): item is LGraphNode => item instanceof LGraphNode);
      for (const node of nodes) arrangeNode(node);
      return nodes;
    } catch (err) {
      console.warn('paste failed', err);
      return [];
    }
  }
}

/** The top-left of what is on the clipboard, or null when it holds nothing pasteable. */
function clipboardOrigin(): Point | null {
  let parsed: { nodes?: Array<{ pos?: number[] }>; groups?: Array<{ bounding?: number[] }> };
  try {
    parsed = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') ?? {};
  } catch {
    return null;
  }
  const points = [
    ...(parsed.nodes ?? []).map((n) => n.pos),
    ...(parsed.groups ?? []).map((g) => g.bounding),
  ].filter((p): p is number[] => Array.isArray(p) && p.length >= 2);
  if (!(parsed.nodes ?? []).length && !(parsed.groups ?? []).length) return null;
  if (!points.length) return null;
  return [Math.min(...points.map((p) => p[0]!)), Math.min(...points.map((p) => p[1]!))];
}
