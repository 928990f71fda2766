/**
 * The degradation worker: runs lib/ops.ts operations off the main thread so that the server's
 * event loop stays free while an image is degraded (a 2048x2048 second-order degradation takes a
 * few hundred ms of CPU). Started by worker-pool.ts; never imported by the main thread.
 *
 * Protocol: { id, op, image, seed, args, abort } in (abort: a SharedArrayBuffer holding one Int32,
 * set to 1 by the main thread on interrupt); { id, type: 'step' | 'done' | 'error', ... } out, the
 * result image's buffer transferred.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { ImageTensor } from '../api/tensor.ts';
import { lowerThreadPriority } from '../api/thread-priority.ts';
import { runOp, type OpArgs, type OpName } from './lib/ops.ts';

export interface WorkerRequest {
  id: number;
  op: OpName;
  image: ImageTensor;
  seed: number;
  args: OpArgs[OpName];
  abort: SharedArrayBuffer;
}

export type WorkerReply =
  | { id: number; type: 'step'; step: number; total: number }
  | { id: number; type: 'done'; image: ImageTensor; params: Record<string, unknown> }
  | { id: number; type: 'error'; message: string; aborted: boolean };

class Aborted extends Error {}

const port: MessagePort | null = parentPort;
if (!port) throw new Error('nodes/degrade/worker.ts must run in a worker thread');

// Degradation yields the CPU to the server's event loop, as model work does (see
// thread-priority.ts). libvips' JPEG threads are not this thread's and keep their priority.
lowerThreadPriority();

port.on('message', (req: WorkerRequest) => {
  const flag = new Int32Array(req.abort);
  const onStep = (step: number, total: number): void => {
    if (Atomics.load(flag, 0) !== 0) throw new Aborted('interrupted');
    port.postMessage({ id: req.id, type: 'step', step, total } satisfies WorkerReply);
  };
  runOp(req.op, req.image, req.seed, req.args as never, onStep).then(
    ({ image, params }) => {
      // The result may share the request's buffer (an operation that changed nothing): transfer it either way.
      port.postMessage({ id: req.id, type: 'done', image, params } satisfies WorkerReply, [image.data.buffer as ArrayBuffer]);
    },
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      port.postMessage({ id: req.id, type: 'error', message, aborted: err instanceof Aborted } satisfies WorkerReply);
    },
  );
});
