import { LGraphCanvas, type LGraph, type LGraphNode } from '@comfyorg/litegraph';
import { isAppShortcut } from './app-keys.ts';

/**
 * Litegraph's canvas with two changes: a hook that draws over each node after litegraph has drawn
 * it (the run overlay), and no keyboard shortcuts of its own for edits. Delete, copy, paste, undo
 * and group are the app's (GraphView methods bound by the shell), so litegraph must not handle
 * them too: its Ctrl+V would paste a second time.
 */
export class StudioCanvas extends LGraphCanvas {
  afterDrawNode: ((node: LGraphNode, ctx: CanvasRenderingContext2D) => void) | null = null;

  constructor(canvas: HTMLCanvasElement, graph: LGraph) {
    // No render loop yet: the subclass fields are set only after super() returns.
    super(canvas, graph, { skip_render: true });
  }

  override drawNode(node: LGraphNode, ctx: CanvasRenderingContext2D): void {
    super.drawNode(node, ctx);
    this.afterDrawNode?.(node, ctx);
  }

  override processKey(e: KeyboardEvent): void {
    if (e.type === 'keydown' && isAppShortcut(e)) return;
    super.processKey(e);
  }
}
