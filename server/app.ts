import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type RequestHandler } from 'express';
import { createDataDirs, type DataDirs } from '../nodes/api/data-dirs.ts';
import type { NodeEnv } from '../nodes/api/env.ts';
import { encodePreview } from '../nodes/image/codec.ts';
import { catalogue } from '../nodes/index.ts';
import { LruOutputCache, NodeRegistry, PromptQueue, type PromptQueueApi } from './engine/index.ts';
import { openToNetwork, resolveConfig, tokenRequired, type ServerConfig, type ServerOptions } from './config.ts';
import { QueueJournal } from './engine/journal.ts';
import { authGuard, loadOrCreateToken, type AuthOptions } from './http/auth.ts';
import { jsonLimits } from './http/limits.ts';
import type { ServerContext } from './http/context.ts';
import { editorRouter } from './http/editor.ts';
import { errorMiddleware, sendError } from './http/errors.ts';
import { originGuard, type GuardOptions } from './http/guard.ts';
import { historyRouter } from './http/history.ts';
import { interruptRouter } from './http/interrupt.ts';
import { nodesRouter } from './http/nodes.ts';
import { promptRouter } from './http/prompt.ts';
import { queueRouter } from './http/queue.ts';
import { supirEstimateRouter } from './http/supir-estimate.ts';
import { systemRouter } from './http/system.ts';
import { templatesRouter } from './http/templates.ts';
import { uploadRouter } from './http/upload.ts';
import { viewRouter } from './http/view.ts';
import { workflowsRouter } from './http/workflows.ts';
import { createLogger } from './log.ts';
import { createModelLibrary } from './models/library.ts';
import { createRuntime } from './runtime/index.ts';
import { seedSampleInputs } from './samples.ts';
import { attachWebSocketServer } from './ws/server.ts';
import { ComfyBridge } from './comfy/bridge.ts';
import { comfyRouter } from './comfy/routes.ts';
import { attachComfyWebSocket, isComfySocket } from './comfy/ws.ts';
import { parseRedisUrl } from './scale/redis-url.ts';
import { RemoteQueue } from './scale/remote-queue.ts';
import { workerFilesRouter } from './scale/files-route.ts';

const log = createLogger('server');

