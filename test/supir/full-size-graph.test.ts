/**
 * The real-size SUPIR denoiser_step (SDXL geometry, 3.87 billion parameters) BUILDS from the
 * official key layout, shapes only: its weights are lazy tensors whose read() throws, so the test
 * proves that compiling (and the fp16 rewrite) never touches a weight's values, and runs in well
 * under a second of graph work. The values path at full size is bench/full-size.ts (`npm run
 * bench:full`), which streams seeded random weights through the same writer and runs a step.
 *
 * Also checks the transcribed VAE and text-encoder layouts (official-layout.ts, which the
 * full-size benches draw random checkpoints from) against the tiny golden files and the published
 * parameter counts, and the random-weight draw itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../server/models/checkpoint/safetensors.ts';
import { GraphBuilder, type LazyWeight } from '../../server/models/onnx/builder.ts';
import { writeModel } from '../../server/models/onnx/export.ts';
import { toHalfPrecision } from '../../server/models/onnx/half.ts';
import { conv2d, linear, weightsFromMap, type WeightTensor } from '../../server/models/onnx/layers.ts';
import { DTYPE_BYTES, elementCount, isLazy, type ModelRecord } from '../../server/models/onnx/proto.ts';
import {
  BIGG,
  CLIP_L,
  officialBigGKeys,
  officialCheckpointKeys,
  officialClipLKeys,
  officialKeys,
  officialVaeKeys,
  SDXL,
  SDXL_VAE,
  SUPIR_FULL,
  TINY_BIGG,
  TINY_CLIP_L,
  TINY_VAE,
  type UnetConfig,
} from '../../server/models/supir/official-layout.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { fromFloat16, toFloat16 } from '../../server/runtime/fp16.ts';
import { sessionOptions } from '../../server/runtime/session-options.ts';
import { lazyRandomWeights, randomTensor, randomTensorF16 } from '../../bench/random-weights.ts';
import { GOLDEN_DIR } from '../support/golden.ts';

const params = (keys: ReadonlyMap<string, readonly number[]>): number => [...keys.values()].reduce((s, d) => s + elementCount(d), 0);

/** Transformer blocks (each: self + cross attention, 3 LayerNorms) in the UNet and in GLVControl. */
function transformerBlocks(cfg: UnetConfig): { unet: number[]; control: number[] } {
  // Per attention level: the encoder has nres transformers, the decoder nres + 1; the middle one uses the last depth.
  const enc = cfg.attnLevels.map((l) => ({ level: l, blocks: cfg.nres * cfg.depth[l]! }));
  const dec = cfg.attnLevels.map((l) => ({ level: l, blocks: (cfg.nres + 1) * cfg.depth[l]! }));
  const mid = { level: cfg.mult.length - 1, blocks: cfg.depth.at(-1)! };
  const byLevel = (parts: Array<{ level: number; blocks: number }>): number[] =>
    cfg.mult.map((_, l) => parts.filter((p) => p.level === l).reduce((s, p) => s + p.blocks, 0));
  return { unet: byLevel([...enc, mid, ...dec]), control: byLevel([...enc, mid]) };
}

