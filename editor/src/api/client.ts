import type {
  ComfyReport,
  FileRef,
  HistoryEntry,
  NodeCatalogueJson,
  QueueItem,
  ValidationIssue,
  Workflow,
  SupirEstimateJson,
} from '../../../server/protocol/index.ts';

/** A non-2xx answer from the API, with the server's error code and, for prompts, every issue. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly nodeErrors: ValidationIssue[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface QueueSnapshot {
  running: QueueItem | null;
  pending: QueueItem[];
}

export interface TemplateInfo {
  name: string;
  title: string;
  default: boolean;
}

export interface SystemInfo {
  app: { name: string; version: string };
  node: string;
  platform: string;
  onnxruntime: {
    version: string | null;
    backends: Array<{ name: string; bundled: boolean }>;
    available: string[];
    error?: string;
  };
  memory: {
    total: number;
    free: number;
    rss: number;
    heapUsed?: number;
    arrayBuffers?: number;
    runtime?: { sessions: number; estimatedBytes: number; budgetBytes: number | null } | null;
  };
  cache: { entries: number; bytes: number; budget: number };
  limits: { maxPixels: number; maxUploadBytes: number; maxJsonBytes: number; maxImageSide?: number };
}

export interface UploadResult {
  name: string;
  subfolder: string;
  folder: 'inputs';
  width: number;
  height: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

const unauthorizedListeners = new Set<(err: ApiError) => void>();

/**
 * Calls `fn` whenever the API answers 401 UNAUTHORIZED: the server needs its access token and this
 * tab's cookie is missing or no longer matches (the token was renewed, the cookie cleared).
 */
export function onUnauthorized(fn: (err: ApiError) => void): () => void {
  unauthorizedListeners.add(fn);
  return () => void unauthorizedListeners.delete(fn);
}

async function request<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `cannot reach the server (${err instanceof Error ? err.message : String(err)})`);
  }
  return answer<T>(method, path, res.status, await res.text());
}

/** The JSON of an answer, or the ApiError it carries (the API's `{ error: { code, message } }`). */
function answer<T>(method: Method, path: string, status: number, text: string): T {
  const ok = status >= 200 && status < 300;
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    if (ok) throw new ApiError(status, 'BAD_RESPONSE', `${method} ${path}: the answer is not JSON`);
  }
  if (!ok) {
    const err = (json as { error?: { code?: string; message?: string }; node_errors?: ValidationIssue[] } | null) ?? {};
    const failure = new ApiError(
      status,
      err.error?.code ?? 'HTTP',
      err.error?.message ?? `${method} ${path} failed with HTTP ${status}`,
      Array.isArray(err.node_errors) ? err.node_errors : [],
    );
    if (failure.status === 401 && failure.code === 'UNAUTHORIZED') for (const fn of unauthorizedListeners) fn(failure);
    throw failure;
  }
  return json as T;
}

export interface UploadOptions {
  subfolder?: string;
  overwrite?: boolean;
  /** Bytes sent so far and the total, as the browser reports them while the body goes out. */
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * POST /api/upload through XMLHttpRequest, whose upload events report how much of the body has
 * gone out (fetch has no upload progress). Errors are ApiErrors as for every other call.
 */
function uploadFile(file: Blob, filename: string, opts: UploadOptions = {}): Promise<UploadResult> {
  const q = new URLSearchParams({ filename });
  if (opts.subfolder) q.set('subfolder', opts.subfolder);
  if (opts.overwrite) q.set('overwrite', '1');
  const path = `/api/upload?${q}`;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      try {
        resolve(answer<UploadResult>('POST', path, xhr.status, xhr.responseText));
      } catch (err) {
        reject(err);
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'cannot reach the server (the upload was cut off)'));
    xhr.onabort = () => reject(new ApiError(0, 'ABORTED', 'the upload was cancelled'));
    if (opts.signal) {
      if (opts.signal.aborted) return reject(new ApiError(0, 'ABORTED', 'the upload was cancelled'));
      opts.signal.addEventListener('abort', () => xhr.abort(), { once: true });
    }
    xhr.send(file);
  });
}

