import { MODE_ALWAYS, MODE_BYPASS, MODE_MUTED, WORKFLOW_FORMAT, WORKFLOW_VERSION, type Workflow } from '../../../server/protocol/index.ts';
import { toScalar, type CatalogueNode, type Scalar } from './widget-specs.ts';

/**
 * Our workflow document <-> the plain data litegraph is configured from and serialised to. Pure
 * functions over plain objects (unit-tested in Node); workflow-io.ts does the litegraph calls.
 */
export type LinkTuple = [id: number, from: number, fromSlot: number, to: number, toSlot: number, type: string];
export interface SlotIn {
  name: string;
  type: string;
  link: number | null;
  widget?: { name: string };
}
export interface SlotOut {
  name: string;
  type: string;
  links: number[] | null;
}
export interface CatalogueLookup {
  get(type: string): CatalogueNode | undefined;
}

export interface PlannedNode {
  id: number;
  type: string;
  /** False for a type the catalogue does not list: it loads as a placeholder that keeps its data. */
  known: boolean;
  title?: string;
  pos: [number, number];
  size?: [number, number];
  flags: Record<string, unknown>;
  mode: number;
  color?: string;
  bgcolor?: string;
  inputs: SlotIn[];
  outputs: SlotOut[];
  properties: Record<string, unknown>;
  /** Widget values by name. */
  values: Record<string, Scalar>;
}

export interface LoadPlan {
  nodes: PlannedNode[];
  links: LinkTuple[];
  groups: Workflow['groups'];
  lastNodeId: number;
  lastLinkId: number;
  /** What could not be kept (links to slots that no longer exist...), for the console. */
  dropped: string[];
}

/**
 * Lays a workflow out as litegraph needs it: slots in the order the catalogue declares them (with
 * widget inputs after the sockets), links re-pointed at those slots, and the slot link fields
 * rebuilt from the link list so they always agree.
 */
export function planLoad(wf: Workflow, catalogue: CatalogueLookup): LoadPlan {
  const dropped: string[] = [];
  const inMaps = new Map<number, Map<number, number>>();
  const outMaps = new Map<number, Map<number, number>>();
  const nodes: PlannedNode[] = [];
  for (const node of wf.nodes) {
    if (inMaps.has(node.id)) {
      dropped.push(`node ${node.id}: duplicate id`);
      continue;
    }
    const def = catalogue.get(node.type);
    const slots = def ? canonicalSlots(node, def, dropped) : copySlots(node);
    inMaps.set(node.id, slots.inMap);
    outMaps.set(node.id, slots.outMap);
    const values: Record<string, Scalar> = {};
    for (const [name, value] of Object.entries(node.widgets_values)) {
      if (!def || def.widgets.some((w) => w.name === name)) values[name] = value;
    }
    nodes.push({
      id: node.id,
      type: node.type,
      known: def !== undefined,
      ...(node.title !== undefined ? { title: node.title } : {}),
      pos: [node.pos[0], node.pos[1]],
      ...(node.size ? { size: [node.size[0], node.size[1]] as [number, number] } : {}),
      flags: { ...(node.flags ?? {}) },
      mode: node.mode,
      ...(node.color ? { color: node.color } : {}),
      ...(node.bgcolor ? { bgcolor: node.bgcolor } : {}),
      inputs: slots.inputs,
      outputs: slots.outputs,
      properties: structuredClone(node.properties ?? {}),
      values,
    });
  }

  const byId = new Map(nodes.map((n) => [n.id, n]));
  const links: LinkTuple[] = [];
  const seen = new Set<number>();
  for (const [id, from, fromSlot, to, toSlot, type] of wf.links) {
    const src = byId.get(from);
    const dst = byId.get(to);
    const fs = outMaps.get(from)?.get(fromSlot);
    const ts = inMaps.get(to)?.get(toSlot);
    if (seen.has(id) || !src || !dst || fs === undefined || ts === undefined || dst.inputs[ts]!.link !== null) {
      dropped.push(`link ${id}: ${seen.has(id) ? 'duplicate id' : 'its end is missing or already linked'}`);
      continue;
    }
    seen.add(id);
    const out = src.outputs[fs]!;
    dst.inputs[ts]!.link = id;
    (out.links ??= []).push(id);
    links.push([id, from, fs, to, ts, src.known ? out.type : type]);
  }

  const maxNode = nodes.reduce((m, n) => Math.max(m, n.id), 0);
  const maxLink = links.reduce((m, l) => Math.max(m, l[0]), 0);
  return {
    nodes,
    links,
    groups: wf.groups.map((g) => ({ ...g, bounding: [...g.bounding] as [number, number, number, number] })),
    lastNodeId: Math.max(wf.last_node_id, maxNode),
    lastLinkId: Math.max(wf.last_link_id, maxLink),
    dropped,
  };
}

