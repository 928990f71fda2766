/**
 * SUPIR's RestoreEDMSampler (sgm sampling.py at the golden commit): Euler steps over the
 * LegacyDDPM schedule with EDM churn, LinearCFG and restoration guidance. Per step i, with
 * σ, σ' = sigmas[i], sigmas[i+1]:
 *   γ = min(s_churn/n, √2−1) when s_tmin ≤ σ ≤ s_tmax; σ̂ = σ(1+γ);
 *   if γ > 0: x += ε·s_noise·√(σ̂²−σ²) with ε a fresh N(0,1) draw;
 *   D = CFG(denoiser([x; x], σ̂)) then restoration guidance (sampler-guidance.ts);
 *   x += (σ'−σ̂)·(x−D)/σ̂.
 * Randomness comes only from the caller (`noise`, `drawNoise`) so the golden cases can replay the
 * official draws and the node can replay a seed.
 */
import { samplerSigmas } from './denoiser.ts';
import { checkNoise, Guidance, initialLatent, type GuidanceOptions } from './sampler-guidance.ts';

export { GUIDANCE_SIGMA_MAX, type BatchedDenoiser, type GuidanceOptions, type StepCallback, type StepInfo } from './sampler-guidance.ts';

const f32 = Math.fround;
const MAX_GAMMA = Math.SQRT2 - 1;

export interface RestoreEdmOptions<C> extends GuidanceOptions<C> {
  sChurn: number;
  /** Churn only where s_tmin ≤ σ ≤ s_tmax (official defaults 0 and ∞). */
  sTmin?: number;
  sTmax?: number;
}

/** The churn γ of a step, as EDMSampler.__call__ computes it. */
export function churnGamma(sChurn: number, steps: number, sigma: number, sTmin = 0, sTmax = Infinity): number {
  return sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / steps, MAX_GAMMA) : 0;
}

/** Runs the sampler; returns the final latent (scaled space, like `noise`). */
export async function sampleRestoreEdm<C>(opts: RestoreEdmOptions<C>): Promise<Float32Array> {
  const sigmas = samplerSigmas(opts.steps);
  const guidance = new Guidance(opts);
  const x = initialLatent(opts.noise, sigmas[0]!);
  for (let i = 0; i < opts.steps; i++) {
    const sigma = sigmas[i]!;
    const next = sigmas[i + 1]!;
    const gamma = churnGamma(opts.sChurn, opts.steps, sigma, opts.sTmin, opts.sTmax);
    const sigmaHat = f32(sigma * f32(gamma + 1));
    if (gamma > 0) addChurn(x, checkNoise(`churn noise for step ${i}`, opts.drawNoise(i), x.length), opts.sNoise, sigma, sigmaHat);
    const { denoised, info } = await guidance.denoise(x, sigma, sigmaHat, next);
    eulerStep(x, denoised, sigmaHat, next);
    opts.onStep?.(i, x, denoised, info);
  }
  return x;
}

/** x += ε·s_noise·√(σ̂²−σ²), in place. */
export function addChurn(x: Float32Array, eps: Float32Array, sNoise: number, sigma: number, sigmaHat: number): void {
  const amp = f32(Math.sqrt(f32(f32(sigmaHat * sigmaHat) - f32(sigma * sigma))));
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + f32(f32(eps[i]! * sNoise) * amp);
}

/** x += (σ'−σ̂)·(x−D)/σ̂, in place (to_d then euler_step). */
export function eulerStep(x: Float32Array, denoised: Float32Array, sigmaHat: number, next: number): void {
  const dt = f32(next - sigmaHat);
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + f32(dt * f32(f32(x[i]! - denoised[i]!) / sigmaHat));
}
