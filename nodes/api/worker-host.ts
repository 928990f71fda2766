/**
 * The one request/reply host for worker threads that do heavy work next to the server: the
 * degradation worker (nodes/degrade) and the model session workers (server/runtime). Both sides
 * live here: `WorkerHost` on the main thread, `serveRequests` in the worker.
 *
 * - Numbered requests, one reply each, any number of progress messages before it.
 * - Large buffers are transferred, not copied, both ways (`transfer`).
 * - Crash isolation: a worker that dies (an exception, process.exit, its heap limit) fails every
 *   request it had in hand with the reason; the main thread goes on. A host is not restarted:
 *   callers start a new one when `alive` is false.
 * - Heap limit: `heapMb` bounds the worker's JavaScript heap; running over it is told apart.
 * - Interrupts: an AbortSignal rejects the request at once with an InterruptedError and raises a
 *   shared flag that the worker's handler reads (`ctx.aborted()`) to stop at its next step; its
 *   late reply is dropped.
 * - The worker thread lowers its own CPU priority before anything else (thread-priority.ts).
 * - Only a host with work in hand keeps the process alive: an idle worker never holds up the CLI
 *   or a test run.
 * - stop() never terminate()s: onnxruntime-node aborts the whole process when a worker is
 *   terminated inside a native call. The worker finishes what it has, runs its `onExit` and ends.
 */
