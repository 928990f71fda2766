/**
 * The worker that owns one onnxruntime InferenceSession. onnxruntime-node's run() is a blocking
 * native call, so sessions live here and the main thread's event loop stays free. fp16 model
 * inputs and outputs are converted here (fp16.ts), so the main thread only ever sees Float32.
 *
 * Started by worker-host.ts; never imported by the main thread.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { TensorInfo } from '../../nodes/api/runtime.ts';
import { lowerThreadPriority } from '../../nodes/api/thread-priority.ts';
import { fromFloat16, toFloat16 } from './fp16.ts';
import { classifyError, type Created, type FailureKind, type Notice, type Reply, type Request, type WireOutput, type WireTensor } from './protocol.ts';

const port: MessagePort = parentPort ?? fail('session-worker.ts must run in a worker thread');

// Model work yields the CPU to the server's event loop (this thread and the onnxruntime pool it
// starts run below the main thread; see thread-priority.ts).
lowerThreadPriority();

// Errors reach the main thread as exceptions; onnxruntime's own stderr log would only duplicate them.
ort.env.logLevel = 'error';

/** A failure whose kind is known where it is thrown, so no message matching is needed. */
class KnownFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

let session: ort.InferenceSession | undefined;
let infos: Created | undefined;
let crashOnNextRun = false;
/** Requests are handled strictly one after another, and `exit` only after the last of them. */
let chain: Promise<void> = Promise.resolve();

port.on('message', (msg: Request | Notice) => {
  if (msg.type === 'crash-on-next-run') {
    crashOnNextRun = true;
  } else if (msg.type === 'exit') {
    chain = chain.then(() => session?.release()).finally(() => process.exit(0));
  } else {
    chain = chain.then(() => respond(msg));
  }
});

async function respond(req: Request): Promise<void> {
  try {
    const { reply, transfer } = await handle(req);
    if (crashOnNextRun && req.type === 'run') process.exit(70);
    port.postMessage(reply, transfer);
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).trim();
    const kind = err instanceof KnownFailure ? err.kind : classifyError(message, req.type === 'create' ? 'create' : 'run');
    port.postMessage({ id: req.id, ok: false, error: { kind, message } } satisfies Reply);
  }
}

async function handle(req: Request): Promise<{ reply: Reply; transfer: ArrayBuffer[] }> {
  switch (req.type) {
    case 'create': {
      const t0 = performance.now();
      const options: ort.InferenceSession.SessionOptions = {
        // One provider only: onnxruntime does not fall back between listed providers when one
        // fails to load, so the runtime tries them one by one instead.
        executionProviders: [req.provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: req.threads,
        logSeverityLevel: 3,
      };
      session = typeof req.source === 'string' ? await ort.InferenceSession.create(req.source, options) : await ort.InferenceSession.create(req.source, options);
      infos = { inputs: describe(session.inputMetadata, 'input'), outputs: describe(session.outputMetadata, 'output'), createMs: 0 };
      infos.createMs = performance.now() - t0;
      return { reply: { id: req.id, ok: true, created: infos }, transfer: [] };
    }
    case 'run': {
      if (!session || !infos) throw new KnownFailure('other', 'no session was created in this worker');
      const t0 = performance.now();
      const feeds: Record<string, ort.Tensor> = {};
      for (const info of infos.inputs) {
        const t = req.feeds[info.name];
        if (!t) throw new KnownFailure('input', `input '${info.name}' is missing`);
        if (info.dtype === 'int64' !== t.data instanceof BigInt64Array) {
          throw new KnownFailure('input', `input '${info.name}' is ${info.dtype}, got ${t.data instanceof BigInt64Array ? 'int64' : 'float32'} data`);
        }
        if (t.data instanceof BigInt64Array) feeds[info.name] = new ort.Tensor('int64', t.data, t.dims);
        else feeds[info.name] = info.dtype === 'float16' ? new ort.Tensor('float16', toFloat16(t.data), t.dims) : new ort.Tensor('float32', t.data, t.dims);
      }
      const results = await session.run(feeds);
      const outputs: Record<string, WireOutput> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, value] of Object.entries(results)) {
        const data = value.type === 'float16' ? fromFloat16(value.data as Uint16Array) : copyIfShared(value.data as Float32Array);
        outputs[name] = { data, dims: [...value.dims] };
        transfer.push(data.buffer as ArrayBuffer);
      }
      return { reply: { id: req.id, ok: true, outputs, runMs: performance.now() - t0 }, transfer };
    }
  }
}

/** Float tensors cross the runtime's interface as float32; int64 is accepted for inputs (ids, timesteps). */
function describe(meta: readonly ort.InferenceSession.ValueMetadata[], what: string): TensorInfo[] {
  return meta.map((m) => {
    const ok = m.isTensor && (m.type === 'float32' || m.type === 'float16' || (what === 'input' && m.type === 'int64'));
    if (!m.isTensor || !ok) {
      const type = m.isTensor ? m.type : 'a non-tensor value';
      throw new KnownFailure('model', `${what} '${m.name}' is ${type}; the runtime handles float32 and float16 tensors, and int64 inputs`);
    }
    return { name: m.name, dtype: m.type as TensorInfo['dtype'], dims: [...m.shape] };
  });
}

/** An output that does not own its whole buffer cannot be transferred without taking more with it. */
function copyIfShared(data: Float32Array): Float32Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

function fail(message: string): never {
  throw new Error(message);
}
