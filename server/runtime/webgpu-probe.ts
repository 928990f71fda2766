/**
 * The WebGPU probe, run in a child process of its own by providers.ts: it starts a WebGPU session
 * on the tiny probe model, runs it once and sends `{ ok }` or `{ ok: false, error }` over IPC.
 *
 * A process and not a worker thread because what answers a WebGPU request (Dawn, the Vulkan
 * loader and its drivers) prints straight to the process's stderr, whatever onnxruntime's log
 * level: "Warning: Couldn't load Vulkan: libvulkan.so.1 ...", "XDG_RUNTIME_DIR is invalid or not
 * set", driver notices. Nothing there is for the person running the server or a CLI workflow to act
 * on, and the probe's outcome already says whether WebGPU can be used (GET /api/system), so the
 * parent keeps this process's output to itself.
 */
import * as ort from 'onnxruntime-node';
import { PROBE_INPUT, probeModel } from './probe-model.ts';
import { sessionOptions } from './session-options.ts';

export interface WebGpuProbeResult {
  ok: boolean;
  error?: string;
}

ort.env.logLevel = 'error';

async function probe(): Promise<WebGpuProbeResult> {
  try {
    const session = await ort.InferenceSession.create(probeModel(), sessionOptions('webgpu', 1));
    const data = new Float32Array(PROBE_INPUT.dims.reduce((a, b) => a * b, 1)).fill(1);
    await session.run({ [PROBE_INPUT.name]: new ort.Tensor('float32', data, [...PROBE_INPUT.dims]) });
    await session.release();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const result = await probe();
process.send?.(result, () => process.exit(0));
if (!process.send) process.exit(result.ok ? 0 : 1);
