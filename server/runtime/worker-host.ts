/**
 * One session worker seen from the main thread: numbered requests, one reply each, and a clear
 * error for every pending request when the worker dies (a crash, running out of memory).
 *
 * The worker is never terminate()d: onnxruntime-node aborts the whole process when a worker is
 * terminated while a native call is running. Stopping asks the worker to finish what it is doing
 * and end itself.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { StudioError } from '../../nodes/api/errors.ts';
import { createLogger } from '../log.ts';
import type { Notice, Reply, RequestBody } from './protocol.ts';
import { tsWorkerSource } from '../../nodes/api/ts-worker.ts';

const log = createLogger('runtime');

type OkReply = Extract<Reply, { ok: true }>;
type Failure = Extract<Reply, { ok: false }>['error'];
type Pending = { resolve: (reply: OkReply) => void; reject: (err: Error) => void };

const BOOTSTRAP = tsWorkerSource(new URL('./session-worker.ts', import.meta.url).href);
/**
 * Test hooks, installed only in a worker given a test port (a runtime created with `testHooks`):
 * `exhaust-heap` makes the thread hold ever more JavaScript objects until its heap limit ends it,
 * as a leak or an oversized tensor built in JavaScript would. A separate port keeps the hook out of
 * the session protocol: nothing that reaches the session worker's own port can trigger it.
 */
const TEST_HOOKS = `
const { workerData } = await import('node:worker_threads');
if (workerData && workerData.testPort) {
  workerData.testPort.on('message', (msg) => {
    if (msg && msg.type === 'exhaust-heap') {
      const hoard = [];
      for (;;) hoard.push(new Array(1 << 16).fill(hoard.length));
    }
  });
  workerData.testPort.unref();
}`;

/** Default limit of a session worker's JavaScript heap: tensors and onnxruntime's memory live outside it. */
export const DEFAULT_WORKER_HEAP_MB = 4096;

export interface WorkerHostOptions {
  /** The worker's old-generation heap limit (resourceLimits.maxOldGenerationSizeMb). */
  heapMb?: number;
  /** Opens the test port (see TEST_HOOKS); only tests set it. */
  testHooks?: boolean;
}

/** A failed request: the worker's message plus how the runtime should treat it. */
export class WorkerRequestError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
    this.name = 'WorkerRequestError';
  }
}

export class WorkerHost {
  /** Called once when the worker dies without being asked to stop. */
  onCrash: ((err: StudioError) => void) | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly exited: Promise<void>;
  private nextId = 1;
  private stopping = false;
  private dead = false;
  private crashReason: string | undefined;
  private outOfMemory = false;
  private readonly heapMb: number;
  private readonly testPort: MessagePort | undefined;

  constructor(
    private readonly label: string,
    opts: WorkerHostOptions = {},
  ) {
    this.heapMb = opts.heapMb ?? DEFAULT_WORKER_HEAP_MB;
    // A runaway allocation in the worker ends the worker (ERR_WORKER_OUT_OF_MEMORY), not the server.
    const resourceLimits = { maxOldGenerationSizeMb: this.heapMb };
    if (opts.testHooks) {
      const { port1, port2 } = new MessageChannel();
      this.testPort = port1;
      port1.unref();
      this.worker = new Worker(`(async () => {${TEST_HOOKS}\n})().then(() => { ${BOOTSTRAP} });`, { eval: true, resourceLimits, workerData: { testPort: port2 }, transferList: [port2] });
    } else {
      this.worker = new Worker(BOOTSTRAP, { eval: true, resourceLimits });
    }
    // Only a worker with work in hand keeps the process alive: an idle session must not keep
    // the CLI or a test run from exiting.
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => this.settle(reply));
    this.worker.on('error', (err: Error & { code?: string }) => {
      this.outOfMemory = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.crashReason = this.outOfMemory ? 'it ran out of memory' : `it threw ${err.message.split('\n')[0]}`;
    });
    this.exited = new Promise((resolve) => this.worker.once('exit', (code) => resolve(this.onExit(code))));
  }

  get alive(): boolean {
    return !this.stopping && !this.dead;
  }

  request(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<OkReply> {
    if (!this.alive) return Promise.reject(new StudioError('INTERNAL', `${this.label}: the session worker is closed`));
    const id = this.nextId++;
    const reply = new Promise<OkReply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    if (this.pending.size === 1) this.worker.ref();
    this.worker.postMessage({ ...req, id }, transfer);
    return reply;
  }

  /** Lets the worker finish its current request, release the session and end. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.stopping && !this.dead) {
      this.stopping = true;
      this.worker.ref(); // until it has ended cleanly
      this.notify({ type: 'exit' });
    }
    await this.exited;
  }

  /** Test hook: the next run ends the worker instead of replying, as a crash in the run would. */
  crashOnNextRun(): void {
    this.notify({ type: 'crash-on-next-run' });
  }

  /** Test hook (a host made with `testHooks` only): the worker allocates until it runs out of heap. */
  exhaustHeapForTest(): void {
    if (!this.testPort) throw new StudioError('INTERNAL', `${this.label}: this worker was started without test hooks`);
    this.testPort.postMessage({ type: 'exhaust-heap' });
  }

  private notify(notice: Notice): void {
    this.worker.postMessage(notice);
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0 && !this.stopping) this.worker.unref();
    if (reply.ok) p.resolve(reply);
    else p.reject(new WorkerRequestError(reply.error));
  }

  private onExit(code: number): void {
    this.dead = true;
    const crashed = !this.stopping || code !== 0;
    const why = this.crashReason ?? `it exited with code ${code}`;
    const err = !crashed
      ? new StudioError('INTERNAL', `${this.label}: the session was closed`)
      : this.outOfMemory
        ? new StudioError(
            'TOO_LARGE',
            `the model worker ran out of memory (${this.label}: its JavaScript heap reached its ${this.heapMb} MB limit, set with SUPIR_WORKER_HEAP_MB); the session was closed and the next load starts a fresh one`,
          )
        : new StudioError('INTERNAL', `${this.label}: the session worker stopped unexpectedly (${why}); the session was closed and the next load starts a fresh one`);
    this.testPort?.close();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (crashed) {
      log.warn(err.message);
      this.onCrash?.(err);
    }
  }
}
