/**
 * ComfyUI's three workflow shapes read into one small graph model: the UI workflow (schema 0.4:
 * `links` as arrays; schema 1.0: links as objects, `definitions.subgraphs`), and the API format
 * (`{"id": {"class_type", "inputs"}}`). Subgraphs are expanded here, so the mappers only ever see
 * plain nodes. Nothing is validated against a catalogue yet: that is the mappers' work.
 */
import { z } from 'zod';
import { StudioError } from '../../nodes/api/errors.ts';

/** An output of a ComfyUI node: its id and output index. */
export interface Ref {
  node: string;
  slot: number;
}

export interface ComfyNode {
  id: string;
  type: string;
  title?: string;
  pos?: [number, number];
  size?: [number, number];
  /** 0 runs, 2 muted ("never"), 4 bypassed. */
  mode: number;
  /** Linked inputs (sockets and widgets turned into inputs) by input name. */
  links: Map<string, Ref>;
  /** Widget values by name, where the file names them (API format, object widgets_values, a PNG's prompt, subgraph promotions). */
  named: Record<string, unknown>;
  /** `widgets_values` as the UI wrote it, positionally. */
  positional?: unknown[];
  /** The names of the node's widget slots, in order, where the UI file lists them (`inputs[].widget`). */
  widgetOrder?: string[];
  inputs: Array<{ name: string; type: string }>;
  outputs: Array<{ name: string; type: string }>;
  properties: Record<string, unknown>;
}

export type ComfySource = 'ui-0.4' | 'ui-1.0' | 'api';

export interface ComfyGraph {
  source: ComfySource;
  nodes: Map<string, ComfyNode>;
  groups: Array<{ title: string; bounding: [number, number, number, number]; color?: string }>;
  /** How many subgraph instances were expanded. */
  subgraphs: number;
}

const num = z.number();
const vec2 = z.union([z.tuple([num, num]), z.array(num).min(2), z.object({ 0: num, 1: num })]);
const slotIn = z.object({ name: z.string().max(200), type: z.union([z.string(), z.number()]).optional(), link: z.number().nullable().optional(), widget: z.object({ name: z.string() }).passthrough().optional() }).passthrough();
const slotOut = z.object({ name: z.string().max(200), type: z.union([z.string(), z.number()]).optional(), links: z.array(num).nullable().optional() }).passthrough();

const UiNodeSchema = z
  .object({
    id: z.union([num, z.string()]),
    type: z.string().min(1).max(300),
    title: z.string().max(500).optional(),
    pos: vec2.optional(),
    size: vec2.optional(),
    mode: num.optional(),
    inputs: z.array(slotIn).optional(),
    outputs: z.array(slotOut).optional(),
    properties: z.record(z.string(), z.unknown()).optional(),
    widgets_values: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]).optional(),
  })
  .passthrough();
type UiNode = z.infer<typeof UiNodeSchema>;

const LinkArray = z.tuple([num, z.union([num, z.string()]), num, z.union([num, z.string()]), num]).rest(z.unknown());
const LinkObject = z.object({ id: num, origin_id: z.union([num, z.string()]), origin_slot: num, target_id: z.union([num, z.string()]), target_slot: num }).passthrough();
const GroupSchema = z.object({ title: z.string().max(500).default(''), bounding: z.array(num).length(4), color: z.string().max(64).optional() }).passthrough();

const SubgraphSchema = z
  .object({
    id: z.string(),
    name: z.string().optional(),
    nodes: z.array(UiNodeSchema).max(10_000),
    links: z.array(z.union([LinkObject, LinkArray])).max(100_000).default([]),
    inputs: z.array(z.object({ name: z.string() }).passthrough()).default([]),
    outputs: z.array(z.object({ name: z.string() }).passthrough()).default([]),
  })
  .passthrough();

export const UiWorkflowSchema = z
  .object({
    nodes: z.array(UiNodeSchema).max(10_000),
    links: z.array(z.union([LinkArray, LinkObject])).max(100_000).default([]),
    groups: z.array(GroupSchema).default([]),
    version: z.union([num, z.string()]).optional(),
    definitions: z.object({ subgraphs: z.array(SubgraphSchema).default([]) }).passthrough().optional(),
  })
  .passthrough();

