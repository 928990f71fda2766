import type { ApiPrompt, InputValue } from '../protocol/prompt.ts';
import { MODE_ALWAYS, MODE_BYPASS, MODE_MUTED, type Workflow, type WorkflowNode } from '../protocol/workflow-schema.ts';
import type { NodeRegistry } from './registry.ts';

/**
 * Turns the editor's workflow into the executable prompt: links become `[source, slot]`, muted
 * nodes are left out and bypassed nodes pass their first input of a matching type through.
 */
export function workflowToPrompt(wf: Workflow, registry: NodeRegistry): ApiPrompt {
  const nodes = new Map(wf.nodes.map((n) => [n.id, n]));
  const links = new Map(wf.links.map((l) => [l[0], l]));
  const source = (linkId: number, seen = new Set<number>()): [number, number] | undefined => {
    const link = links.get(linkId);
    if (!link) return undefined;
    const [, from, fromSlot, , , type] = link;
    const src = nodes.get(from);
    if (!src || src.mode === MODE_MUTED) return undefined;
    if (src.mode !== MODE_BYPASS) return [from, fromSlot];
    if (seen.has(from)) return undefined;
    seen.add(from);
    const through = src.inputs.find((i) => i.link !== null && i.type === type && !i.widget);
    return through ? source(through.link!, seen) : undefined;
  };
  const prompt: ApiPrompt = {};
  for (const node of wf.nodes) {
    if (node.mode !== MODE_ALWAYS) continue;
    // Input and widget names come from the document: gathered in a Map and turned into an object
    // with Object.fromEntries, which defines own properties, so a slot named `__proto__` is an
    // input like any other (validation reports it as unknown) and never replaces a prototype.
    const inputs = new Map<string, InputValue>();
    const def = registry.get(node.type);
    for (const [name, value] of Object.entries(node.widgets_values)) {
      if (value !== null && (!def || Object.hasOwn(def.widgets, name))) inputs.set(name, value);
    }
    for (const slot of node.inputs) {
      if (slot.link === null) continue;
      const name = slot.widget?.name ?? slot.name;
      const src = source(slot.link);
      if (src) inputs.set(name, [String(src[0]), src[1]]);
      else if (!links.has(slot.link)) inputs.set(name, [`missing-link-${slot.link}`, 0]);
      else inputs.delete(name);
    }
    prompt[String(node.id)] = { class_type: node.type, inputs: Object.fromEntries(inputs), ...(node.title ? { _meta: { title: node.title } } : {}) };
  }
  return prompt;
}

/** Finds a node by id or by title (the CLI's `--set NODE.WIDGET=VALUE`). */
export function findWorkflowNode(wf: Workflow, ref: string): WorkflowNode | undefined {
  return wf.nodes.find((n) => String(n.id) === ref) ?? wf.nodes.find((n) => n.title === ref || n.type === ref);
}