describe('full-size denoiser_step graph (official SDXL/SUPIR layout, lazy weights never read)', () => {
  const keys = new Map([...officialKeys(SDXL, 'unet'), ...officialKeys(SDXL, 'control')]);
  let attempts = 0;
  let record: ModelRecord;
  let half: ModelRecord;

  beforeAll(() => {
    const map = new Map<string, WeightTensor<LazyWeight>>();
    for (const [key, dims] of keys) {
      const data: LazyWeight = {
        lazy: true,
        dtype: 'float32',
        dims,
        hash: `shape-only:${key}`,
        read: () => {
          attempts++;
          throw new Error(`weight '${key}' was read while only the graph was being built`);
        },
      };
      map.set(key, { data, dims });
    }
    const { graph } = buildDenoiserStep(weightsFromMap(map, 'shapes only'), { numHeadChannels: SDXL.headChannels });
    record = graph.record();
    half = toHalfPrecision(record);
  });

  it('reads no weight, in the fp32 graph or its fp16 rewrite', () => {
    expect(attempts).toBe(0);
    for (const t of [...record.initializers, ...half.initializers]) {
      if (keys.has(t.name)) expect(isLazy(t.data), t.name).toBe(true);
    }
  });

  it('uses every official key exactly once, with its official shape, and no other weight', () => {
    const weights = record.initializers.filter((t) => !t.name.startsWith('const.'));
    expect(weights.map((t) => t.name).sort()).toEqual([...keys.keys()].sort());
    for (const t of weights) expect([t.name, t.dims]).toEqual([t.name, keys.get(t.name)]);
    const consumers = new Map<string, number>();
    for (const n of record.nodes) for (const i of n.inputs) if (keys.has(i)) consumers.set(i, (consumers.get(i) ?? 0) + 1);
    expect(new Set(consumers.values())).toEqual(new Set([1]));
    expect(consumers.size).toBe(keys.size);
    expect(params(keys)).toBe(3_865_640_004); // SDXL UNet 2,567,463,684 + project modules 54,797,440 + GLVControl 1,243,378,880
  });

  it('has the interface the pack contract feeds (float32 in and out, int64 timesteps)', () => {
    expect(record.inputs).toEqual([
      { name: 'x', dtype: 'float32', dims: ['batch', 4, 'height', 'width'] },
      { name: 'timesteps', dtype: 'int64', dims: ['batch'] },
      { name: 'context', dtype: 'float32', dims: ['batch', 'tokens', 2048] },
      { name: 'y', dtype: 'float32', dims: ['batch', 2816] },
      { name: 'control', dtype: 'float32', dims: ['batch', 4, 'height', 'width'] },
      { name: 'control_scale', dtype: 'float32', dims: [] },
    ]);
    expect(record.outputs).toEqual([{ name: 'out', dtype: 'float32', dims: ['batch', 4, 'height', 'width'] }]);
    expect(half.inputs).toEqual(record.inputs);
    expect(half.outputs).toEqual(record.outputs);
  });

  it('has one fused attention per attention of the official model, with its heads', () => {
    const blocks = transformerBlocks(SDXL);
    // Heads = channels / 64 at each level; + the two ZeroCrossAttn (640 and 1280 wide queries).
    const expected = new Map<number, number>();
    SDXL.mult.forEach((m, l) => {
      const n = 2 * (blocks.unet[l]! + blocks.control[l]!);
      if (n > 0) expected.set((m * SDXL.mc) / 64, (expected.get((m * SDXL.mc) / 64) ?? 0) + n);
    });
    for (const heads of [640 / 64, 1280 / 64]) expected.set(heads, expected.get(heads)! + 1);
    const mha = record.nodes.filter((n) => n.opType === 'MultiHeadAttention');
    const got = new Map<number, number>();
    for (const n of mha) {
      expect(n.domain).toBe('com.microsoft');
      got.set(n.attrs.num_heads as number, (got.get(n.attrs.num_heads as number) ?? 0) + 1);
    }
    expect(got).toEqual(expected);
    expect(mha.length).toBe(210);
    // No attention as MatMul + Softmax: no [T, T] scores anywhere.
    expect(record.nodes.some((n) => n.opType === 'Softmax')).toBe(false);
  });

  it('has one Conv per convolution kernel and one norm op per official norm', () => {
    const convKernels = [...keys].filter(([, d]) => d.length === 4).map(([k]) => k);
    const convs = record.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.map((n) => n.inputs[1]).sort()).toEqual(convKernels.sort());
    const blocks = transformerBlocks(SDXL);
    const totalBlocks = [...blocks.unet, ...blocks.control].reduce((a, b) => a + b, 0);
    const layerNorms = record.nodes.filter((n) => n.opType === 'LayerNormalization');
    expect(layerNorms.length).toBe(3 * totalBlocks);
    expect(layerNorms.map((n) => n.inputs[1]).sort()).toEqual([...keys.keys()].filter((k) => /transformer_blocks\.\d+\.norm[123]\.weight$/.test(k)).sort());
    // GroupNorm (InstanceNormalization over groups): resblock in/out norms, transformer input
    // norms, the output head, ZeroSFT's norm and ZeroCrossAttn's two.
    const groupNorms = [...keys.keys()].filter((k) => /\.(in_layers\.0|out_layers\.0|\d+\.norm|out\.0|param_free_norm|norm1|norm2)\.weight$/.test(k) && !k.includes('transformer_blocks'));
    expect(record.nodes.filter((n) => n.opType === 'InstanceNormalization').length).toBe(groupNorms.length);
    expect(groupNorms.length).toBe(81);
  });

  it('fp16 rewrite: every large weight stored float16 and read directly (no Cast of a weight), half the bytes', () => {
    const bytes = (m: ModelRecord): number => m.initializers.reduce((s, t) => s + elementCount(t.dims) * DTYPE_BYTES[t.dtype], 0);
    const stored = new Map(half.initializers.map((t) => [t.name, t]));
    for (const [key, dims] of keys) {
      if (elementCount(dims) * 4 >= 1 << 20) expect([key, stored.get(key)!.dtype]).toEqual([key, 'float16']);
    }
    expect(half.nodes.filter((n) => n.opType === 'Cast' && stored.has(n.inputs[0]!))).toEqual([]);
    expect(bytes(record)).toBeGreaterThan(15.4e9);
    // What stays float32: LayerNorm gains and biases (read by LayerNormalization) and the timestep table.
    expect(bytes(half)).toBeLessThan(0.501 * bytes(record));
    expect(bytes(half)).toBeGreaterThan(0.5 * bytes(record));
  });
});