const enc = encodeURIComponent;

/** The typed REST client for the SUPIR Studio server (same origin). */
export const api = {
  nodes: () => request<NodeCatalogueJson>('GET', '/api/nodes'),

  /** Queues a workflow; a 400 throws an ApiError whose `nodeErrors` lists every issue. */
  prompt: (workflow: Workflow, opts: { front?: boolean; clientId: string }) =>
    request<{ prompt_id: string; number: number }>('POST', '/api/prompt', {
      workflow,
      front: opts.front ?? false,
      client_id: opts.clientId,
    }),

  queue: () => request<QueueSnapshot>('GET', '/api/queue'),
  cancel: (id: string) => request<{ cancelled: string }>('DELETE', `/api/queue/${enc(id)}`),
  clearQueue: () => request<{ cleared: number }>('DELETE', '/api/queue'),
  interrupt: (promptId?: string) =>
    request<{ interrupted: boolean }>('POST', '/api/interrupt', promptId ? { prompt_id: promptId } : {}),

  history: (maxItems?: number) =>
    request<HistoryEntry[]>('GET', maxItems ? `/api/history?max_items=${maxItems}` : '/api/history'),
  historyEntry: (id: string) => request<HistoryEntry>('GET', `/api/history/${enc(id)}`),
  deleteHistory: (id: string) => request<{ deleted: string }>('DELETE', `/api/history/${enc(id)}`),
  clearHistory: () => request<{ deleted: number }>('DELETE', '/api/history'),

  /** Stores an image in the inputs folder; `onProgress` follows the body as it is sent. */
  upload: (file: Blob, filename: string, opts: UploadOptions = {}) => uploadFile(file, filename, opts),

  workflows: {
    list: () => request<string[]>('GET', '/api/workflows'),
    get: (name: string) => request<unknown>('GET', `/api/workflows/${enc(name)}`),
    put: (name: string, workflow: Workflow) => request<{ name: string }>('PUT', `/api/workflows/${enc(name)}`, workflow),
    delete: (name: string) => request<{ deleted: string }>('DELETE', `/api/workflows/${enc(name)}`),
  },

  /** ComfyUI workflows (UI or API format, or a PNG's workflow/prompt chunks) → ours, with what was mapped. */
  comfy: {
    import: (doc: { workflow?: unknown; prompt?: unknown; name?: string }) => request<{ workflow: unknown; report: ComfyReport }>('POST', '/api/comfy/import', doc),
    export: (workflow: Workflow) => request<{ prompt: Record<string, unknown>; report: ComfyReport }>('POST', '/api/comfy/export', { workflow }),
  },

  templates: {
    list: () => request<TemplateInfo[]>('GET', '/api/templates'),
    get: (name: string) => request<unknown>('GET', `/api/templates/${enc(name)}`),
  },

  system: () => request<SystemInfo>('GET', '/api/system'),

  /** The memory estimate of a SUPIR model pack (a Load SUPIR Model `pack` value); a missing pack is a 404 ApiError. */
  supirEstimate: (pack: string, width = 1024, height = 1024) =>
    request<SupirEstimateJson>('GET', `/api/supir/estimate?${new URLSearchParams({ pack, width: String(width), height: String(height) })}`),
};

/** The URL of a data file; `bust` adds a query that defeats the browser cache for re-used names. */
export function viewUrl(ref: Pick<FileRef, 'folder' | 'filename'>, bust?: string | number): string {
  const q = new URLSearchParams({ folder: ref.folder, file: ref.filename });
  if (bust !== undefined) q.set('t', String(bust));
  return `/api/view?${q}`;
}

/** The rule the server applies to workflow names, so dialogs can say no before a round trip. */
export function workflowNameProblem(name: string): string | null {
  if (!name.trim()) return 'Enter a name.';
  if (!/^[\w][\w .()-]{0,127}$/.test(name)) return 'Use letters, digits, spaces and . ( ) - _ (at most 128, starting with a letter or digit).';
  if (name.includes('..')) return 'The name may not contain "..".';
  if (/[. ]$/.test(name)) return 'The name may not end with a dot or a space.';
  return null;
}
