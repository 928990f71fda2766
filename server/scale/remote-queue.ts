/**
 * The scale-out queue (`serve --queue redis://...`): prompts become BullMQ jobs (job id = prompt
 * id, so adding one twice adds it once) that `supir-studio worker` processes run. Engine events
 * come back as job progress through BullMQ's QueueEvents stream and go to the same EventHub the
 * embedded queue feeds, so the websocket server and the history are unchanged. The history stays in
 * the server's journal; the queue itself lives in Redis and survives a restart of the server.
 */
import { randomUUID } from 'node:crypto';
import { FlowProducer, Queue, QueueEvents, type FlowNestedLeafJob, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { FileRef } from '../../nodes/api/file-ref.ts';
import { hasSharedOutputs, resumeBatch } from '../engine/batch.ts';
import type { BatchItemResult, BatchSummary } from '../engine/batch-progress.ts';
import type { CompiledGraph } from '../engine/graph.ts';
import { BRANCH_SEPARATOR } from '../engine/sweep.ts';
import { EventHub, type EngineEvent, type NodeErrorInfo } from '../engine/events.ts';
import { HistoryStore } from '../engine/history-store.ts';
import type { JournalHealth, QueueJournal, StoredHistoryEntry } from '../engine/journal.ts';
import type { PromptQueueApi } from '../engine/queue-api.ts';
import { unavailableMessage, type HistoryEntry, type QueueItem, type SubmitRequest, type SubmitResult } from '../engine/queue.ts';
import type { NodeRegistry } from '../engine/registry.ts';
import { compilePrompt } from '../engine/validate.ts';
import { createLogger } from '../log.ts';
import { OutputStore, type WorkerFolder } from './outputs.ts';
import { bullConnection, redisOptions, type RedisTarget } from './redis-url.ts';
import { chooseWorker, packsOf, PREFER_MS } from './routing.ts';
import {
  ANNOUNCE_TTL_MS,
  BATCH_QUEUE_NAME,
  EVENTS_KEPT,
  fromWire,
  HEARTBEAT_MS,
  isWireEvent,
  itemJobId,
  KEY_PREFIX,
  keys,
  parseItemJobId,
  QUEUE_NAME,
  type BatchParentData,
  type JobData,
  type JobResult,
  type WireEvent,
  type WorkerAnnouncement,
} from './wire.ts';

const log = createLogger('scale');

export interface RemoteQueueOptions {
  target: RedisTarget;
  registry: NodeRegistry;
  env: NodeEnv;
  journal?: QueueJournal;
  historyLimit?: number;
  maxPending?: number;
  /** Where workers upload outputs unless they were told otherwise (known once the server listens). */
  serverUrl: () => string;
}

/** Attempts of a job whose worker fails outside the prompt (its uploads could not reach the server). */
const JOB_ATTEMPTS = 3;
/** How long an interrupted batch's mark stays in Redis (its images not started are passed over meanwhile). */
const STOPPED_TTL_S = 24 * 3600;

/**
 * A batch prompt while its images run as jobs of their own: what the server merges their events
 * and results into (one prompt_start, `batch` progress over all images, one history entry).
 */
interface BatchRun {
  id: string;
  data: BatchParentData;
  items: BatchItemResult[];
  /** prompt_start (and the resumed images' events) went out. */
  started: boolean;
  /** When the first image started (ms since epoch): the pace, hence the ETA, counts from it. */
  firstStart: number | null;
  /** Image jobs running now → their image's source. */
  running: Map<string, string>;
  /** Image job → the worker running its newest attempt: only that attempt's events go out. */
  attempt: Map<string, string>;
  /** Nodes that belong to no image, reported once (every image job runs or finds them). */
  sharedSeen: Set<string>;
  /** Image jobs whose end is merged in. */
  settled: Set<string>;
  /**
   * Image jobs whose end came through the job event stream, which carries each job's events
   * before its end: once all have, no event of the batch is still on its way.
   */
  ended: Set<string>;
  /** Called when `ended` grows (finishBatch waits for the last image's events). */
  onEnded: (() => void) | null;
  interruptedSent: boolean;
  stopped: boolean;
  firstError: NodeErrorInfo | null;
  lastWorker: string | null;
}

export class RemoteQueue implements PromptQueueApi {
  readonly events = new EventHub();
  private readonly queue: Queue<JobData, JobResult>;
  private readonly queueEvents: QueueEvents;
  /** Batch prompts: one parent job per batch, its children the image jobs in `queue` (a BullMQ flow). */
  private readonly batchQueue: Queue<BatchParentData>;
  private readonly batchEvents: QueueEvents;
  private readonly flows: FlowProducer;
  private readonly batches = new Map<string, BatchRun>();
  /** Commands of the server's own (status, publish, scan, file names): fail at once while Redis is away. */
  private readonly redis: Redis;
  private readonly outputs: OutputStore;
  private readonly pending = new Map<string, QueueItem>();
  private readonly running = new Map<string, QueueItem>();
  private readonly added = new Map<string, Promise<void>>();
  private readonly store: HistoryStore;
  /** A worker's prompt_done, held until the history entry is recorded (as the embedded queue does). */
  private readonly heldDone = new Map<string, EngineEvent>();
  private readonly finishing = new Set<string>();
  /** The worker running the newest attempt of each running prompt. */
  private readonly attempt = new Map<string, string>();
  private workers: WorkerAnnouncement[] = [];
  private connected = false;
  private lastError: string | null = null;
  private counter = 0;
  private stopped = false;
  private readonly poll: NodeJS.Timeout;

  constructor(private readonly opts: RemoteQueueOptions) {
    this.store = new HistoryStore(opts.journal, opts.historyLimit);
    const base = redisOptions(opts.target);
    // The producer fails fast: a POST /api/prompt while Redis is away answers 503 instead of hanging.
    const failFast = { ...base, maxRetriesPerRequest: 1, enableOfflineQueue: false };
    this.redis = new Redis({ ...failFast, lazyConnect: false });
    this.queue = new Queue<JobData, JobResult>(QUEUE_NAME, { connection: bullConnection(failFast), prefix: KEY_PREFIX, streams: { events: { maxLen: EVENTS_KEPT } } });
    this.queueEvents = new QueueEvents(QUEUE_NAME, { connection: bullConnection(base), prefix: KEY_PREFIX });
    this.batchQueue = new Queue<BatchParentData>(BATCH_QUEUE_NAME, { connection: bullConnection(failFast), prefix: KEY_PREFIX });
    this.batchEvents = new QueueEvents(BATCH_QUEUE_NAME, { connection: bullConnection(base), prefix: KEY_PREFIX });
    this.flows = new FlowProducer({ connection: bullConnection(failFast), prefix: KEY_PREFIX });
    this.outputs = new OutputStore(opts.env.dirs, this.redis);
    this.redis.on('ready', () => {
      if (!this.connected) log.info(`connected to Redis at ${opts.target.display}`);
      this.connected = true;
      this.lastError = null;
      void this.reconcile();
    });
    this.redis.on('error', (err: Error) => this.noteError(err));
    this.redis.on('close', () => {
      if (this.connected && !this.stopped) log.error(`lost the connection to Redis at ${opts.target.display}; prompts are refused (503) until it is back`);
      this.connected = false;
    });
    this.queue.on('error', (err) => this.noteError(err));
    this.queueEvents.on('error', (err) => this.noteError(err));
    this.batchQueue.on('error', (err) => this.noteError(err));
    this.batchEvents.on('error', (err) => this.noteError(err));
    this.flows.on('error', (err) => this.noteError(err));
    // Image jobs of a batch (`<prompt>.i<k>`) are merged into their batch prompt; other jobs are prompts.
    this.queueEvents.on('progress', ({ jobId, data }) => this.onProgress(jobId, data));
    this.queueEvents.on('active', ({ jobId }) => (parseItemJobId(jobId) ? this.moveBatch(parseItemJobId(jobId)!.prompt) : this.move(jobId, 'running')));
    this.queueEvents.on('waiting', ({ jobId }) => parseItemJobId(jobId) || this.move(jobId, 'pending'));
    this.queueEvents.on('delayed', ({ jobId }) => parseItemJobId(jobId) || this.move(jobId, 'pending'));
    this.queueEvents.on('completed', ({ jobId }) => void (parseItemJobId(jobId) ? this.itemEnded(jobId, true) : this.finish(jobId)));
    this.queueEvents.on('failed', ({ jobId }) => void (parseItemJobId(jobId) ? this.itemEnded(jobId, true) : this.finish(jobId)));
    this.queueEvents.on('stalled', ({ jobId }) => log.warn(`${parseItemJobId(jobId) ? 'batch image' : 'prompt'} ${jobId}: its worker stopped answering (killed or hung); it runs again on another worker`));
    // A batch's parent job reaches its wait list once its last image job ended (or at once, with none).
    this.batchEvents.on('waiting', ({ jobId }) => void this.finishBatch(jobId));
    if (opts.journal) this.restoreHistory(opts.journal);
    this.poll = setInterval(() => void this.refreshWorkers(), HEARTBEAT_MS);
    this.poll.unref();
  }

  /** Resolves once Redis answered (or after `timeoutMs`: the server starts anyway and says why in /api/system). */
  async ready(timeoutMs = 3000): Promise<void> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    const ready = Promise.all([this.queueEvents.waitUntilReady(), this.queue.waitUntilReady(), this.batchEvents.waitUntilReady(), this.batchQueue.waitUntilReady()]);
    await Promise.race([ready.then(() => this.reconcile()), timeout]).catch((err: unknown) => this.noteError(err));
    if (!this.connected) log.error(`Redis at ${this.opts.target.display} does not answer; the server runs, and refuses prompts (503) until it does`);
  }

  submit(req: SubmitRequest): SubmitResult {
    if (this.stopped) return { ok: false, reason: 'full', message: 'the server is shutting down' };
    if (!this.connected) return { ok: false, reason: 'unavailable', message: this.redisProblem() };
    const max = this.opts.maxPending ?? 1000;
    if (this.pending.size >= max) return { ok: false, reason: 'full', message: `the queue already holds ${max} prompts; wait or cancel some` };
    const compiled = compilePrompt(req.prompt, this.opts.registry, this.opts.env);
    if (!compiled.ok) return { ok: false, reason: 'invalid', errors: compiled.errors };
    const item: QueueItem = { id: randomUUID(), number: ++this.counter, client_id: req.clientId ?? null, created_at: Date.now() };
    if (compiled.graph.batch) return this.submitBatch(req, item, compiled.graph);
    const packs = packsOf(req.prompt);
    const prefer = chooseWorker(packs, this.workers);
    const data: JobData = {
      prompt: req.prompt,
      workflow: req.workflow ?? null,
      number: item.number,
      client_id: item.client_id,
      created_at: item.created_at,
      server_url: this.opts.serverUrl(),
      packs,
      ...(prefer ? { prefer, prefer_until: Date.now() + PREFER_MS } : {}),
    };
    this.pending.set(item.id, item);
    const added = this.queue
      .add('prompt', data, { jobId: item.id, lifo: req.front === true, attempts: JOB_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 } })
      .then(
        () => undefined,
        (err: unknown) => {
          this.pending.delete(item.id);
          this.emitStatus();
          log.warn(`prompt ${item.id} was not queued: ${message(err)}`);
          throw new Error(`Redis did not take it (${message(err)})`);
        },
      );
    added.catch(() => undefined);
    this.added.set(item.id, added);
    void added.finally(() => this.added.delete(item.id)).catch(() => undefined);
    this.emitStatus();
    return { ok: true, id: item.id, number: item.number };
  }

  persisted(id: string): Promise<void> {
    return this.added.get(id) ?? Promise.resolve();
  }

  async storageProblem(): Promise<string | null> {
    if (!this.connected) return this.redisProblem();
    const problem = await this.opts.journal?.ensureWritable();
    return problem ? unavailableMessage(problem) : null;
  }

  storage(): JournalHealth | null {
    return this.opts.journal?.health() ?? null;
  }

  historyBody(entry: StoredHistoryEntry): Promise<Buffer> {
    if (!entry.body || !this.opts.journal) return Promise.resolve(Buffer.from(JSON.stringify({ prompt: entry.prompt, workflow: entry.workflow })));
    return this.opts.journal.readBody(entry.id, entry.body);
  }

  /** Closes the server's Redis connections; queued and running prompts stay in Redis for the workers and the next start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.poll);
    await Promise.allSettled([this.queueEvents.close(), this.queue.close(), this.batchEvents.close(), this.batchQueue.close(), this.flows.close()]);
    this.redis.disconnect();
    await this.opts.journal?.flush();
  }

  list(): { running: QueueItem | null; pending: QueueItem[] } {
    const byNumber = (a: QueueItem, b: QueueItem): number => a.number - b.number;
    return { running: [...this.running.values()].sort(byNumber)[0] ?? null, pending: [...this.pending.values()].sort(byNumber) };
  }

  cancel(id: string): boolean {
    const item = this.pending.get(id);
    if (!item) return false;
    this.pending.delete(id);
    this.emitStatus();
    // A job a worker has just taken is locked and cannot be removed: it then runs and is recorded as usual.
    // A batch's parent goes with its image jobs (none has started: the batch is pending).
    const removal = this.batches.has(id) ? this.batchQueue.remove(id, { removeChildren: true }) : this.queue.remove(id);
    removal.then(
      (removed) => {
        if (removed === 1) {
          this.batches.delete(id);
          this.record(item, { prompt: {}, workflow: null }, cancelledResult(), null, []);
        } else log.info(`prompt ${id} had already started when it was cancelled; it runs to its end`);
      },
      (err: unknown) => log.warn(`prompt ${id} could not be cancelled: ${message(err)}`),
    );
    return true;
  }

  clearPending(): number {
    const ids = [...this.pending.keys()];
    for (const id of ids) this.cancel(id);
    return ids.length;
  }

  interrupt(id?: string): boolean {
    if (id !== undefined ? !this.running.has(id) : this.running.size === 0) return false;
    // A batch's images not started yet are passed over by the workers that take them.
    for (const target of id !== undefined ? [id] : [...this.running.keys()]) {
      const run = this.batches.get(target);
      if (!run) continue;
      run.stopped = true;
      this.redis.set(keys.stopped(target), '1', 'EX', STOPPED_TTL_S).catch((err: unknown) => log.warn(`batch ${target}: its stop was not stored: ${message(err)}`));
    }
    this.redis.publish(keys.interrupt, id ?? '*').catch((err: unknown) => log.warn(`interrupt not sent: ${message(err)}`));
    return true;
  }

  history(): StoredHistoryEntry[] {
    return this.store.list();
  }

  historyEntry(id: string): StoredHistoryEntry | undefined {
    return this.store.get(id);
  }

  deleteHistory(id?: string): void {
    this.store.remove(id);
  }

  whenDone(id: string): Promise<HistoryEntry> {
    return this.store.whenDone(id);
  }

  async scaleInfo(): Promise<unknown> {
    const counts = this.connected ? await withTimeout(this.queue.getJobCounts(), 1000).catch(() => null) : null;
    return {
      mode: 'redis',
      redis: this.opts.target.display,
      connected: this.connected,
      error: this.connected ? null : this.redisProblem(),
      jobs: counts,
      workers: this.workers,
    };
  }

  /**
   * A worker's file for job `id` (a prompt, or an image of a batch); refused once the prompt is
   * recorded (a late, stale attempt). `replace`: the file's own name, written over (server/scale/outputs.ts).
   */
  async storeFile(id: string, folder: WorkerFolder, name: string, bytes: Uint8Array, replace = false): Promise<string | null> {
    if (this.store.has(parseItemJobId(id)?.prompt ?? id)) return null;
    return this.outputs.put(id, folder, name, bytes, replace);
  }

  /** Whether job `id` is queued or running (in Redis, also when this server has not seen it yet) and its prompt not recorded. */
  async accepts(id: string): Promise<boolean> {
    const prompt = parseItemJobId(id)?.prompt ?? id;
    if (this.store.has(prompt)) return true; // storeFile answers 409
    if (this.pending.has(prompt) || this.running.has(prompt) || this.finishing.has(prompt)) return true;
    return (await this.queue.getJob(id)) !== undefined;
  }

  private onProgress(id: string, data: unknown): void {
    if (!isWireEvent(data)) return;
    const ref = parseItemJobId(id);
    if (ref) return this.onItemProgress(id, ref.prompt, data);
    const event = fromWire(data);
    if (event.type === 'prompt_done') {
      const current = this.attempt.get(id);
      if (current !== undefined && current !== data.worker) return;
      this.heldDone.set(id, event);
      return;
    }
    if (event.type === 'prompt_start') {
      this.attempt.set(id, data.worker);
      this.move(id, 'running');
      this.events.emit({ ...event, worker: data.worker });
      return;
    }
    // A worker that lost its prompt (it stalled, and another worker took it over) may still be
    // running it: only the newest attempt's events reach the clients.
    const current = this.attempt.get(id);
    if (current !== undefined && current !== data.worker) return;
    this.events.emit(event);
  }

  /**
   * Queues a batch as a BullMQ flow: a parent job (BATCH_QUEUE_NAME) for the prompt, with one
   * child job per image not done yet, so that workers share the batch and a killed worker's image
   * runs again elsewhere. Images whose outputs the server's outputs folder holds already (Save
   * Image's `resumeFiles`: `{name}`/`{index}`) are not queued: they are the batch's resumed images.
   * Outputs that belong to no image run with the first image's job (or a job of their own).
   */
  private submitBatch(req: SubmitRequest, item: QueueItem, graph: CompiledGraph): SubmitResult {
    const plan = graph.batch!;
    const resumed = resumeBatch(graph, this.opts.env);
    const todo = plan.items.filter((i) => !resumed.items.has(i.index));
    const shared = hasSharedOutputs(graph);
    const base = {
      prompt: req.prompt,
      workflow: req.workflow ?? null,
      number: item.number,
      client_id: item.client_id,
      created_at: item.created_at,
      server_url: this.opts.serverUrl(),
      packs: packsOf(req.prompt),
    };
    const childOpts = (jobId: string): FlowNestedLeafJob['opts'] => ({ jobId, attempts: JOB_ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, ignoreDependencyOnFailure: true });
    // No `prefer` (routing.ts): the images of one batch are meant to spread over the workers.
    // The image jobs carry no prompt: the workers read it from the parent job (one copy in Redis).
    const lean = { ...base, prompt: {}, workflow: null };
    const children: FlowNestedLeafJob[] = todo.map((i, k) => {
      const jobId = itemJobId(item.id, i.index);
      const data: JobData = { ...lean, batch: { prompt_id: item.id, index: i.index, file: i.file, shared: shared && k === 0 } };
      return { name: 'image', queueName: QUEUE_NAME, data, opts: childOpts(jobId) };
    });
    if (shared && children.length === 0) {
      const jobId = itemJobId(item.id, null);
      children.push({ name: 'shared', queueName: QUEUE_NAME, data: { ...lean, batch: { prompt_id: item.id, index: null, file: null, shared: true } } satisfies JobData, opts: childOpts(jobId) });
    }
    const data: BatchParentData = {
      ...base,
      batch: {
        node: plan.node,
        title: plan.title,
        items: plan.items.map((i) => ({ index: i.index, position: i.position, source: i.source, file: i.file })),
        resumed: [...resumed.items].sort((a, b) => a - b),
        resumed_outputs: Object.fromEntries(resumed.resumed),
        nodes: [...resumed.graph.order, ...resumed.resumed.keys()],
        jobs: children.map((c) => c.opts!.jobId!),
      },
    };
    this.pending.set(item.id, item);
    this.batches.set(item.id, newBatchRun(item.id, data));
    const added = this.flows
      .add({ name: 'batch', queueName: BATCH_QUEUE_NAME, data, opts: { jobId: item.id }, children })
      .then(
        () => undefined,
        (err: unknown) => {
          this.pending.delete(item.id);
          this.batches.delete(item.id);
          this.emitStatus();
          log.warn(`batch ${item.id} was not queued: ${message(err)}`);
          throw new Error(`Redis did not take it (${message(err)})`);
        },
      );
    added.catch(() => undefined);
    this.added.set(item.id, added);
    void added.finally(() => this.added.delete(item.id)).catch(() => undefined);
    if (resumed.items.size > 0) log.info(`batch ${item.id}: ${resumed.items.size} of ${plan.items.length} image(s) are saved already and are not queued again`);
    this.emitStatus();
    return { ok: true, id: item.id, number: item.number };
  }

  /** The batch prompt `id` as this server follows it; read back from its parent job after a restart. */
  private async batchRun(id: string): Promise<BatchRun | undefined> {
    const known = this.batches.get(id);
    if (known) return known;
    if (this.store.has(id)) return undefined;
    const job = await this.batchQueue.getJob(id);
    if (!job) return undefined;
    // Images that ended while this server was away are merged in now.
    const values = ((await job.getChildrenValues()) ?? {}) as Record<string, JobResult>;
    const raced = this.batches.get(id);
    if (raced) return raced;
    const run = newBatchRun(id, job.data);
    for (const jobId of run.data.batch.jobs) {
      const value = values[`${KEY_PREFIX}:${QUEUE_NAME}:${jobId}`];
      if (!value) continue;
      this.applyItemResult(run, jobId, value);
      run.ended.add(jobId);
    }
    this.batches.set(id, run);
    return run;
  }

  private async trackBatch(job: Job<BatchParentData>, where: 'pending' | 'running'): Promise<void> {
    const id = job.id!;
    const run = await this.batchRun(id);
    if (!run || this.store.has(id)) return;
    this.track({ id, data: job.data }, where);
    // Seen running after a restart: its progress so far goes to the clients connected now.
    if (where === 'running') this.beginBatch(run);
  }

  /** An image of batch `id` started: the batch runs. */
  private moveBatch(id: string): void {
    if (this.store.has(id) || this.finishing.has(id)) return;
    if (this.pending.has(id) || this.running.has(id)) return this.move(id, 'running');
    void this.batchRun(id).then((run) => {
      if (!run || this.store.has(id)) return;
      this.track({ id, data: run.data }, 'running');
    }, (err: unknown) => this.noteError(err));
  }

  /** Sends a batch's prompt_start once, with the images resumed before it was queued. */
  private beginBatch(run: BatchRun, worker?: string): void {
    if (run.started) return;
    run.started = true;
    const { id, data } = run;
    this.move(id, 'running');
    this.events.emit({ type: 'prompt_start', prompt_id: id, number: data.number, nodes: data.batch.nodes, ...(worker ? { worker } : {}) });
    const resumedIds = Object.keys(data.batch.resumed_outputs);
    this.events.emit({ type: 'cached', prompt_id: id, nodes: resumedIds });
    for (const [nodeId, files] of Object.entries(data.batch.resumed_outputs)) {
      if (files.length === 0) continue;
      const k = branchIndex(nodeId);
      const branch = k === null ? undefined : { of: nodeId.slice(0, nodeId.lastIndexOf(BRANCH_SEPARATOR)), index: k, label: data.batch.items[k]?.source ?? String(k) };
      this.events.emit({ type: 'node_done', prompt_id: id, node_id: nodeId, cached: true, ms: 0, files, ...(branch ? { branch } : {}) });
    }
    this.sendBatch(run);
  }

  /**
   * An event of an image job: the image's nodes' events go out as they come (named by the batch
   * prompt's id, which the worker runs them under); the nodes that belong to no image, which every
   * image job runs or finds cached, go out once; the jobs' own start and end become the batch's
   * `batch` progress, and prompt_done goes out when the whole batch is recorded.
   */
  private onItemProgress(jobId: string, prompt: string, data: WireEvent): void {
    const run = this.batches.get(prompt);
    if (!run) {
      // After a restart of this server: followed from the next event on.
      void this.batchRun(prompt).catch((err: unknown) => this.noteError(err));
      return;
    }
    const event = fromWire(data);
    if (event.type === 'prompt_start') {
      run.attempt.set(jobId, data.worker);
      this.beginBatch(run, data.worker);
      const index = parseItemJobId(jobId)?.index;
      if (index !== null && index !== undefined) {
        run.firstStart ??= Date.now();
        run.running.delete(jobId);
        run.running.set(jobId, run.data.batch.items[index]?.source ?? String(index));
        this.sendBatch(run);
      }
      return;
    }
    const current = run.attempt.get(jobId);
    if (current !== undefined && current !== data.worker) return;
    switch (event.type) {
      case 'prompt_done':
      case 'batch':
      case 'status':
        return;
      case 'interrupted':
        if (run.interruptedSent) return;
        run.interruptedSent = true;
        this.events.emit(event);
        return;
      case 'cached': {
        const nodes = event.nodes.filter((n) => branchIndex(n) !== null || !run.sharedSeen.has(n));
        for (const n of nodes) if (branchIndex(n) === null) run.sharedSeen.add(n);
        if (nodes.length > 0) this.events.emit({ ...event, nodes });
        return;
      }
      default: {
        const nodeId = 'node_id' in event ? event.node_id : null;
        const sharedNode = nodeId !== null && nodeId !== '' && branchIndex(nodeId) === null;
        if (sharedNode && run.sharedSeen.has(nodeId)) return;
        if (sharedNode && (event.type === 'node_done' || event.type === 'error')) run.sharedSeen.add(nodeId);
        this.events.emit(event);
      }
    }
  }

  /** An image job ended (completed, or failed for good): merged into its batch once. */
  private async itemEnded(jobId: string, fromStream = false): Promise<void> {
    const ref = parseItemJobId(jobId);
    if (!ref) return;
    const known = this.batches.get(ref.prompt);
    if (fromStream && known) {
      known.ended.add(jobId);
      known.onEnded?.();
    }
    try {
      const run = await this.batchRun(ref.prompt);
      if (!run || run.settled.has(jobId)) return;
      const job = await this.queue.getJob(jobId);
      if (!job) return;
      const state = await job.getState();
      if (run.settled.has(jobId)) return;
      if (state === 'completed' && job.returnvalue) this.applyItemResult(run, jobId, job.returnvalue);
      else if (state === 'failed') this.applyItemFailure(run, jobId, job.failedReason, job.attemptsMade);
      else return;
      this.sendBatch(run);
    } catch (err) {
      this.noteError(err);
    }
  }

  private applyItemResult(run: BatchRun, jobId: string, result: JobResult): void {
    run.settled.add(jobId);
    run.running.delete(jobId);
    if (result.worker && result.status !== 'interrupted') run.lastWorker = result.worker;
    const index = parseItemJobId(jobId)?.index ?? null;
    const ended = index === null ? undefined : result.batch?.items.find((i) => i.index === index);
    if (index !== null && ended) run.items[index] = { ...ended, ...(result.worker ? { worker: result.worker } : {}) };
    if (result.error && result.status === 'error') run.firstError ??= result.error;
  }

  private applyItemFailure(run: BatchRun, jobId: string, reason: string | undefined, attempts: number): void {
    run.settled.add(jobId);
    run.running.delete(jobId);
    const index = parseItemJobId(jobId)?.index ?? null;
    const what = index === null ? 'the outputs that belong to no image' : `image ${JSON.stringify(run.data.batch.items[index]?.source ?? index)}`;
    const error: NodeErrorInfo = {
      node_id: '',
      node_type: '',
      node_title: 'Worker',
      code: 'NODE_FAILED',
      message: `${what} could not be run by a worker after ${attempts} attempt(s): ${reason ?? 'no reason given'}`,
      inputs: {},
    };
    if (index !== null && run.items[index]) run.items[index] = { ...run.items[index], status: 'failed', error: error.message };
    run.firstError ??= error;
    this.events.emit({ type: 'error', prompt_id: run.id, ...error });
  }

  /** Sends the batch's progress over all its images: done, resumed, failed, the image started last, and the time left at the pace so far. */
  private sendBatch(run: BatchRun): void {
    const s = batchSummary(run);
    const ran = s.done + s.failed;
    const waiting = s.total - ran - s.resumed;
    const eta = ran > 0 && run.firstStart !== null ? ((Date.now() - run.firstStart) / ran) * waiting : undefined;
    this.events.emit({
      type: 'batch',
      prompt_id: run.id,
      node_id: s.node,
      total: s.total,
      done: s.done,
      resumed: s.resumed,
      failed: s.failed,
      running: [...run.running.values()].at(-1) ?? null,
      ...(eta === undefined ? {} : { eta_ms: Math.round(eta) }),
    });
  }

  /**
   * Records a batch whose parent job reached its wait list (every image job ended): one history
   * entry with every image's outputs, executed and cached nodes, and who ran what; then removes
   * the flow from Redis.
   */
  private async finishBatch(id: string): Promise<void> {
    if (this.store.has(id) || this.finishing.has(id)) return;
    this.finishing.add(id);
    try {
      const parent = await this.batchQueue.getJob(id);
      if (!parent) return;
      const state = await parent.getState();
      if (state !== 'waiting' && state !== 'prioritized') return;
      const run = (await this.batchRun(id))!;
      // The last images' events may still be on their way through the other stream: they go out
      // before prompt_done (bounded: an end missed while this server was away is not waited for).
      await waitFor(() => run.data.batch.jobs.every((jobId) => run.ended.has(jobId)), (wake) => (run.onEnded = wake), 5000);
      run.onEnded = null;
      const [values, failures, stopped] = await Promise.all([
        parent.getChildrenValues().then((v) => (v ?? {}) as Record<string, JobResult>),
        parent.getIgnoredChildrenFailures().then((v) => (v ?? {}) as Record<string, string>),
        this.redis.exists(keys.stopped(id)),
      ]);
      const jobs = run.data.batch.jobs;
      const runsOf = await Promise.all(jobs.map((jobId) => this.redis.lrange(keys.runs(jobId), 0, -1)));
      const results: JobResult[] = [];
      jobs.forEach((jobId, k) => {
        const key = `${KEY_PREFIX}:${QUEUE_NAME}:${jobId}`;
        const value = values[key];
        if (value) results.push(value);
        if (!run.settled.has(jobId)) {
          if (value) this.applyItemResult(run, jobId, value);
          else this.applyItemFailure(run, jobId, failures[key], runsOf[k]!.length);
        }
        const index = parseItemJobId(jobId)?.index;
        if (index !== null && index !== undefined && run.items[index] && runsOf[k]!.length > 0) run.items[index] = { ...run.items[index], attempts: runsOf[k]!.length };
      });
      // The batch's last progress (its images merged in just now), or its start with nothing run.
      if (run.started) this.sendBatch(run);
      else this.beginBatch(run);
      const merged: JobResult & { batch: BatchSummary } = {
        status: stopped === 1 || run.stopped ? 'interrupted' : run.firstError ? 'error' : 'success',
        executed: [],
        cached: [],
        timings_ms: {},
        outputs: {},
        error: run.stopped ? null : run.firstError,
        started_at: run.firstStart ?? Date.now(),
        worker: run.lastWorker ?? '',
        batch: batchSummary(run),
      };
      const executed = new Set<string>();
      const cached = new Set<string>();
      const branches: NonNullable<JobResult['branches']> = {};
      for (const r of results) {
        for (const n of r.executed) executed.add(n);
        for (const n of r.cached) cached.add(n);
        Object.assign(merged.timings_ms, r.timings_ms);
        Object.assign(merged.outputs, r.outputs);
        Object.assign(branches, r.branches ?? {});
      }
      for (const [nodeId, files] of Object.entries(run.data.batch.resumed_outputs)) {
        cached.add(nodeId);
        if (files.length > 0) merged.outputs[nodeId] = files;
      }
      merged.executed = [...executed];
      merged.cached = [...cached].filter((n) => !executed.has(n));
      if (Object.keys(branches).length > 0) merged.branches = branches;
      const item: QueueItem = this.running.get(id) ?? this.pending.get(id) ?? { id, number: run.data.number, client_id: run.data.client_id, created_at: run.data.created_at };
      this.counter = Math.max(this.counter, item.number);
      this.heldDone.set(id, { type: 'prompt_done', prompt_id: id, status: merged.status, ms: run.firstStart === null ? 0 : Date.now() - run.firstStart });
      this.batches.delete(id);
      this.record(item, run.data, merged, run.firstStart, runsOf.flat());
      // Removed from Redis only once the history entry is on disk: otherwise the next start records it.
      const stored = await (this.opts.journal?.written(id) ?? Promise.resolve()).then(() => true, () => false);
      if (stored) {
        await Promise.all([
          parent.remove({ removeChildren: true }).catch(() => undefined),
          this.redis.del(keys.stopped(id), ...jobs.map((jobId) => keys.runs(jobId))),
          ...jobs.map((jobId) => this.outputs.forget(jobId)),
        ]);
      }
    } catch (err) {
      this.noteError(err);
    } finally {
      this.finishing.delete(id);
    }
  }

  private move(id: string, to: 'pending' | 'running'): void {
    if (this.store.has(id) || this.finishing.has(id)) return;
    const item = this.pending.get(id) ?? this.running.get(id);
    if (!item) {
      // A job queued before this server started, seen before reconcile() read it.
      void this.queue.getJob(id).then((job) => job && !this.store.has(id) && this.track(job, to), () => undefined);
      return;
    }
    const [from, into] = to === 'running' ? [this.pending, this.running] : [this.running, this.pending];
    if (into.has(id)) return;
    from.delete(id);
    into.set(id, item);
    this.emitStatus();
  }

  private track(job: { id?: string | undefined; data: Pick<JobData, 'number' | 'client_id' | 'created_at'> }, where: 'pending' | 'running'): void {
    const id = job.id!;
    const item: QueueItem = { id, number: job.data.number, client_id: job.data.client_id, created_at: job.data.created_at };
    this.counter = Math.max(this.counter, item.number);
    this.pending.delete(id);
    this.running.delete(id);
    (where === 'running' ? this.running : this.pending).set(id, item);
    this.emitStatus();
  }

  /**
   * Reads the queue as Redis holds it: what waits and runs (after a restart of this server), and
   * prompts that ended while nobody was listening, which are recorded now.
   */
  private async reconcile(): Promise<void> {
    try {
      const [active, waiting, ended, parents, parentsDone] = await Promise.all([
        this.queue.getJobs(['active']),
        this.queue.getJobs(['waiting', 'prioritized', 'delayed']),
        this.queue.getJobs(['completed', 'failed']),
        this.batchQueue.getJobs(['waiting-children']),
        this.batchQueue.getJobs(['waiting']),
      ]);
      const isPrompt = (job: Job | undefined): job is Job & { id: string } => job?.id !== undefined && parseItemJobId(job.id) === null;
      for (const job of waiting) if (isPrompt(job) && !this.store.has(job.id) && !this.running.has(job.id)) this.track(job, 'pending');
      for (const job of active) if (isPrompt(job) && !this.store.has(job.id)) this.track(job, 'running');
      // A batch runs once one of its images runs (or ran).
      const busy = new Set(active.flatMap((job) => (job?.id ? [parseItemJobId(job.id)?.prompt] : [])));
      for (const job of parents) {
        if (!job?.id || this.store.has(job.id)) continue;
        const ran = busy.has(job.id) || ((await job.getDependenciesCount({ processed: true })).processed ?? 0) > 0;
        await this.trackBatch(job, ran ? 'running' : 'pending');
      }
      for (const job of ended) if (isPrompt(job)) await this.finish(job.id);
      for (const job of parentsDone) if (job?.id) await this.finishBatch(job.id);
      if (waiting.length + active.length > 0) log.info(`Redis holds ${waiting.length} queued and ${active.length} running prompt(s)`);
    } catch (err) {
      this.noteError(err);
    }
  }

  /** Records a job that ended (completed, or failed for good), once, then removes it from Redis. */
  private async finish(id: string): Promise<void> {
    if (this.store.has(id) || this.finishing.has(id) || parseItemJobId(id)) return;
    this.finishing.add(id);
    try {
      const job = await this.queue.getJob(id);
      if (!job) return;
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed') return;
      const runs = await this.redis.lrange(keys.runs(id), 0, -1);
      const item: QueueItem = this.running.get(id) ?? this.pending.get(id) ?? { id, number: job.data.number, client_id: job.data.client_id, created_at: job.data.created_at };
      this.counter = Math.max(this.counter, item.number);
      const result = state === 'completed' && job.returnvalue ? job.returnvalue : failedResult(job.failedReason, runs.length);
      if (state === 'failed') {
        const error = result.error!;
        this.events.emit({ type: 'error', prompt_id: id, ...error });
      }
      this.record(item, job.data, result, state === 'completed' ? result.started_at : (job.processedOn ?? null), runs);
      // Removed from Redis only once the history entry is on disk: otherwise the next start records it.
      const stored = await (this.opts.journal?.written(id) ?? Promise.resolve()).then(() => true, () => false);
      if (stored) await Promise.all([job.remove().catch(() => undefined), this.redis.del(keys.runs(id)), this.outputs.forget(id)]);
    } catch (err) {
      this.noteError(err);
    } finally {
      this.finishing.delete(id);
    }
  }

  private record(item: QueueItem, data: Pick<JobData, 'prompt' | 'workflow'>, result: JobResult & { batch?: BatchSummary }, startedAt: number | null, runs: string[]): void {
    const entry: StoredHistoryEntry = {
      ...item,
      started_at: startedAt,
      finished_at: Date.now(),
      status: result.status,
      executed: result.executed,
      cached: result.cached,
      timings_ms: result.timings_ms,
      outputs: result.outputs,
      error: result.error,
      ...(result.branches ? { branches: result.branches } : {}),
      ...(result.batch ? { batch: result.batch } : {}),
      prompt: data.prompt,
      workflow: data.workflow,
      ...(result.worker ? { worker: result.worker } : {}),
      ...(runs.length > 0 ? { workers: runs, attempts: runs.length } : {}),
    };
    this.pending.delete(item.id);
    this.running.delete(item.id);
    this.store.add(entry);
    const done = this.heldDone.get(item.id) ?? { type: 'prompt_done', prompt_id: item.id, status: entry.status, ms: 0 };
    this.heldDone.delete(item.id);
    this.attempt.delete(item.id);
    if (entry.status !== 'cancelled') this.events.emit(done);
    this.store.settle(entry);
    this.emitStatus();
  }

  private restoreHistory(journal: QueueJournal): void {
    const state = journal.load();
    this.store.restore(state.history);
    this.counter = Math.max(0, ...state.history.map((e) => e.number));
    if (state.items.length > 0) {
      log.warn(`${state.items.length} prompt(s) queued without --queue stay in the journal; start the server without --queue to run them`);
    }
  }


  private async refreshWorkers(): Promise<void> {
    if (!this.connected) return;
    try {
      if (this.events.wantsPreviews()) await this.redis.set(keys.previews, '1', 'PX', ANNOUNCE_TTL_MS);
      // Batches whose last image ended while the event was missed (a reconnect) are recorded now.
      for (const job of await this.batchQueue.getJobs(['waiting'])) if (job?.id) void this.finishBatch(job.id);
      const names: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await this.redis.scan(cursor, 'MATCH', keys.workerPattern, 'COUNT', 200);
        cursor = next;
        names.push(...batch);
      } while (cursor !== '0');
      const values = names.length > 0 ? await this.redis.mget(...names) : [];
      this.workers = values.flatMap((v) => (v ? [JSON.parse(v) as WorkerAnnouncement] : [])).sort((a, b) => a.id.localeCompare(b.id));
    } catch (err) {
      this.noteError(err);
    }
  }

  private emitStatus(): void {
    this.events.emit({ type: 'status', queue_remaining: this.pending.size + this.running.size, running: this.list().running?.id ?? null });
  }

  private redisProblem(): string {
    return `the prompt was not queued: Redis at ${this.opts.target.display} is unreachable${this.lastError ? ` (${this.lastError})` : ''}; the server reconnects by itself, try again when it is back`;
  }

  private noteError(err: unknown): void {
    const text = message(err);
    if (text !== this.lastError) log.warn(`Redis at ${this.opts.target.display}: ${text}`);
    this.lastError = text;
  }
}