const ApiNodeSchema = z.object({ class_type: z.string().min(1).max(300), inputs: z.record(z.string(), z.unknown()).default({}), _meta: z.object({ title: z.string().optional() }).passthrough().optional() }).passthrough();
export const ApiWorkflowSchema = z.record(z.string().min(1).max(100), ApiNodeSchema);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a parsed JSON document looks like a ComfyUI UI workflow (not ours). */
export function isComfyUiWorkflow(raw: unknown): boolean {
  return isRecord(raw) && raw.format === undefined && Array.isArray(raw.nodes) && (Array.isArray(raw.links) || raw.links === undefined) && raw.nodes.every((n) => isRecord(n) && typeof n.type === 'string');
}

/** Whether a parsed JSON document is a ComfyUI API-format prompt (or our own API prompt: same shape). */
export function isComfyApiWorkflow(raw: unknown): boolean {
  if (!isRecord(raw) || Object.keys(raw).length === 0) return false;
  return Object.values(raw).every((n) => isRecord(n) && typeof n.class_type === 'string');
}

export function isComfyDocument(raw: unknown): boolean {
  return isComfyUiWorkflow(raw) || isComfyApiWorkflow(raw);
}

/** Reads either ComfyUI shape. `prompt` (a PNG's `prompt` chunk) gives widget values by name for the UI nodes of the same id. */
export function readComfyGraph(raw: unknown, prompt?: unknown): ComfyGraph {
  if (isComfyUiWorkflow(raw)) {
    const parsed = UiWorkflowSchema.safeParse(raw);
    if (!parsed.success) throw new StudioError('VALIDATION', `not a ComfyUI workflow: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const graph = readUi(parsed.data);
    if (prompt !== undefined && isComfyApiWorkflow(prompt)) overlayPrompt(graph, ApiWorkflowSchema.parse(prompt));
    return graph;
  }
  if (isComfyApiWorkflow(raw)) {
    const parsed = ApiWorkflowSchema.safeParse(raw);
    if (!parsed.success) throw new StudioError('VALIDATION', `not a ComfyUI API prompt: ${parsed.error.issues[0]?.message}`);
    return readApi(parsed.data);
  }
  throw new StudioError('VALIDATION', 'not a ComfyUI workflow: expected "nodes" and "links" (UI format) or {"id": {"class_type", "inputs"}} (API format)');
}

function readApi(doc: z.infer<typeof ApiWorkflowSchema>): ComfyGraph {
  const nodes = new Map<string, ComfyNode>();
  for (const [id, n] of Object.entries(doc)) {
    const links = new Map<string, Ref>();
    const named: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(n.inputs)) {
      if (Array.isArray(value) && value.length === 2 && (typeof value[0] === 'string' || typeof value[0] === 'number') && Number.isInteger(value[1])) {
        links.set(name, { node: String(value[0]), slot: value[1] as number });
      } else named[name] = value;
    }
    nodes.set(id, { id, type: n.class_type, ...(n._meta?.title ? { title: n._meta.title } : {}), mode: 0, links, named, inputs: [], outputs: [], properties: {} });
  }
  return { source: 'api', nodes, groups: [], subgraphs: 0 };
}

/** A PNG's prompt names every widget value of the nodes that ran: those win over positions. */
function overlayPrompt(graph: ComfyGraph, prompt: z.infer<typeof ApiWorkflowSchema>): void {
  for (const [id, p] of Object.entries(prompt)) {
    const node = graph.nodes.get(id);
    if (!node || node.type !== p.class_type) continue;
    for (const [name, value] of Object.entries(p.inputs)) if (!Array.isArray(value)) node.named[name] = value;
  }
}

interface FlatLink {
  from: string;
  fromSlot: number;
  to: string;
  toSlot: number;
}

type UiDoc = z.infer<typeof UiWorkflowSchema>;

function xy(v: unknown): [number, number] | undefined {
  if (Array.isArray(v)) return [Number(v[0]) || 0, Number(v[1]) || 0];
  if (isRecord(v)) return [Number(v[0]) || 0, Number(v[1]) || 0];
  return undefined;
}

function flatLink(l: z.infer<typeof LinkArray> | z.infer<typeof LinkObject>): FlatLink & { id: number } {
  if (Array.isArray(l)) return { id: l[0], from: String(l[1]), fromSlot: l[2], to: String(l[3]), toSlot: l[4] };
  return { id: l.id, from: String(l.origin_id), fromSlot: l.origin_slot, to: String(l.target_id), toSlot: l.target_slot };
}

/** The subgraph's input (-10) and output (-20) pseudo-nodes. */
const SUBGRAPH_INPUT = '-10';
const SUBGRAPH_OUTPUT = '-20';
const MAX_SUBGRAPH_DEPTH = 8;
const MAX_EXPANDED_NODES = 10_000;

function readUi(doc: UiDoc): ComfyGraph {
  const defs = new Map((doc.definitions?.subgraphs ?? []).map((d) => [d.id, d]));
  let nodes: Array<UiNode & { sid: string; override?: Record<string, unknown> }> = doc.nodes.map((n) => ({ ...n, sid: String(n.id) }));
  let links: FlatLink[] = doc.links.map(flatLink);
  let expanded = 0;
  for (let depth = 0; depth < MAX_SUBGRAPH_DEPTH; depth++) {
    const instance = nodes.find((n) => defs.has(n.type));
    if (!instance) break;
    // Expand every instance at this level, then look again (subgraphs may hold subgraphs).
    for (const inst of nodes.filter((n) => defs.has(n.type))) {
      const def = defs.get(inst.type)!;
      const result = expandSubgraph(inst, def, nodes, links);
      nodes = result.nodes;
      links = result.links;
      expanded++;
      // Subgraphs inside subgraphs multiply: the expanded graph is held to what a workflow may hold.
      if (nodes.length > MAX_EXPANDED_NODES || links.length > 100_000) throw new StudioError('VALIDATION', `the workflow's subgraphs expand to more than ${MAX_EXPANDED_NODES} nodes`);
    }
  }
  if (nodes.some((n) => defs.has(n.type))) throw new StudioError('VALIDATION', `subgraphs nested deeper than ${MAX_SUBGRAPH_DEPTH} levels (or a subgraph that contains itself)`);

  const byId = new Map(nodes.map((n) => [n.sid, n]));
  const out = new Map<string, ComfyNode>();
  for (const n of nodes) {
    const inputs = (n.inputs ?? []).map((i) => ({ name: i.widget?.name ?? i.name, type: String(i.type ?? '*') }));
    const widgetOrder = (n.inputs ?? []).filter((i) => i.widget).map((i) => i.widget!.name);
    const named: Record<string, unknown> = {};
    let positional: unknown[] | undefined;
    if (Array.isArray(n.widgets_values)) positional = n.widgets_values;
    else if (isRecord(n.widgets_values)) Object.assign(named, n.widgets_values);
    Object.assign(named, n.override ?? {});
    out.set(n.sid, {
      id: n.sid,
      type: n.type,
      ...(n.title !== undefined ? { title: n.title } : {}),
      ...(xy(n.pos) ? { pos: xy(n.pos)! } : {}),
      ...(xy(n.size) ? { size: xy(n.size)! } : {}),
      mode: typeof n.mode === 'number' ? n.mode : 0,
      links: new Map(),
      named,
      ...(positional ? { positional } : {}),
      ...(widgetOrder.length > 0 ? { widgetOrder } : {}),
      inputs,
      outputs: (n.outputs ?? []).map((o) => ({ name: o.name, type: String(o.type ?? '*') })),
      properties: n.properties ?? {},
    });
  }
  for (const l of links) {
    const target = out.get(l.to);
    if (!target || !byId.has(l.from)) continue;
    const name = target.inputs[l.toSlot]?.name;
    if (name !== undefined) target.links.set(name, { node: l.from, slot: l.fromSlot });
  }
  const groups = doc.groups.map((g) => ({ title: g.title, bounding: g.bounding as [number, number, number, number], ...(g.color ? { color: g.color } : {}) }));
  return { source: doc.definitions || doc.version === 1 || isRecord(doc.state) ? 'ui-1.0' : 'ui-0.4', nodes: out, groups, subgraphs: expanded };
}

