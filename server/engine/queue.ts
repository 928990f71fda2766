import { randomUUID } from 'node:crypto';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { OutputCache } from './cache.ts';
import type { HistoryEntry, QueueItem } from '../protocol/history.ts';
import { EventHub, type EngineEvent, type EventSink, type NodeErrorInfo } from './events.ts';
import { executeGraph, type PreviewEncoder } from './executor.ts';
import { HistoryStore } from './history-store.ts';
import type { BodyRef, JournalHealth, JournalItem, LoadedItem, QueueJournal, RunningMark, StoredHistoryEntry } from './journal.ts';
import { createLogger } from '../log.ts';
import type { ApiPrompt } from '../protocol/prompt.ts';
import type { NodeRegistry } from './registry.ts';
import { compilePrompt, type CompiledGraph, type ValidationIssue } from './validate.ts';

export type { HistoryEntry, QueueItem };

const log = createLogger('queue');

/** A prompt cut off by a restart is put back at most this many times (it may be what crashed it). */
export const MAX_REQUEUES = 1;

export interface SubmitRequest {
  prompt: ApiPrompt;
  workflow?: unknown;
  front?: boolean;
  clientId?: string;
}

export type SubmitResult =
  | { ok: true; id: string; number: number }
  | { ok: false; reason: 'invalid'; errors: ValidationIssue[] }
  | { ok: false; reason: 'full'; message: string }
  /** The journal cannot store it, so it would not survive a restart: nothing was queued. */
  | { ok: false; reason: 'unavailable'; message: string };

export interface QueueOptions {
  registry: NodeRegistry;
  env: NodeEnv;
  cache: OutputCache;
  encodePreview?: PreviewEncoder;
  historyLimit?: number;
  maxPending?: number;
  /** Keeps the queue and history on disk; what it holds is restored by the constructor. */
  journal?: QueueJournal;
  /** What a restart does with the prompt that was running: record it as failed, or run it again. */
  onRestart?: 'fail' | 'requeue';
}

interface Pending extends QueueItem {
  graph: CompiledGraph;
  prompt: ApiPrompt;
  workflow: unknown;
  order: number;
  attempts: number;
  /** Set when the journal keeps prompt and workflow in a file of their own (large prompts). */
  body?: BodyRef;
  /** Until its record is stored: the prompt does not start before (see drain). */
  stored?: Promise<void>;
}

/**
 * A FIFO of validated prompts run one at a time, with interrupt and a bounded history. Events go
 * to `events`; a failing prompt is recorded and the next one runs.
 */
export class PromptQueue {
  readonly events = new EventHub();
  private readonly pending: Pending[] = [];
  /** Entries of large prompts keep their prompt and workflow in the journal's body files (`body`), not here. */
  private readonly store: HistoryStore;
  private running: { item: Pending; abort: AbortController } | null = null;
  private counter = 0;
  private draining = false;
  /** The current (or last) run of drain(), awaited by stop(). */
  private drained: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Queue positions handed out so far: the front gets lower ones, the back higher ones. */
  private lowOrder = 0;
  private highOrder = 0;

  constructor(private readonly opts: QueueOptions) {
    this.store = new HistoryStore(opts.journal, opts.historyLimit);
    if (opts.journal) this.restore(opts.journal);
  }