import { MessageChannel, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { InterruptedError, StudioError } from './errors.ts';
import { lowerThreadPriority } from './thread-priority.ts';
import { tsWorkerSource } from './ts-worker.ts';

/** Main thread → worker. `crash-on-next-reply` is a test hook: the next reply ends the thread (exit code 70) instead. */
type ToWorker<Req> = { type: 'request'; id: number; body: Req; abort: SharedArrayBuffer } | { type: 'exit' } | { type: 'crash-on-next-reply' };

/** Worker → main thread. */
type FromWorker<Res, Progress> =
  | { type: 'progress'; id: number; progress: Progress }
  | { type: 'reply'; id: number; ok: true; value: Res }
  | { type: 'reply'; id: number; ok: false; failure: WorkerFailure };

/** A request the worker's handler failed: its message and a kind the worker chose (classify). */
export interface WorkerFailure {
  kind: string;
  message: string;
}

export class WorkerRequestError extends Error {
  constructor(readonly failure: WorkerFailure) {
    super(failure.message);
    this.name = 'WorkerRequestError';
  }
}

/** How a worker died, for the error its pending requests fail with. */
export interface WorkerCrash {
  label: string;
  /** "it ran out of memory", "it threw TypeError: ...", "it exited with code 70". */
  reason: string;
  /** It ran over its heap limit (ERR_WORKER_OUT_OF_MEMORY). */
  outOfMemory: boolean;
  heapMb: number | undefined;
  code: number;
}

export interface WorkerHostOptions {
  /** The worker's old-generation JavaScript heap limit (resourceLimits.maxOldGenerationSizeMb); none by default. */
  heapMb?: number;
  /** The error pending requests fail with when the worker dies; a StudioError naming the reason by default. */
  crashError?: (crash: WorkerCrash) => Error;
  /** Opens the test port (exhaustHeapForTest); only tests set it. */
  testHooks?: boolean;
}

export interface RequestOptions<Progress> {
  /** Buffers handed to the worker (the caller's views of them become empty). */
  transfer?: ArrayBuffer[];
  /** Rejects at once with an InterruptedError and tells the worker (ctx.aborted()). */
  signal?: AbortSignal;
  /** Progress from the worker; a throw fails the request (and tells the worker to stop). */
  onProgress?: (progress: Progress) => void;
}

interface Pending<Res, Progress> {
  resolve: (value: Res) => void;
  reject: (err: Error) => void;
  onProgress: ((progress: Progress) => void) | undefined;
  abort: Int32Array;
}

export function defaultCrashError(c: WorkerCrash): Error {
  return c.outOfMemory
    ? new StudioError('TOO_LARGE', `${c.label} ran out of memory (its JavaScript heap reached its ${c.heapMb} MB limit)`)
    : new StudioError('INTERNAL', `${c.label} stopped unexpectedly (${c.reason})`);
}

export class WorkerHost<Req, Res, Progress = never> {
  /** Called once when the worker dies without being asked to stop, with the error its requests got. */
  onCrash: ((err: Error) => void) | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending<Res, Progress>>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  private stopping = false;
  private dead = false;
  private crashReason: string | undefined;
  private outOfMemory = false;
  private readonly testPort: MessagePort | undefined;

  /** `moduleUrl`: the worker's module (TypeScript is fine), which calls serveRequests. */
  constructor(
    readonly label: string,
    moduleUrl: string,
    private readonly opts: WorkerHostOptions = {},
  ) {
    const resourceLimits = opts.heapMb === undefined ? undefined : { maxOldGenerationSizeMb: opts.heapMb };
    let testPort: MessagePort | undefined;
    if (opts.testHooks) {
      const { port1, port2 } = new MessageChannel();
      port1.unref();
      this.testPort = port1;
      testPort = port2;
    }
    this.worker = new Worker(tsWorkerSource(moduleUrl), {
      eval: true,
      ...(resourceLimits ? { resourceLimits } : {}),
      ...(testPort ? { workerData: { testPort }, transferList: [testPort] } : {}),
    });
    this.worker.unref();
    this.worker.on('message', (msg: FromWorker<Res, Progress>) => this.receive(msg));
    this.worker.on('error', (err: Error & { code?: string }) => {
      this.outOfMemory = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.crashReason = this.outOfMemory ? 'it ran out of memory' : `it threw ${err.message.split('\n')[0]}`;
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', (code) => resolve(this.onExit(code))));
  }

  /** False once stop() was called or the worker died: start a new host then. */
  get alive(): boolean {
    return !this.stopping && !this.dead;
  }

  /** Requests sent and not yet settled. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The worker's thread id (for tests that look at the thread). */
  get threadId(): number {
    return this.worker.threadId;
  }

  request(body: Req, opts: RequestOptions<Progress> = {}): Promise<Res> {
    if (!this.alive) return Promise.reject(new StudioError('INTERNAL', `${this.label}: the worker is closed`));
    if (opts.signal?.aborted) return Promise.reject(new InterruptedError());
    const id = this.nextId++;
    const flag = new SharedArrayBuffer(4);
    const abort = new Int32Array(flag);
    const { signal } = opts;
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => this.fail(id, new InterruptedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, { resolve: (v) => (done(), resolve(v)), reject: (e) => (done(), reject(e)), onProgress: opts.onProgress, abort });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ type: 'request', id, body, abort: flag } satisfies ToWorker<Req>, opts.transfer ?? []);
    });
  }

  /** Lets the worker finish what it has, run its onExit and end. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.stopping && !this.dead) {
      this.stopping = true;
      this.worker.ref(); // until it has ended cleanly
      this.worker.postMessage({ type: 'exit' } satisfies ToWorker<Req>);
    }
    await this.exited;
  }

  /** Test hook: the worker ends (exit code 70) where it would send its next reply, as a crash would. */
  crashOnNextReplyForTest(): void {
    this.worker.postMessage({ type: 'crash-on-next-reply' } satisfies ToWorker<Req>);
  }

  /** Test hook (a host made with `testHooks` only): the worker allocates until it runs out of heap. */
  exhaustHeapForTest(): void {
    if (!this.testPort) throw new StudioError('INTERNAL', `${this.label}: this worker was started without test hooks`);
    this.testPort.postMessage({ type: 'exhaust-heap' });
  }

  private receive(msg: FromWorker<Res, Progress>): void {
    const p = this.pending.get(msg.id);
    if (!p) return; // interrupted: nobody waits for it any more
    if (msg.type === 'progress') {
      try {
        p.onProgress?.(msg.progress);
      } catch (err) {
        this.fail(msg.id, err as Error);
      }
      return;
    }
    this.settle(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new WorkerRequestError(msg.failure));
  }

  /** Fails one request now; the worker is told to stop working on it. */
  private fail(id: number, err: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    Atomics.store(p.abort, 0, 1);
    this.settle(id);
    p.reject(err);
  }

  private settle(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && !this.stopping) this.worker.unref();
  }

  private onExit(code: number): void {
    this.dead = true;
    const crashed = !this.stopping || code !== 0;
    const crash: WorkerCrash = {
      label: this.label,
      reason: this.crashReason ?? `it exited with code ${code}`,
      outOfMemory: this.outOfMemory,
      heapMb: this.opts.heapMb,
      code,
    };
    const err = crashed ? (this.opts.crashError ?? defaultCrashError)(crash) : new StudioError('INTERNAL', `${this.label}: the worker was stopped`);
    this.testPort?.close();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (crashed) this.onCrash?.(err);
  }
}

