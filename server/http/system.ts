import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Router } from 'express';
import { createLogger } from '../log.ts';
import type { ServerContext } from './context.ts';

const log = createLogger('system');
const require = createRequire(import.meta.url);
const APP = require('../../package.json') as { name: string; version: string };

export interface RuntimeInfo {
  version: string | null;
  /** What this build of onnxruntime-node was compiled with. */
  backends: Array<{ name: string; bundled: boolean }>;
  /** The backends that can actually run here (cpu always). */
  available: string[];
  error?: string;
}

let runtimeInfo: Promise<RuntimeInfo> | undefined;

/**
 * onnxruntime-node is imported on first use, not at start: loading the native binding takes time
 * and memory the server does not need until someone asks (or a node runs a model).
 */
export function onnxRuntimeInfo(): Promise<RuntimeInfo> {
  runtimeInfo ??= import('onnxruntime-node').then(
    (ort) => {
      const backends = ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
      return { version: ort.env.versions.node ?? null, backends, available: usableBackends(backends) };
    },
    (err: unknown) => {
      log.warn('onnxruntime-node cannot be loaded', err);
      return { version: null, backends: [], available: [], error: err instanceof Error ? err.message : String(err) };
    },
  );
  return runtimeInfo;
}

/**
 * Which compiled-in backends can run, judged without loading a model: CUDA and TensorRT need their
 * provider libraries next to the binding (they are not bundled) and an NVIDIA driver; DirectML
 * ships with the Windows build. WebGPU depends on an adapter that cannot be probed cheaply, so it
 * is not claimed.
 */
function usableBackends(backends: Array<{ name: string; bundled: boolean }>): string[] {
  const available = ['cpu'];
  const names = new Set(backends.map((b) => b.name));
  const binDir = bindingDir();
  const hasLib = (lib: string): boolean => binDir !== null && fs.readdirSync(binDir).some((f) => f.includes(lib));
  const nvidia = fs.existsSync('/proc/driver/nvidia/version') || fs.existsSync('/dev/nvidiactl');
  if (names.has('cuda') && nvidia && hasLib('providers_cuda')) available.push('cuda');
  if (names.has('tensorrt') && nvidia && hasLib('providers_tensorrt')) available.push('tensorrt');
  if (names.has('dml') && process.platform === 'win32') available.push('dml');
  return available;
}

function bindingDir(): string | null {
  try {
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}

/** GET /api/system: versions, runtime backends, memory and the output cache's use. */
export function systemRouter(ctx: ServerContext): Router {
  const router = Router();
  router.get('/api/system', async (_req, res) => {
    res.json({
      app: { name: APP.name, version: APP.version },
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      onnxruntime: await onnxRuntimeInfo(),
      memory: { total: os.totalmem(), free: os.freemem(), rss: process.memoryUsage.rss() },
      cache: ctx.cache.stats(),
      limits: ctx.config.limits,
    });
  });
  return router;
}
