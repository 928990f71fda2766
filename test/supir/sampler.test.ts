/**
 * Golden cases sampler_restore / sampler_churn / sampler_linear_control: our RestoreEDM sampler,
 * driving the compiled denoiser_step of the tiny model through `denoise` and the node's session
 * glue, replays the official RestoreEDMSampler run (recorded churn draws injected) and matches it
 * at every step: the x given to the denoiser, σ̂, the raw [uc; c] outputs, the CFG result, the
 * control scale and the trajectory.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnyTensorData, ModelSession, TensorData } from '../../nodes/api/runtime.ts';
import { denoise, samplerSigmas, type DenoiserCond } from '../../nodes/supir/lib/denoiser.ts';
import { sampleRestoreEdm, type StepInfo } from '../../nodes/supir/lib/sampler.ts';
import { batchedControl, batchedText, sessionDenoiserStep } from '../../nodes/supir/lib/sampler-cond.ts';
import { initialLatent } from '../../nodes/supir/lib/sampler-guidance.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { closeness, loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

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

interface Recorded {
  x: Float32Array[];
  sigma: number[][];
  raw: Float32Array[];
  cfg: Float32Array[];
  trajectory: Float32Array[];
  info: StepInfo[];
  out: Float32Array;
}

/** Runs our sampler on a golden case's inputs and settings, recording every step. */
async function replay(g: GoldenCase): Promise<Recorded> {
  type Call = { constructor: { params: { num_steps: number; restore_cfg: number; s_churn: number; s_noise: number; guider_config: { params: { scale: number; scale_min: number } } } }; kwargs: { control_scale: number; use_linear_control_scale: boolean; control_scale_start: number } };
  const call = g.json.call as Call;
  const p = call.constructor.params;
  const latent = g.tensor('noise');
  const [n, c, h, w] = latent.dims as [number, number, number, number];
  const t = (name: string) => ({ data: g.tensor(name).data, shape: g.tensor(name).dims });
  const cond: DenoiserCond = {
    ...batchedText({ crossattn: t('uc_crossattn'), vector: t('uc_vector') }, { crossattn: t('c_crossattn'), vector: t('c_vector') }, n),
    control: batchedControl(g.tensor('control').data, latent.dims),
  };
  const step = sessionDenoiserStep(runner);
  const rec: Omit<Recorded, 'out'> = { x: [], sigma: [], raw: [], cfg: [], trajectory: [], info: [] };
  const out = await sampleRestoreEdm({
    denoiser: async (x, sigma, cd, cs) => {
      rec.x.push(x.slice(0, x.length / 2));
      rec.sigma.push([...sigma]);
      const d = await denoise(step, { data: x, dims: [2 * n, c, h, w] } as TensorData, sigma, cd, cs);
      rec.raw.push(d.data.slice());
      return d.data;
    },
    cond,
    shape: [n, c, h, w],
    noise: latent.data,
    drawNoise: (i) => g.tensor(`noise_draws.${i}`).data,
    steps: p.num_steps,
    cfg: { scale: p.guider_config.params.scale, scaleMin: p.guider_config.params.scale_min },
    control: { scale: call.kwargs.control_scale, start: call.kwargs.control_scale_start, linear: call.kwargs.use_linear_control_scale },
    restoreCfg: p.restore_cfg,
    xCenter: g.tensor('x_center').data,
    sChurn: p.s_churn,
    sNoise: p.s_noise,
    onStep: (_i, x, _d, info) => {
      rec.trajectory.push(x.slice());
      rec.cfg.push(info.cfg.slice());
      rec.info.push({ ...info, cfg: new Float32Array(0) });
    },
  });
  return { ...rec, out };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-3, rtol = 1e-3): void {
  const r = closeness(got, want, atol, rtol);
  expect(r.worst, `${what}: max |diff| ${r.maxAbs}`).toBeLessThanOrEqual(atol);
}

describe.each(['sampler_restore', 'sampler_churn', 'sampler_linear_control'])('RestoreEDMSampler vs the official code (%s)', (name) => {
  let g: GoldenCase;
  let rec: Recorded;
  beforeAll(async () => {
    g = await loadGolden(name);
    rec = await replay(g);
  });

  it('starts from the recorded schedule and scaled noise', () => {
    expectClose(samplerSigmas(10), g.tensor('sigmas').data, 'sigmas', 0, 1e-7);
    expectClose(initialLatent(g.tensor('noise').data, samplerSigmas(10)[0]!), g.tensor('x_init_scaled').data, 'x_init_scaled', 1e-6, 1e-6);
  });

  it('feeds the denoiser the recorded x and σ̂ and gets its raw outputs', () => {
    expect(rec.x).toHaveLength(10);
    for (let i = 0; i < 10; i++) {
      expectClose(rec.x[i]!, g.tensor(`denoise_x.${i}`).data, `denoise_x.${i}`);
      const sigmaHat = g.tensor(`denoise_sigma_hat.${i}`).data[0]!;
      expect(rec.sigma[i]).toEqual([sigmaHat, sigmaHat]);
      expectClose(rec.raw[i]!, g.tensor(`denoiser_raw.${i}`).data, `denoiser_raw.${i}`);
    }
  });

  it('matches the per-step gamma and control scale', () => {
    const perStep = g.json.per_step as { sigma: number[]; next_sigma: number[]; control_scale: number[] };
    expectClose(rec.info.map((s) => s.sigma), perStep.sigma, 'sigma', 0, 1e-7);
    expectClose(rec.info.map((s) => s.nextSigma), perStep.next_sigma, 'next_sigma', 0, 1e-7);
    expectClose(rec.info.map((s) => s.controlScale), perStep.control_scale, 'control_scale', 1e-12, 1e-12);
  });

  it('matches the CFG output and the trajectory at every step, and the result', () => {
    for (let i = 0; i < 10; i++) {
      expectClose(rec.cfg[i]!, g.tensor(`denoise_out.${i}`).data, `denoise_out.${i}`);
      expectClose(rec.trajectory[i]!, g.tensor(`trajectory.${i}`).data, `trajectory.${i}`);
    }
    expectClose(rec.out, g.tensor('out').data, 'out');
  });
});