describe('official VAE and text-encoder layouts (what the full-size benches draw)', () => {
  async function fileKeys(name: string): Promise<Record<string, number[]>> {
    const st = await SafetensorsFile.open(path.join(GOLDEN_DIR, name));
    try {
      return Object.fromEntries(st.keys().filter((k) => st.entry(k).dtype === 'F32' && !k.startsWith('model.') && k !== 'denoiser.sigmas').sort().map((k) => [k, st.entry(k).shape]));
    } finally {
      await st.close();
    }
  }
  const sorted = (m: Map<string, number[]>): Record<string, number[]> => Object.fromEntries([...m].sort());

  it('reproduce the tiny golden files exactly (keys and shapes)', async () => {
    expect(sorted(officialVaeKeys(TINY_VAE))).toEqual(await fileKeys('supir_tiny_vae.safetensors'));
    expect(sorted(officialClipLKeys(TINY_CLIP_L))).toEqual(await fileKeys('text_tiny_clip_l.safetensors'));
    expect(sorted(officialBigGKeys(TINY_BIGG))).toEqual(await fileKeys('text_tiny_bigg.safetensors'));
  });

  it('give the published parameter counts at full size', () => {
    // diffusers AutoencoderKL (SDXL): 83,653,863; SUPIR's denoise_encoder is a second Encoder.
    expect(params(officialVaeKeys(SDXL_VAE, ['encoder', 'decoder']))).toBe(83_653_863);
    expect(params(officialVaeKeys(SDXL_VAE, ['denoise_encoder']))).toBe(34_163_592);
    // HF CLIPTextModel ViT-L/14: 123,060,480; CLIPTextModelWithProjection bigG: 694,659,840 (+ OpenCLIP's logit_scale).
    expect(params(officialClipLKeys(CLIP_L))).toBe(123_060_480);
    expect(params(officialBigGKeys(BIGG))).toBe(694_659_841);
    expect(params(officialCheckpointKeys(SUPIR_FULL))).toBe(3_865_640_004 + 83_653_863 + 34_163_592 + 123_060_480 + 694_659_841);
  });
});

