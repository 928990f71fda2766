/**
 * Every sampler golden case (sampler_restore, sampler_churn, sampler_linear_control,
 * sampler_churn_linear, sampler_dpmpp, sampler_tiled): the official call's settings, put into SUPIR
 * Sample's widget names, go through `runSampler` (what the node runs) driving the compiled
 * denoiser_step of the tiny model through `denoise` and the node's session glue; the recorded
 * random draws are replayed. Every step matches: the x given to the denoiser (per tile when tiled),
 * σ̂, the raw [uc; c] outputs, the CFG result, the control scale and the trajectory.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnyTensorData, ModelSession, TensorData } from '../../nodes/api/runtime.ts';
import { denoise, samplerSigmas, type DenoiserCond } from '../../nodes/supir/lib/denoiser.ts';
import type { BatchedDenoiser, StepInfo } from '../../nodes/supir/lib/sampler.ts';
import { batchedControl, batchedText, sessionDenoiserStep, tileConds } from '../../nodes/supir/lib/sampler-cond.ts';
import { karrasSigmas } from '../../nodes/supir/lib/sampler-dpmpp.ts';
import { initialLatent } from '../../nodes/supir/lib/sampler-guidance.ts';
import { runSampler } from '../../nodes/supir/lib/sampler-run.ts';
import { gaussianTileWeights, latentWindows, tiledDenoiser, type LatentWindow } from '../../nodes/supir/lib/sampler-tiles.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { closeness, describeCloseness } from '../support/close.ts';
import { loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';
import { nodeSettings } from '../support/golden-sampler.ts';

let runner: Pick<ModelSession, 'run' | 'inputs'>;

/** An onnxruntime session behind the runtime's ModelSession interface. */
function ortRunner(session: ort.InferenceSession): Pick<ModelSession, 'run' | 'inputs'> {
  const tensor = (t: AnyTensorData): ort.Tensor => (t.data instanceof BigInt64Array ? new ort.Tensor('int64', t.data, t.dims) : new ort.Tensor('float32', t.data, t.dims));
  return {
    inputs: [{ name: 'timesteps', dtype: 'int64', dims: ['batch'] }],
    async run(feeds) {
      const out = (await session.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tensor(t)])))).out!;
      return { out: { data: out.data as Float32Array, dims: [...out.dims] } };
    },
  };
}

beforeAll(async () => {
  const w = await loadGoldenWeights('supir_tiny_model.safetensors');
  runner = ortRunner(await ort.InferenceSession.create(buildDenoiserStep(w, { numHeadChannels: 16 }).graph.toBytes()));
});

/** One network call as the sampler made it (per tile when tiled). */
interface Call {
  x: Float32Array;
  sigma: number[];
  raw: Float32Array;
  controlScale: number;
}

interface Recorded {
  /** Per step: the network calls (one, or one per window). */
  calls: Call[][];
  cfg: Float32Array[];
  trajectory: Float32Array[];
  info: StepInfo[];
  drawn: number[];
  windows: LatentWindow[];
  out: Float32Array;
}

/** Runs our sampler on a golden case's inputs and settings, recording every step. */
async function replay(g: GoldenCase): Promise<Recorded> {
  const settings = nodeSettings(g);
  const latent = g.tensor('noise');
  const [n, c, h, w] = latent.dims as [number, number, number, number];
  const t = (name: string) => ({ data: g.tensor(name).data, shape: g.tensor(name).dims });
  const cond: DenoiserCond = {
    ...batchedText({ crossattn: t('uc_crossattn'), vector: t('uc_vector') }, { crossattn: t('c_crossattn'), vector: t('c_vector') }, n),
    control: batchedControl(g.tensor('control').data, latent.dims),
  };
  const step = sessionDenoiserStep(runner);
  const rec: Omit<Recorded, 'out'> = { calls: [], cfg: [], trajectory: [], info: [], drawn: [], windows: [] };
  let current: Call[] = [];
  const network: BatchedDenoiser<DenoiserCond> = async (x, sigma, cd, cs) => {
    const [n2, , th, tw] = cd.control.dims as [number, number, number, number];
    const d = await denoise(step, { data: x, dims: [n2, c, th, tw] } as TensorData, sigma, cd, cs);
    current.push({ x: x.slice(0, x.length / 2), sigma: [...sigma], raw: d.data.slice(), controlScale: cs });
    return d.data;
  };
  let denoiser = network;
  if (settings.tile_size > 0) {
    rec.windows = latentWindows(h, w, settings.tile_size, settings.tile_stride);
    const conds = tileConds(cond.control, rec.windows, () => cond);
    denoiser = tiledDenoiser(network, [n, c, h, w], rec.windows, (j) => conds[j]!);
  }
  const out = await runSampler(settings, {
    denoiser,
    cond,
    shape: [n, c, h, w],
    noise: latent.data,
    drawNoise: (i) => (rec.drawn.push(i), g.tensor(`noise_draws.${i}`).data),
    xCenter: g.tensor('x_center').data,
    onStep: (_i, x, _d, info) => {
      rec.calls.push(current);
      current = [];
      rec.trajectory.push(x.slice());
      rec.cfg.push(info.cfg.slice());
      rec.info.push({ ...info, cfg: new Float32Array(0) });
    },
  });
  return { ...rec, out };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-3, rtol = 1e-3): void {
  const r = closeness(got, want, atol, rtol);
  expect(r.worst, `${what}: ${describeCloseness(r, got, want)}`).toBeLessThanOrEqual(atol);
}

