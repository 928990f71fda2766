/**
 * The degradation worker: runs lib/ops.ts operations off the main thread so that the server's
 * event loop stays free while an image is degraded (a 2048x2048 second-order degradation takes a
 * few hundred ms of CPU). Started by worker-pool.ts through the shared worker host
 * (nodes/api/worker-host.ts); never imported by the main thread.
 *
 * A request is { op, image, seed, args }; progress is { step, total } per pipeline stage; the
 * reply is the operation's { image, params }, the image's buffer transferred. An interrupt raises
 * the request's abort flag: the next step throws, and the host has already dropped the request.
 */
import type { ImageTensor } from '../api/tensor.ts';
import { serveRequests } from '../api/worker-host.ts';
import { runOp, type OpArgs, type OpName, type OpResult } from './lib/ops.ts';

export interface DegradeRequest {
  op: OpName;
  image: ImageTensor;
  seed: number;
  args: OpArgs[OpName];
}

export interface DegradeProgress {
  step: number;
  total: number;
}

class Aborted extends Error {}

// serveRequests lowers this thread's priority first: degradation yields the CPU to the server's
// event loop, as model work does (libvips' JPEG threads are not this thread's and keep theirs).
serveRequests<DegradeRequest, OpResult, DegradeProgress>(
  async (req, ctx) => {
    const onStep = (step: number, total: number): void => {
      if (ctx.aborted()) throw new Aborted('interrupted');
      ctx.progress({ step, total });
    };
    const { image, params } = await runOp(req.op, req.image, req.seed, req.args as never, onStep);
    // The result may share the request's buffer (an operation that changed nothing): transfer it either way.
    return { value: { image, params }, transfer: [image.data.buffer as ArrayBuffer] };
  },
  { classify: (err) => ({ kind: err instanceof Aborted ? 'aborted' : 'error', message: err instanceof Error ? err.message : String(err) }) },
);
