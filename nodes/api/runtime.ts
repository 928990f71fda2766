/**
 * The runtime's client API, as nodes see it. The implementation (sessions in worker threads,
 * execution-provider choice, memory budget) lives in server/runtime; nodes only hold this.
 */
export type ProviderName = 'cuda' | 'webgpu' | 'cpu';
export type ProviderChoice = 'auto' | ProviderName;

/** The order `auto` tries providers in. */
export const AUTO_ORDER: readonly ProviderName[] = ['cuda', 'webgpu', 'cpu'];

/**
 * A tensor crossing the runtime boundary: float32 (fp16 models are converted inside the runtime)
 * or int64 (token ids, timesteps).
 */
export interface TensorData<D extends Float32Array | BigInt64Array = Float32Array> {
  data: D;
  dims: number[];
}

export type AnyTensorData = TensorData<Float32Array> | TensorData<BigInt64Array>;

export interface TensorInfo {
  name: string;
  dtype: 'float32' | 'float16' | 'int64';
  /** Symbolic dimensions (batch, height, ...) are strings. */
  dims: Array<number | string>;
}

export interface ProviderStatus {
  name: ProviderName;
  available: boolean;
  /** Why it is not available (missing library, no adapter, ...), or what it runs on. */
  reason: string;
}

export interface ModelSession {
  readonly id: string;
  readonly provider: ProviderName;
  /** Which provider ran and why the ones tried before it did not, in words. */
  readonly providerReport: string;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  /** Runs off the event loop; an aborted signal rejects with an InterruptedError between runs. */
  run(feeds: Record<string, AnyTensorData>, opts?: { signal?: AbortSignal }): Promise<Record<string, TensorData>>;
}

export interface Runtime {
  /** Opens an ONNX file (with external data beside it), or reuses the open session for it. */
  load(modelPath: string, opts?: { provider?: ProviderChoice }): Promise<ModelSession>;
  providers(): Promise<ProviderStatus[]>;
  /** Closes one session, or all of them. */
  release(sessionId?: string): Promise<void>;
}