function newBatchRun(id: string, data: BatchParentData): BatchRun {
  const resumed = new Set(data.batch.resumed);
  const items: BatchItemResult[] = data.batch.items.map((i) => ({ index: i.index, position: i.position, source: i.source, status: resumed.has(i.index) ? 'resumed' : 'not run', files: [] }));
  for (const [nodeId, files] of Object.entries(data.batch.resumed_outputs)) {
    const k = branchIndex(nodeId);
    if (k !== null) items[k]?.files.push(...files);
  }
  return { id, data, items, started: false, firstStart: null, running: new Map(), attempt: new Map(), sharedSeen: new Set(), settled: new Set(), ended: new Set(), onEnded: null, interruptedSent: false, stopped: false, firstError: null, lastWorker: null };
}

function batchSummary(run: BatchRun): BatchSummary {
  const count = (s: BatchItemResult['status']): number => run.items.filter((i) => i.status === s).length;
  return { node: run.data.batch.node, total: run.items.length, done: count('done'), resumed: count('resumed'), failed: count('failed'), items: run.items };
}

/** The image number of a batch copy's id (`<id>:<k>`), or null for a node that belongs to no image. */
function branchIndex(nodeId: string): number | null {
  const at = nodeId.lastIndexOf(BRANCH_SEPARATOR);
  return at < 0 ? null : Number(nodeId.slice(at + 1));
}

function cancelledResult(): JobResult {
  return { status: 'cancelled', executed: [], cached: [], timings_ms: {}, outputs: {}, error: null, started_at: 0, worker: '' };
}

function failedResult(reason: string | undefined, attempts: number): JobResult {
  const error: NodeErrorInfo = {
    node_id: '',
    node_type: '',
    node_title: 'Worker',
    code: 'NODE_FAILED',
    message: `the prompt could not be run by a worker after ${attempts} attempt(s): ${reason ?? 'no reason given'}`,
    inputs: {},
  };
  return { status: 'error', executed: [], cached: [], timings_ms: {}, outputs: {}, error, started_at: 0, worker: '' };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves once `done()` holds, checked whenever `listen`'s callback is called, or after `ms`. */
function waitFor(done: () => boolean, listen: (wake: () => void) => void, ms: number): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    listen(() => {
      if (!done()) return;
      clearTimeout(timer);
      resolve();
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);
}
