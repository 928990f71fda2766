import { LiteGraph, type ISerialisedGraph, type LGraph, type LGraphCanvas, type LGraphNode } from '@comfyorg/litegraph';
import type { ISerialisedNode } from '@comfyorg/litegraph/dist/types/serialisation';
import type { Workflow } from '../../../server/protocol/index.ts';
import { MissingNode, missingNodeMinSize } from './missing-node.ts';
import { studioClassOf } from './node-classes.ts';
import { buildWorkflow, planLoad, type CatalogueLookup, type GraphSnapshot, type LoadPlan, type PlannedNode } from './workflow-convert.ts';
import { coerceWidgetValue } from './widget-specs.ts';

/**
 * Puts a workflow on a litegraph graph: slots and links are normalised by planLoad, nodes are
 * created from the catalogue (or as placeholders), and widget values are set by name.
 */
export function loadIntoGraph(graph: LGraph, wf: Workflow, catalogue: CatalogueLookup): LoadPlan {
  const plan = planLoad(wf, catalogue);
  const base = {
    version: LiteGraph.VERSION,
    last_node_id: plan.lastNodeId,
    last_link_id: plan.lastLinkId,
    nodes: [],
    links: plan.links.map(([id, from, fromSlot, to, toSlot, type]) => [id, from, fromSlot, to, toSlot, type]),
    groups: plan.groups.map((g, i) => ({ id: i + 1, title: g.title, bounding: [...g.bounding], ...(g.color ? { color: g.color } : {}) })),
    extra: {},
    config: {},
  } as unknown as ISerialisedGraph;
  graph.configure(base);
  const created: Array<[LGraphNode, PlannedNode]> = [];
  for (const info of plan.nodes) {
    const node = (info.known ? LiteGraph.createNode(info.type, info.title) : null) ?? new MissingNode(info.type, info.title);
    node.id = info.id;
    graph.add(node, true);
    created.push([node, info]);
  }
  for (const [node, info] of created) {
    const { values, known: _known, ...rest } = info;
    node.configure(rest as unknown as ISerialisedNode);
    if (node instanceof MissingNode) {
      node.keptValues = { ...values };
      node.size = missingNodeMinSize(node);
    } else {
      setWidgetValues(node, values);
    }
  }
  graph.updateExecutionOrder();
  for (const [node] of created) arrangeNode(node);
  graph.state.lastNodeId = Math.max(graph.state.lastNodeId, plan.lastNodeId);
  graph.state.lastLinkId = Math.max(graph.state.lastLinkId, plan.lastLinkId);
  graph.setDirtyCanvas(true, true);
  return plan;
}

function setWidgetValues(node: LGraphNode, values: Record<string, unknown>): void {
  const cls = studioClassOf(node);
  if (!cls) return;
  for (const plan of cls.plans) {
    const widget = node.widgets?.find((w) => w.name === plan.name);
    if (widget) widget.value = coerceWidgetValue(plan, values[plan.name]);
  }
}

/**
 * Lays out slots and widgets now (litegraph does it while drawing, growing nodes whose widgets do
 * not fit), so the size a workflow reports right after loading is the size it will keep.
 */
export function arrangeNode(node: LGraphNode): void {
  if (node.flags.collapsed || !node.graph) return;
  node._setConcreteSlots();
  node.arrange();
}

/** The current widget values of a node, by widget name (placeholders return what they loaded with). */
export function widgetValues(node: LGraphNode): Record<string, unknown> {
  if (node instanceof MissingNode) return { ...node.keptValues };
  const values: Record<string, unknown> = {};
  const cls = studioClassOf(node);
  for (const plan of cls?.plans ?? []) {
    const widget = node.widgets?.find((w) => w.name === plan.name);
    if (widget) values[plan.name] = widget.value;
  }
  return values;
}

export interface SnapshotOptions {
  name?: string;
  extra: Record<string, unknown>;
  sizeOf: (node: LGraphNode) => [number, number];
}

/** Reads the graph back as plain data (see buildWorkflow). */
export function snapshotGraph(graph: LGraph, canvas: LGraphCanvas, opts: SnapshotOptions): GraphSnapshot {
  return {
    ...(opts.name !== undefined ? { name: opts.name } : {}),
    lastNodeId: Number(graph.state.lastNodeId) || 0,
    lastLinkId: graph.state.lastLinkId,
    nodes: graph.nodes.map((n) => ({
      id: n.id,
      type: n.type,
      title: n.title,
      pos: n.pos,
      size: opts.sizeOf(n),
      flags: n.flags as Record<string, unknown>,
      mode: n.mode,
      ...(n.color ? { color: n.color } : {}),
      ...(n.bgcolor ? { bgcolor: n.bgcolor } : {}),
      inputs: n.inputs.map((i) => ({ name: i.name, type: i.type, link: i.link, ...(i.widget ? { widget: { name: i.widget.name } } : {}) })),
      outputs: n.outputs.map((o) => ({ name: o.name, type: o.type, links: o.links })),
      properties: n.properties as Record<string, unknown>,
      values: widgetValues(n),
    })),
    links: [...graph.links.values()].map((l) => ({ id: l.id, from: l.origin_id, fromSlot: l.origin_slot, to: l.target_id, toSlot: l.target_slot, type: l.type })),
    groups: graph.groups.map((g) => ({ title: g.title, bounding: g._bounding, ...(g.color ? { color: g.color } : {}) })),
    extra: opts.extra,
    ds: { scale: canvas.ds.scale, offset: canvas.ds.offset },
  };
}

export function serializeGraph(graph: LGraph, canvas: LGraphCanvas, opts: SnapshotOptions): Workflow {
  return buildWorkflow(snapshotGraph(graph, canvas, opts));
}
