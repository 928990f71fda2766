/**
 * `supir-studio worker --queue redis://...`: takes prompts from the BullMQ queue one at a time and
 * runs them with the same executor as the embedded queue. Events go back as job progress; files
 * the prompt writes go to the server over HTTP (PUT /api/worker/files, with the access token) and
 * the events and the result name them as the server does. Each attempt runs in an empty scratch
 * folder, so a retried attempt writes the same names and the server keeps one file per name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createDataDirs, resolveInside } from '../../nodes/api/data-dirs.ts';
import type { FileRef } from '../../nodes/api/file-ref.ts';
import type { NodeEnv } from '../../nodes/api/env.ts';
import type { ProviderChoice } from '../../nodes/api/runtime.ts';
import { encodePreview } from '../../nodes/image/codec.ts';
import { resolveConfig } from '../config.ts';
import { compilePrompt, executeGraph, LruOutputCache, type CompiledGraph, type EngineEvent, type EventSink, type NodeRegistry, type PromptResult } from '../engine/index.ts';
import { selectBatchItems } from '../engine/batch.ts';
import { createLogger } from '../log.ts';
import { createModelLibrary } from '../models/library.ts';
import { createRuntime } from '../runtime/index.ts';
import { seedSampleInputs } from '../samples.ts';
import { bullConnection, redisOptions, type RedisTarget } from './redis-url.ts';
import { HAND_BACK_MS, packsOf, shouldHandBack } from './routing.ts';
import { ANNOUNCE_TTL_MS, BATCH_QUEUE_NAME, HEARTBEAT_MS, KEY_PREFIX, keys, QUEUE_NAME, toWire, type BatchParentData, type JobData, type JobResult, type WorkerAnnouncement } from './wire.ts';

const log = createLogger('worker');

export interface WorkerOptions {
  target: RedisTarget;
  registry: NodeRegistry;
  /** Inputs and models are read from here (the server's data folder, shared or copied). */
  dataRoot: string;
  provider?: ProviderChoice;
  /** CUDA device: sets CUDA_VISIBLE_DEVICES for this process when it is not set. */
  device?: number;
  /** The server's address for uploads; by default the one the server put into each job. */
  serverUrl?: string;
  /** The server's access token (SUPIR_TOKEN), when it requires one. */
  token?: string;
  /** Shown in the history and /api/system; `<host>-<pid>` by default. */
  name?: string;
  /** How long a job's lock lasts without renewal: a killed worker's prompt is taken over after about this long. */
  lockMs?: number;
  /** How many times a prompt may lose its worker before it fails. */
  maxStalled?: number;
  /** How long uploads keep trying while the server is away (restarting). */
  uploadPatienceMs?: number;
}

export interface StudioWorker {
  id: string;
  /** Finishes the running prompt, then leaves the queue. */
  close(): Promise<void>;
}

/** The file's bytes did not reach the server in time, or the server no longer wants them. */
class UploadError extends Error {}

