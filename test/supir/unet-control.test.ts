/**
 * Golden case `unet_control`: our one-graph denoiser_step (GLVControl + LightGLVUNet) with the
 * tiny model's weights reproduces the official ControlWrapper.forward at control_scale 1, 0.7, 0,
 * including the 10 control features and every project module's output (cs 0.7).
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import type { Weights } from '../../server/models/onnx/layers.ts';
import { buildDenoiserStep, type DenoiserStepGraph } from '../../server/models/supir/unet.ts';
import { closeness } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

const TINY_HEAD_CHANNELS = 16; // supir_tiny.yaml num_head_channels

let golden: GoldenCase;
let weights: Weights;
let built: DenoiserStepGraph;
let session: ort.InferenceSession;
const used = new Set<string>();

const feed = (name: string): ort.Tensor => {
  const t = golden.tensor(name);
  return new ort.Tensor('float32', t.data, t.dims);
};

async function run(cs: number): Promise<ort.InferenceSession.OnnxValueMapType> {
  return session.run({
    x: feed('x'),
    timesteps: new ort.Tensor('int64', BigInt64Array.from(golden.ints('timesteps'), BigInt), [2]),
    context: feed('context'),
    y: feed('y'),
    control: feed('control_in'),
    control_scale: new ort.Tensor('float32', Float32Array.of(cs), []),
  });
}

function expectClose(got: ort.Tensor | undefined, want: string): number {
  const { atol, rtol } = golden.json.tolerance;
  expect(got, want).toBeDefined();
  expect(got!.dims).toEqual(golden.tensor(want).dims);
  const c = closeness(got!.data as Float32Array, golden.tensor(want).data, atol, rtol);
  expect(c.worst, `${want}: max |diff| ${c.maxAbs}`).toBeLessThanOrEqual(atol);
  return c.maxAbs;
}

beforeAll(async () => {
  golden = await loadGolden('unet_control');
  const w = await loadGoldenWeights('supir_tiny_model.safetensors');
  // Record which checkpoint keys the compiler reads, to prove none is left out.
  weights = { has: (k) => w.has(k), get: (k) => (used.add(k), w.get(k)) };
  built = buildDenoiserStep(weights, { numHeadChannels: TINY_HEAD_CHANNELS, debugOutputs: true });
  session = await ort.InferenceSession.create(built.graph.toBytes());
});

describe('denoiser_step vs official ControlWrapper.forward (unet_control)', () => {
  it('reads every model.diffusion_model / model.control_model weight', async () => {
    const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, 'supir_tiny_model.safetensors'));
    const keys = file.keys().filter((k) => k.startsWith('model.'));
    await file.close();
    expect(keys.filter((k) => !used.has(k))).toEqual([]);
    expect(keys.length).toBe(used.size);
  });

  it('control features (GLVControl outputs) match', async () => {
    const out = await run(1);
    for (let i = 0; i < 10; i++) expectClose(out[`control_feat.${i}`], `control_feat.${i}`);
  });

  it('control_scale 1.0 output matches', async () => {
    expectClose((await run(1)).out, 'out_cs1');
  });

  it('control_scale 0.7 output and every project module output match', async () => {
    const out = await run(0.7);
    expectClose(out.out, 'out_cs0p7');
    for (let i = 0; i < 12; i++) expectClose(out[`project_out.${i}`], `project_out_cs0p7.${i}`);
  });

  it('control_scale 0 output matches (the plain SDXL UNet path)', async () => {
    expectClose((await run(0)).out, 'out_cs0');
  });

  it('takes float32 timesteps when built for float-only callers', async () => {
    const g = buildDenoiserStep(weights, { numHeadChannels: TINY_HEAD_CHANNELS, timesteps: 'float32' });
    const s = await ort.InferenceSession.create(g.graph.toBytes());
    const out = await s.run({
      x: feed('x'),
      timesteps: new ort.Tensor('float32', Float32Array.from(golden.ints('timesteps')), [2]),
      context: feed('context'),
      y: feed('y'),
      control: feed('control_in'),
      control_scale: new ort.Tensor('float32', Float32Array.of(0.7), []),
    });
    expectClose(out.out, 'out_cs0p7');
  });
});