type FileNode = Workflow['nodes'][number];
interface Slots {
  inputs: SlotIn[];
  outputs: SlotOut[];
  inMap: Map<number, number>;
  outMap: Map<number, number>;
}

function canonicalSlots(node: FileNode, def: CatalogueNode, dropped: string[]): Slots {
  const inputs: SlotIn[] = def.inputs.map((i) => ({ name: i.name, type: i.type, link: null }));
  const inMap = new Map<number, number>();
  node.inputs.forEach((slot, index) => {
    const socket = slot.widget ? -1 : def.inputs.findIndex((i) => i.name === slot.name);
    if (socket >= 0) {
      if (![...inMap.values()].includes(socket)) inMap.set(index, socket);
      return;
    }
    const widgetName = slot.widget?.name ?? slot.name;
    const widget = def.widgets.find((w) => w.name === widgetName);
    if (!widget) {
      dropped.push(`node ${node.id}: input '${slot.name}' is not an input of ${def.id}`);
      return;
    }
    const existing = inputs.findIndex((i) => i.widget?.name === widgetName);
    if (existing >= 0) return;
    inMap.set(index, inputs.length);
    inputs.push({ name: widgetName, type: widget.link_type, link: null, widget: { name: widgetName } });
  });
  const outputs: SlotOut[] = def.outputs.map((o) => ({ name: o.name, type: o.type, links: null }));
  const outMap = new Map<number, number>();
  node.outputs.forEach((slot, index) => {
    let target = def.outputs.findIndex((o) => o.name === slot.name);
    if (target < 0 && def.outputs[index]?.type === slot.type) target = index;
    if (target >= 0) outMap.set(index, target);
    else dropped.push(`node ${node.id}: output '${slot.name}' is not an output of ${def.id}`);
  });
  return { inputs, outputs, inMap, outMap };
}

function copySlots(node: FileNode): Slots {
  const identity = (n: number): Map<number, number> => new Map(Array.from({ length: n }, (_, i) => [i, i]));
  return {
    inputs: node.inputs.map((s) => ({ name: s.name, type: s.type, link: null, ...(s.widget ? { widget: { name: s.widget.name } } : {}) })),
    outputs: node.outputs.map((s) => ({ name: s.name, type: s.type, links: null })),
    inMap: identity(node.inputs.length),
    outMap: identity(node.outputs.length),
  };
}

/** A node as read back from litegraph (numbers may come from Float32Arrays). */
export interface SnapshotNode {
  id: number | string;
  type: string;
  title?: string;
  pos: ArrayLike<number>;
  size: ArrayLike<number>;
  flags?: Record<string, unknown>;
  mode?: number;
  color?: string;
  bgcolor?: string;
  inputs: Array<{ name: string; type: unknown; link: number | null | undefined; widget?: { name: string } }>;
  outputs: Array<{ name: string; type: unknown; links?: number[] | null }>;
  properties?: Record<string, unknown>;
  values: Record<string, unknown>;
}

