import type { NodeEnv } from '../../nodes/api/env.ts';
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import { socketAccepts, type SocketType } from '../../nodes/api/sockets.ts';
import { checkWidgetValue, describe, widgetLinkType } from '../../nodes/api/widgets.ts';
import { isLink, type ApiNode, type ApiPrompt, type InputValue, type LinkRef } from '../protocol/prompt.ts';
import type { IssueCode, ValidationIssue } from '../protocol/validation.ts';
import type { CompiledGraph, CompiledNode, GatherLink } from './graph.ts';
import type { NodeRegistry } from './registry.ts';
import { planOrder } from './plan.ts';
import { BRANCH_SEPARATOR, expandSweep, sweepAxes, type SweepWidgets } from './sweep.ts';
import { expandBatch } from './batch.ts';

export { nodeSources } from './plan.ts';
export type { CompiledGraph, CompiledNode, GatherLink } from './graph.ts';
export { ISSUE_CODES, type IssueCode, type ValidationIssue } from '../protocol/validation.ts';

export type CompileResult = { ok: true; graph: CompiledGraph } | { ok: false; errors: ValidationIssue[] };

/** The prompt's nodes by id. A Map, so that ids like `constructor` or `__proto__` are only ids. */
type Nodes = ReadonlyMap<string, ApiNode>;

/** A node's own input value (never one inherited from Object.prototype, e.g. `constructor`). */
function ownValue(inputs: Record<string, InputValue>, name: string): InputValue | undefined {
  return Object.hasOwn(inputs, name) ? inputs[name] : undefined;
}

/**
 * Checks a prompt and returns every problem at once, or the graph with its execution order. Only
 * output nodes and their ancestors are checked and run; stray nodes are ignored, as in ComfyUI.
 * Ids, input and widget names come from the request: they are looked up in Maps or as own
 * properties only, so `constructor`, `toString` or `__proto__` are names like any other.
 */
