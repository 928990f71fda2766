/**
 * The importer's working state: the ComfyUI graph being read, the SUPIR Studio nodes being made,
 * and where each ComfyUI output went (one of our outputs, another ComfyUI output it passes
 * through, a constant, or nowhere). Mappers (map-*.ts) fill it; `toWorkflow` turns it into a
 * workflow file with numbered links.
 */
import type { AnyNodeDefinition } from '../../nodes/api/define.ts';
import { widgetLinkType } from '../../nodes/api/widgets.ts';
import type { NodeRegistry } from '../engine/registry.ts';
import { MODE_ALWAYS, MODE_BYPASS, MODE_MUTED, WORKFLOW_FORMAT, WORKFLOW_VERSION, type Workflow } from '../protocol/workflow-schema.ts';
import type { ComfyGraph, ComfyNode, Ref } from './graph.ts';
import type { ReportBuilder } from './report.ts';
import { readWidgets, type WidgetRead } from './widgets.ts';

export type Scalar = string | number | boolean;
/** `512` → number, `'auto'` → string: a fallback gives the type, not the value. */
export type Widen<T> = T extends number ? number : T extends string ? string : boolean;

/** Where one of our inputs takes its value from. */
export type Source = { ref: Ref } | { our: string; output: string };

/** Where a ComfyUI output went. */
export type Target = { our: string; output: string } | { alias: Ref } | { constant: Scalar } | { none: string };

export interface OurNode {
  key: string;
  /** The ComfyUI node it was made from. */
  origin: string;
  type: string;
  title?: string;
  pos: [number, number];
  size?: [number, number];
  mode: number;
  widgets: Record<string, Scalar>;
  inputs: Map<string, Source>;
  /** For a node that stands in for one we cannot map: its slots as ComfyUI had them, and why. */
  placeholder?: { inputs: Array<{ name: string; type: string }>; outputs: Array<{ name: string; type: string }>; missing: string };
}

export interface ImportOptions {
  registry: NodeRegistry;
  /** The upscale models here, for picking one of the same scale when a file names one we lack. */
  upscaleModels?: string[];
}

const refKey = (r: Ref): string => `${r.node}:${r.slot}`;

export class ImportContext {
  readonly nodes = new Map<string, OurNode>();
  readonly targets = new Map<string, Target>();
  /** ComfyUI nodes whose work went into other nodes (a checkpoint into a model pack, ...). */
  readonly absorbed = new Set<string>();
  readonly #widgets = new Map<string, WidgetRead>();

  constructor(
    readonly graph: ComfyGraph,
    readonly report: ReportBuilder,
    readonly options: ImportOptions,
  ) {}

  node(id: string): ComfyNode | undefined {
    return this.graph.nodes.get(id);
  }

  label(n: ComfyNode | string): string {
    const node = typeof n === 'string' ? this.node(n) : n;
    return node ? `#${node.id} ${node.type}` : `#${String(n)}`;
  }

  def(type: string): AnyNodeDefinition | undefined {
    return this.options.registry.get(type);
  }

  widgets(n: ComfyNode): WidgetRead {
    let read = this.#widgets.get(n.id);
    if (!read) {
      read = readWidgets(n);
      this.#widgets.set(n.id, read);
    }
    return read;
  }

  /**
   * A widget's value: a linked constant (primitive, a value on a virtual wire) first, then the
   * node's own value, then `fallback`.
   */
  value<T extends Scalar>(n: ComfyNode, name: string, fallback: T): Widen<T> {
    const link = n.links.get(name);
    if (link) {
      const t = this.resolve(link);
      if ('constant' in t && typeof t.constant === typeof fallback) return t.constant as Widen<T>;
    }
    const v = this.widgets(n).values[name];
    return (typeof v === typeof fallback ? v : fallback) as Widen<T>;
  }

  /** Whether the node sets a value for `name` (as a widget or a linked constant). */
  has(n: ComfyNode, name: string): boolean {
    return name in this.widgets(n).values || n.links.has(name);
  }

  add(node: Omit<OurNode, 'inputs' | 'widgets' | 'mode' | 'pos'> & Partial<Pick<OurNode, 'inputs' | 'widgets' | 'mode' | 'pos'>>): OurNode {
    const origin = this.node(node.origin);
    const made: OurNode = {
      inputs: new Map(),
      widgets: {},
      mode: modeOf(origin?.mode ?? 0),
      pos: origin?.pos ?? [0, 0],
      ...node,
    };
    this.nodes.set(made.key, made);
    return made;
  }

