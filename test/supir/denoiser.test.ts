/**
 * Golden case `denoiser`: DiscreteDenoiserWithControl around our denoiser_step. The schedule
 * (betas, ᾱ, the 1000 training sigmas, the sampler's 10/50/100-step sigmas), sigma quantisation
 * (indices exact), the EpsScaling factors, the network input and the x0 prediction.
 */
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TensorData } from '../../nodes/api/runtime.ts';
import { alphasCumprod, betas, denoise, epsScalings, samplerSigmas, trainingSigmas, type DenoiserStep } from '../../nodes/supir/lib/denoiser.ts';
import { buildDenoiserStep } from '../../server/models/supir/unet.ts';
import { closeness } from '../support/close.ts';
import { loadGolden, loadGoldenWeights, type GoldenCase } from '../support/golden.ts';

let golden: GoldenCase;
let session: ort.InferenceSession;

const tensor = (t: TensorData): ort.Tensor => new ort.Tensor('float32', t.data, t.dims);

/** The ONNX step, recording what the denoiser fed it. */
function recordingStep(log: Array<{ x: TensorData; timesteps: number[] }>): DenoiserStep {
  return async ({ x, timesteps, cond, controlScale }) => {
    log.push({ x, timesteps });
    const out = await session.run({
      x: tensor(x),
      timesteps: new ort.Tensor('int64', BigInt64Array.from(timesteps, BigInt), [timesteps.length]),
      context: tensor(cond.context),
      y: tensor(cond.y),
      control: tensor(cond.control),
      control_scale: new ort.Tensor('float32', Float32Array.of(controlScale), []),
    });
    return { data: out.out!.data as Float32Array, dims: [...out.out!.dims] };
  };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, atol = 1e-4, rtol = 1e-4): void {
  const r = closeness(got, want, atol, rtol);
  expect(r.worst, `${what}: max |diff| ${r.maxAbs}`).toBeLessThanOrEqual(atol);
}

beforeAll(async () => {
  golden = await loadGolden('denoiser');
  const w = await loadGoldenWeights('supir_tiny_model.safetensors');
  session = await ort.InferenceSession.create(buildDenoiserStep(w, { numHeadChannels: 16 }).graph.toBytes());
});

describe('LegacyDDPM schedule', () => {
  it('betas and alphas_cumprod equal the float64 reference', () => {
    expectClose(betas(), golden.float64('betas_f64'), 'betas', 0, 1e-12);
    expectClose(alphasCumprod(), golden.float64('alphas_cumprod_f64'), 'alphas_cumprod', 0, 1e-12);
  });

  it('the 1000 training sigmas equal denoiser.sigmas', () => {
    expectClose(trainingSigmas(), golden.tensor('denoiser_sigmas').data, 'sigmas', 0, 1e-6);
  });

  it.each([10, 50, 100])('the %i-step sampler sigmas match', (n) => {
    expectClose(samplerSigmas(n), golden.tensor(`sampler_sigmas_${n}`).data, `sampler_sigmas_${n}`, 0, 1e-6);
  });
});

describe('DiscreteDenoiserWithControl vs the official code (denoiser)', () => {
  it.each([0, 1, 2])('call %i: quantised sigma, index, scalings, network input and x0', async (j) => {
    const sigmas = trainingSigmas();
    const sigma = golden.tensor(`sigma.${j}`).data;
    const sc = Array.from(sigma, (s) => epsScalings(s, sigmas));
    expect(sc.map((s) => s.index)).toEqual(golden.ints(`sigma_idx.${j}`));
    expectClose(sc.map((s) => s.sigma), golden.tensor(`sigma_quantized.${j}`).data, 'sigma_quantized', 0, 1e-6);
    expectClose(sc.map((s) => s.cIn), golden.tensor(`c_in.${j}`).data, 'c_in', 0, 1e-6);
    expectClose(sc.map((s) => s.cOut), golden.tensor(`c_out.${j}`).data, 'c_out', 0, 1e-6);
    expectClose(sc.map((s) => s.cSkip), golden.tensor(`c_skip.${j}`).data, 'c_skip', 0, 0);

    const log: Array<{ x: TensorData; timesteps: number[] }> = [];
    const cond = { context: golden.tensor('context'), y: golden.tensor('y'), control: golden.tensor('control_in') };
    const out = await denoise(recordingStep(log), golden.tensor('x'), sigma, cond, 0.9);
    expect(log[0]!.timesteps).toEqual(golden.ints(`network_timesteps.${j}`));
    expectClose(log[0]!.x.data, golden.tensor(`network_x_in.${j}`).data, 'network_x_in');
    expectClose(out.data, golden.tensor(`denoised.${j}`).data, `denoised.${j}`);
  });

  it('snaps the README examples to their indices', () => {
    const sigmas = trainingSigmas();
    expect([3.0, 0.5, 0.03, 7.7, 14.614641].map((s) => epsScalings(s, sigmas).index)).toEqual([673, 169, 0, 885, 999]);
  });
});
