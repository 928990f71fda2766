import os from 'node:os';
import { createRequire } from 'node:module';
import { Router } from 'express';
import type { ProviderStatus, Runtime } from '../../nodes/api/runtime.ts';
import { createLogger } from '../log.ts';
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
      memory: { total: os.totalmem(), free: os.freemem(), rss: process.memoryUsage.rss() },
      cache: ctx.cache.stats(),
      limits: ctx.config.limits,
      journal: ctx.queue.storage(),
    });
  });
  return router;
}
