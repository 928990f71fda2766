/**
 * Golden case `vae` (official SUPIR AutoencoderKL on the tiny config, see the golden README):
 * the compiled encoder / denoise_encoder / decoder graphs and the SupirVae pipeline against the
 * recorded outputs and intermediates, atol 1e-4 + rtol 1e-4. Set GOLDEN_REPORT=1 to print the
 * measured max |error| per tensor.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TensorData } from '../../nodes/api/runtime.ts';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { conv2d, weightsFromMap, type Weights } from '../../server/models/onnx/layers.ts';
import { compileVae, encoderTower, type CompiledVae } from '../../server/models/supir/vae.ts';
import { towerConfig } from '../../server/models/supir/vae-config.ts';
import { SDXL_VAE_SCALE } from '../../nodes/supir/lib/pack-contract.ts';
import { SupirVae, type VaeRunner } from '../../nodes/supir/lib/vae-pipeline.ts';
import { vaeNorm } from '../../server/models/supir/vae-blocks.ts';
import { normaliseVaeDims, readVaeWeights } from '../../server/models/supir/vae-weights.ts';
import { closeness } from '../support/close.ts';
import { GOLDEN_DIR, loadGolden, type GoldenCase } from '../support/golden.ts';

const ATOL = 1e-4;
const RTOL = 1e-4;
const measured: Record<string, number> = {};

let golden: GoldenCase;
let weights: Weights;
let compiled: CompiledVae;
let vae: SupirVae;
const sessions: ort.InferenceSession[] = [];

async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  sessions.push(s);
  return s;
}

/** The runtime's ModelSession contract (TensorData in and out) over a bare onnxruntime session. */
async function runner(bytes: Uint8Array): Promise<VaeRunner> {
  const s = await session(bytes);
  return {
    async run(feeds) {
      const input = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)]));
      const out = await s.run(input);
      return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: [...t.dims] }]));
    },
  };
}

function expectClose(name: string, got: TensorData | Float32Array, wantName = name): void {
  const want = golden.tensor(wantName);
  const data = got instanceof Float32Array ? got : got.data;
  if (!(got instanceof Float32Array)) expect(got.dims).toEqual(want.dims);
  const c = closeness(data, want.data, ATOL, RTOL);
  measured[name] = c.maxAbs;
  expect(c.ok, `${name}: max |err| ${c.maxAbs}`).toBe(true);
}

beforeAll(async () => {
  golden = await loadGolden('vae');
  const file = await SafetensorsFile.open(path.join(GOLDEN_DIR, 'supir_tiny_vae.safetensors'));
  try {
    weights = await readVaeWeights([file]);
  } finally {
    await file.close();
  }
  compiled = compileVae(weights);
  vae = new SupirVae({
    encoder: await runner(compiled.encoder),
    denoiseEncoder: await runner(compiled.denoiseEncoder),
    decoder: await runner(compiled.decoder),
  });
});

afterAll(async () => {
  for (const s of sessions) await s.release();
  if (process.env.GOLDEN_REPORT) console.info('vae max |err|', measured);
});

