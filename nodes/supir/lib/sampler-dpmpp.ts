/**
 * SUPIR's RestoreDPMPP2MSampler: DPM++ 2M over Karras sigmas (ρ = 7) between the n-step LegacyDDPM
 * schedule's smallest non-zero sigma and its first one, with the official eta (1 = the SDE form,
 * 0 = the deterministic 2M of k-diffusion). Per step, with t = −log σ, h = t' − t:
 *   D = guided denoiser at σ; m1 = (σ'/σ)·e^{−ηh}, m2 = expm1(−h−ηh);
 *   first step: x = m1·x − m2·D; later: r = h_prev/h, D' = (1+1/2r)·D − (1/2r)·D_prev,
 *   x = m1·x − m2·D' + ε·σ'·√(−expm1(−2ηh))·s_noise; the last step (σ' = 0) gives x = D.
 * The official sampler draws ε from a Brownian tree; its increments over disjoint intervals are
 * independent N(0,1), so one plain draw per step has the same distribution.
 * The loop takes the same guidance hooks as RestoreEDM (sampler-guidance.ts); with restore_cfg ≤ 0
 * and a constant control scale it is the official sampler, which is how sampler-run.ts calls it
 * unless the "+ restoration guidance" variant is chosen (golden case sampler_dpmpp).
 */
import { samplerSigmas } from './denoiser.ts';
import { checkNoise, Guidance, initialLatent, type GuidanceOptions } from './sampler-guidance.ts';

export interface Dpmpp2mOptions<C> extends GuidanceOptions<C> {
  /** 1 as RestoreDPMPP2MSampler (stochastic); 0 for plain DPM++ 2M. */
  eta?: number;
}

/** k-diffusion get_sigmas_karras(n, σmin, σmax, ρ) with the trailing 0, computed in float32. */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float32Array {
  const f32 = Math.fround;
  const minInv = f32(Math.pow(sigmaMin, 1 / rho));
  const maxInv = f32(Math.pow(sigmaMax, 1 / rho));
  const out = new Float32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const ramp = n === 1 ? 0 : f32(i / (n - 1));
    out[i] = Math.pow(f32(maxInv + f32(ramp * f32(minInv - maxInv))), rho);
  }
  return out;
}

export async function sampleDpmpp2m<C>(opts: Dpmpp2mOptions<C>): Promise<Float32Array> {
  const eta = opts.eta ?? 1;
  const legacy = samplerSigmas(opts.steps);
  const sigmas = karrasSigmas(opts.steps, legacy[opts.steps - 1]!, legacy[0]!);
  const guidance = new Guidance(opts);
  const x = initialLatent(opts.noise, legacy[0]!);
  const old = new Float32Array(x.length);
  for (let i = 0; i < opts.steps; i++) {
    const sigma = sigmas[i]!;
    const next = sigmas[i + 1]!;
    const { denoised, info } = await guidance.denoise(x, sigma, sigma, next);
    if (next === 0) {
      x.set(denoised);
    } else {
      const h = Math.log(sigma / next);
      const etaH = eta * h;
      const m1 = (next / sigma) * Math.exp(-etaH);
      const m2 = Math.expm1(-h - etaH);
      if (i === 0) {
        for (let k = 0; k < x.length; k++) x[k] = m1 * x[k]! - m2 * denoised[k]!;
      } else {
        const r = Math.log(sigmas[i - 1]! / sigma) / h;
        const m3 = 1 + 1 / (2 * r);
        const m4 = 1 / (2 * r);
        for (let k = 0; k < x.length; k++) x[k] = m1 * x[k]! - m2 * (m3 * denoised[k]! - m4 * old[k]!);
        if (eta > 0) {
          const eps = checkNoise(`SDE noise for step ${i}`, opts.drawNoise(i), x.length);
          const amp = next * Math.sqrt(-Math.expm1(-2 * etaH)) * opts.sNoise;
          for (let k = 0; k < x.length; k++) x[k] = x[k]! + eps[k]! * amp;
        }
      }
    }
    old.set(denoised);
    opts.onStep?.(i, x, denoised, info);
  }
  return x;
}
