import type { NodeCatalogueJson } from '../../../server/protocol/index.ts';
import { isSocketType, socketAccepts } from '../../../nodes/api/sockets.ts';

/**
 * Which links the canvas accepts, mirroring the executor: an input takes its own type, and a FLOAT
 * input also takes an INT output. Types the catalogue does not know (slots of a placeholder node)
 * connect only to the same type.
 */
export function linkAllowed(fromType: unknown, toType: unknown): boolean {
  const from = String(fromType ?? '');
  const to = String(toType ?? '');
  if (!from || !to) return false;
  if (isSocketType(from) && isSocketType(to)) return socketAccepts(to, from);
  return from === to;
}

export interface LinkColours {
  /** Link and connected-slot colour by type. */
  on: Record<string, string>;
  /** Slot colour while unconnected: the same hue, darker. */
  off: Record<string, string>;
}

/** Colours by socket type, from `catalogue.socket_types`. */
export function linkColours(catalogue: Pick<NodeCatalogueJson, 'socket_types'>): LinkColours {
  const on: Record<string, string> = {};
  const off: Record<string, string> = {};
  for (const { name, color } of catalogue.socket_types) {
    on[name] = color;
    off[name] = mix(color, '#23252c', 0.45);
  }
  return { on, off };
}

/** `a` blended towards `b` by `t` (0..1); both `#rgb` or `#rrggbb`. Unparseable input returns `a`. */
export function mix(a: string, b: string, t: number): string {
  const ca = parseHex(a);
  const cb = parseHex(b);
  if (!ca || !cb) return a;
  const out = ca.map((v, i) => Math.round(v + (cb[i]! - v) * t));
  return `#${out.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

export function parseHex(colour: string): [number, number, number] | null {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour.trim());
  if (!m) return null;
  const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}