const CASES = ['sampler_restore', 'sampler_churn', 'sampler_linear_control', 'sampler_churn_linear', 'sampler_dpmpp', 'sampler_tiled'];

describe.each(CASES)('the official sampler vs ours (%s)', (name) => {
  let g: GoldenCase;
  let rec: Recorded;
  let steps: number;
  let perStep: { sigma: number[]; next_sigma: number[]; control_scale: number[] };
  beforeAll(async () => {
    g = await loadGolden(name);
    rec = await replay(g);
    steps = nodeSettings(g).steps;
    perStep = g.json.per_step as typeof perStep;
  });

  it('starts from the recorded schedule and scaled noise', () => {
    const legacy = samplerSigmas(steps);
    const schedule = name === 'sampler_dpmpp' ? karrasSigmas(steps, legacy[steps - 1]!, legacy[0]!) : legacy;
    expectClose(schedule, g.tensor('sigmas').data, 'sigmas', 0, 1e-7);
    expectClose(initialLatent(g.tensor('noise').data, legacy[0]!), g.tensor('x_init_scaled').data, 'x_init_scaled', 1e-6, 1e-6);
  });

  it('replays the recorded random draws in the official order', () => {
    const want = g.names().filter((k) => k.startsWith('noise_draws.')).map((k) => Number(k.split('.')[1])).sort((a, b) => a - b);
    expect(rec.drawn).toEqual(want);
  });

  it('feeds the denoiser the recorded x and σ̂ and gets its raw outputs', () => {
    expect(rec.calls).toHaveLength(steps);
    const tiles = Math.max(rec.windows.length, 1);
    for (let i = 0; i < steps; i++) {
      expect(rec.calls[i]).toHaveLength(tiles);
      const sigmaHat = g.tensor(`denoise_sigma_hat.${i}`).data[0]!;
      rec.calls[i]!.forEach((call, j) => {
        const at = rec.windows.length ? `${i}.${j}` : `${i}`;
        expectClose(call.x, g.tensor(`denoise_x.${at}`).data, `denoise_x.${at}`);
        expect(call.sigma).toEqual([sigmaHat, sigmaHat]);
        expect(call.controlScale).toBeCloseTo(perStep.control_scale[i]!, 12);
        expectClose(call.raw, g.tensor(`denoiser_raw.${at}`).data, `denoiser_raw.${at}`);
      });
    }
  });

  it('matches the per-step sigmas and control scale', () => {
    expectClose(rec.info.map((s) => s.sigma), perStep.sigma, 'sigma', 0, 1e-7);
    expectClose(rec.info.map((s) => s.nextSigma), perStep.next_sigma, 'next_sigma', 0, 1e-7);
    expectClose(rec.info.map((s) => s.controlScale), perStep.control_scale, 'control_scale', 1e-12, 1e-12);
  });

  it('matches the CFG output and the trajectory at every step, and the result', () => {
    for (let i = 0; i < steps; i++) {
      // Tiled, the CFG output is blended over the windows before the step; the cases record it per window.
      if (!rec.windows.length) expectClose(rec.cfg[i]!, g.tensor(`denoise_out.${i}`).data, `denoise_out.${i}`);
      expectClose(rec.trajectory[i]!, g.tensor(`trajectory.${i}`).data, `trajectory.${i}`);
    }
    expectClose(rec.out, g.tensor('out').data, 'out');
  });
});

describe('the official samplers\' own choices', () => {
  it('tiled: the official windows (flush column included) and Gaussian tile weights', async () => {
    const g = await loadGolden('sampler_tiled');
    const [, , h, w] = g.tensor('noise').dims as [number, number, number, number];
    const wins = latentWindows(h, w, 8, 4);
    const rows = g.ints('tile_windows');
    expect(wins.map((win) => [win.y, win.y + win.h, win.x, win.x + win.w]).flat()).toEqual(rows);
    const weights = gaussianTileWeights(8, 8);
    const want = g.float64('tile_weights').subarray(0, 64);
    for (let i = 0; i < 64; i++) expect(Math.abs(weights[i]! - want[i]!)).toBeLessThanOrEqual(1e-12 * want[i]! + 1e-300);
  });

  it('DPM++: the official sampler ignores restoration guidance, churn and the control ramp', async () => {
    const g = await loadGolden('sampler_dpmpp');
    const behaviour = g.json.official_behaviour as { ignores: Record<string, string> };
    expect(Object.keys(behaviour.ignores)).toEqual(expect.arrayContaining(['restore_cfg', 'x_center', 'use_linear_control_scale/control_scale_start']));
    const perStep = g.json.per_step as { control_scale: number[] };
    expect(new Set(perStep.control_scale)).toEqual(new Set([nodeSettings(g).control_scale]));
  });
});
