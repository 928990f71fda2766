/**
 * Routing of prompts to workers. BullMQ workers pull jobs, so routing is a preference the server
 * writes into the job (`prefer`, `prefer_until`) and the workers honour: a worker that is not the
 * preferred one hands a job back (delayed a moment) while the preferred worker is alive and the
 * preference has not expired. Pure functions: tested without Redis.
 */
import type { ApiPrompt } from '../protocol/prompt.ts';
import type { JobData, WorkerAnnouncement } from './wire.ts';

/** Node types that load a model pack, and the widget naming it. Loading a SUPIR pack takes tens of seconds. */
const PACK_LOADERS: Record<string, string> = { LoadSupirModel: 'pack', LoadUpscaleModel: 'model_name' };

/** How long other workers leave a job to the worker that has its packs loaded. */
export const PREFER_MS = 20_000;
/** How long a handed-back job waits before it is offered again. */
export const HAND_BACK_MS = 150;

/** The model packs a prompt loads, as `<node type>:<name>`, sorted. */
export function packsOf(prompt: ApiPrompt): string[] {
  const packs = new Set<string>();
  for (const node of Object.values(prompt)) {
    const widget = PACK_LOADERS[node.class_type];
    const value = widget ? node.inputs[widget] : undefined;
    if (typeof value === 'string') packs.add(`${node.class_type}:${value}`);
  }
  return [...packs].sort();
}

/**
 * The worker a prompt needing `packs` should go to: among live workers holding the most of them,
 * an idle one before a busy one, then the one with the most free memory. Null when the prompt
 * needs no pack or no worker has any of them loaded (then any worker may take it).
 */
export function chooseWorker(packs: string[], workers: WorkerAnnouncement[]): string | null {
  if (packs.length === 0) return null;
  let best: { id: string; score: [number, number, number] } | null = null;
  for (const w of workers) {
    const held = packs.filter((p) => w.packs.includes(p)).length;
    if (held === 0) continue;
    const score: [number, number, number] = [held, w.running === null ? 1 : 0, w.free_memory];
    if (!best || compare(score, best.score) > 0) best = { id: w.id, score };
  }
  return best?.id ?? null;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * Whether worker `self` should hand job `data` back: it is preferred for another worker that is
 * still alive (`preferredAlive`), the preference has not expired, and `self` lacks a pack the job needs.
 */
export function shouldHandBack(data: Pick<JobData, 'prefer' | 'prefer_until' | 'packs'>, self: { id: string; packs: string[] }, preferredAlive: boolean, now = Date.now()): boolean {
  if (!data.prefer || data.prefer === self.id) return false;
  if (data.prefer_until === undefined || now >= data.prefer_until) return false;
  if (data.packs.every((p) => self.packs.includes(p))) return false;
  return preferredAlive;
}
