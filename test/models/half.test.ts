/**
 * Half-precision packs compute in float16 (server/models/onnx/half.ts): the tiny golden networks
 * written with `fp16` store float16 weights read directly by float16 ops (no weight is cast back
 * to float32), keep float32 only at the interface, in normalisation statistics and in the marked
 * nodes, and stay within an asserted bound of the official float32 outputs. The CPU provider has
 * no float16 kernels for most ops and inserts its own casts, so this runs here (slowly), with the
 * float16 rounding of every activation that a GPU would see.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModel } from '../../server/models/onnx/export.ts';
import type { GraphBuilder } from '../../server/models/onnx/builder.ts';
import { BIGG_PREFIX, CLIP_L_PREFIX, compileBigG, compileClipL } from '../../server/models/supir/text-encoders.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { closeness, describeCloseness } from '../support/close.ts';
import { loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-half-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const FLOAT16 = onnxProto.onnx.TensorProto.DataType.FLOAT16;
const FLOAT = onnxProto.onnx.TensorProto.DataType.FLOAT;

async function writeBoth(name: string, graph: GraphBuilder): Promise<{ fp32: string; fp16: string; bytes32: number; bytes16: number }> {
  const fp32 = path.join(dir, `${name}.fp32.onnx`);
  const fp16 = path.join(dir, `${name}.fp16.onnx`);
  const a = await writeModel(graph.record(), fp32, { externalThreshold: Infinity });
  const b = await writeModel(graph.record(), fp16, { externalThreshold: Infinity, fp16: true });
  return { fp32, fp16, bytes32: a.bytes, bytes16: b.bytes };
}

/** The structure half precision promises, read back from the written file. */
function expectHalfGraph(file: string): void {
  const graph = onnxProto.onnx.ModelProto.decode(fs.readFileSync(file)).graph!;
  const inits = new Map(graph.initializer!.map((t) => [t.name!, t.dataType!]));
  const casts = graph.node!.filter((n) => n.opType === 'Cast');
  // No weight is cast: float16 weights are read as they are, float32 ones only by float32 ops.
  expect(casts.filter((c) => inits.has(c.input![0]!)).map((c) => c.input![0])).toEqual([]);
  const big = graph.initializer!.filter((t) => (t.dims ?? []).reduce((a, d) => a * Number(d), 1) >= 1024);
  const half = big.filter((t) => t.dataType === FLOAT16);
  const kept = big.filter((t) => t.dataType === FLOAT);
  expect(half.length).toBeGreaterThan(0);
  // What stays float32 among the weights: LayerNorm parameters and the timestep table only.
  for (const t of kept) expect(t.name).toMatch(/(norm\d?|layer_norm\d|ln_\w+|ln_final|final_layer_norm)\.(weight|bias)$|^const\./);
  // Interface: float inputs and outputs stay float32.
  for (const io of [...graph.input!, ...graph.output!]) expect([FLOAT, onnxProto.onnx.TensorProto.DataType.INT64]).toContain(io.type!.tensorType!.elemType);
}

async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, (v.data as Float32Array).slice()]));
  } finally {
    await session.release();
  }
}

describe('half-precision denoiser_step (golden unet_control)', () => {
  let g: GoldenCase;
  let files: Awaited<ReturnType<typeof writeBoth>>;
  beforeAll(async () => {
    g = await loadGolden('unet_control');
    files = await writeBoth('denoiser_step', buildDenoiserStep(await loadGoldenWeights('supir_tiny_model.safetensors'), { numHeadChannels: 16 }).graph);
  }, 120_000);

  it('stores float16 weights read by float16 ops, half the bytes', () => {
    expectHalfGraph(files.fp16);
    expect(files.bytes16).toBeLessThan(0.52 * files.bytes32);
  });

  it.each([
    ['out_cs1', 1],
    ['out_cs0p7', 0.7],
    ['out_cs0', 0],
  ])('%s within 4e-3 of the official float32 output (float32 pack: 1e-4)', async (name, cs) => {
    const t = (n: string): ort.Tensor => new ort.Tensor('float32', g.tensor(n).data, g.tensor(n).dims);
    const feeds = { x: t('x'), timesteps: new ort.Tensor('int64', BigInt64Array.from(g.ints('timesteps'), BigInt), [2]), context: t('context'), y: t('y'), control: t('control_in'), control_scale: new ort.Tensor('float32', Float32Array.of(cs), []) };
    const want = g.tensor(name).data;
    const half = (await run(files.fp16, feeds)).out!;
    const full = (await run(files.fp32, feeds)).out!;
    // Seen on this CPU: 1.2e-3 to 1.8e-3 at |out| ≤ 1.2 (float32: under 1e-6).
    const c16 = closeness(half, want, 4e-3, 0);
    expect(c16.ok, describeCloseness(c16, half, want)).toBe(true);
    expect(closeness(full, want, 1e-4, 0).ok).toBe(true);
    // And it really computed in float16: the error is of float16's size, not float32's.
    expect(c16.maxAbs).toBeGreaterThan(1e-4);
  });
});

describe('half-precision text encoders (golden text_encoders)', () => {
  let g: GoldenCase;
  const out: Record<string, { fp16: Record<string, Float32Array> }> = {};
  beforeAll(async () => {
    g = await loadGolden('text_encoders');
    const ids = (name: string): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(g.ints(name), BigInt), [g.ints(name).length / 77, 77]);
    const clipL = compileClipL(await loadGoldenWeights('text_tiny_clip_l.safetensors', [CLIP_L_PREFIX]), { heads: 2 });
    const bigG = compileBigG(await loadGoldenWeights('text_tiny_bigg.safetensors', [BIGG_PREFIX]), { heads: 2 });
    const l = await writeBoth('clip_l', clipL.graph);
    const b = await writeBoth('clip_bigg', bigG.graph);
    expectHalfGraph(l.fp16);
    expectHalfGraph(b.fp16);
    out.clip_l = { fp16: await run(l.fp16, { ids: ids('tokens_clip_l') }) };
    out.bigg = { fp16: await run(b.fp16, { ids: ids('tokens_bigg') }) };
  }, 120_000);

  // Seen on this CPU: CLIP-L 5.2e-3 and bigG 3.6e-3 at |x| ≤ 7.3, pooled 2.4e-3 (float32: under 4e-6).
  it.each([
    ['clip_l', 'hidden', 'clip_l_penultimate', 2e-2],
    ['bigg', 'hidden', 'bigg_penultimate', 2e-2],
    ['bigg', 'pooled', 'bigg_pooled', 2e-2],
  ])('%s %s within %s of the official float32 %s', (tower, output, golden, atol) => {
    const got = out[tower]!.fp16[output]!;
    const want = g.tensor(golden).data;
    const c = closeness(got, want, atol, 0);
    expect(c.ok, describeCloseness(c, got, want)).toBe(true);
    expect(c.maxAbs).toBeGreaterThan(1e-5);
  });
});
