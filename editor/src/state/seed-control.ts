import type { NodeCatalogueJson, Workflow } from '../../../server/protocol/index.ts';

export type SeedControl = 'fixed' | 'increment' | 'randomize';
const SEED_MAX = Number.MAX_SAFE_INTEGER;

export interface WidgetUpdate {
  nodeId: string;
  widget: string;
  value: number;
}

/**
 * The SEED widget changes "control after queue" asks for, read from each node's
 * `properties.control_after_generate`: one mode for all the node's seeds, or a mode per widget
 * name. Linked seeds and muted values are left alone; no property means fixed.
 */
export function seedUpdates(workflow: Workflow, catalogue: NodeCatalogueJson, random = randomSeed): WidgetUpdate[] {
  const updates: WidgetUpdate[] = [];
  for (const node of workflow.nodes) {
    const control = node.properties?.control_after_generate;
    if (control === undefined) continue;
    const spec = catalogue.nodes.find((n) => n.id === node.type);
    for (const widget of spec?.widgets ?? []) {
      if (widget.kind !== 'SEED') continue;
      const mode = typeof control === 'string' ? control : (control as Record<string, unknown> | null)?.[widget.name];
      const linked = node.inputs.some((i) => i.widget?.name === widget.name && i.link !== null);
      const current = node.widgets_values[widget.name];
      if (linked || typeof current !== 'number') continue;
      if (mode === 'increment') updates.push({ nodeId: String(node.id), widget: widget.name, value: current >= SEED_MAX ? 0 : current + 1 });
      else if (mode === 'randomize') updates.push({ nodeId: String(node.id), widget: widget.name, value: random() });
    }
  }
  return updates;
}

/** A uniform integer in [0, 2^53 - 1]. */
export function randomSeed(): number {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return (hi! & 0x1fffff) * 2 ** 32 + lo!;
}