  /** Says where output `slot` of ComfyUI node `id` went. */
  target(id: string, slot: number, t: Target): void {
    this.targets.set(refKey({ node: id, slot }), t);
  }

  /** Follows pass-throughs (reroutes, virtual wires, bypassed nodes) to where a value really comes from. */
  resolve(ref: Ref, seen = new Set<string>()): Exclude<Target, { alias: Ref }> {
    const key = refKey(ref);
    if (seen.has(key)) return { none: 'a loop of pass-through nodes' };
    seen.add(key);
    const t = this.targets.get(key);
    if (!t) {
      const n = this.node(ref.node);
      return { none: n ? `${this.label(n)} output ${ref.slot} has no equivalent here` : `node ${ref.node} is not in the file` };
    }
    return 'alias' in t ? this.resolve(t.alias, seen) : t;
  }

  /** The ComfyUI node an output really comes from, through reroutes and virtual wires. */
  follow(ref: Ref | undefined, seen = new Set<string>()): Ref | undefined {
    if (!ref) return undefined;
    const key = refKey(ref);
    if (seen.has(key)) return undefined;
    seen.add(key);
    const t = this.targets.get(key);
    return t && 'alias' in t ? this.follow(t.alias, seen) : ref;
  }

  /** The comfy node behind an input, through pass-throughs. */
  upstream(n: ComfyNode, input: string): ComfyNode | undefined {
    const ref = this.follow(n.links.get(input));
    return ref ? this.node(ref.node) : undefined;
  }
}

/** ComfyUI's node modes to ours: 2 (never) and 4 (bypass) are the same numbers; "on event" runs. */
export function modeOf(mode: number): number {
  return mode === MODE_MUTED || mode === MODE_BYPASS ? mode : MODE_ALWAYS;
}

/**
 * The workflow file: ComfyUI's integer ids are kept (so an API client finds node "9" under the
 * same id), new nodes and expanded subgraph nodes get fresh ones. `extra.comfy.ids` says which
 * ComfyUI node each of ours came from.
 */