export function compilePrompt(prompt: ApiPrompt, registry: NodeRegistry, env: NodeEnv): CompileResult {
  const errors: ValidationIssue[] = [];
  const byId: Nodes = new Map(Object.entries(prompt));
  const ids = [...byId.keys()];
  const outputs = ids.filter((id) => registry.get(byId.get(id)!.class_type)?.output === true);
  if (outputs.length === 0) {
    errors.push({
      node_id: null,
      code: 'no_outputs',
      message: 'the graph has no output node (Save Image, Preview Image, ...): nothing would run',
    });
  }
  const needed = ancestorsOf(byId, outputs);
  const sweeps = ids.filter((id) => registry.get(byId.get(id)!.class_type)?.sweep === true);
  if (sweeps.length > 1) {
    for (const id of sweeps.slice(1)) {
      errors.push({ node_id: id, node_type: byId.get(id)!.class_type, code: 'bad_value', message: `only one Sweep per graph (node ${sweeps[0]} is the first); give it a y axis for a second setting` });
    }
  }
  const batches = [...needed].filter((id) => registry.get(byId.get(id)!.class_type)?.batch !== undefined);
  for (const id of batches.slice(1)) {
    errors.push({ node_id: id, node_type: byId.get(id)!.class_type, code: 'bad_value', message: `only one Load Images (folder) per graph (node ${batches[0]} is the first)` });
  }
  if (batches.length > 0 && sweeps.length > 0) {
    errors.push({ node_id: sweeps[0]!, node_type: byId.get(sweeps[0]!)!.class_type, code: 'bad_value', message: `a Sweep and a batch (node ${batches[0]}) cannot run in one graph yet: sweep one image, then run the batch` });
  }
  const nodes = new Map<string, CompiledNode>();
  for (const id of ids) {
    if (!needed.has(id)) continue;
    const node = byId.get(id)!;
    const def = registry.get(node.class_type);
    if (!def) {
      errors.push({
        node_id: id,
        node_type: node.class_type,
        code: 'unknown_type',
        message: `unknown node type '${node.class_type}'`,
      });
      continue;
    }
    const compiled = compileNode(id, node, def, byId, registry, env, errors);
    nodes.set(id, compiled);
  }
  const cycle = findCycle(byId, [...needed]);
  for (const id of cycle) {
    errors.push({
      node_id: id,
      node_type: byId.get(id)!.class_type,
      code: 'cycle',
      message: `node is part of a dependency cycle (${cycle.join(' → ')} → ${cycle[0]})`,
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  if (batches.length === 1) {
    const source = nodes.get(batches[0]!)!;
    const clash = [...nodes.keys()].find((n) => n.includes(BRANCH_SEPARATOR));
    if (clash) return { ok: false, errors: [{ node_id: clash, code: 'bad_value', message: `node id '${clash}' contains '${BRANCH_SEPARATOR}', which a batch uses to number its images` }] };
    const expanded = expandBatch(nodes, outputs, source, env);
    if (!('reason' in expanded)) return { ok: true, graph: expanded };
    const code: IssueCode = expanded.input === 'limit' ? 'out_of_range' : 'bad_value';
    return { ok: false, errors: [{ node_id: source.id, node_type: source.def.id, input: expanded.input, code, message: `${source.title}: ${expanded.input}: ${expanded.reason}` }] };
  }
  if (sweeps.length === 1) {
    const id = sweeps[0]!;
    const node = byId.get(id)!;
    const def = registry.get(node.class_type)!;
    const sweep = compileNode(id, node, def, byId, registry, env, errors);
    const clash = [...nodes.keys()].find((n) => n.includes(BRANCH_SEPARATOR));
    if (clash) errors.push({ node_id: clash, code: 'bad_value', message: `node id '${clash}' contains '${BRANCH_SEPARATOR}', which a sweep uses to number its branches` });
    if (errors.length > 0) return { ok: false, errors };
    const issue = (input: string, message: string, code: IssueCode = 'bad_value'): void => {
      errors.push({ node_id: id, node_type: node.class_type, input, code, message: `${sweep.title}: ${message}` });
    };
    const axes = sweepAxes(sweep.literals as unknown as SweepWidgets, nodes, env, issue);
    if (errors.length > 0) return { ok: false, errors };
    const expanded = expandSweep(nodes, outputs, axes);
    return { ok: true, graph: { nodes: expanded.nodes, outputs: expanded.outputs, order: planOrder(expanded.nodes, expanded.outputs) } };
  }
  return { ok: true, graph: { nodes, outputs, order: planOrder(nodes, outputs) } };
}

function compileNode(
  id: string,
  node: ApiNode,
  def: AnyNodeDefinition,
  byId: Nodes,
  registry: NodeRegistry,
  env: NodeEnv,
  errors: ValidationIssue[],
): CompiledNode {
  const type = node.class_type;
  const given = node.inputs;
  const issue = (input: string | undefined, code: IssueCode, message: string): void => {
    errors.push({ node_id: id, node_type: type, ...(input === undefined ? {} : { input }), code, message });
  };
  // Keys are the node definition's own input and widget names, never a request's.
  const literals: Record<string, unknown> = {};
  const links: Record<string, LinkRef> = {};
  const gathers: Record<string, GatherLink[]> = {};
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(def.inputs, name) && !Object.hasOwn(def.widgets, name)) {
      issue(name, 'unknown_input', `'${def.displayName}' has no input or widget named '${name}'`);
    }
  }
  /** Checks a link; true when it may be kept (the source exists and its output fits). */
  const checkLink = (name: string, link: LinkRef, expected: SocketType): boolean => {
    const [src, slot] = link;
    const source = byId.get(src);
    if (!source) {
      issue(name, 'dangling_link', `linked to node ${src}, which is not in the graph`);
      return false;
    }
    const sourceDef = registry.get(source.class_type);
    if (!sourceDef) return false; // reported as unknown_type on the source
    const outs = Object.entries(sourceDef.outputs);
    const out = outs[slot];
    if (!out) {
      issue(name, 'dangling_link', `linked to output ${slot} of node ${src} ('${sourceDef.displayName}'), which has ${outs.length} output(s)`);
      return false;
    }
    if (!socketAccepts(expected, out[1])) {
      issue(name, 'type_mismatch', `expects ${expected} but is linked to ${out[1]} output '${out[0]}' of node ${src} ('${sourceDef.displayName}')`);
    }
    return true;
  };
  for (const [name, spec] of Object.entries(def.inputs)) {
    const value = ownValue(given, name);
    if (value === undefined) {
      if (!spec.optional) issue(name, 'missing_input', `required ${spec.type} input '${name}' is not connected`);
    } else if (isLink(value)) {
      if (!checkLink(name, value, spec.type)) continue;
      if (spec.gather) gathers[name] = [{ link: value, coords: [] }];
      else links[name] = value;
    } else {
      issue(name, 'bad_value', `input '${name}' must be linked to a ${spec.type} output, got the constant ${describe(value)}`);
    }
  }
  let widgetsOk = true;
  for (const [name, spec] of Object.entries(def.widgets)) {
    const value = ownValue(given, name);
    if (isLink(value)) {
      if (checkLink(name, value, widgetLinkType(spec))) links[name] = value;
      widgetsOk = false;
      continue;
    }
    const literal = value === undefined ? spec.default : value;
    const reason = checkWidgetValue(spec, literal, env);
    if (reason) {
      widgetsOk = false;
      const code = spec.kind === 'COMBO' ? 'not_in_list' : /out of range|over the limit/.test(reason) ? 'out_of_range' : 'bad_value';
      issue(name, code, `widget '${name}': ${reason}`);
    }
    literals[name] = literal;
  }
  if (widgetsOk && def.validate) {
    for (const [name, reason] of def.validate(literals as never, env)) issue(name, 'bad_value', `widget '${name}': ${reason}`);
  }
  return { id, def, title: node._meta?.title ?? def.displayName, literals, links, gathers };
}

/** The ids of the nodes a node links to (existing or not). */
function linkedIds(node: ApiNode | undefined): string[] {
  return node ? Object.values(node.inputs).flatMap((v) => (isLink(v) ? [v[0]] : [])) : [];
}

/** Nodes reachable backwards from `roots` over links to nodes that exist. */
export function ancestorsOf(byId: Nodes, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id) || !byId.has(id)) continue;
    seen.add(id);
    stack.push(...linkedIds(byId.get(id)));
  }
  return seen;
}

/** The nodes of one dependency cycle among `ids`, or [] (iterative DFS, colours white/grey/black). */
function findCycle(byId: Nodes, ids: string[]): string[] {
  const colour = new Map<string, 1 | 2>();
  const parents = (id: string): string[] => linkedIds(byId.get(id)).filter((src) => byId.has(src));
  for (const start of ids) {
    if (colour.has(start)) continue;
    const path: string[] = [];
    const stack: Array<{ id: string; next: string[] }> = [{ id: start, next: parents(start) }];
    colour.set(start, 1);
    path.push(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const child = top.next.pop();
      if (child === undefined) {
        colour.set(top.id, 2);
        stack.pop();
        path.pop();
      } else if (colour.get(child) === 1) {
        return path.slice(path.indexOf(child)).reverse();
      } else if (!colour.has(child)) {
        colour.set(child, 1);
        path.push(child);
        stack.push({ id: child, next: parents(child) });
      }
    }
  }
  return [];
}
