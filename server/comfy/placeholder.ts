/**
 * The stand-in for a ComfyUI node without an equivalent: kept in the graph with its slots and
 * links, red in the editor, naming what is missing; bypassed when its data can pass through.
 */
import type { ComfyNode } from './graph.ts';
import type { ImportContext, Scalar } from './build.ts';

/** Data that a bypassed placeholder may pass through (models and conditioning are not data of ours to pass). */
const PASSABLE = new Set(['IMAGE', 'LATENT', 'STRING', 'INT', 'FLOAT']);

/** A node without an equivalent: kept, muted (or bypassed), with its slots, naming what is missing. */
export function placeholderOf(n: ComfyNode, ctx: ImportContext, missing: string): void {
  const inputs = n.inputs.length ? n.inputs : [...n.links.keys()].map((name) => ({ name, type: '*' }));
  const slots = n.outputs.length ? n.outputs : [{ name: 'output', type: '*' }];
  // A node that takes and gives the same kind of data (an image filter from another pack) is
  // bypassed, as ComfyUI bypasses: its input passes through and the graph around it still runs.
  const through = n.mode === 2 ? undefined : slots.find((o) => PASSABLE.has(o.type) && inputs.some((i) => i.type === o.type && n.links.has(i.name)))?.type;
  if (through) missing = `${missing}; bypassed: its ${through} input passes through unchanged`;
  ctx.add({
    key: n.id,
    origin: n.id,
    type: `comfy:${n.type}`,
    title: `${n.title ?? n.type} — not available here`,
    mode: through || n.mode === 4 ? 4 : 2,
    ...(n.size ? { size: n.size } : {}),
    widgets: Object.fromEntries(Object.entries(ctx.widgets(n).values).filter((e): e is [string, Scalar] => ['string', 'number', 'boolean'].includes(typeof e[1]))),
    inputs: new Map([...n.links].map(([name, ref]) => [name, { ref }])),
    placeholder: { inputs, outputs: slots, missing },
  });
  slots.forEach((_, slot) => ctx.target(n.id, slot, { our: n.id, output: slots[slot]!.name }));
  ctx.report.unsupported(ctx.label(n), `kept as a ${through ? 'bypassed' : 'muted'} placeholder: ${missing}`);
}