describe('seeded random weights (bench/random-weights.ts)', () => {
  it('are a pure function of seed, key and shape, drawn only when read, float16 = float32 rounded', async () => {
    const keys = new Map<string, number[]>([
      ['a.proj.weight', [64, 256]],
      ['a.norm.weight', [64]],
    ]);
    const lazy = lazyRandomWeights(keys, 5);
    expect(lazy.reads()).toBe(0);
    const w = lazy.weights.get('a.proj.weight').data;
    const first = (await w.read()) as Float32Array;
    expect(await w.read()).toEqual(first);
    expect(lazy.reads()).toBe(2);
    expect(first).toEqual(randomTensor(5, 'a.proj.weight', [64, 256]));
    expect(randomTensor(6, 'a.proj.weight', [64, 256])).not.toEqual(first);
    expect(randomTensorF16(5, 'a.proj.weight', [64, 256])).toEqual(toFloat16(first));
    expect(fromFloat16(toFloat16(first))).not.toEqual(first);
    // N(0, 1/fan_in) for matrices, 1 ± 0.1 for norm gains.
    const std = Math.sqrt(first.reduce((s, v) => s + v * v, 0) / first.length);
    expect(std).toBeGreaterThan(0.9 / 16);
    expect(std).toBeLessThan(1.1 / 16);
    const gain = (await lazy.weights.get('a.norm.weight').data.read()) as Float32Array;
    expect(gain.every((v) => v > 0.5 && v < 1.5)).toBe(true);
    expect(lazy.weights.get('a.proj.weight').data.hash).not.toBe(lazy.weights.get('a.norm.weight').data.hash);
  });
});

describe('CPU sessions keep an fp16 model float16 (server/runtime/session-options.ts)', () => {
  /**
   * What onnxruntime made of a model, read back from its optimised copy: the bytes of its
   * initializers by dtype. Plain level `all` turns each Cast(float16 weight) into a float32 copy
   * (the full-size fp16 denoiser then passed 19 GB while opening); the runtime's CPU options must not.
   */
  async function optimisedInitializerBytes(options: ort.InferenceSession.SessionOptions): Promise<{ float16: number; float32: number }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-keep16-'));
    try {
      const g = new GraphBuilder({ name: 'keep16' });
      const w = lazyRandomWeights(
        new Map([
          ['fc.weight', [256, 256]],
          ['fc.bias', [256]],
          ['conv.weight', [64, 64, 3, 3]],
          ['conv.bias', [64]],
        ]),
        1,
      ).weights;
      const tokens = g.input('tokens', 'float32', [1, 16, 256]);
      g.output(linear(g, w, 'fc', tokens), 'y', 'float32', [1, 16, 256]);
      const image = g.input('image', 'float32', [1, 64, 8, 8]);
      g.output(conv2d(g, w, 'conv', image), 'z', 'float32', [1, 64, 8, 8]);
      const file = path.join(dir, 'm.onnx');
      await writeModel(g.record(), file, { fp16: true });
      const optimised = path.join(dir, 'opt.onnx');
      const session = await ort.InferenceSession.create(file, { ...options, optimizedModelFilePath: optimised });
      await session.release();
      const model = onnxProto.onnx.ModelProto.decode(fs.readFileSync(optimised));
      const bytes = { float16: 0, float32: 0 };
      for (const t of model.graph!.initializer!) {
        const n = (t.dims ?? []).reduce((a, d) => a * Number(d), 1);
        if (t.dataType === 10) bytes.float16 += 2 * n;
        if (t.dataType === 1) bytes.float32 += 4 * n;
      }
      return bytes;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('holds the weights as float16 with the runtime options, where plain level all makes float32 copies', async () => {
    const weights = 256 * 256 + 64 * 64 * 9;
    const runtime = await optimisedInitializerBytes(sessionOptions('cpu', 1));
    expect(runtime.float16).toBeGreaterThanOrEqual(2 * weights);
    expect(runtime.float32).toBeLessThan(4 * weights * 0.05);
    const plain = await optimisedInitializerBytes({ executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    expect(plain.float32).toBeGreaterThanOrEqual(4 * weights);
    expect(plain.float16).toBeLessThan(2 * weights * 0.05);
  });

  it('runs models of 32 MB or more (MAXIM, SUPIR) without the CPU arena, and only on the CPU', () => {
    expect(sessionOptions('cpu', 2, 2e9).enableCpuMemArena).toBe(false);
    expect(sessionOptions('cpu', 2, 57.5e6).enableCpuMemArena).toBe(false);
    expect(sessionOptions('cpu', 2, 9e6).enableCpuMemArena).toBeUndefined();
    expect(sessionOptions('cuda', 2, 2e9)).toEqual({ executionProviders: ['cuda'], graphOptimizationLevel: 'all', intraOpNumThreads: 2, logSeverityLevel: 3 });
  });
});