export interface StudioServer {
  /** `http://host:port`, with the port actually bound (127.0.0.1 when bound to every address). */
  url: string;
  port: number;
  /** The address and port actually bound, as the OS reports them: `0.0.0.0:8188`, `[::1]:8188`. */
  address: string;
  /** What the operator should know about this configuration (also logged at start-up). */
  warnings: string[];
  config: ServerConfig;
  dirs: DataDirs;
  /** The embedded queue, or with `queue: redis://...` the BullMQ one (server/scale). */
  queue: PromptQueueApi;
  /** The access token requests must carry, or undefined when none is required (loopback). */
  token: string | undefined;
  /** The address to open in a browser: with `?token=` when a token is required. */
  openUrl: string;
  /** Stops the queue, drops websocket clients and closes the listener; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the HTTP API, the websocket event stream and the prompt queue on one port. Each call is
 * independent (own data folders, cache and queue), so tests can run several and close them.
 */
export async function startServer(options: ServerOptions = {}, registry = new NodeRegistry(catalogue)): Promise<StudioServer> {
  const config = resolveConfig(options);
  const dirs = createDataDirs(config.dataRoot);
  clearFolder(dirs.folders.temp);
  seedSampleInputs(dirs);
  // One runtime per server: its sessions (worker threads) are shared by every prompt.
  const runtime = createRuntime({
    provider: config.provider,
    memoryBudgetBytes: config.runtimeMemoryBytes,
    workerHeapMb: config.workerHeapMb,
    testHooks: config.runtimeTestHooks,
  });
  const env: NodeEnv = { dirs, limits: { maxPixels: config.limits.maxPixels, maxImageSide: config.limits.maxImageSide }, runtime, models: createModelLibrary(dirs) };
  const cache = new LruOutputCache(config.cacheBytes);
  const token = tokenRequired(config) ? (config.token ?? loadOrCreateToken(config.dataRoot)) : undefined;
  const journal = config.persist ? new QueueJournal(path.join(dirs.root, 'state')) : undefined;
  let url = '';
  const queue: PromptQueueApi = config.queue
    ? new RemoteQueue({
        target: parseRedisUrl(config.queue),
        registry,
        env,
        historyLimit: config.historyLimit,
        maxPending: config.maxPending,
        serverUrl: () => url,
        ...(journal ? { journal } : {}),
      })
    : new PromptQueue({
        registry,
        env,
        cache,
        encodePreview,
        historyLimit: config.historyLimit,
        maxPending: config.maxPending,
        onRestart: config.onRestart,
        ...(journal ? { journal } : {}),
      });
  if (queue instanceof RemoteQueue) await queue.ready();
  const ctx: ServerContext = { config, dirs, env, registry, queue, cache };

  const comfy = new ComfyBridge();
  let port = config.port;
  const guard: GuardOptions = { host: config.host, port: () => port, auth: config.auth, allowedHosts: config.allowedHosts };
  const auth: AuthOptions = { token, port: () => port };
  const server = http.createServer(createApp(ctx, guard, auth, comfy));
  // Requests may not trickle in forever: headers within 20 s, a whole request within 5 minutes.
  server.headersTimeout = 20_000;
  server.requestTimeout = 300_000;
  const ws = attachWebSocketServer(server, { queue, guard, auth, leave: isComfySocket });
  // ComfyUI's API and websocket beside ours (server/comfy): same guard, token and limits.
  const comfyWs = attachComfyWebSocket(server, { queue, guard, auth, bridge: comfy });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // Port taken or address not available: leave nothing behind for the caller to clean up.
    await queue.stop();
    await journal?.close();
    await ws.close();
    await comfyWs.close();
    await runtime.close();
    throw err;
  }
  const bound = server.address() as AddressInfo;
  port = bound.port;
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  url = `http://${urlHost(config.host)}:${port}`;
  const openUrl = token === undefined ? url : `${url}/?token=${encodeURIComponent(token)}`;
  const warnings: string[] = [];
  if (openToNetwork(config)) {
    warnings.push(
      `listening on ${address} with --auth none: anyone who can reach this machine can run prompts and read and upload the images in ${dirs.root}. ` +
        `Only Host headers naming this machine (its addresses, its name, localhost${config.allowedHosts.length > 0 ? `, ${config.allowedHosts.join(', ')}` : ''}) with port ${port} are accepted, ` +
        'which stops DNS rebinding but not a visitor of your network; use it only on a network you trust, or drop --auth none to require the token',
    );
  }
  log.info(`SUPIR Studio listening on ${address}, open ${url} (data in ${dirs.root})`);
  for (const warning of warnings) log.warn(warning);
  if (token !== undefined) log.info(`access token required (kept in ${path.join(dirs.root, 'state', 'access-token')}); open ${openUrl}`);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Pending prompts stay in the journal; the running one is interrupted and, with a journal,
      // left for the next start's restart policy. Waiting lets it unwind so that nothing writes
      // into the data folders after close.
      await Promise.race([queue.stop(), delay(5000)]);
      await journal?.close();
      await ws.close();
      await comfyWs.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // After the queue has stopped: no node is between runs on a session any more.
      await runtime.close();
      log.info('server closed');
    })());

  return { url, port, address, warnings, config, dirs, queue, token, openUrl, close };
}

function createApp(ctx: ServerContext, guard: GuardOptions, auth: AuthOptions, comfy: ComfyBridge): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog);
  app.use(securityHeaders);
  app.use(originGuard(guard));
  app.use(authGuard(auth));
  // Raw-body routes come before the JSON parser so that it never consumes an upload.
  app.use(uploadRouter(ctx));
  if (ctx.queue instanceof RemoteQueue) app.use(workerFilesRouter(ctx.queue, ctx.config.limits));
  app.use('/api', requireJsonBody, express.json({ limit: ctx.config.limits.maxJsonBytes }), jsonLimits(ctx.config.limits));
  for (const router of [nodesRouter, promptRouter, queueRouter, interruptRouter, historyRouter, viewRouter, workflowsRouter, templatesRouter, systemRouter, supirEstimateRouter]) {
    app.use(router(ctx));
  }
  app.use(comfyRouter(ctx, comfy));
  app.use(editorRouter(ctx.config.editorDir));
  app.use(errorMiddleware);
  return app;
}

const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set({ 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' });
  next();
};

/**
 * Bodies of the JSON endpoints must say `application/json`. Besides being the API, this is a
 * second line against cross-site requests: a page can only send that type after a CORS preflight,
 * which this server never grants, while text/plain or form bodies need none.
 */
const requireJsonBody: RequestHandler = (req, res, next) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (!hasBody || req.is('application/json')) return next();
  sendError(res, 415, 'BAD_INPUT', 'send the body as JSON with "Content-Type: application/json"');
};

const httpLog = createLogger('http');
const requestLog: RequestHandler = (req, res, next) => {
  const t0 = performance.now();
  res.on('finish', () => httpLog.debug(`${req.method} ${req.originalUrl} ${res.statusCode} ${(performance.now() - t0).toFixed(1)}ms`));
  next();
};

/** Leftovers of the previous run (previews, scratch files) are not worth keeping. */
function clearFolder(dir: string): void {
  for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
