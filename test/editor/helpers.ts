import fs from 'node:fs';
import path from 'node:path';
import type { NodeCatalogueJson, Workflow } from '../../server/protocol/index.ts';
import { parseWorkflow } from '../../server/protocol/index.ts';
import type { GraphSnapshot, LoadPlan } from '../../editor/src/graph/workflow-convert.ts';
import { coerceWidgetValue, planWidget, type CatalogueNode } from '../../editor/src/graph/widget-specs.ts';

/** A snapshot of GET /api/nodes, so these tests do not depend on the node set of the day. */
export const catalogue = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/catalogue.json'), 'utf8')) as NodeCatalogueJson;
export const lookup = new Map<string, CatalogueNode>(catalogue.nodes.map((n) => [n.id, n]));

export function template(name: string): Workflow {
  return parseWorkflow(JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../../workflows', `${name}.json`), 'utf8')));
}

/** What litegraph hands back after being configured from a plan (the canvas in between is skipped). */
export function snapshotOf(plan: LoadPlan, extra: Partial<GraphSnapshot> = {}): GraphSnapshot {
  return {
    lastNodeId: plan.lastNodeId,
    lastLinkId: plan.lastLinkId,
    nodes: plan.nodes.map((n) => {
      const def = lookup.get(n.type);
      const values: Record<string, unknown> = {};
      if (def) for (const w of def.widgets) values[w.name] = coerceWidgetValue(planWidget(w), n.values[w.name]);
      else Object.assign(values, n.values);
      return {
        id: n.id,
        type: n.type,
        title: n.title ?? def?.display_name ?? n.type,
        pos: Float32Array.from(n.pos),
        size: Float32Array.from(n.size ?? [200, 100]),
        flags: n.flags,
        mode: n.mode,
        ...(n.color ? { color: n.color } : {}),
        ...(n.bgcolor ? { bgcolor: n.bgcolor } : {}),
        inputs: n.inputs,
        outputs: n.outputs,
        properties: n.properties,
        values,
      };
    }),
    links: plan.links.map(([id, from, fromSlot, to, toSlot, type]) => ({ id, from, fromSlot, to, toSlot, type })),
    groups: plan.groups,
    extra: {},
    ds: { scale: 1, offset: [0, 0] },
    ...extra,
  };
}