describe('SUPIR VAE (golden case vae)', () => {
  it('derives the tiny architecture from the weight names and shapes', () => {
    const { encoder, decoder, latentChannels, factor } = compiled.config;
    expect(encoder).toMatchObject({ levelChannels: [32, 64], blocksPerLevel: 1, attnPerLevel: [0, 0], midAttention: true, inChannels: 3, outChannels: 8 });
    expect(decoder).toMatchObject({ levelChannels: [32, 64], blocksPerLevel: 2, attnPerLevel: [0, 0], midAttention: true, inChannels: 4, outChannels: 3 });
    expect({ latentChannels, factor }).toEqual({ latentChannels: 4, factor: 2 });
    expect(towerConfig(weights, 'first_stage_model.denoise_encoder', 'encoder')).toMatchObject({ levelChannels: [32, 64], blocksPerLevel: 1 });
  });

  it('denoise_encoder tower output (before quant_conv)', async () => {
    const g = new GraphBuilder({ name: 'tower' });
    const x = g.input('image', 'float32', [1, 3, 64, 64]);
    const tower = towerConfig(weights, 'first_stage_model.denoise_encoder', 'encoder');
    g.output(encoderTower(g, weights, tower, x), 'h', 'float32', [1, 8, 32, 32]);
    const image = golden.tensor('image');
    const out = await (await session(g.toBytes())).run({ image: new ort.Tensor('float32', image.data, image.dims) });
    expectClose('denoise_encoder_out', out.h!.data as Float32Array);
  });

  it('denoise path: moments, posterior and z_denoise_mode_scaled = 0.13025·mean', async () => {
    const image = golden.tensor('image');
    const raw = await (await runner(compiled.denoiseEncoder)).run({ image });
    const mean = raw.mean!;
    const logvar = raw.logvar!;
    expectClose('posterior_mean_denoise', mean);
    expectClose('posterior_logvar_denoise', logvar);
    expectClose('posterior_std_denoise', logvar.data.map((v) => Math.exp(0.5 * v)));
    const moments = golden.tensor('moments_denoise');
    expect(closeness(mean.data, moments.data.subarray(0, mean.data.length), ATOL, RTOL).ok).toBe(true);
    expectClose('z_denoise_mode_scaled', await vae.encodeWithDenoise(image));
  });

  it('plain encoder: posterior and z_encoder_sample_scaled with the recorded encode_noise', async () => {
    const image = golden.tensor('image');
    const { mean, logvar } = await vae.posterior(image);
    expectClose('posterior_mean_encoder', mean);
    expectClose('posterior_std_encoder', logvar.data.map((v) => Math.exp(0.5 * v)));
    const moments = golden.tensor('moments_encoder');
    const half = mean.data.length;
    expect(closeness(logvar.data, moments.data.subarray(half), ATOL, RTOL).ok).toBe(true); // no clamp hit here
    expectClose('z_encoder_sample_scaled', await vae.encode(image, golden.tensor('encode_noise').data));
  });

  it('decoder: post_quant_conv(z / 0.13025) and the decoded images', async () => {
    const zIn = golden.tensor('z_in');
    const g = new GraphBuilder({ name: 'pqc' });
    const z = g.input('z', 'float32', zIn.dims);
    g.output(conv2d(g, weights, 'first_stage_model.post_quant_conv', z), 'y', 'float32', zIn.dims);
    const scaled = zIn.data.map((v) => v / Math.fround(SDXL_VAE_SCALE));
    const pqc = await (await session(g.toBytes())).run({ z: new ort.Tensor('float32', scaled, zIn.dims) });
    expectClose('post_quant_conv_of_z_in', pqc.y!.data as Float32Array);
    expectClose('decoded_from_z_in', await vae.decode(zIn));
    expectClose('decoded_from_z_denoise', await vae.decode(golden.tensor('z_denoise_mode_scaled')));
  });

  it('stage 1 (batchify_denoise) = decode(encodeWithDenoise(x))', async () => {
    const { z, image } = await vae.stage1(golden.tensor('image'));
    expectClose('batchify_denoise', image);
    expect(closeness(z.data, golden.tensor('z_denoise_mode_scaled').data, ATOL, RTOL).ok).toBe(true);
  });

  it('graphs take any batch and non-square sizes (symbolic dims)', async () => {
    const image = golden.tensor('image');
    const pair = new Float32Array(2 * image.data.length);
    pair.set(image.data);
    pair.set(image.data, image.data.length);
    const z = await vae.encodeWithDenoise({ data: pair, dims: [2, 3, 64, 64] });
    expect(z.dims).toEqual([2, 4, 32, 32]);
    const want = golden.tensor('z_denoise_mode_scaled').data;
    expect(closeness(z.data.subarray(want.length), want, ATOL, RTOL).ok).toBe(true);
    const wide = await vae.decode({ data: new Float32Array(4 * 8 * 12).fill(0.1), dims: [1, 4, 8, 12] });
    expect(wide.dims).toEqual([1, 3, 16, 24]);
  });

  it('VAE GroupNorm uses eps 1e-6 (invisible at golden activation scales, decisive at small ones)', async () => {
    const [C, HW] = [32, 16];
    const x = Float32Array.from({ length: C * HW }, (_, i) => 1e-3 * Math.sin(i * 1.7));
    const map = new Map([['n.weight', { data: new Float32Array(C).fill(1), dims: [C] }], ['n.bias', { data: new Float32Array(C), dims: [C] }]]);
    const g = new GraphBuilder({ name: 'gn' });
    g.output(vaeNorm(g, weightsFromMap(map, 'test'), 'n', g.input('x', 'float32', [1, C, 4, 4])), 'y', 'float32', [1, C, 4, 4]);
    const got = (await (await session(g.toBytes())).run({ x: new ort.Tensor('float32', x, [1, C, 4, 4]) })).y!.data as Float32Array;
    for (let c = 0; c < C; c++) {
      const v = x.subarray(c * HW, (c + 1) * HW);
      const mean = v.reduce((a, b) => a + b, 0) / HW;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / HW;
      for (let i = 0; i < HW; i++) expect(got[c * HW + i]).toBeCloseTo((v[i]! - mean) / Math.sqrt(variance + 1e-6), 4);
    }
  });

  it('accepts Linear-shaped attention projections as 1×1 convolutions', () => {
    expect(normaliseVaeDims('first_stage_model.decoder.mid.attn_1.q.weight', [512, 512])).toEqual([512, 512, 1, 1]);
    expect(normaliseVaeDims('first_stage_model.encoder.down.0.attn.1.proj_out.weight', [64, 64])).toEqual([64, 64, 1, 1]);
    expect(normaliseVaeDims('first_stage_model.quant_conv.weight', [8, 8])).toEqual([8, 8]);
  });

  it('reads several sources, a later one winning (SDXL base, then the SUPIR delta), first_stage_model.* only', async () => {
    const source = (name: string, entries: Record<string, number[]>) => ({
      path: name,
      keys: () => Object.keys(entries),
      shape: (k: string) => [entries[k]!.length],
      float32: async (k: string) => Float32Array.from(entries[k]!),
    });
    const w = await readVaeWeights([
      source('sdxl', { 'first_stage_model.quant_conv.bias': [1, 2], 'model.diffusion_model.out.0.bias': [0] }),
      source('supir', { 'first_stage_model.quant_conv.bias': [3, 4] }),
    ]);
    expect(Array.from(w.get('first_stage_model.quant_conv.bias').data)).toEqual([3, 4]);
    expect(w.has('model.diffusion_model.out.0.bias')).toBe(false);
  });

  it('rejects noise of the wrong size', async () => {
    await expect(vae.encode(golden.tensor('image'), new Float32Array(3))).rejects.toThrow(/noise has 3 values/);
  });
});