export async function startWorker(opts: WorkerOptions): Promise<StudioWorker> {
  if (opts.device !== undefined && process.env.CUDA_VISIBLE_DEVICES === undefined) process.env.CUDA_VISIBLE_DEVICES = String(opts.device);
  const id = opts.name ?? `${os.hostname()}-${process.pid}`;
  const config = resolveConfig({ dataRoot: opts.dataRoot, ...(opts.provider ? { provider: opts.provider } : {}) });
  sweepScratch();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `supir-worker-${process.pid}-`));
  const dirs = createDataDirs(config.dataRoot, { outputs: path.join(scratch, 'outputs'), temp: path.join(scratch, 'temp') });
  // A read-only shared data folder cannot take the sample photos; the server's has them anyway.
  try {
    seedSampleInputs(dirs);
  } catch (err) {
    log.debug(`sample inputs not copied: ${err instanceof Error ? err.message : String(err)}`);
  }
  const runtime = createRuntime({ provider: config.provider, memoryBudgetBytes: config.runtimeMemoryBytes, workerHeapMb: config.workerHeapMb });
  const env: NodeEnv = { dirs, limits: { maxPixels: config.limits.maxPixels, maxImageSide: config.limits.maxImageSide }, runtime, models: createModelLibrary(dirs) };
  const cache = new LruOutputCache(config.cacheBytes);
  const base = redisOptions(opts.target);
  const redis = new Redis(base);
  const sub = new Redis(base);
  redis.on('error', (err: Error) => log.debug(`redis: ${err.message}`));
  sub.on('error', (err: Error) => log.debug(`redis (interrupts): ${err.message}`));
  const loaded = new Set<string>();
  const startedAt = Date.now();
  /** The job running now; `prompt`: its batch prompt's id for an image job (interrupts name that one). */
  let current: { id: string; prompt: string; abort: AbortController } | null = null;
  let done = 0;
  /** Whether a client of the server watches previews (the server says so in Redis): else none are encoded. */
  let previews = true;

  await sub.subscribe(keys.interrupt);
  sub.on('message', (_channel: string, target: string) => {
    if (current && (target === '*' || target === current.id || target === current.prompt)) current.abort.abort();
  });

  const announce = async (): Promise<void> => {
    const me: WorkerAnnouncement = {
      id,
      host: os.hostname(),
      pid: process.pid,
      provider: config.provider,
      device: opts.device ?? null,
      free_memory: os.freemem(),
      packs: [...loaded].sort(),
      running: current?.id ?? null,
      done,
      started_at: startedAt,
    };
    await redis.set(keys.worker(id), JSON.stringify(me), 'PX', ANNOUNCE_TTL_MS).catch(() => undefined);
    previews = (await redis.exists(keys.previews).catch(() => 1)) === 1;
  };
  await announce();
  const heartbeat = setInterval(() => void announce(), HEARTBEAT_MS);

  /** `replace`: the name is the file's own (Save Image's `{name}` in a batch): the server writes over a file of that name. */
  const upload = async (job: Job<JobData>, file: FileRef, replace = false): Promise<string> => {
    if (file.folder !== 'outputs' && file.folder !== 'temp') return file.filename;
    const bytes = await fs.promises.readFile(resolveInside(dirs, file.folder, file.filename));
    const server = (opts.serverUrl ?? job.data.server_url).replace(/\/+$/, '');
    const query = new URLSearchParams({ prompt: job.id!, folder: file.folder, name: file.filename, ...(replace ? { replace: '1' } : {}) });
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    const deadline = Date.now() + (opts.uploadPatienceMs ?? 300_000);
    for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
      let why: string;
      try {
        const res = await fetch(`${server}/api/worker/files?${query}`, { method: 'PUT', headers, body: bytes });
        if (res.ok) return ((await res.json()) as { filename: string }).filename;
        const text = await res.text();
        if (res.status < 500 && res.status !== 429) throw new UploadError(`the server refused ${file.folder}/${file.filename}: ${res.status} ${text}`);
        why = `${res.status} ${text}`;
      } catch (err) {
        if (err instanceof UploadError) throw err;
        why = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() + wait > deadline) throw new UploadError(`${file.folder}/${file.filename} did not reach ${server}: ${why}`);
      log.warn(`upload of ${file.filename} to ${server} failed (${why}); trying again in ${wait} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };

  /**
   * An image job carries no prompt of its own (a batch of thousands would hold thousands of
   * copies in Redis): it is read from the batch's parent job, once per batch on this worker.
   */
  const batchQueue = new Queue<BatchParentData>(BATCH_QUEUE_NAME, { connection: bullConnection(base), prefix: KEY_PREFIX });
  batchQueue.on('error', (err) => log.debug(`bullmq (batches): ${err.message}`));
  let lastParent: { id: string; data: Pick<JobData, 'prompt' | 'workflow'> } | null = null;
  const parentOf = async (promptId: string): Promise<Pick<JobData, 'prompt' | 'workflow'>> => {
    if (lastParent?.id === promptId) return lastParent.data;
    const parent = await batchQueue.getJob(promptId);
    if (!parent) throw new Error(`batch ${promptId} is no longer in Redis`);
    lastParent = { id: promptId, data: { prompt: parent.data.prompt, workflow: parent.data.workflow } };
    return lastParent.data;
  };

  const processor = async (job: Job<JobData, JobResult>, token?: string): Promise<JobResult> => {
    const promptId = job.id!;
    const preferredAlive = job.data.prefer ? (await redis.exists(keys.worker(job.data.prefer))) === 1 : false;
    if (shouldHandBack(job.data, { id, packs: [...loaded] }, preferredAlive)) {
      // Left to the worker that has its models loaded; offered again in a moment.
      await job.moveToDelayed(Date.now() + HAND_BACK_MS, token);
      throw new DelayedError();
    }
    const batchRef = job.data.batch;
    // An image of a batch interrupted meanwhile is passed over: the batch ends without it.
    if (batchRef && (await redis.exists(keys.stopped(batchRef.prompt_id))) === 1) {
      return { status: 'interrupted', executed: [], cached: [], timings_ms: {}, outputs: {}, error: null, started_at: Date.now(), worker: id };
    }
    await redis.rpush(keys.runs(promptId), id);
    const abort = new AbortController();
    current = { id: promptId, prompt: batchRef?.prompt_id ?? promptId, abort };
    /** Files named by their node for this image (resumeFiles): written over on the server, never renamed. */
    let ownNames = new Set<string>();
    void announce();
    for (const folder of [dirs.folders.outputs, dirs.folders.temp]) {
      fs.rmSync(folder, { recursive: true, force: true });
      fs.mkdirSync(folder, { recursive: true });
    }
    const started = Date.now();
    // Events leave in order, each file uploaded before the event that names it. An event is not
    // waited for before the next is sent: one connection keeps them in order, and the prompt's end
    // waits for all of them.
    let chain: Promise<void> = Promise.resolve();
    const sent: Array<Promise<void>> = [];
    let failure: unknown = null;
    const publish = (event: EngineEvent): void => {
      sent.push(job.updateProgress(toWire(event, id) as never).catch((err: unknown) => log.warn(`prompt ${promptId}: an event did not reach Redis: ${err instanceof Error ? err.message : String(err)}`)));
    };
    const sink: EventSink = {
      emit(event: EngineEvent) {
        chain = chain.then(async () => {
          if (failure) return;
          try {
            if (event.type === 'node_done' && !event.cached) {
              for (const file of event.files) file.filename = await upload(job, file, ownNames.has(`${file.folder}/${file.filename}`));
            }
            publish(event);
          } catch (err) {
            failure = err;
          }
        });
      },
      wantsPreviews: () => previews,
    };
    try {
      const { prompt, workflow } = batchRef ? await parentOf(batchRef.prompt_id) : job.data;
      const compiled = compilePrompt(prompt, opts.registry, env);
      let result: PromptResult;
      let graph: CompiledGraph | string | undefined = compiled.ok ? compiled.graph : undefined;
      if (compiled.ok && batchRef) {
        graph = batchShare(compiled.graph, batchRef, id);
        if (typeof graph !== 'string') ownNames = namedFiles(graph, env);
      }
      const runId = batchRef?.prompt_id ?? promptId;
      if (typeof graph === 'string') {
        const error = { node_id: '', node_type: '', node_title: `Worker ${id}`, code: 'VALIDATION' as const, message: graph, inputs: {} };
        sink.emit({ type: 'prompt_start', prompt_id: runId, number: job.data.number, nodes: [] });
        sink.emit({ type: 'error', prompt_id: runId, ...error });
        sink.emit({ type: 'prompt_done', prompt_id: runId, status: 'error', ms: 0 });
        result = { status: 'error', executed: [], cached: [], timings_ms: {}, outputs: {}, error };
      } else if (!compiled.ok) {
        const first = compiled.errors[0];
        const error = {
          node_id: first?.node_id ?? '',
          node_type: first?.node_id ? (prompt[first.node_id]?.class_type ?? '') : '',
          node_title: `Worker ${id}`,
          code: 'VALIDATION' as const,
          message: `the prompt does not validate on worker ${id} (${compiled.errors.length} problem(s); first: ${first?.message ?? '?'}); its inputs and models folders must hold what the server's do`,
          inputs: {},
        };
        sink.emit({ type: 'prompt_start', prompt_id: runId, number: job.data.number, nodes: [] });
        sink.emit({ type: 'error', prompt_id: runId, ...error });
        sink.emit({ type: 'prompt_done', prompt_id: runId, status: 'error', ms: 0 });
        result = { status: 'error', executed: [], cached: [], timings_ms: {}, outputs: {}, error };
      } else {
        result = await executeGraph({
          promptId: runId,
          promptNumber: job.data.number,
          graph: graph ?? compiled.graph,
          env,
          cache,
          sink,
          signal: abort.signal,
          extra: { workflow: workflow ?? undefined, prompt },
          encodePreview,
        });
      }
      await chain;
      await Promise.all(sent);
      if (failure) throw failure;
      if (result.status === 'success') for (const pack of job.data.packs) loaded.add(pack);
      done++;
      // An image job's summary keeps its own image only: a result per image that listed every image would make a batch's results grow with its square.
      if (batchRef && result.batch) result.batch = { ...result.batch, items: result.batch.items.filter((i) => i.index === batchRef.index) };
      return { ...result, error: result.error ?? null, started_at: started, worker: id };
    } finally {
      current = null;
      void announce();
    }
  };

  const lockDuration = opts.lockMs ?? 30_000;
  const worker = new Worker<JobData, JobResult>(QUEUE_NAME, processor, {
    connection: bullConnection(base),
    prefix: KEY_PREFIX,
    concurrency: 1,
    lockDuration,
    stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
    maxStalledCount: opts.maxStalled ?? 2,
  });
  worker.on('error', (err) => log.debug(`bullmq: ${err.message}`));
  worker.on('failed', (job, err) => {
    if (!(err instanceof DelayedError) && err.name !== 'DelayedError') log.warn(`prompt ${job?.id ?? '?'} failed on this worker: ${err.message}`);
  });
  await worker.waitUntilReady();
  log.info(`worker ${id} takes prompts from ${opts.target.display} (provider ${config.provider}${opts.device !== undefined ? `, device ${opts.device}` : ''}; data ${config.dataRoot})`);

  let closing: Promise<void> | undefined;
  return {
    id,
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        await batchQueue.close().catch(() => undefined);
        clearInterval(heartbeat);
        await redis.del(keys.worker(id)).catch(() => undefined);
        redis.disconnect();
        sub.disconnect();
        await runtime.close();
        fs.rmSync(scratch, { recursive: true, force: true });
        log.info(`worker ${id} stopped`);
      })()),
  };
}

