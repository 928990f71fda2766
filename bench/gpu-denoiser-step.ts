/**
 * One SUPIR denoiser step (GLVControl + LightGLVUNet, the full SDXL-size network with random
 * weights in the official layout: no checkpoint needed) timed through onnxruntime-node on each
 * provider given: `npx tsx bench/gpu-denoiser-step.ts [--tiny] [--providers cuda,webgpu,cpu]
 * [--latent 128] [--batch 2] [--fp16] [--rounds 5]`. Prints ms/step per provider (median of the
 * rounds after a warm-up step). The weights are lazy (bench/random-weights.ts): drawn one tensor at
 * a time while the model is written, so this process never holds them; each session is the only
 * copy. bench/gpu.sh runs the whole GPU check (pack, workflow, VRAM, fp16 error); this is the
 * quick per-provider step time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Rng } from '../nodes/api/rng.ts';
import type { ProviderName } from '../nodes/api/runtime.ts';
import { writeModel } from '../server/models/onnx/export.ts';
import { officialKeys, SDXL, TINY } from '../server/models/supir/official-layout.ts';
import { buildDenoiserStep } from '../server/models/supir/unet.ts';
import { sessionOptions } from '../server/runtime/session-options.ts';
import { lazyRandomWeights } from './random-weights.ts';

const { values } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    providers: { type: 'string', default: 'cuda,webgpu,cpu' },
    latent: { type: 'string', default: '128' },
    batch: { type: 'string', default: '2' },
    fp16: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
  },
});
const cfg = values.tiny ? TINY : SDXL;
const side = Number(values.latent);
const batch = Number(values.batch);

const t0 = performance.now();
const keys = new Map([...officialKeys(cfg, 'unet'), ...officialKeys(cfg, 'control')]);
const { graph } = buildDenoiserStep(lazyRandomWeights(keys, 2024).weights, { numHeadChannels: cfg.headChannels });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-gpu-bench-'));
const file = path.join(dir, 'denoiser_step.onnx');
try {
  await writeModel(graph.record(), file, { fp16: values.fp16 });
  process.stdout.write(`built ${values.tiny ? 'tiny' : 'SDXL-size'} denoiser_step${values.fp16 ? ' (fp16)' : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const rng = new Rng(7);
  const f32 = (dims: number[]): ort.Tensor => new ort.Tensor('float32', rng.fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1))), dims);
  const feeds = {
    x: f32([batch, 4, side, side]),
    timesteps: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(500 + i)), [batch]),
    context: f32([batch, 77, cfg.ctx]),
    y: f32([batch, cfg.adm]),
    control: f32([batch, 4, side, side]),
    control_scale: new ort.Tensor('float32', Float32Array.of(1), []),
  };
  for (const provider of values.providers!.split(',') as ProviderName[]) {
    try {
      // The runtime's own options for the provider (server/runtime/session-options.ts).
      const session = await ort.InferenceSession.create(file, sessionOptions(provider, os.availableParallelism()));
      await session.run(feeds);
      const times: number[] = [];
      for (let i = 0; i < Number(values.rounds); i++) {
        const t = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      process.stdout.write(`${provider}: ${times[Math.floor(times.length / 2)]!.toFixed(1)} ms/step (latent ${side}x${side}, batch ${batch}${values.fp16 ? ', fp16' : ''})\n`);
      await session.release();
    } catch (err) {
      process.stdout.write(`${provider}: not available (${(err as Error).message.split('\n')[0]})\n`);
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
