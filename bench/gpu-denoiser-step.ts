/**
 * One SUPIR denoiser step (GLVControl + LightGLVUNet, the full SDXL-size network with random
 * weights: no checkpoint needed) timed through onnxruntime-node on each available provider, for
 * the GPU machine: `npx tsx bench/gpu-denoiser-step.ts [--tiny] [--providers webgpu,cuda,cpu]
 * [--latent 128] [--batch 2] [--fp16]`. Prints ms/step per provider. The PyTorch side of the
 * comparison runs the official SUPIR code on the same machine (see the closing notes).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Rng } from '../nodes/api/rng.ts';
import { writeModel } from '../server/models/onnx/export.ts';
import { weightsFromMap, type WeightTensor } from '../server/models/onnx/layers.ts';
import { officialKeys, SDXL, TINY } from '../server/models/supir/official-layout.ts';
import { buildDenoiserStep } from '../server/models/supir/unet.ts';

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

/** Random weights in the official layout: N(0, 1/fan_in) matrices, norms near 1, small biases. */
function randomWeights(): ReturnType<typeof weightsFromMap> {
  const rng = new Rng(2024);
  const map = new Map<string, WeightTensor>();
  for (const keys of [officialKeys(cfg, 'unet'), officialKeys(cfg, 'control')]) {
    for (const [key, dims] of keys) {
      const data = rng.fillNormal(new Float32Array(dims.reduce((a, b) => a * b, 1)));
      const norm = /norm/.test(key) || (dims.length === 1 && /(in|out)_layers\.0|out\.0/.test(key));
      const scale = dims.length > 1 ? 1 / Math.sqrt(dims.slice(1).reduce((a, b) => a * b, 1)) : 0.05;
      for (let i = 0; i < data.length; i++) data[i] = norm && key.endsWith('.weight') ? 1 + 0.1 * data[i]! : data[i]! * scale;
      map.set(key, { data, dims });
    }
  }
  return weightsFromMap(map, 'random');
}

const t0 = performance.now();
const { graph } = buildDenoiserStep(randomWeights(), { numHeadChannels: cfg.headChannels });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-gpu-bench-'));
const file = path.join(dir, 'denoiser_step.onnx');
writeModel(graph.record(), file, { fp16: values.fp16 });
process.stdout.write(`built ${values.tiny ? 'tiny' : 'SDXL-size'} denoiser_step in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

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
for (const provider of values.providers!.split(',')) {
  try {
    const session = await ort.InferenceSession.create(file, { executionProviders: [provider], graphOptimizationLevel: 'all' });
    await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < Number(values.rounds); i++) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    process.stdout.write(`${provider}: ${times[Math.floor(times.length / 2)]!.toFixed(1)} ms/step (latent ${side}x${side}, batch ${batch}${values.fp16 ? ', fp16 weights' : ''})\n`);
    await session.release();
  } catch (err) {
    process.stdout.write(`${provider}: not available (${(err as Error).message.split('\n')[0]})\n`);
  }
}
fs.rmSync(dir, { recursive: true, force: true });
