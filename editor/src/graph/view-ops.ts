import { LiteGraph, type LGraph, type LGraphCanvas, type LGraphNode } from '@comfyorg/litegraph';
import { MissingNode } from './missing-node.ts';
import { studioClassOf } from './node-classes.ts';
import { SEED_CONTROL_PROPERTY, isSeedControlMode, sanitizeNumber, toScalar, withSeedControl } from './widget-specs.ts';
import { arrangeNode } from './workflow-io.ts';

/** Small GraphView operations that need litegraph, kept out of the composition root. */

/** A node by the string id the app uses. */
export function nodeById(graph: LGraph, id: string): LGraphNode | null {
  return graph.getNodeById(/^\d+$/.test(id) ? Number(id) : id);
}

/** Sets a widget by name, as the app does it (seed control, tours): sanitised like a user edit. */
export function setNodeWidget(node: LGraphNode, name: string, value: unknown): void {
  if (node instanceof MissingNode) {
    node.keptValues[name] = toScalar(value);
    return;
  }
  const widget = node.widgets?.find((w) => w.name === name);
  if (!widget) throw new Error(`node ${String(node.id)} (${node.type}) has no widget "${name}"`);
  const seedOf = (widget as { seedOf?: string }).seedOf;
  if (seedOf) {
    if (!isSeedControlMode(value)) throw new Error(`"${String(value)}" is not a seed control mode`);
    node.properties[SEED_CONTROL_PROPERTY] = withSeedControl(node.properties[SEED_CONTROL_PROPERTY], seedOf, value);
    widget.value = value;
    return;
  }
  const plan = studioClassOf(node)?.plans.find((p) => p.name === name);
  switch (plan?.type) {
    case 'number':
      widget.value = sanitizeNumber(Number(value), plan.options, plan.integer);
      break;
    case 'toggle':
      widget.value = value === true || value === 'true';
      break;
    case 'text': {
      const text = String(value ?? '');
      widget.value = plan.options.maxLength !== undefined ? text.slice(0, plan.options.maxLength) : text;
      break;
    }
    default:
      widget.value = String(value ?? '');
  }
}

/** Client (page) coordinates of a slot's connection dot. */
export function slotClientPosition(
  canvas: LGraphCanvas,
  graph: LGraph,
  el: HTMLCanvasElement,
  nodeId: string,
  kind: 'input' | 'output',
  slot: number,
): [number, number] | null {
  const node = nodeById(graph, nodeId);
  if (!node || !(kind === 'input' ? node.inputs : node.outputs)[slot]) return null;
  arrangeNode(node);
  const pos = kind === 'input' ? node.getInputPos(slot) : node.getOutputPos(slot);
  const p = canvas.ds.convertOffsetToCanvas(pos);
  const rect = el.getBoundingClientRect();
  return [rect.left + (p[0] ?? 0), rect.top + (p[1] ?? 0)];
}

export interface ViewState {
  scale: number;
  offset: [number, number];
}

export function viewState(canvas: LGraphCanvas): ViewState {
  return { scale: canvas.ds.scale, offset: [canvas.ds.offset[0], canvas.ds.offset[1]] };
}

/** Applies a saved view (`extra.ds`) if it is well formed; otherwise resets to 100 % at the origin. */
export function applyView(canvas: LGraphCanvas, ds: unknown): void {
  const v = ds as Partial<ViewState> | null | undefined;
  const scale = typeof v?.scale === 'number' && v.scale > 0.05 && v.scale < 20 ? v.scale : 1;
  const offset = Array.isArray(v?.offset) && v.offset.every((n) => typeof n === 'number' && Number.isFinite(n)) ? v.offset : [0, 0];
  canvas.ds.scale = scale;
  canvas.ds.offset[0] = offset[0] ?? 0;
  canvas.ds.offset[1] = offset[1] ?? 0;
  canvas.setDirty(true, true);
}

/**
 * Shows every node: the view centred on the graph's bounding box (`boxes`, graph units), scaled
 * so it fits the `width` x `height` canvas with `margin` pixels around it, never above 100 %.
 */
export function fitView(canvas: LGraphCanvas, boxes: ReadonlyArray<{ x: number; y: number; w: number; h: number }>, width: number, height: number, margin = 40): void {
  if (!boxes.length || width <= 2 * margin || height <= 2 * margin) return;
  const x0 = Math.min(...boxes.map((b) => b.x));
  const y0 = Math.min(...boxes.map((b) => b.y));
  const x1 = Math.max(...boxes.map((b) => b.x + b.w));
  const y1 = Math.max(...boxes.map((b) => b.y + b.h));
  const scale = Math.max(0.1, Math.min(1, (width - 2 * margin) / Math.max(1, x1 - x0), (height - 2 * margin) / Math.max(1, y1 - y0)));
  canvas.ds.scale = scale;
  canvas.ds.offset[0] = width / 2 / scale - (x0 + x1) / 2;
  canvas.ds.offset[1] = height / 2 / scale - (y0 + y1) / 2;
  canvas.setDirty(true, true);
}

/** Client coordinates of the middle of a node's widget row, for pointer-driven tests and tours. */
export function widgetClientPosition(canvas: LGraphCanvas, graph: LGraph, el: HTMLCanvasElement, nodeId: string, widget: string): [number, number] | null {
  const node = nodeById(graph, nodeId);
  const w = node?.widgets?.find((x) => x.name === widget);
  if (!node || !w || node.flags.collapsed) return null;
  arrangeNode(node);
  const height = w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT;
  const p = canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0] / 2, node.pos[1] + w.y + height / 2]);
  const rect = el.getBoundingClientRect();
  return [rect.left + (p[0] ?? 0), rect.top + (p[1] ?? 0)];
}
