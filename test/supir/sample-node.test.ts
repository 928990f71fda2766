/**
 * The SUPIR Sample node over a pack-like folder holding the tiny golden denoiser_step, run by the
 * real runtime (worker thread, CPU): set as each official sampler run was called and fed its
 * recorded draws, it reproduces the run (RestoreEDM with churn and both ramps, the official DPM++,
 * the tiled sampler on a 12x18 latent); it is deterministic per seed, reports progress and throttled previews, stops on an
 * interrupt, tiles exactly, and names the input at fault.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rng } from '../../nodes/api/rng.ts';
import type { Conditioning, ModelHandle } from '../../nodes/api/sockets.ts';
import type { LatentTensor } from '../../nodes/api/tensor.ts';
import SupirSample from '../../nodes/supir/sample.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { createRuntime, type StudioRuntime } from '../../server/runtime/index.ts';
import { fakeContext, runNode, tempEnv, type FakeContext } from '../support/fake-context.ts';
import { closeness, describeCloseness } from '../support/close.ts';
import { loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';
import { nodeSettings } from '../support/golden-sampler.ts';

const { env, cleanup } = tempEnv();
const packDir = fs.mkdtempSync(path.join(os.tmpdir(), 'supir-pack-'));
let runtime: StudioRuntime;
let g: GoldenCase;
let inputs: { model: ModelHandle; positive: Conditioning; negative: Conditioning; control: LatentTensor; x_center: LatentTensor };

/** sampler_churn's settings in the node's words (LinearCFG 7.5 at σmax → 4.0 at 0). */
const WIDGETS = {
  sampler: 'RestoreEDM',
  steps: 10,
  seed: 1,
  cfg_scale: 4.0,
  cfg_scale_start: 7.5,
  linear_cfg: true,
  control_scale: 1.0,
  control_scale_start: 0.0,
  linear_control_scale: false,
  restoration_scale: 4.0,
  s_churn: 2.0,
  s_noise: 1.003,
  tile_size: 0,
  tile_stride: 64,
};

beforeAll(async () => {
  const w = await loadGoldenWeights('supir_tiny_model.safetensors');
  fs.writeFileSync(path.join(packDir, 'denoiser_step.onnx'), buildDenoiserStep(w, { numHeadChannels: 16 }).graph.toBytes());
  runtime = createRuntime({ provider: 'cpu' });
  env.runtime = runtime;
  g = await loadGolden('sampler_churn');
  const t = (name: string) => ({ data: g.tensor(name).data, shape: g.tensor(name).dims });
  const latent = (name: string): LatentTensor => ({ data: g.tensor(name).data, n: 1, c: 4, h: 16, w: 16, scaled: true, downscale: 2 });
  inputs = {
    model: { kind: 'supir', id: packDir, hash: 'tiny', provider: 'cpu' },
    positive: { crossattn: t('c_crossattn'), vector: t('c_vector') },
    negative: { crossattn: t('uc_crossattn'), vector: t('uc_vector') },
    control: latent('control'),
    x_center: latent('x_center'),
  };
});

afterAll(async () => {
  await runtime.close();
  cleanup();
  fs.rmSync(packDir, { recursive: true, force: true });
});

async function sample(widgets: Partial<typeof WIDGETS> = {}, ctx: FakeContext = fakeContext(env), over: Record<string, unknown> = {}): Promise<LatentTensor> {
  return (await runNode(SupirSample, { ...inputs, ...WIDGETS, ...widgets, ...over }, ctx)).latent as LatentTensor;
}

const sameBytes = (a: LatentTensor, b: LatentTensor): boolean => Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer));

/** A golden case's conditioning and latents as the node's inputs. */
function caseInputs(gc: GoldenCase): typeof inputs {
  const t = (name: string) => ({ data: gc.tensor(name).data, shape: gc.tensor(name).dims });
  const [, , h, w] = gc.tensor('noise').dims as [number, number, number, number];
  const latent = (name: string): LatentTensor => ({ data: gc.tensor(name).data, n: 1, c: 4, h, w, scaled: true, downscale: 2 });
  return {
    model: inputs.model,
    positive: { crossattn: t('c_crossattn'), vector: t('c_vector') },
    negative: { crossattn: t('uc_crossattn'), vector: t('uc_vector') },
    control: latent('control'),
    x_center: latent('x_center'),
  };
}

