/**
 * Messages between the runtime (main thread) and a session worker, carried by the shared worker
 * host (nodes/api/worker-host.ts: ids, replies, crashes, stop). One worker owns one ONNX session.
 */
import type { ProviderName, TensorInfo } from '../../nodes/api/runtime.ts';

/** Data crossing the thread boundary (float32, or int64 inputs); its buffer is transferred, not copied. */
export interface WireTensor {
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/** Outputs come back as float32 only. */
export interface WireOutput {
  data: Float32Array;
  dims: number[];
}

export interface CreateRequest {
  type: 'create';
  /** A model file path, or the bytes of a model (the provider probe's tiny model). */
  source: string | Uint8Array;
  provider: ProviderName;
  threads: number;
}

export interface RunRequest {
  type: 'run';
  feeds: Record<string, WireTensor>;
}

export type RequestBody = CreateRequest | RunRequest;

export interface Created {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  createMs: number;
}

/**
 * How a failure should be handled: `model` (the file is not a usable model: BAD_INPUT), `provider`
 * (this provider cannot run here: try the next one), `input` (the feeds do not fit the model),
 * `memory` (an allocation failed) or `other`.
 */
export type FailureKind = 'model' | 'provider' | 'input' | 'memory' | 'other';

/** A reply: `created` for a create, `outputs` and `runMs` for a run. Failures arrive as WorkerRequestError with a FailureKind. */
export interface SessionReply {
  created?: Created;
  outputs?: Record<string, WireOutput>;
  runMs?: number;
}

/** Classifies onnxruntime's error messages (they carry no codes in the Node binding). */
export function classifyError(message: string, stage: 'create' | 'run'): FailureKind {
  if (/bad_alloc|failed to allocate|out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation/i.test(message)) return 'memory';
  if (stage === 'run') {
    return /invalid rank|invalid dimensions|is missing in 'feeds'|unexpected input|input .* not found|got invalid/i.test(message) ? 'input' : 'other';
  }
  if (/protobuf parsing failed|doesn't exist|no such file|invalid model|INVALID_GRAPH|INVALID_PROTOBUF|ModelProto|opset|external data/i.test(message)) {
    return 'model';
  }
  return 'provider';
}
