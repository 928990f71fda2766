import type { LinkRef } from '../protocol/prompt.ts';
import type { CompiledNode } from './graph.ts';

/** Every link a node reads, plain and gathered: what planning, caching and freeing follow. */
export function nodeSources(node: Pick<CompiledNode, 'links' | 'gathers'>): LinkRef[] {
  return [...Object.values(node.links), ...Object.values(node.gathers).flatMap((entries) => entries.map((e) => e.link))];
}

/**
 * Topological order of the nodes, choosing among ready nodes the one closest to an output (then
 * the earliest declared), so that the first results and previews appear as early as possible.
 */
export function planOrder(nodes: Map<string, CompiledNode>, outputs: string[]): string[] {
  const consumers = new Map<string, string[]>();
  const pending = new Map<string, number>();
  for (const [id, node] of nodes) {
    const sources = new Set(nodeSources(node).map(([src]) => src));
    pending.set(id, sources.size);
    for (const src of sources) consumers.set(src, [...(consumers.get(src) ?? []), id]);
  }
  const distance = distancesToOutputs(nodes, outputs);
  const index = new Map([...nodes.keys()].map((id, i) => [id, i]));
  const ready = [...nodes.keys()].filter((id) => pending.get(id) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    let best = 0;
    for (let i = 1; i < ready.length; i++) {
      const a = ready[i]!;
      const b = ready[best]!;
      const da = distance.get(a)!;
      const db = distance.get(b)!;
      if (da < db || (da === db && index.get(a)! < index.get(b)!)) best = i;
    }
    const id = ready.splice(best, 1)[0]!;
    order.push(id);
    for (const next of consumers.get(id) ?? []) {
      const left = pending.get(next)! - 1;
      pending.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  return order;
}

/** Shortest number of links from each node down to any output node (breadth-first from outputs). */
function distancesToOutputs(nodes: Map<string, CompiledNode>, outputs: string[]): Map<string, number> {
  const distance = new Map<string, number>();
  let frontier = outputs.filter((id) => nodes.has(id));
  for (const id of frontier) distance.set(id, 0);
  for (let d = 1; frontier.length > 0; d++) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const [src] of nodeSources(nodes.get(id)!)) {
        if (!distance.has(src) && nodes.has(src)) {
          distance.set(src, d);
          next.push(src);
        }
      }
    }
    frontier = next;
  }
  return distance;
}
