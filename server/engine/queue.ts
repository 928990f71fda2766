import { randomUUID } from 'node:crypto';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { OutputCache } from './cache.ts';
import type { HistoryEntry, QueueItem } from '../protocol/history.ts';
import { EventHub, type NodeErrorInfo } from './events.ts';
import { executeGraph, type PreviewEncoder } from './executor.ts';
import type { ApiPrompt } from '../protocol/prompt.ts';
import type { NodeRegistry } from './registry.ts';
import { compilePrompt, type CompiledGraph, type ValidationIssue } from './validate.ts';

export type { HistoryEntry, QueueItem };

export interface SubmitRequest {
  prompt: ApiPrompt;
  workflow?: unknown;
  front?: boolean;
  clientId?: string;
}

export type SubmitResult =
  | { ok: true; id: string; number: number }
  | { ok: false; reason: 'invalid'; errors: ValidationIssue[] }
  | { ok: false; reason: 'full'; message: string };

export interface QueueOptions {
  registry: NodeRegistry;
  env: NodeEnv;
  cache: OutputCache;
  encodePreview?: PreviewEncoder;
  historyLimit?: number;
  maxPending?: number;
}

interface Pending extends QueueItem {
  graph: CompiledGraph;
  prompt: ApiPrompt;
  workflow: unknown;
}

/**
 * A FIFO of validated prompts run one at a time, with interrupt and a bounded history. Events go
 * to `events`; a failing prompt is recorded and the next one runs.
 */
export class PromptQueue {
  readonly events = new EventHub();
  private readonly pending: Pending[] = [];
  private readonly historyMap = new Map<string, HistoryEntry>();
  private readonly waiters = new Map<string, Array<(entry: HistoryEntry) => void>>();
  private running: { item: Pending; abort: AbortController } | null = null;
  private counter = 0;
  private pumping = false;

  constructor(private readonly opts: QueueOptions) {}

  submit(req: SubmitRequest): SubmitResult {
    const max = this.opts.maxPending ?? 1000;
    if (this.pending.length >= max) {
      return { ok: false, reason: 'full', message: `the queue already holds ${max} prompts; wait or cancel some` };
    }
    const compiled = compilePrompt(req.prompt, this.opts.registry, this.opts.env);
    if (!compiled.ok) return { ok: false, reason: 'invalid', errors: compiled.errors };
    const item: Pending = {
      id: randomUUID(),
      number: ++this.counter,
      client_id: req.clientId ?? null,
      created_at: Date.now(),
      graph: compiled.graph,
      prompt: req.prompt,
      workflow: req.workflow ?? null,
    };
    if (req.front) this.pending.unshift(item);
    else this.pending.push(item);
    this.emitStatus();
    queueMicrotask(() => void this.pump());
    return { ok: true, id: item.id, number: item.number };
  }

  list(): { running: QueueItem | null; pending: QueueItem[] } {
    const strip = ({ id, number, client_id, created_at }: QueueItem): QueueItem => ({ id, number, client_id, created_at });
    return { running: this.running ? strip(this.running.item) : null, pending: this.pending.map(strip) };
  }

  /** Removes a pending prompt; it is recorded as cancelled. */
  cancel(id: string): boolean {
    const index = this.pending.findIndex((p) => p.id === id);
    if (index < 0) return false;
    const [item] = this.pending.splice(index, 1);
    this.record(item!, { status: 'cancelled', executed: [], cached: [], timings_ms: {}, outputs: {} }, null);
    this.emitStatus();
    return true;
  }

  clearPending(): number {
    const ids = this.pending.map((p) => p.id);
    for (const id of ids) this.cancel(id);
    return ids.length;
  }

  /** Interrupts the running prompt (only if it is `id`, when given). */
  interrupt(id?: string): boolean {
    if (!this.running || (id !== undefined && this.running.item.id !== id)) return false;
    this.running.abort.abort();
    return true;
  }

  history(): HistoryEntry[] {
    return [...this.historyMap.values()];
  }

  historyEntry(id: string): HistoryEntry | undefined {
    return this.historyMap.get(id);
  }

  deleteHistory(id?: string): void {
    if (id === undefined) this.historyMap.clear();
    else this.historyMap.delete(id);
  }

  /** Resolves when prompt `id` has finished, however it ended. */
  whenDone(id: string): Promise<HistoryEntry> {
    const done = this.historyMap.get(id);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), resolve]));
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let item = this.pending.shift(); item; item = this.pending.shift()) {
        const abort = new AbortController();
        this.running = { item, abort };
        this.emitStatus();
        const startedAt = Date.now();
        const result = await executeGraph({
          promptId: item.id,
          promptNumber: item.number,
          graph: item.graph,
          env: this.opts.env,
          cache: this.opts.cache,
          sink: this.events,
          signal: abort.signal,
          extra: { workflow: item.workflow ?? undefined, prompt: item.prompt },
          ...(this.opts.encodePreview ? { encodePreview: this.opts.encodePreview } : {}),
        }).catch((err: unknown) => internalFailure(item, err));
        this.running = null;
        this.record(item, result, startedAt);
      }
    } finally {
      this.pumping = false;
      this.emitStatus();
    }
  }

  private record(
    item: Pending,
    result: Pick<HistoryEntry, 'status' | 'executed' | 'cached' | 'timings_ms' | 'outputs'> & { error?: NodeErrorInfo },
    startedAt: number | null,
  ): void {
    const entry: HistoryEntry = {
      id: item.id,
      number: item.number,
      client_id: item.client_id,
      created_at: item.created_at,
      started_at: startedAt,
      finished_at: Date.now(),
      status: result.status,
      executed: result.executed,
      cached: result.cached,
      timings_ms: result.timings_ms,
      outputs: result.outputs,
      error: result.error ?? null,
      prompt: item.prompt,
      workflow: item.workflow,
    };
    this.historyMap.set(item.id, entry);
    const limit = this.opts.historyLimit ?? 10_000;
    for (const key of this.historyMap.keys()) {
      if (this.historyMap.size <= limit) break;
      this.historyMap.delete(key);
    }
    for (const resolve of this.waiters.get(item.id) ?? []) resolve(entry);
    this.waiters.delete(item.id);
  }

  private emitStatus(): void {
    this.events.emit({
      type: 'status',
      queue_remaining: this.pending.length + (this.running ? 1 : 0),
      running: this.running?.item.id ?? null,
    });
  }
}

/** A fault in the engine itself still ends the prompt with a record, and the queue goes on. */
function internalFailure(item: Pending, err: unknown): Awaited<ReturnType<typeof executeGraph>> {
  const first = item.graph.nodes.get(item.graph.order[0]!)!;
  return {
    status: 'error',
    executed: [],
    cached: [],
    timings_ms: {},
    outputs: {},
    error: {
      node_id: first.id,
      node_type: first.def.id,
      node_title: first.title,
      code: 'NODE_FAILED',
      message: `internal error while running the prompt: ${err instanceof Error ? err.message : String(err)}`,
      inputs: {},
    },
  };
}
