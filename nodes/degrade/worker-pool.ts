/**
 * The main thread's side of the degradation worker (worker.ts): one worker thread, started on
 * first use and kept, with numbered requests. Only a worker with work in hand keeps the process
 * alive, so an idle one never holds up the CLI or a test run. A crashed worker fails what it had
 * in hand and is started afresh on the next request.
 *
 * Interrupts: the request's abort flag (shared memory) is raised and the promise rejects at once
 * with an InterruptedError; the worker stops at its next step and its late reply is dropped.
 */
import { Worker } from 'node:worker_threads';
import { InterruptedError } from '../api/errors.ts';
import { tsWorkerSource } from '../api/ts-worker.ts';
import type { ImageTensor } from '../api/tensor.ts';
import type { OpArgs, OpName, OpResult } from './lib/ops.ts';
import type { WorkerReply, WorkerRequest } from './worker.ts';

const BOOTSTRAP = tsWorkerSource(new URL('./worker.ts', import.meta.url).href);

interface Pending {
  resolve: (r: OpResult) => void;
  reject: (e: Error) => void;
  onStep: (step: number, total: number) => void;
}

let worker: Worker | undefined;
const pending = new Map<number, Pending>();
let nextId = 1;

function start(): Worker {
  const w = new Worker(BOOTSTRAP, { eval: true });
  w.unref();
  w.on('message', (reply: WorkerReply) => {
    const p = pending.get(reply.id);
    if (!p) return; // interrupted: nobody waits for it any more
    if (reply.type === 'step') {
      try {
        p.onStep(reply.step, reply.total);
      } catch (e) {
        settle(reply.id);
        p.reject(e as Error);
      }
      return;
    }
    settle(reply.id);
    if (reply.type === 'done') p.resolve({ image: reply.image, params: reply.params });
    else p.reject(new Error(reply.message));
  });
  let crash = '';
  w.on('error', (err) => {
    crash = err.message;
  });
  w.on('exit', (code) => {
    if (worker === w) worker = undefined;
    const reason = new Error(`the degradation worker stopped (${crash || `exit code ${code}`})`);
    for (const [id, p] of pending) {
      settle(id);
      p.reject(reason);
    }
  });
  return w;
}

function settle(id: number): void {
  pending.delete(id);
  if (pending.size === 0) worker?.unref();
}

/**
 * Runs one operation on one image (n = 1) in the worker. The input is copied (the caller's tensor
 * may be cached and shared), the result comes back without a copy.
 */
export function runInWorker<K extends OpName>(
  op: K,
  image: ImageTensor,
  seed: number,
  args: OpArgs[K],
  opts: { signal?: AbortSignal; onStep?: (step: number, total: number) => void } = {},
): Promise<OpResult> {
  if (opts.signal?.aborted) return Promise.reject(new InterruptedError());
  worker ??= start();
  const w = worker;
  const id = nextId++;
  const abort = new SharedArrayBuffer(4);
  const data = image.data.slice();
  return new Promise<OpResult>((resolve, reject) => {
    const onAbort = (): void => {
      Atomics.store(new Int32Array(abort), 0, 1);
      if (pending.has(id)) {
        settle(id);
        reject(new InterruptedError());
      }
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => opts.signal?.removeEventListener('abort', onAbort);
    pending.set(id, {
      resolve: (r) => (done(), resolve(r)),
      reject: (e) => (done(), reject(e)),
      onStep: opts.onStep ?? (() => {}),
    });
    w.ref();
    const req: WorkerRequest = { id, op, image: { ...image, data }, seed, args, abort };
    w.postMessage(req, [data.buffer]);
  });
}
