/**
 * sgm's DiscreteDenoiserWithControl (EpsScaling, LegacyDDPMDiscretization) around the compiled
 * `denoiser_step`: the sigma is snapped to the nearest of the 1000 training sigmas, the network
 * sees x·c_in and that sigma's integer index, and the result is the x0 prediction
 * net·c_out + x·c_skip. Every step is rounded to float32 where torch computes in float32, and
 * the schedule is built in float64 as the official numpy code does, so indices match exactly.
 * The schedule functions are exported for the sampler.
 */
import { StudioError } from '../../api/errors.ts';
import type { TensorData } from '../../api/runtime.ts';

export const NUM_TIMESTEPS = 1000;
export const LINEAR_START = 0.00085;
export const LINEAR_END = 0.012;

const f32 = Math.fround;

/** make_beta_schedule('linear'): torch.linspace(√start, √end, n, float64)², torch's symmetric linspace. */
export function betas(n = NUM_TIMESTEPS, start = LINEAR_START, end = LINEAR_END): Float64Array {
  const a = Math.sqrt(start);
  const b = Math.sqrt(end);
  const step = (b - a) / (n - 1);
  const half = Math.floor(n / 2);
  return Float64Array.from({ length: n }, (_, i) => {
    const v = i < half ? a + step * i : b - step * (n - i - 1);
    return v * v;
  });
}

/** cumprod(1 − β) in float64. */
export function alphasCumprod(n = NUM_TIMESTEPS): Float64Array {
  const out = new Float64Array(n);
  let p = 1;
  betas(n).forEach((beta, i) => (out[i] = p *= 1 - beta));
  return out;
}

/** σ = sqrt(float32((1 − ᾱ)/ᾱ)) in float32, for the given timesteps (ascending t ⇒ ascending σ). */
function sigmasAt(ac: Float64Array, timesteps: readonly number[]): Float32Array {
  return Float32Array.from(timesteps, (t) => Math.sqrt(f32((1 - ac[t]!) / ac[t]!)));
}

/** The denoiser's 1000 training sigmas, ascending (`denoiser.sigmas` in a checkpoint). */
export function trainingSigmas(n = NUM_TIMESTEPS): Float32Array {
  return sigmasAt(alphasCumprod(n), Array.from({ length: n }, (_, t) => t));
}

/**
 * LegacyDDPMDiscretization()(steps) as the sampler calls it: descending sigmas then a 0.
 * Timesteps: numpy linspace(n−1, 0, steps, endpoint=False) truncated to int, reversed.
 */
export function samplerSigmas(steps: number, n = NUM_TIMESTEPS): Float32Array {
  if (!Number.isInteger(steps) || steps < 1 || steps > n) throw new StudioError('BAD_INPUT', `steps must be an integer in 1..${n}, got ${steps}`);
  const delta = (0 - (n - 1)) / steps;
  const ts = steps === n ? Array.from({ length: n }, (_, t) => t) : Array.from({ length: steps }, (_, i) => Math.trunc(i * delta + (n - 1))).reverse();
  const ascending = sigmasAt(alphasCumprod(n), ts);
  const out = new Float32Array(steps + 1);
  for (let i = 0; i < steps; i++) out[i] = ascending[steps - 1 - i]!;
  return out;
}

/** sigma_to_idx: argmin |σ − σ_i| in float32 (first index on ties, as torch.argmin). */
export function sigmaToIndex(sigma: number, sigmas: Float32Array): number {
  let best = 0;
  let bestDist = Infinity;
  for (let i = 0; i < sigmas.length; i++) {
    const d = Math.abs(f32(f32(sigma) - sigmas[i]!));
    if (d < bestDist) {
      bestDist = d;
      best = i;
    }
  }
  return best;
}

export interface EpsScalings {
  /** The quantised sigma's index: the network's integer timestep. */
  index: number;
  sigma: number;
  cIn: number;
  cOut: number;
  cSkip: number;
}

/** possibly_quantize_sigma + EpsScaling for one batch element. */
export function epsScalings(sigma: number, sigmas: Float32Array): EpsScalings {
  const index = sigmaToIndex(sigma, sigmas);
  const s = sigmas[index]!;
  return { index, sigma: s, cIn: f32(1 / f32(Math.sqrt(f32(f32(s * s) + 1)))), cOut: -s, cSkip: 1 };
}

let cachedSigmas: Float32Array | undefined;

/** The network's conditioning, shared by every call of a sampling run (c in the official code). */
export interface DenoiserCond {
  /** crossattn [B, 77, context_dim] */
  context: TensorData;
  /** vector [B, adm_in_channels] */
  y: TensorData;
  /** The LQ latent [B, 4, h, w] GLVControl reads. */
  control: TensorData;
}

/** One run of the compiled `denoiser_step`: returns `out` (eps) for x already scaled by c_in. */
export type DenoiserStep = (feeds: { x: TensorData; timesteps: number[]; cond: DenoiserCond; controlScale: number }) => Promise<TensorData>;

/**
 * DiscreteDenoiserWithControl.__call__(network, x, sigma, cond, control_scale) with one sigma per
 * batch element: net(x·c_in, t, cond, cs)·c_out + x·c_skip, elementwise in float32.
 */
export async function denoise(step: DenoiserStep, x: TensorData, sigma: ArrayLike<number>, cond: DenoiserCond, controlScale: number, sigmas?: Float32Array): Promise<TensorData> {
  const batch = x.dims[0]!;
  if (sigma.length !== batch) throw new StudioError('BAD_INPUT', `${sigma.length} sigmas for a batch of ${batch}`);
  const table = sigmas ?? (cachedSigmas ??= trainingSigmas());
  const sc = Array.from({ length: batch }, (_, b) => epsScalings(sigma[b]!, table));
  const per = x.data.length / batch;
  const xin = new Float32Array(x.data.length);
  for (let i = 0; i < xin.length; i++) xin[i] = x.data[i]! * sc[Math.floor(i / per)]!.cIn;
  const eps = await step({ x: { data: xin, dims: x.dims }, timesteps: sc.map((s) => s.index), cond, controlScale });
  if (eps.data.length !== x.data.length) throw new StudioError('INTERNAL', `denoiser_step returned ${eps.data.length} values for ${x.data.length}`);
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const s = sc[Math.floor(i / per)]!;
    out[i] = f32(eps.data[i]! * s.cOut) + f32(x.data[i]! * s.cSkip);
  }
  return { data: out, dims: [...x.dims] };
}
