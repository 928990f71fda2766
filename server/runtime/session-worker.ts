/**
 * The worker that owns one onnxruntime InferenceSession. onnxruntime-node's run() is a blocking
 * native call, so sessions live here and the main thread's event loop stays free. fp16 model
 * inputs and outputs are converted here (fp16.ts), so the main thread only ever sees Float32.
 *
 * Started by session-host.ts (the shared worker host); never imported by the main thread.
 */
import * as ort from 'onnxruntime-node';
import type { TensorInfo } from '../../nodes/api/runtime.ts';
import { serveRequests } from '../../nodes/api/worker-host.ts';
import { fromFloat16, toFloat16 } from './fp16.ts';
import { statModel } from './model-file.ts';
import { sessionOptions } from './session-options.ts';
import { classifyError, type Created, type FailureKind, type RequestBody, type SessionReply, type WireOutput } from './protocol.ts';

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

// Model work yields the CPU to the server's event loop: serveRequests lowers this thread's
// priority, and the onnxruntime pool it starts inherits it (see thread-priority.ts). Requests are
// handled strictly one after another, and stop() only after the last of them.
serveRequests<RequestBody, SessionReply>(handle, {
  sequential: true,
  classify: (err, req) => {
    const message = (err instanceof Error ? err.message : String(err)).trim();
    return { kind: err instanceof KnownFailure ? err.kind : classifyError(message, req.type), message };
  },
  onExit: () => session?.release(),
});

async function handle(req: RequestBody): Promise<{ value: SessionReply; transfer: ArrayBuffer[] }> {
  switch (req.type) {
    case 'create': {
      const t0 = performance.now();
      // The model's size picks the CPU memory options (session-options.ts).
      const options = sessionOptions(req.provider, req.threads, modelBytes(req.source));
      session = typeof req.source === 'string' ? await ort.InferenceSession.create(req.source, options) : await ort.InferenceSession.create(req.source, options);
      infos = { inputs: describe(session.inputMetadata, 'input'), outputs: describe(session.outputMetadata, 'output'), createMs: 0 };
      infos.createMs = performance.now() - t0;
      return { value: { created: infos }, transfer: [] };
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
      return { value: { outputs, runMs: performance.now() - t0 }, transfer };
    }
  }
}

/** A model's bytes with its external weights; 0 when unreadable (onnxruntime then says why). */
function modelBytes(source: string | Uint8Array): number {
  if (typeof source !== 'string') return source.byteLength;
  try {
    return statModel(source).estimatedBytes / 2;
  } catch {
    return 0;
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
