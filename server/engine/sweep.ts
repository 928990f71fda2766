import type { BranchCoord } from '../../nodes/api/branch.ts';
import { branchLabel } from '../../nodes/api/branch.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import { checkWidgetValue, type WidgetSpec } from '../../nodes/api/widgets.ts';
import { MAX_SWEEP_BRANCHES, parseSweepNumbers, splitSweepItems } from '../../nodes/compare/lib/sweep-values.ts';
import type { LinkRef } from '../protocol/prompt.ts';
import type { ValidationIssue } from '../protocol/validation.ts';
import type { CompiledNode, GatherLink } from './graph.ts';

export { MAX_SWEEP_BRANCHES };
/** Separator between a swept node's id and its branch number: node 5 becomes 5:0, 5:1, ... */
export const BRANCH_SEPARATOR = ':';

export interface SweepAxis {
  target: string;
  widget: string;
  values: Array<string | number | boolean>;
}

/** The widgets of a Sweep node (nodes/compare/sweep.ts), as validation compiled them. */
export interface SweepWidgets {
  target: string;
  x_widget: string;
  x_values: string;
  y_target: string;
  y_widget: string;
  y_values: string;
}

type Issue = (input: string, message: string, code?: ValidationIssue['code']) => void;

/**
 * Parses a value list for one widget: comma-separated items (or one per line when the text has
 * line breaks, for texts that contain commas); for numbers an item may be a range
 * `start:stop[:step]`, stop included. Every value is checked against the widget's own limits.
 */
export function parseSweepValues(text: string, spec: WidgetSpec, env: NodeEnv): { values: Array<string | number | boolean> } | { error: string } {
  const items = splitSweepItems(text);
  if (items.length === 0) return { error: 'the value list is empty' };
  const values: Array<string | number | boolean> = [];
  for (const item of items) {
    let parsed: Array<string | number | boolean>;
    switch (spec.kind) {
      case 'INT':
      case 'SEED':
      case 'FLOAT': {
        const range = parseSweepNumbers(item);
        if ('error' in range) return range;
        parsed = range.values;
        break;
      }
      case 'BOOLEAN':
        if (!/^(true|false)$/i.test(item)) return { error: `'${item}' is not true or false` };
        parsed = [item.toLowerCase() === 'true'];
        break;
      default:
        parsed = [item];
    }
    for (const value of parsed) {
      const reason = checkWidgetValue(spec, value, env);
      if (reason) return { error: `value '${String(value)}': ${reason}` };
      values.push(value);
    }
    if (values.length > MAX_SWEEP_BRANCHES) return { error: `more than ${MAX_SWEEP_BRANCHES} values` };
  }
  return { values };
}

/** A node referred to by id, or else by a unique title. */
function resolveNode(ref: string, nodes: Map<string, CompiledNode>): CompiledNode | string {
  const byId = nodes.get(ref);
  if (byId) return byId;
  const byTitle = [...nodes.values()].filter((n) => n.title === ref);
  if (byTitle.length === 1) return byTitle[0]!;
  if (byTitle.length > 1) return `${byTitle.length} nodes are titled '${ref}': give the node id`;
  return `no node with id or title '${ref}' leads to an output`;
}

/** Reads the axes of a Sweep node and checks them against the graph; problems go to `issue`. */
export function sweepAxes(w: SweepWidgets, nodes: Map<string, CompiledNode>, env: NodeEnv, issue: Issue): SweepAxis[] {
  const axes: SweepAxis[] = [];
  const axis = (targetRef: string, targetInput: string, widget: string, widgetInput: string, valuesText: string, valuesInput: string): void => {
    const target = resolveNode(targetRef.trim(), nodes);
    if (typeof target === 'string') return issue(targetInput, target);
    const name = widget.trim();
    // The name is typed by the user: only the definition's own widgets count (not `constructor`).
    const spec = Object.hasOwn(target.def.widgets, name) ? target.def.widgets[name] : undefined;
    if (!spec) {
      const known = Object.keys(target.def.widgets).join(', ') || 'none';
      return issue(widgetInput, `'${target.def.displayName}' (#${target.id}) has no widget '${name}' (widgets: ${known})`);
    }
    if (Object.hasOwn(target.links, name)) return issue(widgetInput, `widget '${name}' of #${target.id} is fed by a link; a sweep sets constant values`);
    const parsed = parseSweepValues(valuesText, spec, env);
    if ('error' in parsed) return issue(valuesInput, `${name}: ${parsed.error}`, /out of range/.test(parsed.error) ? 'out_of_range' : parsed.error.includes('not in the list') ? 'not_in_list' : 'bad_value');
    axes.push({ target: target.id, widget: name, values: parsed.values });
  };
  axis(w.target, 'target', w.x_widget, 'x_widget', w.x_values, 'x_values');
  if (w.y_widget.trim() !== '') {
    axis(w.y_target.trim() === '' ? w.target : w.y_target, w.y_target.trim() === '' ? 'target' : 'y_target', w.y_widget, 'y_widget', w.y_values, 'y_values');
    if (axes.length === 2 && axes[0]!.target === axes[1]!.target && axes[0]!.widget === axes[1]!.widget) {
      issue('y_widget', `the x and y axes both set '${axes[0]!.widget}' on #${axes[0]!.target}`);
    }
  }
  const branches = axes.reduce((n, a) => n * a.values.length, 1);
  if (branches > MAX_SWEEP_BRANCHES) issue('x_values', `the sweep would make ${branches} branches, more than ${MAX_SWEEP_BRANCHES}`);
  return axes;
}