export interface GraphSnapshot {
  name?: string;
  lastNodeId: number;
  lastLinkId: number;
  nodes: SnapshotNode[];
  links: Array<{ id: number; from: number | string; fromSlot: number; to: number | string; toSlot: number; type: unknown }>;
  groups: Array<{ title: string; bounding: ArrayLike<number>; color?: string }>;
  extra: Record<string, unknown>;
  ds: { scale: number; offset: ArrayLike<number> };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;
const pair = (v: ArrayLike<number>): [number, number] => [round2(v[0] ?? 0), round2(v[1] ?? 0)];

/** Our workflow document from the canvas. Nodes and links are sorted by id, so the output is stable. */
export function buildWorkflow(s: GraphSnapshot): Workflow {
  const nodes = [...s.nodes].sort((a, b) => Number(a.id) - Number(b.id));
  const byId = new Map(nodes.map((n) => [Number(n.id), n]));
  const links: LinkTuple[] = [];
  for (const l of [...s.links].sort((a, b) => a.id - b.id)) {
    const src = byId.get(Number(l.from));
    const dst = byId.get(Number(l.to));
    if (!src || !dst || !src.outputs[l.fromSlot] || dst.inputs[l.toSlot]?.link !== l.id) continue;
    links.push([l.id, Number(l.from), l.fromSlot, Number(l.to), l.toSlot, String(src.outputs[l.fromSlot]!.type ?? l.type)]);
  }
  const linked = new Set(links.map((l) => l[0]));
  return {
    format: WORKFLOW_FORMAT,
    version: WORKFLOW_VERSION,
    ...(s.name !== undefined ? { name: s.name } : {}),
    last_node_id: Math.max(0, Math.floor(s.lastNodeId), ...nodes.map((n) => Number(n.id))),
    last_link_id: Math.max(0, Math.floor(s.lastLinkId), ...links.map((l) => l[0])),
    nodes: nodes.map((n) => {
      const flags: Record<string, boolean> = {};
      if (n.flags?.collapsed === true) flags.collapsed = true;
      if (n.flags?.pinned === true) flags.pinned = true;
      const properties = jsonSafe(n.properties ?? {});
      const widgets_values: Record<string, Scalar> = {};
      for (const [name, value] of Object.entries(n.values)) widgets_values[name] = toScalar(value);
      return {
        id: Number(n.id),
        type: n.type,
        ...(n.title ? { title: n.title } : {}),
        pos: pair(n.pos),
        size: pair(n.size),
        ...(Object.keys(flags).length ? { flags } : {}),
        mode: n.mode === MODE_MUTED || n.mode === MODE_BYPASS ? n.mode : MODE_ALWAYS,
        ...(n.color ? { color: n.color } : {}),
        ...(n.bgcolor ? { bgcolor: n.bgcolor } : {}),
        inputs: n.inputs.map((i) => ({
          name: i.name,
          type: String(i.type ?? ''),
          link: i.link != null && linked.has(i.link) ? i.link : null,
          ...(i.widget ? { widget: { name: i.widget.name } } : {}),
        })),
        outputs: n.outputs.map((o) => ({ name: o.name, type: String(o.type ?? ''), links: (o.links ?? []).filter((id) => linked.has(id)) })),
        ...(Object.keys(properties).length ? { properties } : {}),
        widgets_values,
      };
    }),
    links,
    groups: s.groups.map((g) => {
      const [x, y, w, h] = [0, 1, 2, 3].map((i) => round2(g.bounding[i] ?? 0)) as [number, number, number, number];
      return { title: g.title, bounding: [x, y, w, h], ...(g.color ? { color: g.color } : {}) };
    }),
    extra: { ...jsonSafe(s.extra), ds: { scale: Math.round(s.ds.scale * 10_000) / 10_000, offset: pair(s.ds.offset) } },
  };
}

/** A JSON round trip: drops undefined values, functions and typed-array oddities. */
function jsonSafe(value: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  } catch {
    return {};
  }
}