describe('SupirSample', () => {
  it.each(['sampler_churn', 'sampler_churn_linear', 'sampler_dpmpp', 'sampler_tiled'])('set as the official %s run and given its draws, reproduces it', async (name) => {
    const gc = await loadGolden(name);
    const drawNames = gc.names().filter((k) => k.startsWith('noise_draws.')).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    const draws = [gc.tensor('noise').data, ...drawNames.map((k) => gc.tensor(k).data)];
    const replay = { fillNormal: (out: Float32Array) => (out.set(draws.shift()!), out) } as unknown as Rng;
    const ctx = fakeContext(env, { rng: () => replay });
    const settings = nodeSettings(gc);
    const out = (await runNode(SupirSample, { ...caseInputs(gc), ...WIDGETS, ...settings }, ctx)).latent as LatentTensor;
    expect(draws).toHaveLength(0);
    const [, , h, w] = gc.tensor('noise').dims;
    expect(out).toMatchObject({ n: 1, c: 4, h, w, scaled: true, downscale: 2 });
    const r = closeness(out.data, gc.tensor('out').data, 1e-3, 1e-3);
    expect(r.worst, describeCloseness(r, out.data, gc.tensor('out').data)).toBeLessThanOrEqual(1e-3);
    // Every step is reported whole (a tiled run also reports fractions of a step between tiles).
    expect(ctx.progressCalls.filter(([v]) => Number.isInteger(v))).toEqual(Array.from({ length: settings.steps }, (_, i) => [i + 1, settings.steps]));
    expect(ctx.previews.length).toBeGreaterThanOrEqual(1);
    expect(ctx.previews.length).toBeLessThanOrEqual(settings.steps);
    expect(ctx.previews.every((p) => p.n === 1 && p.c === 3 && p.h === h && p.w === w && p.data.every((v) => v >= 0 && v <= 1))).toBe(true);
  });

  it('the official DPM++ ignores restoration_scale, s_churn and the control ramp; the guided variant uses them', async () => {
    const official = { sampler: 'DPM++ 2M Karras', steps: 4, linear_control_scale: false, restoration_scale: -1, s_churn: 0 };
    const base = await sample(official);
    expect(sameBytes(await sample({ ...official, linear_control_scale: true, restoration_scale: 4, s_churn: 5 }), base)).toBe(true);
    const guided = { ...official, sampler: 'DPM++ 2M Karras + restoration guidance (not in the paper)' };
    expect(sameBytes(await sample(guided), base)).toBe(true);
    expect(sameBytes(await sample({ ...guided, restoration_scale: 4 }), base)).toBe(false);
    expect(sameBytes(await sample({ ...guided, linear_control_scale: true }), base)).toBe(false);
  });

  it('is deterministic per seed', async () => {
    const a = await sample({ steps: 4, seed: 5 });
    const b = await sample({ steps: 4, seed: 5 });
    const c = await sample({ steps: 4, seed: 6 });
    expect(sameBytes(a, b)).toBe(true);
    expect(sameBytes(a, c)).toBe(false);
    expect(a.data.every(Number.isFinite)).toBe(true);
  });

  it('with one tile covering the latent gives the untiled bytes; smaller tiles also run', async () => {
    const whole = await sample({ steps: 3 });
    expect(sameBytes(await sample({ steps: 3, tile_size: 16, tile_stride: 8 }), whole)).toBe(true);
    const tiled = await sample({ steps: 3, tile_size: 8, tile_stride: 4 });
    expect(tiled.data.every(Number.isFinite)).toBe(true);
    expect(sameBytes(tiled, whole)).toBe(false);
  });

  it('runs DPM++ 2M Karras deterministically', async () => {
    const a = await sample({ sampler: 'DPM++ 2M Karras', steps: 4, restoration_scale: -1 });
    const b = await sample({ sampler: 'DPM++ 2M Karras', steps: 4, restoration_scale: -1 });
    expect(sameBytes(a, b)).toBe(true);
    expect(a.data.every(Number.isFinite)).toBe(true);
  });

  it('stops within a step of an interrupt', async () => {
    const ctx = fakeContext(env);
    const progress = ctx.progress.bind(ctx);
    ctx.progress = (value, max) => {
      progress(value, max);
      if (value === 2) ctx.abort();
    };
    await expect(sample({ steps: 10 }, ctx)).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(ctx.progressCalls).toHaveLength(2);
  });

  it('tiled: reports progress between tiles, always forward, and stops within a tile', async () => {
    const ctx = fakeContext(env);
    await sample({ steps: 3, tile_size: 8, tile_stride: 4 }, ctx); // 9 tiles of a 16x16 latent
    const values = ctx.progressCalls.map(([v]) => v);
    expect(values.length).toBeGreaterThanOrEqual(3 * 9);
    expect(values.every((v, i) => i === 0 || v > values[i - 1]!)).toBe(true);
    expect(ctx.progressCalls.at(-1)).toEqual([3, 3]);
    // Stop after the third tile of the first step: the fourth tile never runs.
    const stopped = fakeContext(env);
    const progress = stopped.progress.bind(stopped);
    stopped.progress = (value, max) => {
      progress(value, max);
      if (stopped.progressCalls.length === 3) stopped.abort();
    };
    await expect(sample({ steps: 3, tile_size: 8, tile_stride: 4 }, stopped)).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(stopped.progressCalls.map(([v]) => v)).toEqual([1 / 9, 2 / 9, 3 / 9]);
  });

  it('names the input at fault', async () => {
    const small: LatentTensor = { ...inputs.control, data: new Float32Array(4 * 8 * 8), h: 8, w: 8 };
    await expect(sample({}, undefined, { x_center: small })).rejects.toThrow(/input 'x_center': is 1x4x8x8, the control latent is 1x4x16x16/);
    const three = { ...inputs.positive, crossattn: { data: new Float32Array(3 * 77 * 64), shape: [3, 77, 64] } };
    await expect(sample({}, undefined, { positive: three })).rejects.toThrow(/input 'positive': crossattn has a batch of 3/);
    const wide = { ...inputs.negative, vector: { data: new Float32Array(256), shape: [1, 256] } };
    await expect(sample({}, undefined, { negative: wide })).rejects.toThrow(/input 'negative': vector/);
    await expect(sample({}, undefined, { control: { ...inputs.control, scaled: false } })).rejects.toThrow(/input 'control': expects a scaled latent/);
    await expect(sample({}, undefined, { model: { ...inputs.model, kind: 'upscale' } })).rejects.toThrow(/input 'model'/);
    await expect(sample({}, undefined, { model: { ...inputs.model, id: path.join(packDir, 'missing') } })).rejects.toThrow(/input 'model': model file not found/);
    const perTile = { ...inputs.positive, perTile: [inputs.positive] };
    await expect(sample({ tile_size: 8, tile_stride: 4 }, undefined, { positive: perTile })).rejects.toThrow(/input 'positive': has 1 per-tile prompts; .* gives 9 tiles/);
    expect(SupirSample.validate!({ ...WIDGETS, tile_size: 8, tile_stride: 16 }, env)).toEqual([['tile_stride', expect.stringMatching(/larger than the tile/)]]);
    // Untiled, the network sees the whole latent: its sides must be multiples of 4. Tiled, only the
    // windows must (as the official tiled sampler, which runs 12x18 with 8x8 tiles).
    const odd = (h: number, w: number): LatentTensor => ({ ...inputs.control, data: new Float32Array(4 * h * w), h, w });
    await expect(sample({ steps: 1 }, undefined, { control: odd(12, 18), x_center: odd(12, 18) })).rejects.toThrow(/input 'control': is 18x12 cells; the model needs sides in multiples of 4 cells/);
    await expect(sample({ steps: 1, tile_size: 8, tile_stride: 4 }, undefined, { control: odd(6, 16), x_center: odd(6, 16) })).rejects.toThrow(/input 'control': is 16x6 cells; the model needs sides shorter than the tile \(8\) in multiples of 4/);
    expect((await sample({ steps: 1, tile_size: 8, tile_stride: 4 }, undefined, { control: odd(8, 18), x_center: odd(8, 18) })).w).toBe(18);
  });
});