  submit(req: SubmitRequest): SubmitResult {
    if (this.stopped) return { ok: false, reason: 'full', message: 'the server is shutting down' };
    const journal = this.opts.journal;
    const problem = journal?.failed();
    if (problem) return { ok: false, reason: 'unavailable', message: unavailableMessage(problem) };
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
      order: req.front ? --this.lowOrder : ++this.highOrder,
      attempts: 0,
    };
    if (journal) {
      const body = journal.storeBody(item.id, item.prompt, item.workflow);
      if (body) item.body = body;
      const stored = journal.putItem(journalItem(item));
      item.stored = stored;
      stored.then(
        () => {
          if (item.stored === stored) delete item.stored;
        },
        // Not stored, so never acknowledged: it leaves the queue before anyone is answered, and never runs.
        () => this.withdraw(item.id),
      );
    }
    if (req.front) this.pending.unshift(item);
    else this.pending.push(item);
    this.emitStatus();
    queueMicrotask(() => this.pump());
    return { ok: true, id: item.id, number: item.number };
  }

  /**
   * Resolves once what is known about prompt `id` is on disk (at once without a journal); rejects
   * when the journal could not store it (the prompt was then withdrawn from the queue).
   */
  persisted(id: string): Promise<void> {
    return this.opts.journal?.written(id) ?? Promise.resolve();
  }

  /**
   * Null when prompts can be queued durably (or there is no journal); otherwise why not, after the
   * journal has tried to write again.
   */
  async storageProblem(): Promise<string | null> {
    const problem = await this.opts.journal?.ensureWritable();
    return problem ? unavailableMessage(problem) : null;
  }

  /** The journal's health (null without one), for /api/system. */
  storage(): JournalHealth | null {
    return this.opts.journal?.health() ?? null;
  }

  /**
   * The prompt and workflow of a history entry whose body is kept apart, as the bytes of
   * `{"prompt":...,"workflow":...}`; rejects when the file is missing or damaged.
   */
  historyBody(entry: StoredHistoryEntry): Promise<Buffer> {
    if (!entry.body || !this.opts.journal) return Promise.resolve(Buffer.from(JSON.stringify({ prompt: entry.prompt, workflow: entry.workflow })));
    return this.opts.journal.readBody(entry.id, entry.body);
  }

  /**
   * Stops taking and starting prompts and interrupts the running one, for a shutdown. With a
   * journal, pending prompts stay queued on disk and the interrupted one stays marked as running,
   * so the next start applies its restart policy to it exactly as after a crash.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.running?.abort.abort();
    await this.drained;
    await this.opts.journal?.flush();
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

  /** Takes back a prompt whose record could not be stored: no history entry, since nobody was told it was queued. */
  private withdraw(id: string): void {
    const index = this.pending.findIndex((p) => p.id === id);
    if (index < 0) return;
    this.pending.splice(index, 1);
    void this.opts.journal?.drop(id);
    log.warn(`prompt ${id} was withdrawn: the journal could not store it`);
    this.emitStatus();
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

  /** Oldest first. Entries with `body` carry `{}` and null for prompt and workflow (see historyBody). */
  history(): StoredHistoryEntry[] {
    return this.store.list();
  }

  historyEntry(id: string): StoredHistoryEntry | undefined {
    return this.store.get(id);
  }

  deleteHistory(id?: string): void {
    this.store.remove(id);
  }

  /** Resolves when prompt `id` has finished, however it ended. */
  whenDone(id: string): Promise<HistoryEntry> {
    return this.store.whenDone(id);
  }

  private pump(): void {
    if (this.draining || this.stopped) return;
    this.drained = this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    // One async function, so that the status after the last prompt is sent in the same turn
    // as its record (waiters see it when they resume).
    let ran = false;
    try {
      while (!this.stopped) {
        // Cheap prompts finish without touching I/O; yielding between them lets requests and
        // websocket writes through, so a long queue never holds the event loop.
        if (ran && this.pending.length > 0 && this.yieldNow()) await new Promise<void>((resolve) => setImmediate(resolve));
        ran = true;
        if (this.stopped) break;
        const head = this.pending[0];
        if (!head) break;
        if (head.stored) {
          // A prompt starts only once its record is stored: one whose record fails is withdrawn
          // (answered 503), and must not have run. Then look at the head again.
          const stored = head.stored;
          await stored.then(
            () => undefined,
            () => undefined,
          );
          if (head.stored === stored) delete head.stored;
          continue;
        }
        const item = this.pending.shift()!;
        const abort = new AbortController();
        this.running = { item, abort };
        this.emitStatus();
        const startedAt = Date.now();
        const journal = this.opts.journal;
        journal?.markRunning({ id: item.id, started_at: startedAt, node: null });
        const result = await executeGraph({
          promptId: item.id,
          promptNumber: item.number,
          graph: item.graph,
          env: this.opts.env,
          cache: this.opts.cache,
          sink: journal ? this.trackingSink(item, startedAt, journal) : this.events,
          signal: abort.signal,
          extra: { workflow: item.workflow ?? undefined, prompt: item.prompt },
          ...(this.opts.encodePreview ? { encodePreview: this.opts.encodePreview } : {}),
        }).catch((err: unknown) => internalFailure(item, err));
        this.running = null;
        if (this.stopped && result.status === 'interrupted' && journal) {
          // Cut off by the shutdown, not by a user: it stays queued and marked as running on disk.
          log.info(`prompt ${item.id} was stopped by the shutdown; the next start decides what happens to it`);
          break;
        }
        journal?.markRunning(null);
        this.record(item, result, startedAt);
      }
      if (this.stopped && this.pending.length > 0) log.info(`${this.pending.length} pending prompt(s) stay queued for the next start`);
    } finally {
      this.draining = false;
      this.emitStatus();
    }
  }

  private lastYield = performance.now();
  /** True at most every few milliseconds: yielding costs a turn of the event loop. */
  private yieldNow(): boolean {
    const now = performance.now();
    if (now - this.lastYield < 4) return false;
    this.lastYield = now;
    return true;
  }

  /** Forwards the executor's events and keeps the running mark on disk pointing at the current node. */
  private trackingSink(item: Pending, startedAt: number, journal: QueueJournal): EventSink {
    return {
      emit: (event: EngineEvent) => {
        if (event.type === 'node_start') {
          const title = item.graph.nodes.get(event.node_id)?.title ?? event.node_type;
          journal.markRunning({ id: item.id, started_at: startedAt, node: { id: event.node_id, type: event.node_type, title } });
        }
        this.events.emit(event);
      },
      wantsPreviews: () => this.events.wantsPreviews(),
    };
  }

  /**
   * Loads the journal: the history as it was, pending prompts in their order (compiled again:
   * a prompt whose files or nodes are gone is recorded as failed), and the prompt that was
   * running when the process stopped either failed with the reason or put back at the front.
   */
  private restore(journal: QueueJournal): void {
    const state = journal.load();
    this.store.restore(state.history);
    const numbers = [...state.history, ...state.items].map((x) => x.number);
    this.counter = Math.max(0, ...numbers);
    this.lowOrder = Math.min(0, ...state.items.map((i) => i.order));
    this.highOrder = Math.max(0, ...state.items.map((i) => i.order));

    const policy = this.opts.onRestart ?? 'fail';
    const interrupted = new Set<string>();
    // Without a running mark a prompt may still have been cut off before the mark was written;
    // it then simply runs (again) as pending, which is what it was as far as anyone could tell.
    if (state.running) interrupted.add(state.running.id);
    for (const stored of state.items) {
      const item = this.revive(stored);
      if (!interrupted.has(stored.id)) {
        if (item.graph) this.pending.push(item as Pending);
        else this.recordRestored(item, null, item.invalid);
        continue;
      }
      const mark = state.running!;
      if (policy === 'requeue' && stored.attempts < MAX_REQUEUES && item.graph) {
        const again = { ...(item as Pending), attempts: stored.attempts + 1, order: --this.lowOrder };
        void journal.putItem(journalItem(again));
        this.pending.unshift(again);
        log.warn(`prompt ${stored.id} was running when the server stopped; it is queued again (attempt ${again.attempts + 1})`);
      } else {
        const why =
          policy === 'requeue' && stored.attempts >= MAX_REQUEUES
            ? `the server stopped while this prompt was running, again after it had been queued once more (${stored.attempts + 1} tries); it is not run again`
            : 'the server stopped while this prompt was running, so it did not finish; queue it again to run it';
        this.recordRestored(item, mark, restartError(mark, why));
        log.warn(`prompt ${stored.id} was running when the server stopped; recorded as failed`);
      }
    }
    if (state.running) journal.markRunning(null);
    this.pending.sort((a, b) => a.order - b.order);
    if (this.pending.length > 0) {
      log.info(`restored ${this.pending.length} pending prompt(s) and ${this.store.size} history entries`);
      queueMicrotask(() => this.pump());
    }
  }

  private revive(stored: LoadedItem): Omit<Pending, 'graph'> & { graph?: CompiledGraph; invalid: NodeErrorInfo } {
    const base = {
      id: stored.id,
      number: stored.number,
      client_id: stored.client_id,
      created_at: stored.created_at,
      prompt: stored.prompt,
      workflow: stored.workflow,
      order: stored.order,
      attempts: stored.attempts,
      ...(stored.body ? { body: stored.body } : {}),
    };
    if (stored.bodyError) {
      return {
        ...base,
        invalid: { node_id: '', node_type: '', node_title: 'Server restart', code: 'VALIDATION', message: `after the restart ${stored.bodyError}, so it was not run`, inputs: {} },
      };
    }
    let compiled: ReturnType<typeof compilePrompt>;
    try {
      compiled = compilePrompt(stored.prompt, this.opts.registry, this.opts.env);
    } catch (err) {
      compiled = { ok: false, errors: [{ node_id: null, code: 'bad_value', message: err instanceof Error ? err.message : String(err) }] };
    }
    if (compiled.ok) return { ...base, graph: compiled.graph, invalid: restartError(null, '') };
    const first = compiled.errors[0];
    const node = first?.node_id ? stored.prompt[first.node_id] : undefined;
    return {
      ...base,
      invalid: {
        node_id: first?.node_id ?? '',
        node_type: node?.class_type ?? '',
        node_title: node?._meta?.title ?? node?.class_type ?? 'Restart',
        code: 'VALIDATION',
        message: `after the restart this prompt no longer validates (${compiled.errors.length} problem(s); first: ${first?.message ?? '?'}), so it was not run`,
        inputs: {},
      },
    };
  }

  private recordRestored(item: Omit<Pending, 'graph'>, mark: RunningMark | null, error: NodeErrorInfo): void {
    this.record(item, { status: 'error', executed: [], cached: [], timings_ms: {}, outputs: {}, error }, mark?.started_at ?? null);
  }

  private record(
    item: Omit<Pending, 'graph'>,
    result: Pick<HistoryEntry, 'status' | 'executed' | 'cached' | 'timings_ms' | 'outputs' | 'branches' | 'batch'> & { error?: NodeErrorInfo },
    startedAt: number | null,
  ): void {
    const entry: StoredHistoryEntry = {
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
      ...(result.branches ? { branches: result.branches } : {}),
      ...(result.batch ? { batch: result.batch } : {}),
      // A large prompt's history entry refers to its body file instead of holding it in memory.
      ...(item.body ? { prompt: {}, workflow: null, body: item.body } : { prompt: item.prompt, workflow: item.workflow }),
    };
    this.store.add(entry);
    this.store.settle(entry);
  }


  private emitStatus(): void {
    this.events.emit({
      type: 'status',
      queue_remaining: this.pending.length + (this.running ? 1 : 0),
      running: this.running?.item.id ?? null,
    });
  }
}

function journalItem(item: Pending): JournalItem {
  const { id, number, client_id, created_at, prompt, workflow, order, attempts, body } = item;
  if (body) return { id, number, client_id, created_at, prompt: {}, workflow: null, order, attempts, body };
  return { id, number, client_id, created_at, prompt, workflow, order, attempts };
}

/** The answer to a prompt that the journal could not store (`problem`: the journal's reason). */
export function unavailableMessage(problem: string): string {
  return `the prompt was not queued: ${problem}, so it would not survive a restart; free disk space or fix data/state (the server tries again by itself)`;
}

/** The history error of a prompt cut off by a stop of the server, naming the node it was in. */
function restartError(mark: RunningMark | null, message: string): NodeErrorInfo {
  return {
    node_id: mark?.node?.id ?? '',
    node_type: mark?.node?.type ?? '',
    node_title: mark?.node?.title ?? 'Server restart',
    code: 'INTERRUPTED',
    message: mark?.node ? `${mark.node.title} (#${mark.node.id}) was running: ${message}` : message,
    inputs: {},
  };
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
