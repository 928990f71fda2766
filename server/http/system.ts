import os from 'node:os';
import { createRequire } from 'node:module';
import { Router } from 'express';
import type { ProviderStatus, Runtime } from '../../nodes/api/runtime.ts';
import { createLogger } from '../log.ts';
import type { StudioRuntime } from '../runtime/index.ts';
import type { ServerContext } from './context.ts';

const log = createLogger('system');
const require = createRequire(import.meta.url);
const APP = require('../../package.json') as { name: string; version: string };

export interface RuntimeInfo {
  version: string | null;
  /** What this build of onnxruntime-node was compiled with. */
  backends: Array<{ name: string; bundled: boolean }>;
  /** The execution providers that can run here (cpu always): the names of `providers` that are available. */
  available: string[];
  /** Every provider the runtime knows, whether it can run here and why (not). */
  providers: ProviderStatus[];
  error?: string;
}

let bindingInfo: Promise<Pick<RuntimeInfo, 'version' | 'backends' | 'error'>> | undefined;

/**
 * onnxruntime-node is imported on first use, not at start: loading the native binding takes time
 * and memory the server does not need until someone asks (or a node runs a model).
 */
function onnxBindingInfo(): Promise<Pick<RuntimeInfo, 'version' | 'backends' | 'error'>> {
  bindingInfo ??= import('onnxruntime-node').then(
    (ort) => ({ version: ort.env.versions.node ?? null, backends: ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled })) }),
    (err: unknown) => {
      log.warn('onnxruntime-node cannot be loaded', err);
      return { version: null, backends: [], error: err instanceof Error ? err.message : String(err) };
    },
  );
  return bindingInfo;
}

/**
 * The binding's build plus what the runtime found by starting sessions (runtime.providers(): a
 * probe per provider, done once per runtime).
 */
export async function onnxRuntimeInfo(runtime: Runtime | undefined): Promise<RuntimeInfo> {
  const binding = await onnxBindingInfo();
  if (binding.error) return { ...binding, available: [], providers: [] };
  const providers = runtime ? await runtime.providers() : [{ name: 'cpu' as const, available: true, reason: 'no runtime in this process' }];
  return { ...binding, available: providers.filter((p) => p.available).map((p) => p.name), providers };
}

/** What the server holds in memory, for GET /api/system and the editor's memory chip. */
export interface MemoryInfo {
  /** The machine's memory and what is free of it, in bytes. */
  total: number;
  free: number;
  /** The server process's resident size: the event loop, the model workers and onnxruntime. */
  rss: number;
  /** JavaScript heap in use, and array buffers (images and tensors) held by JavaScript. */
  heapUsed: number;
  arrayBuffers: number;
  /** Open model sessions: how many, their estimated size and the budget above which idle ones close. */
  runtime: { sessions: number; estimatedBytes: number; budgetBytes: number | null } | null;
}

export function memoryInfo(runtime: Runtime | undefined): MemoryInfo {
  const usage = process.memoryUsage();
  const stats = (runtime as Partial<StudioRuntime> | undefined)?.stats?.();
  return {
    total: os.totalmem(),
    free: os.freemem(),
    rss: usage.rss,
    heapUsed: usage.heapUsed,
    arrayBuffers: usage.arrayBuffers,
    runtime: stats
      ? {
          sessions: stats.sessions.filter((s) => s.open).length,
          estimatedBytes: stats.estimatedBytes,
          budgetBytes: Number.isFinite(stats.memoryBudgetBytes) ? stats.memoryBudgetBytes : null,
        }
      : null,
  };
}

/**
 * GET /api/system: versions, runtime backends, memory, the output cache's use, and the queue
 * journal: whether it can store prompts now (`ok`, and `error` when it cannot: POST /api/prompt then
 * answers 503) and any damage found when it was loaded (null when the server keeps no journal).
 */
export function systemRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/system', async (_req, res) => {
    res.json({
      app: { name: APP.name, version: APP.version },
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      onnxruntime: await onnxRuntimeInfo(ctx.env.runtime),
      memory: memoryInfo(ctx.env.runtime),
      cache: ctx.cache.stats(),
      limits: ctx.config.limits,
      journal: ctx.queue.storage(),
      // With `serve --queue`: Redis (connected, or why not), job counts and the workers' announcements.
      queue: (await ctx.queue.scaleInfo?.()) ?? { mode: 'embedded' },
    });
  });
  return router;
}
