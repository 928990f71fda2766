import { createHash, randomUUID } from 'node:crypto';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { CompiledGraph } from './validate.ts';

/**
 * Cache keys by content: node type, fingerprint, constant widget values and, for each link, the
 * producer's key and slot. Node ids are not part of it, so identical chains share results.
 * Nondeterministic nodes get a fresh key every run, and so do all their descendants.
 */
export async function computeKeys(graph: CompiledGraph, env: NodeEnv): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  for (const id of graph.order) {
    const node = graph.nodes.get(id)!;
    const def = node.def;
    // A widget fed by a link has no value until its producer runs, so a fingerprint over it
    // cannot be known now: such a node is treated as changed on every run.
    const linkedWidget = Object.keys(node.links).some((name) => name in def.widgets);
    const volatile = def.nondeterministic === true || (def.fingerprint !== undefined && linkedWidget);
    let fingerprint = '';
    if (def.fingerprint && !linkedWidget) {
      try {
        fingerprint = await def.fingerprint(node.literals as never, env);
      } catch (err) {
        throw new FingerprintError(id, err);
      }
    }
    const literals = Object.keys(node.literals)
      .sort()
      .map((name) => [name, node.literals[name]]);
    const links = Object.keys(node.links)
      .sort()
      .map((name) => {
        const [src, slot] = node.links[name]!;
        return [name, keys.get(src), slot];
      });
    // A gathering input's key covers each branch's producer and its coordinates (Grid labels them).
    const gathers = Object.keys(node.gathers)
      .sort()
      .map((name) => [name, node.gathers[name]!.map((e) => [keys.get(e.link[0]), e.link[1], e.coords.map((c) => [c.axis, c.title, c.widget, c.value, c.index])])]);
    const signature = JSON.stringify([def.id, volatile ? randomUUID() : '', fingerprint, literals, links, ...(gathers.length > 0 ? [gathers] : [])]);
    keys.set(id, createHash('sha256').update(signature).digest('base64url'));
  }
  return keys;
}

/** A node's fingerprint could not be computed (its file vanished, say): that node fails. */
export class FingerprintError extends Error {
  constructor(
    readonly nodeId: string,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}