/** What a handler gets besides the request. */
export interface RequestContext<Progress> {
  /** True once the main thread gave up on this request (interrupt): stop at the next step. */
  aborted(): boolean;
  progress(progress: Progress, transfer?: ArrayBuffer[]): void;
}

export interface ServeOptions<Req> {
  /** One request at a time, in order (a session is not re-entrant); otherwise each starts on arrival. */
  sequential?: boolean;
  /** The failure a thrown error becomes; `{ kind: 'error', message }` by default. */
  classify?: (err: unknown, body: Req) => WorkerFailure;
  /** Runs before the thread ends on stop() (release what the worker holds). */
  onExit?: () => unknown;
}

/**
 * The worker's side: call once, first thing, from the worker's module. Lowers the thread's
 * priority, then answers every request with `handler`'s value (its `transfer` buffers moved).
 */
export function serveRequests<Req, Res, Progress = never>(
  handler: (body: Req, ctx: RequestContext<Progress>) => Promise<{ value: Res; transfer?: ArrayBuffer[] }>,
  opts: ServeOptions<Req> = {},
): void {
  const port = parentPort;
  if (!port) throw new Error('serveRequests must run in a worker thread');
  // Heavy work yields the CPU to the server's event loop (see thread-priority.ts).
  lowerThreadPriority();
  installTestHooks();

  let crashOnNextReply = false;
  const inFlight = new Set<Promise<void>>();
  let chain: Promise<void> = Promise.resolve();
  const send = (msg: FromWorker<Res, Progress>, transfer: ArrayBuffer[] = []): void => {
    if (msg.type === 'reply' && crashOnNextReply) process.exit(70);
    port.postMessage(msg, transfer);
  };
  const classify = (err: unknown, body: Req): WorkerFailure =>
    opts.classify?.(err, body) ?? { kind: 'error', message: (err instanceof Error ? err.message : String(err)).trim() };

  const answer = async (id: number, body: Req, flag: SharedArrayBuffer): Promise<void> => {
    const abort = new Int32Array(flag);
    const ctx: RequestContext<Progress> = {
      aborted: () => Atomics.load(abort, 0) !== 0,
      progress: (progress, transfer) => send({ type: 'progress', id, progress }, transfer),
    };
    let result: { value: Res; transfer?: ArrayBuffer[] };
    try {
      result = await handler(body, ctx);
    } catch (err) {
      send({ type: 'reply', id, ok: false, failure: classify(err, body) });
      return;
    }
    send({ type: 'reply', id, ok: true, value: result.value }, result.transfer);
  };

  port.on('message', (msg: ToWorker<Req>) => {
    if (msg.type === 'crash-on-next-reply') {
      crashOnNextReply = true;
    } else if (msg.type === 'exit') {
      void Promise.allSettled([chain, ...inFlight])
        .then(() => opts.onExit?.())
        .finally(() => process.exit(0));
    } else if (opts.sequential) {
      chain = chain.then(() => answer(msg.id, msg.body, msg.abort));
    } else {
      const job = answer(msg.id, msg.body, msg.abort).finally(() => inFlight.delete(job));
      inFlight.add(job);
    }
  });
}

/**
 * Test hooks, only in a worker given a test port (a host made with `testHooks`): `exhaust-heap`
 * makes the thread hold ever more JavaScript objects until its heap limit ends it, as a leak or
 * an oversized tensor built in JavaScript would. A separate port keeps the hook out of the
 * request protocol: nothing that reaches the worker's own port can trigger it.
 */
function installTestHooks(): void {
  const testPort = (workerData as { testPort?: MessagePort } | null)?.testPort;
  if (!testPort) return;
  testPort.on('message', (msg: { type?: string }) => {
    if (msg?.type === 'exhaust-heap') {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array<number>(1 << 16).fill(hoard.length));
    }
  });
  testPort.unref();
}
