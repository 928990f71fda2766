/**
 * A model session as nodes hold it: runs are queued one at a time (a session is not re-entrant and
 * its threads already use every core), skipped when their AbortSignal fires before their turn, and
 * sent to the worker with their data copied into fresh buffers that are then transferred, so the
 * caller's arrays (often cached node outputs) stay intact.
 */
import path from 'node:path';
import { InterruptedError, StudioError } from '../../nodes/api/errors.ts';
import type { AnyTensorData, ModelSession, ProviderName, TensorData, TensorInfo } from '../../nodes/api/runtime.ts';
import type { Created, WireTensor } from './protocol.ts';
import { WorkerRequestError, type SessionHost } from './session-host.ts';

export interface SessionParts {
  id: string;
  key: string;
  file: string;
  provider: ProviderName;
  providerReport: string;
  estimatedBytes: number;
  host: SessionHost;
  created: Created;
}

/** How the runtime hears about a session's life: use (for LRU order) and reopening after eviction. */
export interface SessionOwner {
  touched(session: Session): void;
  reopen(session: Session): Promise<SessionHost>;
}

type State = 'open' | 'evicted' | 'closed';

export class Session implements ModelSession {
  readonly id: string;
  readonly key: string;
  readonly file: string;
  readonly provider: ProviderName;
  readonly providerReport: string;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  readonly estimatedBytes: number;
  readonly createMs: number;
  lastUsed = performance.now();
  /** Runs queued or in flight; a busy session is never evicted. */
  busy = 0;
  private state: State = 'open';
  private closedBecause: Error | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    parts: SessionParts,
    private host: SessionHost | null,
    private readonly owner: SessionOwner,
  ) {
    ({ id: this.id, key: this.key, file: this.file, provider: this.provider, providerReport: this.providerReport } = parts);
    this.inputs = parts.created.inputs;
    this.outputs = parts.created.outputs;
    this.estimatedBytes = parts.estimatedBytes;
    this.createMs = parts.created.createMs;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get worker(): SessionHost | null {
    return this.host;
  }

  run(feeds: Record<string, AnyTensorData>, opts: { signal?: AbortSignal } = {}): Promise<Record<string, TensorData>> {
    const { signal } = opts;
    try {
      this.checkFeeds(feeds);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(new InterruptedError());
    this.busy++;
    this.owner.touched(this);
    const job = { started: false };
    const turn = this.queue.then(() => {
      if (signal?.aborted) throw new InterruptedError();
      job.started = true;
      return this.execute(feeds);
    });
    this.queue = turn.catch(() => undefined);
    void this.queue.then(() => this.busy--);
    if (!signal) return turn;
    // Waiting behind other runs: an abort rejects at once and the run is skipped when its turn comes.
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (!job.started) reject(new InterruptedError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      turn.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Closes the worker; `evict` keeps the handle usable (the next run reopens it). */
  async close(how: 'evict' | 'release' | Error): Promise<void> {
    if (this.state === 'closed') return;
    if (how === 'evict') this.state = 'evicted';
    else {
      this.state = 'closed';
      this.closedBecause = how === 'release' ? undefined : how;
    }
    const host = this.host;
    this.host = null;
    await host?.stop();
  }

  private async execute(feeds: Record<string, AnyTensorData>): Promise<Record<string, TensorData>> {
    if (this.state === 'closed') {
      throw this.closedBecause ?? new StudioError('INTERNAL', `${this.label}: the session was released; load the model again`);
    }
    if (!this.host) this.host = await this.owner.reopen(this);
    this.state = 'open';
    this.owner.touched(this);
    const wire: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of Object.entries(feeds)) {
      const data = t.data.slice();
      wire[name] = { data, dims: [...t.dims] };
      transfer.push(data.buffer as ArrayBuffer);
    }
    try {
      const reply = await this.host.request({ type: 'run', feeds: wire }, { transfer });
      return reply.outputs ?? {};
    } catch (err) {
      throw this.runError(err);
    }
  }

  private runError(err: unknown): Error {
    if (!(err instanceof WorkerRequestError)) return err as Error;
    const { kind, message } = err.failure;
    if (kind === 'input') return new StudioError('BAD_INPUT', `${this.label}: ${message}`);
    if (kind === 'memory') return new StudioError('TOO_LARGE', `${this.label}: out of memory on ${this.provider} (${message}); try smaller tiles`);
    return new StudioError('INTERNAL', `${this.label}: the run failed: ${message}`);
  }

  /** Catches the common mistakes here, with names, rather than as onnxruntime's terser messages. */
  private checkFeeds(feeds: Record<string, AnyTensorData>): void {
    const names = this.inputs.map((i) => i.name);
    for (const name of Object.keys(feeds)) {
      if (!names.includes(name)) throw new StudioError('BAD_INPUT', `${this.label}: the model has no input '${name}' (inputs: ${names.join(', ')})`);
    }
    for (const info of this.inputs) {
      const t = feeds[info.name];
      if (!t) throw new StudioError('BAD_INPUT', `${this.label}: input '${info.name}' is missing`);
      const size = t.dims.reduce((a, b) => a * b, 1);
      const fits = t.dims.length === info.dims.length && info.dims.every((d, i) => typeof d === 'string' || d < 0 || d === t.dims[i]);
      if (!fits || size !== t.data.length) {
        throw new StudioError(
          'BAD_INPUT',
          `${this.label}: input '${info.name}' expects [${info.dims.join(', ')}], got [${t.dims.join(', ')}] with ${t.data.length} values`,
        );
      }
    }
  }

  private get label(): string {
    return `model ${path.basename(this.file)} (${this.provider})`;
  }
}
