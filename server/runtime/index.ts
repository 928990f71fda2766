/**
 * The model runtime: execution providers, sessions in worker threads, fp16 conversion and the
 * memory budget. Nodes see it only through nodes/api/runtime.ts; the server creates one.
 */
export { createRuntime, type RuntimeOptions, type RuntimeStats, type StudioRuntime } from './runtime.ts';
export { diagnoseCuda, deviceInfo, probeCuda, type CudaDiagnosis, type CudaProbe, type LibraryCheck } from './cuda.ts';
export { probeProviders } from './providers.ts';
export { fromFloat16, toFloat16 } from './fp16.ts';
export { ortBindingDir } from './libraries.ts';
