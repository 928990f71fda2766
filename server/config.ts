import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProviderChoice } from '../nodes/api/runtime.ts';

/** Limits on what one request may make the server hold or decode. */
export interface ServerLimits {
  /** Largest image (width x height) an upload or a node may decode. */
  maxPixels: number;
  /**
   * Longest side of an uploaded image or a thumbnailed file, in pixels, checked from the header
   * like maxPixels: a 1 x 60,000,000 image is under the pixel limit but takes half a minute to decode.
   */
  maxImageSide: number;
  /** Largest upload body, in bytes. */
  maxUploadBytes: number;
  /** Largest JSON body (a prompt, a workflow), in bytes. */
  maxJsonBytes: number;
  /** Most nodes one prompt or workflow may hold. */
  maxNodes: number;
  /** Longest string anywhere in a prompt or workflow body (a caption, a title), in characters. */
  maxStringLength: number;
}

/** What happens at start-up to the prompt that was running when the server stopped. */
export type RestartPolicy = 'fail' | 'requeue';

/** Who may use the API: `auto` asks for the token only when bound to a non-loopback address. */
export type AuthMode = 'auto' | 'token' | 'none';

export interface ServerConfig {
  host: string;
  /** 0 picks any free port (tests). */
  port: number;
  /** Holds inputs/, outputs/, temp/ and workflows/. */
  dataRoot: string;
  limits: ServerLimits;
  /** Byte budget of the node output cache kept between prompts. */
  cacheBytes: number;
  maxPending: number;
  historyLimit: number;
  /** The folder served at `/`. */
  editorDir: string;
  /** Execution provider for models: 'auto' tries cuda, webgpu, then cpu (SUPIR_PROVIDER). */
  provider: ProviderChoice;
  /** Estimated memory of open model sessions above which idle ones are closed. */
  runtimeMemoryBytes: number;
  /** JavaScript heap limit of each model worker thread, in MB (SUPIR_WORKER_HEAP_MB, default 4096). */
  workerHeapMb: number;
  /** Lets test nodes make model workers fail on purpose (server/runtime `testHooks`); never set by the CLI. */
  runtimeTestHooks: boolean;
  /**
   * `auto` (default): a token is required when the server listens on anything but loopback;
   * `token`: always required; `none`: never (only for a trusted network).
   */
  auth: AuthMode;
  /** The token itself; by default read from (or generated into) `<dataRoot>/state/access-token`. */
  token: string | undefined;
  /**
   * Host names accepted in the Host header, beside this machine's own names and addresses, when
   * the server is bound to a non-loopback address with `auth: none` (SUPIR_ALLOWED_HOSTS, comma-
   * separated, e.g. `studio.lan`). See server/http/guard.ts.
   */
  allowedHosts: string[];
  /** Keep the queue and history in `<dataRoot>/state` so that they survive a restart. */
  persist: boolean;
  /** `fail` (default): the interrupted prompt goes to the history as an error; `requeue`: it runs again once. */
  onRestart: RestartPolicy;
  /**
   * `redis://host:port` (SUPIR_QUEUE): prompts go to a BullMQ queue on that Redis and
   * `supir-studio worker` processes run them (server/scale); undefined runs them in this process.
   */
  queue: string | undefined;
}

/** What callers pass: any field may be left out, including single limits. */
export type ServerOptions = Partial<Omit<ServerConfig, 'limits'>> & { limits?: Partial<ServerLimits> };

const MiB = 1024 * 1024;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The built editor (`npm run build`; `npm start` builds it first). */
export function defaultEditorDir(root = REPO_ROOT): string {
  return path.join(root, 'editor', 'dist');
}

/** The workflows shipped with the product, offered as templates. */
export const TEMPLATES_DIR = path.join(REPO_ROOT, 'workflows');
/**
 * The template the editor opens on first start: MAXIM denoise, MAXIM deblur, then ESRGAN x4,
 * chosen by measurement (bench/restore-quality.ts; the README's "Restoration quality").
 */
export const DEFAULT_TEMPLATE = 'restore-photo';

/**
 * Fills in defaults, reading SUPIR_STUDIO_DATA, SUPIR_MAX_PIXELS, SUPIR_MAX_IMAGE_SIDE, SUPIR_PROVIDER, SUPIR_AUTH,
 * SUPIR_TOKEN, SUPIR_ALLOWED_HOSTS, SUPIR_ON_RESTART and SUPIR_WORKER_HEAP_MB from the environment.
 */
