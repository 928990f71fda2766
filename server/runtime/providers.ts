/**
 * Which execution providers can run on this machine, each with a reason in words. cpu always can;
 * cuda and webgpu are believed only after a session on them has started and run a tiny model in a
 * throwaway worker, or for WebGPU a throwaway process (a provider that fails, or even crashes,
 * cannot take the server down).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { tsWorkerSource } from '../../nodes/api/ts-worker.ts';
import type { ProviderName, ProviderStatus } from '../../nodes/api/runtime.ts';
import { diagnoseCuda, probeCuda, type CudaDiagnosis, type CudaProbe } from './cuda.ts';
import { PROBE_INPUT, probeModel } from './probe-model.ts';
import { startSessionWorker } from './session-host.ts';
import type { WebGpuProbeResult } from './webgpu-probe.ts';

const WEBGPU_PROBE = new URL('./webgpu-probe.ts', import.meta.url).href;

/** A WebGPU probe that has not answered by then counts as failed (a hung driver, say). */
const WEBGPU_PROBE_TIMEOUT_MS = 60_000;

/** Probes every provider; the result does not change while the process runs, so callers cache it. */
export async function probeProviders(threads: number): Promise<ProviderStatus[]> {
  const cpuModel = os.cpus()[0]?.model.trim();
  const cpu: ProviderStatus = { name: 'cpu', available: true, reason: `${threads} thread${threads === 1 ? '' : 's'}${cpuModel ? ` on ${cpuModel}` : ''}` };
  const [cuda, webgpu] = await Promise.all([cudaStatus(threads), probeWebGpu()]);
  return [cuda, webgpu, cpu];
}

async function cudaStatus(threads: number): Promise<ProviderStatus> {
  const diagnosis = await checkCuda(threads);
  return { name: 'cuda', available: diagnosis.ready, reason: diagnosis.reason };
}

/**
 * The full CUDA diagnosis, with a real session when the provider library is there (the only proof
 * that driver, runtime and cuDNN fit together). Also used by `npm run setup:cuda`. `probe` (the
 * file checks) and `tryCuda` (starts a session: null when it ran, else its error) default to this
 * machine's; tests pass their own.
 */
export async function checkCuda(threads = 1, opts: { probe?: CudaProbe; tryCuda?: () => Promise<string | null> } = {}): Promise<CudaDiagnosis> {
  const probe = opts.probe ?? probeCuda();
  // Without the provider library a session cannot start: say so without spending a worker on it.
  if (probe.libraries.some((l) => l.part === 'provider' && !l.path)) return diagnoseCuda(probe);
  const error = await (opts.tryCuda ?? (() => tryProvider('cuda', threads)))();
  return diagnoseCuda({ ...probe, session: error === null ? { ok: true } : { ok: false, error } });
}

async function probeWebGpu(): Promise<ProviderStatus> {
  const error = await tryWebGpuInChild();
  if (error === null) return { name: 'webgpu', available: true, reason: 'WebGPU adapter found' };
  return { name: 'webgpu', available: false, reason: shortWebGpuReason(error) };
}

/**
 * Runs webgpu-probe.ts in a child process (see there why): null when a WebGPU session ran, else
 * why not. Its stdout and stderr are read and dropped, never passed on; a probe that dies without
 * answering gives the last line it printed.
 */
export function tryWebGpuInChild(timeoutMs = WEBGPU_PROBE_TIMEOUT_MS): Promise<string | null> {
  return new Promise((resolve) => {
    let answer: WebGpuProbeResult | undefined;
    let output = '';
    const child = spawn(process.execPath, ['--input-type=module', '-e', tsWorkerSource(WEBGPU_PROBE)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      windowsHide: true,
    });
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('message', (msg: WebGpuProbeResult) => {
      answer = msg;
    });
    const timer = setTimeout(() => {
      answer ??= { ok: false, error: `the WebGPU probe did not answer within ${Math.round(timeoutMs / 1000)} s` };
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref();
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      if (answer) return resolve(answer.ok ? null : (answer.error ?? 'the WebGPU probe failed'));
      const last = output.trim().split('\n').filter((l) => l.trim()).at(-1)?.trim();
      resolve(`the WebGPU probe ended (${signal ?? `exit code ${code}`}) without an answer${last ? `: ${last}` : ''}`);
    };
    child.on('close', done);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(`the WebGPU probe could not start: ${err.message}`);
    });
  });
}

/** onnxruntime's WebGPU errors start with a source location and an assertion; keep the sentence. */
export function shortWebGpuReason(message: string): string {
  if (/no supported adapters?/i.test(message)) return 'no supported adapter';
  const afterAssert = /was false\.\s*(.+)/s.exec(message)?.[1] ?? message;
  return afterAssert.trim().split('\n')[0]!.slice(0, 200);
}

/** Starts a session on `provider` and runs the probe model once; null when it worked. */
async function tryProvider(provider: ProviderName, threads: number): Promise<string | null> {
  const host = startSessionWorker(`${provider} probe`);
  try {
    await host.request({ type: 'create', source: probeModel(), provider, threads });
    const data = new Float32Array(PROBE_INPUT.dims.reduce((a, b) => a * b, 1)).fill(1);
    await host.request({ type: 'run', feeds: { [PROBE_INPUT.name]: { data, dims: [...PROBE_INPUT.dims] } } }, { transfer: [data.buffer] });
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await host.stop();
  }
}
