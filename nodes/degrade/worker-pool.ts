/**
 * The main thread's side of the degradation worker (worker.ts): one worker thread behind the
 * shared worker host (nodes/api/worker-host.ts), started on first use and kept. Only a worker with
 * work in hand keeps the process alive, so an idle one never holds up the CLI or a test run. A
 * crashed worker fails what it had in hand and is started afresh on the next request.
 *
 * Interrupts: the request's abort flag is raised and the promise rejects at once with an
 * InterruptedError; the worker stops at its next step and its late reply is dropped.
 */
import { InterruptedError } from '../api/errors.ts';
import type { ImageTensor } from '../api/tensor.ts';
import { WorkerHost } from '../api/worker-host.ts';
import type { OpArgs, OpName, OpResult } from './lib/ops.ts';
import type { DegradeProgress, DegradeRequest } from './worker.ts';

const WORKER = new URL('./worker.ts', import.meta.url).href;

let host: WorkerHost<DegradeRequest, OpResult, DegradeProgress> | undefined;

/** The worker's host, started (again, after a crash) when needed. */
export function degradeWorker(): WorkerHost<DegradeRequest, OpResult, DegradeProgress> {
  if (!host?.alive) {
    host = new WorkerHost<DegradeRequest, OpResult, DegradeProgress>('the degradation worker', WORKER, {
      crashError: (c) => new Error(`the degradation worker stopped (${c.reason})`),
    });
  }
  return host;
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
  const data = image.data.slice();
  const { onStep } = opts;
  return degradeWorker().request(
    { op, image: { ...image, data }, seed, args },
    { transfer: [data.buffer], ...(opts.signal ? { signal: opts.signal } : {}), ...(onStep ? { onProgress: (p: DegradeProgress) => onStep(p.step, p.total) } : {}) },
  );
}