/**
 * Expands a compiled graph into one branch per combination of the axes' values (x varies fastest).
 * The swept nodes and everything downstream of them, up to the gathering inputs (Grid, Metrics),
 * are copied per branch with ids `<id>:<branch>` and the branch's widget values; nodes upstream
 * stay single, so they run once and every branch links to them. Each copy carries `branch` (the
 * node it copies, the branch number and its values), which the events and the history pass on to
 * clients. A gathering input fed from a
 * branch receives every branch, each with its coordinates. Node ids never enter cache keys, so
 * each branch is cached by its own content, and adding a value runs only the new branch.
 */
export function expandSweep(nodes: Map<string, CompiledNode>, outputs: string[], axes: SweepAxis[]): { nodes: Map<string, CompiledNode>; outputs: string[] } {
  // Forward closure from the swept nodes over plain (non-gathering) links.
  const consumers = new Map<string, string[]>();
  for (const [id, node] of nodes) {
    for (const [src] of Object.values(node.links)) consumers.set(src, [...(consumers.get(src) ?? []), id]);
  }
  const downstream = (start: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      stack.push(...(consumers.get(id) ?? []));
    }
    return seen;
  };
  const reach = axes.map((a) => downstream(a.target));
  const swept = new Set(reach.flatMap((r) => [...r]));

  const combos = combinations(axes);
  const titleOf = (id: string): string => nodes.get(id)!.title;
  const coordsOf = (combo: number[]): BranchCoord[] =>
    combo.map((index, a) => {
      const axis = axes[a]!;
      return { axis: a as 0 | 1, node: axis.target, title: titleOf(axis.target), widget: axis.widget, value: axis.values[index]!, index };
    });
  const branchId = (id: string, k: number): string => `${id}${BRANCH_SEPARATOR}${k}`;
  const remap = (link: LinkRef, k: number): LinkRef => (swept.has(link[0]) ? [branchId(link[0], k), link[1]] : link);

  const out = new Map<string, CompiledNode>();
  for (const [id, node] of nodes) {
    if (!swept.has(id)) {
      // A gathering input fed from a swept node receives one entry per branch.
      const gathers: Record<string, GatherLink[]> = {};
      for (const [name, entries] of Object.entries(node.gathers)) {
        gathers[name] = entries.flatMap((e) =>
          swept.has(e.link[0]) ? combos.map((combo, k) => ({ link: remap(e.link, k), coords: [...e.coords, ...coordsOf(combo)] })) : [e],
        );
      }
      out.set(id, { ...node, gathers });
      continue;
    }
    combos.forEach((combo, k) => {
      const coords = coordsOf(combo);
      const literals = { ...node.literals };
      for (const c of coords) if (c.node === id) literals[c.widget] = c.value;
      const links = Object.fromEntries(Object.entries(node.links).map(([name, link]) => [name, remap(link, k)]));
      const gathers = Object.fromEntries(
        Object.entries(node.gathers).map(([name, entries]) => [
          name,
          entries.map((e) => (swept.has(e.link[0]) ? { link: remap(e.link, k), coords: [...e.coords, ...coords] } : e)),
        ]),
      );
      const cloneId = branchId(id, k);
      // The title names only the values that reach this node (a model loader shows the model, not the y value).
      const shown = coords.filter((c) => reach[c.axis]!.has(id));
      // The branch caption names every axis: it tells the branches of this node apart.
      const branch = { of: id, index: k, label: branchLabel(coords) };
      out.set(cloneId, { ...node, id: cloneId, title: `${node.title} [${branchLabel(shown)}]`, literals, links, gathers, branch });
    });
  }
  const newOutputs = outputs.flatMap((id) => (swept.has(id) ? combos.map((_, k) => branchId(id, k)) : [id]));
  return { nodes: out, outputs: newOutputs };
}

/** Every combination of value indices, the first axis varying fastest. */
function combinations(axes: SweepAxis[]): number[][] {
  let combos: number[][] = [[]];
  for (const axis of axes) {
    const next: number[][] = [];
    for (let i = 0; i < axis.values.length; i++) for (const c of combos) next.push([...c, i]);
    combos = next;
  }
  return combos;
}