export function resolveConfig(options: ServerOptions = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const config: ServerConfig = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8188,
    dataRoot: path.resolve(options.dataRoot ?? env.SUPIR_STUDIO_DATA ?? './data'),
    limits: {
      maxPixels: options.limits?.maxPixels ?? envNumber(env, 'SUPIR_MAX_PIXELS') ?? 64_000_000,
      maxImageSide: options.limits?.maxImageSide ?? envNumber(env, 'SUPIR_MAX_IMAGE_SIDE') ?? 32_768,
      maxUploadBytes: options.limits?.maxUploadBytes ?? 64 * MiB,
      maxJsonBytes: options.limits?.maxJsonBytes ?? 32 * MiB,
      maxNodes: options.limits?.maxNodes ?? 2000,
      maxStringLength: options.limits?.maxStringLength ?? 100_000,
    },
    cacheBytes: options.cacheBytes ?? 2 * 1024 * MiB,
    maxPending: options.maxPending ?? 1000,
    historyLimit: options.historyLimit ?? 10_000,
    editorDir: options.editorDir ?? defaultEditorDir(),
    provider: options.provider ?? providerFromEnv(env),
    // Half the machine's memory: models beside the images, the cache and the OS.
    runtimeMemoryBytes: options.runtimeMemoryBytes ?? Math.floor(os.totalmem() / 2),
    workerHeapMb: options.workerHeapMb ?? envNumber(env, 'SUPIR_WORKER_HEAP_MB') ?? 4096,
    runtimeTestHooks: options.runtimeTestHooks ?? false,
    auth: options.auth ?? envChoice(env, 'SUPIR_AUTH', AUTH_MODES) ?? 'auto',
    token: options.token ?? (env.SUPIR_TOKEN?.trim() || undefined),
    allowedHosts: options.allowedHosts ?? (env.SUPIR_ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
    persist: options.persist ?? true,
    onRestart: options.onRestart ?? envChoice(env, 'SUPIR_ON_RESTART', RESTART_POLICIES) ?? 'fail',
    queue: options.queue ?? (env.SUPIR_QUEUE?.trim() || undefined),
  };
  if (config.token !== undefined && !/^[\x21-\x7e]{16,256}$/.test(config.token)) {
    throw new RangeError('the access token must be 16-256 printable ASCII characters without spaces');
  }
  if (!(Number.isInteger(config.workerHeapMb) && config.workerHeapMb >= 16)) throw new RangeError(`workerHeapMb (SUPIR_WORKER_HEAP_MB) must be an integer of at least 16, got ${config.workerHeapMb}`);
  if (!(config.runtimeMemoryBytes > 0)) throw new RangeError(`runtimeMemoryBytes must be positive, got ${config.runtimeMemoryBytes}`);
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    throw new RangeError(`port must be an integer in 0..65535, got ${config.port}`);
  }
  for (const [name, value] of Object.entries(config.limits)) {
    if (!(value > 0)) throw new RangeError(`limit ${name} must be positive, got ${value}`);
  }
  return config;
}

const PROVIDERS: readonly ProviderChoice[] = ['auto', 'cuda', 'webgpu', 'cpu'];

/** SUPIR_PROVIDER, checked; 'auto' when unset. The CLI reads it too. */
export function providerFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderChoice {
  const raw = env.SUPIR_PROVIDER?.trim().toLowerCase();
  if (!raw) return 'auto';
  if (!(PROVIDERS as readonly string[]).includes(raw)) throw new RangeError(`SUPIR_PROVIDER must be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(env.SUPIR_PROVIDER)}`);
  return raw as ProviderChoice;
}

const AUTH_MODES: readonly AuthMode[] = ['auto', 'token', 'none'];
const RESTART_POLICIES: readonly RestartPolicy[] = ['fail', 'requeue'];

/** Whether requests must carry the access token under this configuration. */
export function tokenRequired(config: Pick<ServerConfig, 'auth' | 'host'>): boolean {
  return config.auth === 'token' || (config.auth === 'auto' && !isLoopbackHost(config.host));
}

function envChoice<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[]): T | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return undefined;
  if (!(choices as readonly string[]).includes(raw)) throw new RangeError(`${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(env[name])}`);
  return raw as T;
}

/** Whether the server answers requests with neither a token nor a loopback-only address (`--auth none` on a LAN). */
export function openToNetwork(config: Pick<ServerConfig, 'auth' | 'host'>): boolean {
  return !isLoopbackHost(config.host) && !tokenRequired(config);
}

/** Whether `host` only accepts connections from this machine (and so needs the Host-header check). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}