type SubgraphDef = z.infer<typeof SubgraphSchema>;

/**
 * Replaces one subgraph instance by its inner nodes (ids `instance:inner`, as ComfyUI numbers
 * them in API prompts), placed where the instance was; links through the subgraph's input and
 * output pseudo-nodes are joined to the outer links. A promoted widget's value on the instance
 * (`properties.proxyWidgets`, or a widget input of the instance) goes to the inner widget.
 */
function expandSubgraph<N extends UiNode & { sid: string; override?: Record<string, unknown> }>(inst: N, def: SubgraphDef, nodes: N[], links: FlatLink[]): { nodes: N[]; links: FlatLink[] } {
  const prefix = `${inst.sid}:`;
  const innerLinks = def.links.map(flatLink);
  const outerIn = links.filter((l) => l.to === inst.sid);
  const outerOut = links.filter((l) => l.from === inst.sid);
  const rest = links.filter((l) => l.to !== inst.sid && l.from !== inst.sid);
  const overrides = new Map<string, Record<string, unknown>>();
  const setOverride = (innerId: string, name: string, value: unknown): void => {
    const o = overrides.get(innerId) ?? {};
    o[name] = value;
    overrides.set(innerId, o);
  };
  const values = Array.isArray(inst.widgets_values) ? inst.widgets_values : [];
  const proxy = inst.properties?.proxyWidgets;
  if (Array.isArray(proxy)) {
    proxy.forEach((p, i) => {
      if (Array.isArray(p) && p.length >= 2 && i < values.length) setOverride(String(p[0]), String(p[1]), values[i]);
    });
  }
  // Widget inputs of the instance, in order, take the instance's widgets_values in order.
  const instInputs = inst.inputs ?? [];
  const widgetSlots = instInputs.map((s, i) => (s.widget ? i : -1)).filter((i) => i >= 0);
  const slotValue = new Map<number, unknown>();
  if (!Array.isArray(proxy)) widgetSlots.forEach((slot, k) => k < values.length && slotValue.set(slot, values[k]));

  const joined: FlatLink[] = [];
  for (const l of innerLinks) {
    if (l.from === SUBGRAPH_INPUT && l.to === SUBGRAPH_OUTPUT) continue;
    if (l.from === SUBGRAPH_INPUT) {
      const outer = outerIn.find((o) => o.toSlot === l.fromSlot);
      if (outer) joined.push({ from: outer.from, fromSlot: outer.fromSlot, to: prefix + l.to, toSlot: l.toSlot });
      else if (slotValue.has(l.fromSlot)) {
        const target = def.nodes.find((n) => String(n.id) === l.to);
        const name = target?.inputs?.[l.toSlot];
        if (name) setOverride(l.to, name.widget?.name ?? name.name, slotValue.get(l.fromSlot));
      }
      continue;
    }
    if (l.to === SUBGRAPH_OUTPUT) {
      for (const o of outerOut.filter((x) => x.fromSlot === l.toSlot)) joined.push({ from: prefix + l.from, fromSlot: l.fromSlot, to: o.to, toSlot: o.toSlot });
      continue;
    }
    joined.push({ from: prefix + l.from, fromSlot: l.fromSlot, to: prefix + l.to, toSlot: l.toSlot });
  }
  // Inner positions are in the subgraph's own canvas: moved so that the first one sits where the instance was.
  const base = xy(inst.pos) ?? [0, 0];
  const origin = def.nodes.reduce<[number, number]>((m, n) => {
    const p = xy(n.pos) ?? [0, 0];
    return [Math.min(m[0], p[0]), Math.min(m[1], p[1])];
  }, [Infinity, Infinity]);
  const inner = def.nodes.map((n) => {
    const p = xy(n.pos) ?? [0, 0];
    const o = overrides.get(String(n.id));
    return {
      ...n,
      sid: prefix + String(n.id),
      pos: [base[0] + p[0] - (Number.isFinite(origin[0]) ? origin[0] : 0), base[1] + p[1] - (Number.isFinite(origin[1]) ? origin[1] : 0)] as [number, number],
      ...(inst.mode === 2 || inst.mode === 4 ? { mode: inst.mode } : {}),
      ...(o ? { override: o } : {}),
    } as unknown as N;
  });
  return { nodes: [...nodes.filter((n) => n !== inst), ...inner], links: [...rest, ...joined] };
}