/**
 * The share of a batch an image job runs (server/engine/batch.ts), or why it cannot: the worker
 * lists the folder itself, and its listing must agree with the server's.
 */
function batchShare(graph: CompiledGraph, ref: NonNullable<JobData['batch']>, worker: string): CompiledGraph | string {
  if (!graph.batch) return `worker ${worker} compiled no batch from the prompt; its inputs folder must hold what the server's does`;
  if (ref.index !== null) {
    const item = graph.batch.items[ref.index];
    if (!item || item.file !== ref.file) {
      return `worker ${worker} lists image ${ref.index + 1} of the batch as ${JSON.stringify(item?.file ?? null)}, the server as ${JSON.stringify(ref.file)}; its inputs folder must hold what the server's does`;
    }
  }
  return selectBatchItems(graph, new Set(ref.index === null ? [] : [ref.index]), ref.shared);
}

/** `<folder>/<name>` of every file the batch outputs of `graph` name themselves (Save Image with `{name}`/`{index}`). */
function namedFiles(graph: CompiledGraph, env: NodeEnv): Set<string> {
  const names = new Set<string>();
  for (const id of graph.outputs) {
    const node = graph.nodes.get(id)!;
    if (!node.batch || !node.def.resumeFiles) continue;
    for (const f of node.def.resumeFiles(node.literals as never, node.batch, env) ?? []) names.add(`${f.folder}/${f.filename}`);
  }
  return names;
}

/** Removes the scratch folders of workers on this machine that died without cleaning up (kill -9). */
function sweepScratch(): void {
  for (const name of safeList(os.tmpdir())) {
    const pid = Number(/^supir-worker-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
