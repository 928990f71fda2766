/**
 * The onnxruntime options every session of the runtime is opened with (session-worker.ts), kept
 * apart so that bench/full-size.ts measures exactly these.
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { ProviderName } from '../../nodes/api/runtime.ts';

/**
 * onnxruntime's CPU provider has no float16 MatMul/Conv kernels on x86, so it runs an fp16 model
 * with Casts around those ops; at level `all` this transformer then replaces every
 * Cast(float16 weight) by a float32 copy of the weight. For the full-size fp16 denoiser that is
 * 15.5 GB of float32 beside the 7.7 GB being loaded (killed at 19 GB RSS in bench/full-size.ts);
 * without it the weights stay float16 and each op casts its own weight (peak 1.35x the weights'
 * bytes, step time unchanged). GPU providers have float16 kernels and never insert these Casts.
 */
export const KEEP_FP16_WEIGHTS_ON_CPU = 'FuseFp16InitializerToFp32NodeTransformer';

/**
 * Models at least this large (weights, external data included) run on the CPU without
 * onnxruntime's memory arena. With it, the arena keeps the largest set of buffers a run ever
 * needed, for as long as the session is open: an fp16 model's per-op float32 weight copies stay
 * held (bench/full-size.ts, fp16 denoiser at latent 16: 7.6 GB after open, 12.4 GB from the
 * second step on; the fp16 bigG text tower: 1.5 GB, then 6.8 GB), and every idle session of a
 * workflow keeps its share: a MAXIM model (58-90 MB) run once on a 128 px tile keeps ~560 MB
 * beyond its open size, so a 4-model MAXIM chain held 1.6 GB in idle sessions
 * (bench/memory-restore.ts). Without it, memory goes back after each run (8.6 GB and 1.6 GB;
 * MAXIM: 11 MB beyond its open size), at no measurable cost in run time for models this size
 * (their runs take seconds). Small models (ESRGAN: 3-29 MB, runs of 0.2-1.3 s) keep the arena,
 * where it saves allocations.
 */
export const CPU_ARENA_MAX_MODEL_BYTES = 32 * 2 ** 20;

/** Options for a session on `provider`; `modelBytes` is the model's size on disk, external weights included. */
export function sessionOptions(provider: ProviderName, threads: number, modelBytes = 0): InferenceSession.SessionOptions {
  return {
    // One provider only: onnxruntime does not fall back between listed providers when one
    // fails to load, so the runtime tries them one by one instead.
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    logSeverityLevel: 3,
    ...(provider === 'cpu' ? { extra: { optimization: { disable_specified_optimizers: KEEP_FP16_WEIGHTS_ON_CPU } } } : {}),
    ...(provider === 'cpu' && modelBytes >= CPU_ARENA_MAX_MODEL_BYTES ? { enableCpuMemArena: false } : {}),
  };
}