export function toWorkflow(ctx: ImportContext, name: string | undefined): { workflow: Workflow; ids: Map<string, number> } {
  const ours = [...ctx.nodes.values()];
  const ids = new Map<string, number>();
  const taken = new Set<number>();
  for (const n of ours) {
    if (/^\d+$/.test(n.key) && Number(n.key) <= 1_000_000_000) {
      ids.set(n.key, Number(n.key));
      taken.add(Number(n.key));
    }
  }
  // New nodes get ids above every ComfyUI id, so that none is mistaken for a node of the file.
  const comfyMax = Math.max(0, ...[...ctx.graph.nodes.keys()].filter((k) => /^\d+$/.test(k)).map(Number).filter((k) => k <= 1_000_000_000));
  let next = Math.max(comfyMax, ...taken) + 1;
  for (const n of ours) if (!ids.has(n.key)) ids.set(n.key, next++);

  type WfNode = Workflow['nodes'][number];
  const out = new Map<string, WfNode>();
  for (const n of ours) {
    const def = ctx.def(n.type);
    const inputs: WfNode['inputs'] = [];
    const outputs: WfNode['outputs'] = [];
    if (n.placeholder) {
      for (const s of n.placeholder.inputs) inputs.push({ name: s.name, type: s.type, link: null });
      for (const s of n.placeholder.outputs) outputs.push({ name: s.name, type: s.type, links: [] });
    } else if (def) {
      for (const [slot, spec] of Object.entries(def.inputs)) inputs.push({ name: slot, type: spec.type, link: null });
      for (const [slot, type] of Object.entries(def.outputs)) outputs.push({ name: slot, type, links: [] });
      for (const [widget, spec] of Object.entries(def.widgets)) {
        if (n.inputs.has(widget)) inputs.push({ name: widget, type: widgetLinkType(spec), link: null, widget: { name: widget } });
      }
    }
    out.set(n.key, {
      id: ids.get(n.key)!,
      type: n.type,
      ...(n.title ? { title: n.title } : {}),
      pos: n.pos,
      ...(n.size ? { size: n.size } : {}),
      mode: n.mode as 0 | 2 | 4,
      inputs,
      outputs,
      ...(n.placeholder ? { properties: { comfy_missing: n.placeholder.missing } } : {}),
      widgets_values: n.widgets,
    } as WfNode);
  }

  const links: Workflow['links'] = [];
  let linkId = 0;
  for (const n of ours) {
    const node = out.get(n.key)!;
    for (const [input, source] of n.inputs) {
      const slotIndex = node.inputs.findIndex((s) => s.name === input);
      if (slotIndex < 0) continue;
      let from: { our: string; output: string } | undefined;
      if ('our' in source) from = source;
      else {
        const t = ctx.resolve(source.ref);
        if ('our' in t) from = t;
        else if ('constant' in t) {
          // A constant on a widget input: the value itself, no link.
          if (node.inputs[slotIndex]!.widget) {
            node.widgets_values[input] = t.constant;
            node.inputs.splice(slotIndex, 1);
          }
          continue;
        } else {
          if (!n.placeholder) ctx.report.unsupported(ctx.label(n.origin), `input ${input}: ${t.none}; left unlinked`);
          continue;
        }
      }
      const src = out.get(from.our);
      const srcSlot = src?.outputs.findIndex((o) => o.name === from.output) ?? -1;
      if (!src || srcSlot < 0) {
        if (!n.placeholder) ctx.report.unsupported(ctx.label(n.origin), `input ${input}: its source has no equivalent here; left unlinked`);
        continue;
      }
      const id = ++linkId;
      const slot = node.inputs[slotIndex]!;
      slot.link = id;
      src.outputs[srcSlot]!.links = [...(src.outputs[srcSlot]!.links ?? []), id];
      links.push([id, src.id, srcSlot, node.id, slotIndex, slot.type]);
    }
    // Widget inputs left without a link are plain widgets again.
    node.inputs = node.inputs.filter((s) => !s.widget || s.link !== null);
  }
  // Link slots were numbered before unlinked widget inputs were dropped: renumber.
  for (const node of out.values()) {
    node.inputs.forEach((slot, index) => {
      if (slot.link === null) return;
      const link = links.find((l) => l[0] === slot.link);
      if (link) link[4] = index;
    });
  }
  const comfyIds = Object.fromEntries(ours.map((n) => [String(ids.get(n.key)), n.origin]));
  const workflow: Workflow = {
    format: WORKFLOW_FORMAT,
    version: WORKFLOW_VERSION,
    ...(name ? { name } : {}),
    last_node_id: Math.max(0, ...[...out.values()].map((n) => n.id)),
    last_link_id: linkId,
    nodes: [...out.values()],
    links,
    groups: ctx.graph.groups,
    extra: { comfy: { source: ctx.graph.source, ids: comfyIds } },
  };
  return { workflow, ids };
}

/**
 * Nodes from an API prompt have no positions: laid out in columns by their depth in the graph,
 * left to right, like a person would draw them.
 */
export function layout(ctx: ImportContext): void {
  const nodes = [...ctx.nodes.values()];
  if (nodes.some((n) => n.pos[0] !== 0 || n.pos[1] !== 0)) {
    // Nodes added beside a placed node (a resize before Stage-1, ...) sit just below it.
    const seen = new Map<string, number>();
    for (const n of nodes) {
      if (n.key === n.origin) continue;
      const k = (seen.get(n.origin) ?? 0) + 1;
      seen.set(n.origin, k);
      n.pos = [n.pos[0] + 30 * k, n.pos[1] + 160 * k];
    }
    return;
  }
  const depth = new Map<string, number>();
  const depthOf = (n: OurNode, stack = new Set<string>()): number => {
    if (depth.has(n.key)) return depth.get(n.key)!;
    if (stack.has(n.key)) return 0;
    stack.add(n.key);
    let d = 0;
    for (const s of n.inputs.values()) {
      const from = 'our' in s ? s.our : (() => {
        const t = ctx.resolve(s.ref);
        return 'our' in t ? t.our : undefined;
      })();
      const src = from ? ctx.nodes.get(from) : undefined;
      if (src) d = Math.max(d, depthOf(src, stack) + 1);
    }
    depth.set(n.key, d);
    return d;
  };
  const rows = new Map<number, number>();
  for (const n of nodes) {
    const d = depthOf(n);
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    n.pos = [40 + d * 340, 40 + r * 260];
  }
}
