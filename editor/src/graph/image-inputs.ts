import { LiteGraph, type LGraph, type LGraphNode } from '@comfyorg/litegraph';
import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';
import { studioClassOf, type StudioNodeClass } from './node-classes.ts';
import type { Box } from './placement.ts';

/**
 * Nodes that take an image file (an image-upload combo: Load Image), and the lists of files their
 * combos offer, which change while the editor is open (uploads, files copied into inputs/).
 */

/** The name of a node's image-upload widget, or null for nodes without one or whose widget is fed by a link. */
export function imageWidgetOf(node: LGraphNode): string | null {
  const plan = studioClassOf(node)?.plans.find((p) => p.type === 'combo' && p.upload === 'image');
  if (!plan) return null;
  if (node.inputs.some((i) => i.widget?.name === plan.name && i.link != null)) return null;
  return plan.name;
}

/** The node's box in graph units, title bar included. */
export function nodeBox(node: LGraphNode): Box {
  const title = LiteGraph.NODE_TITLE_HEIGHT;
  const w = node.flags.collapsed ? (node._collapsed_width ?? LiteGraph.NODE_COLLAPSED_WIDTH) : node.size[0];
  const h = node.flags.collapsed ? 0 : node.size[1];
  return { x: node.pos[0], y: node.pos[1] - title, w, h: h + title };
}

/**
 * Gives every combo of every node the values the catalogue lists now (the image list after an
 * upload): the node classes' plans, so that new nodes get them, and each node's widgets. Values
 * already chosen stay as they are. Returns how many widgets changed.
 */
export function refreshComboOptions(graph: LGraph, catalogue: NodeCatalogueJson): number {
  for (const def of catalogue.nodes) {
    const cls = LiteGraph.registered_node_types[def.id] as unknown as Partial<StudioNodeClass> | undefined;
    if (!cls?.plans) continue;
    cls.catalogue = def;
    for (const plan of cls.plans) {
      if (plan.type !== 'combo') continue;
      const spec = def.widgets.find((w) => w.name === plan.name);
      if (!spec || !Array.isArray(spec.options)) continue;
      plan.options.values.splice(0, plan.options.values.length, ...spec.options.map(String));
    }
  }
  let changed = 0;
  for (const node of graph.nodes) {
    for (const plan of studioClassOf(node)?.plans ?? []) {
      if (plan.type !== 'combo') continue;
      const widget = node.widgets?.find((w) => w.name === plan.name);
      if (!widget) continue;
      const current = (widget.options as { values?: unknown }).values;
      if (Array.isArray(current) && current.length === plan.options.values.length && current.every((v, i) => v === plan.options.values[i])) continue;
      (widget.options as { values: string[] }).values = [...plan.options.values];
      changed++;
    }
  }
  return changed;
}
